"""Read a data file (or a glob of shards) into a polars DataFrame, by extension or by format."""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from labelaudit._text import printable
from labelaudit.errors import InputError

FORMATS_BY_EXTENSION = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".arrow": "ipc",
    ".ipc": "ipc",
    ".feather": "ipc",
    ".npy": "npy",
}
TABLE_FORMATS = ("csv", "tsv", "parquet", "ndjson", "ipc")
COMPRESSIBLE_FORMATS = ("csv", "tsv", "ndjson")  # polars reads these gzip-compressed as they are
DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}
GLOB_CHARACTERS = set("*?[")


INFER_ROWS = 10_000  # CSV/TSV column types are inferred from this many rows (whole or scanned)


def _read(
    source: Any,
    fmt: str,
    text_columns: Sequence[str],
    n_rows: int | None = None,
    keep: Sequence[str] | None = None,
    check: Callable[[pl.DataFrame], None] | None = None,
    floats: bool = False,
) -> pl.DataFrame:
    """Read one file (a path, or the bytes of a pipe) in `fmt` (its first `n_rows` rows when
    given, text formats only; after `check` of a CSV header). `keep`: only the columns it names
    are returned, and parquet and Arrow files read no other (text is read whole: a damaged row
    in a column not kept must still be found). In CSV/TSV, `text_columns` are read as written
    (text): polars would read `007` as 7 and `01` and `1` as one value."""
    if fmt in ("csv", "tsv"):
        separator = "," if fmt == "csv" else "\t"
        header = pl.read_csv(source, separator=separator, n_rows=0)
        if check is not None:
            check(header)
        if hasattr(source, "seek"):
            source.seek(0)
        overrides = _csv_types(source, separator, header.columns, text_columns, floats)
        if n_rows is not None:  # polars may parse past n_rows: give it those rows only
            source, n_rows = head_lines(source, n_rows), None
        frame = pl.read_csv(
            source, separator=separator, infer_schema_length=INFER_ROWS,
            schema_overrides=overrides, n_rows=n_rows,
        )  # fmt: skip
        return frame if keep is None else frame.select(c for c in frame.columns if c in keep)
    if fmt == "ndjson":
        frame = pl.read_ndjson(source, n_rows=n_rows, infer_schema_length=None)
        frame = frame.select(ndjson_order(source, frame.columns))
        return frame if keep is None else frame.select(c for c in frame.columns if c in keep)
    if fmt == "ipc" and is_ipc_stream(source):  # the stream format (e.g. `datasets` caches)
        frame = pl.read_ipc_stream(source)
        return frame if keep is None else frame.select(c for c in frame.columns if c in keep)
    reader = pl.read_parquet if fmt == "parquet" else pl.read_ipc
    if keep is None:
        return reader(source)
    schema = pl.read_parquet_schema(source) if fmt == "parquet" else pl.read_ipc_schema(source)
    if hasattr(source, "seek"):
        source.seek(0)
    return reader(source, columns=[c for c in schema if c in keep])


IPC_STREAM_MARKER = b"\xff\xff\xff\xff"  # an Arrow IPC stream's first message starts so


def is_ipc_stream(source: Any) -> bool:
    """Whether Arrow IPC bytes are the stream format (no `ARROW1` file header and footer)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source[:4]) == IPC_STREAM_MARKER
    if hasattr(source, "read") and hasattr(source, "seek"):
        start = source.tell()
        head = source.read(4)
        source.seek(start)
        return head == IPC_STREAM_MARKER
    try:
        with open(source, "rb") as handle:
            return handle.read(4) == IPC_STREAM_MARKER
    except (OSError, TypeError):
        return False


def ndjson_order(source: Any, columns: Sequence[str]) -> list[str]:
    """`columns` in the order of the first record's keys (polars' NDJSON order varies from run
    to run), then the keys later records add, sorted: the file's order, deterministic."""
    first: dict[str, Any] = {}
    try:
        line = head_lines(source, 0).getvalue()
        first = json.loads(line) if line.strip() else {}
    except (OSError, ValueError, EOFError):
        pass
    keys = [k for k in first if k in columns] if isinstance(first, dict) else []
    return keys + sorted(c for c in columns if c not in set(keys))


STREAMABLE_TEXT = ("csv", "tsv", "ndjson")


def head_lines(source: Any, rows: int) -> io.BytesIO:
    """The header and the first `rows` lines of a text file (a path or bytes), as bytes (a
    quoted field holding a line break may cut a record short: only types are read from it)."""
    if hasattr(source, "getvalue"):
        lines = source.getvalue().split(b"\n", rows + 1)[: rows + 1]
        source.seek(0)
        return io.BytesIO(b"\n".join(lines))
    opener = gzip.open if str(source).lower().endswith(".gz") else open
    with opener(source, "rb") as handle:
        return io.BytesIO(b"".join(line for _, line in zip(range(rows + 1), handle, strict=False)))


def _csv_types(
    source: Any, separator: str, header: Sequence[str], text_columns: Sequence[str], floats: bool
) -> dict[str, Any]:
    """The type overrides of a CSV read, whole or scanned: `text_columns` as written; with
    `floats` (scores), the columns of integers in the first INFER_ROWS rows as floats (they
    may hold decimals later)."""
    overrides: dict[str, Any] = {c: pl.String for c in text_columns if c in header}
    if floats:
        sample = pl.read_csv(
            head_lines(source, INFER_ROWS), separator=separator, infer_schema_length=INFER_ROWS,
            schema_overrides=overrides,
        )  # fmt: skip
        overrides |= {
            c: pl.Float64 for c, t in sample.schema.items() if t.is_integer() and c not in overrides
        }
    return overrides


def scan_text_table(paths: Sequence[str], fmt: str, text_columns: Sequence[str]) -> pl.LazyFrame:
    """Plain CSV, TSV or NDJSON files (no .gz) as one lazy table read batch by batch, with the
    column types the whole read gives (`_read`; the first file's sample was checked with
    `read_sample`)."""
    if fmt == "ndjson":
        lazy = pl.scan_ndjson(list(paths), infer_schema_length=None)
        return lazy.select(ndjson_order(paths[0], lazy.collect_schema().names()))
    separator = "," if fmt == "csv" else "\t"
    header = pl.read_csv(paths[0], separator=separator, n_rows=0).columns
    overrides = _csv_types(paths[0], separator, header, text_columns, floats=True)
    return pl.scan_csv(
        list(paths), separator=separator, infer_schema_length=INFER_ROWS,
        schema_overrides=overrides,
    )  # fmt: skip


def read_sample(path: str, fmt: str, role: str, text_columns: Sequence[str]) -> pl.DataFrame | None:
    """The first INFER_ROWS rows of a text table, read and checked as the whole read would;
    None when they do not read (polars may parse past them): the whole read then says why."""
    try:
        frame = _read(path, fmt, text_columns, n_rows=INFER_ROWS)
    except (pl.exceptions.PolarsError, OSError, ValueError):
        return None
    if fmt in ("csv", "tsv"):
        _check_header(frame, path, role, fmt)
    return frame


def expand_paths(path: str | os.PathLike[str], role: str) -> list[str]:
    """The files a path names: itself, or the sorted matches of a glob. Errors when none exist."""
    text = str(path)
    if GLOB_CHARACTERS & set(text):
        matches = sorted(glob.glob(text))
        if not matches:
            raise InputError(
                f"The {role} pattern '{text}' matches no file. Check the pattern and quote it so "
                "the shell does not expand it."
            )
        return matches
    if not Path(text).exists():
        raise InputError(f"The {role} file '{text}' does not exist. Check the path.")
    if Path(text).is_dir():
        raise InputError(f"The {role} path '{text}' is a folder; give a file (or a quoted glob).")
    return [text]


def detect_format(path: str, override: str | None, role: str) -> str:
    """The format named by `override`, else the one the file's extension implies (a `.gz` after
    a text format's extension is read compressed: `labels.csv.gz`, `preds.jsonl.gz`)."""
    if override:
        return override
    name = Path(path).name.lower()
    compressed = name.endswith(".gz")
    suffix = Path(name[:-3] if compressed else name).suffix
    fmt = FORMATS_BY_EXTENSION.get(suffix)
    if fmt is None or (compressed and fmt not in COMPRESSIBLE_FORMATS):
        known = ", ".join(sorted(FORMATS_BY_EXTENSION))
        shown = suffix + (".gz" if compressed else "")
        fix = (
            "Export the sheet as CSV: labelaudit does not read Excel workbooks."
            if suffix in (".xlsx", ".xls", ".xlsm", ".ods")
            else "Rename the file or pass --input-format."
        )
        raise InputError(
            f"The {role} file '{path}' has an extension labelaudit does not know ('{shown}'). "
            f"Known extensions: {known} (and .csv.gz, .tsv.gz, .jsonl.gz, .ndjson.gz). {fix}"
        )
    _check_contents(path, fmt, role)
    return fmt


# A file's first bytes name its kind whatever its name says: (magic, format, what it is).
MAGIC_BYTES = (
    (b"PAR1", "parquet", "a Parquet file"),
    (b"ARROW1", "ipc", "an Arrow IPC (Feather) file"),
    (IPC_STREAM_MARKER, "ipc", "an Arrow IPC stream"),
    (b"\x93NUMPY", "npy", "a NumPy .npy array"),
    (b"PK\x03\x04", None, "a zip archive (an Excel workbook, or zipped files)"),
    (b"\x1f\x8b", "gzip", "gzip-compressed"),
)
EXTENSION_OF = {"parquet": ".parquet", "ipc": ".arrow", "npy": ".npy"}


def _check_contents(path: str, fmt: str, role: str) -> None:
    """A regular file whose first bytes say it is not what its extension says is named for what
    it is (a Parquet file called `.csv` would otherwise be parsed as text). gzip behind a text
    extension is read as it is; pipes are not sniffed (their bytes would be spent)."""
    if not os.path.isfile(path):
        return
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError:
        return  # the reader says what is wrong
    found = next((m for m in MAGIC_BYTES if head.startswith(m[0])), None)
    if found is None or found[1] == fmt or (found[1] == "gzip" and fmt in COMPRESSIBLE_FORMATS):
        return
    _, kind, what = found
    if kind in EXTENSION_OF:
        fix = (
            f"Rename it to end in {EXTENSION_OF[kind]} (--input-format {kind} would read every "
            f"input of the command as {kind})."
        )
    elif kind == "gzip":
        fix = "Decompress it, or name it for what it holds (a .csv.gz, say)."
    else:
        fix = (
            "Export the sheet as CSV (labelaudit does not read workbooks), or give the table "
            "itself (csv, tsv, parquet, ndjson or arrow)."
        )
    raise InputError(
        f"The {role} file '{path}' is named as {fmt} but is {what} (by its first bytes). {fix}"
    )


def read_table(
    path: str | os.PathLike[str],
    role: str,
    override: str | None = None,
    ids: Sequence[str] = (),
    label: str | None = None,
    keep: Sequence[str] | None = None,
    floats: bool = False,
) -> pl.DataFrame:
    """Read one table, or several shards as one (stacked in sorted file-name order). In CSV and
    TSV, the `ids` columns and the `label` column are read as the text they are; then
    `canonical_integers` (ids) and `numbers_as_written` (the label) decide their type. With
    `keep`, only those of its columns the table has are read (its other columns may be many);
    with `floats` (scores), CSV columns of integers are read as floats."""
    paths = expand_paths(path, role)
    frames = []
    for one in paths:
        fmt = detect_format(one, override, role)
        if fmt == "npy":
            raise InputError(
                f"The {role} file '{one}' is a .npy array, but a table is needed here "
                "(csv, tsv, parquet, ndjson, arrow)."
            )
        text = list(dict.fromkeys([*ids, *([label] if label else [])]))
        frame = _read_one(one, fmt, role, text, keep, floats)
        if fmt in ("csv", "tsv"):
            frame = frame.with_columns(
                (numbers_as_written if c == label else canonical_integers)(frame[c])
                for c in text
                if c in frame.columns
            )
        frames.append(frame)
    if len(frames) == 1:
        return frames[0]
    order = frames[0].columns
    for one, frame in zip(paths[1:], frames[1:], strict=True):
        if set(frame.columns) != set(order):
            only_first = [c for c in order if c not in frame.columns][:5]
            only_this = [c for c in frame.columns if c not in order][:5]
            raise InputError(
                f"The {role} files matching '{path}' do not share one set of columns: "
                f"'{one}' lacks {', '.join(only_first) or 'none'} and adds "
                f"{', '.join(only_this) or 'none'} (against '{paths[0]}'). Make the shards "
                "consistent."
            )
    try:  # the same columns in another order are stacked by name
        return pl.concat([f.select(order) for f in frames], how="vertical_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"The {role} files matching '{path}' do not share one set of column types, so "
            f"they cannot be read as one table ({_first_line(exc)}). Make the shards consistent."
        ) from exc


def _read_one(
    path: str,
    fmt: str,
    role: str,
    text_columns: Sequence[str],
    keep: Sequence[str] | None = None,
    floats: bool = False,
) -> pl.DataFrame:
    regular = os.path.isfile(path)
    if regular and os.path.getsize(path) == 0:
        raise InputError(f"The {role} file '{path}' is empty (0 bytes). Give a file with rows.")
    try:
        # A pipe (/dev/stdin, <(...)) is read once into memory: polars needs to seek.
        source: Any = path if regular else io.BytesIO(Path(path).read_bytes())
        if not regular and source.getbuffer().nbytes == 0:
            raise InputError(f"The {role} input '{path}' is empty: nothing was piped into it.")

        def check(header: pl.DataFrame) -> None:
            _check_header(header, path, role, fmt)

        frame = _read(source, fmt, text_columns, keep=keep, check=check, floats=floats)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        if "allocate memory" in str(exc):  # the machine's limit, not the file's fault
            raise MemoryError(f"reading '{path}'") from exc
        where = _parse_error_line(path, fmt, str(exc)) if regular else ""
        raise InputError(
            f"The {role} file '{path}' could not be read as {fmt}{where}: "
            f"{printable(_first_line(exc))[:200]}. Check that the file is complete and of the "
            "format its extension says (or pass --input-format)."
        ) from exc
    return frame


def table_columns(
    path: str | os.PathLike[str], role: str, override: str | None = None
) -> list[str]:
    """The column names of a table (its first file), from its header or schema, for messages."""
    first = expand_paths(path, role)[0]
    fmt = detect_format(first, override, role)
    try:
        if fmt == "parquet":
            return list(pl.read_parquet_schema(first))
        if fmt == "ipc":
            if is_ipc_stream(first):
                return pl.read_ipc_stream(first, n_rows=0).columns
            return list(pl.read_ipc_schema(first))
        if fmt == "ndjson":
            return pl.scan_ndjson(first).collect_schema().names()
        return pl.read_csv(first, separator="," if fmt == "csv" else "\t", n_rows=0).columns
    except (pl.exceptions.PolarsError, OSError, ValueError):
        return []


DECIMAL = r"^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?\d+[eE][-+]?\d+$|^(?i:[-+]?(nan|inf))$"


def numbers_as_written(column: pl.Series) -> pl.Series:
    """A text column of numbers as numbers, by how they are written: every value a canonical
    integer gives integers; canonical integers and decimals (`1.0`, `2.5e3`, `nan`) give
    floats; anything else (`007`, `+1`, `cat`) stays text. For labels: `1.0` is then the
    integer-valued float 1 (class "1"), while `007` stays the class "007"."""
    column = canonical_integers(column)
    if column.dtype != pl.String:
        return column
    values = column.drop_nulls()
    integer = values.str.contains(r"^-?(0|[1-9][0-9]{0,17})$")
    decimal = values.str.contains(DECIMAL)
    if values.len() == 0 or not (integer | decimal).all() or not decimal.any():
        return column
    return column.cast(pl.Float64)


def canonical_integers(column: pl.Series) -> pl.Series:
    """A text column whose every value is an integer written the canonical way (`12`, `-3`; not
    `007`, `+1` or `1.0`) as integers; any other text column as it is. One rule for ids and
    labels read from CSV, so `01` and `1` stay two values while `1, 2, 3` are integers."""
    if column.dtype != pl.String:
        return column
    values = column.drop_nulls()
    if values.len() == 0 or not values.str.contains(r"^-?(0|[1-9][0-9]{0,17})$").all():
        return column
    return column.cast(pl.Int64)


def _check_header(frame: pl.DataFrame, path: str, role: str, fmt: str) -> None:
    """Repeated column names (polars renames the second `x` to `x_duplicated_0`) and a header
    that is one column holding another delimiter are errors, not silent columns."""
    columns = set(frame.columns)
    for column in frame.columns:
        base, marker, number = column.rpartition("_duplicated_")
        if marker and number.isdigit() and base in columns:
            raise InputError(
                f"The {role} file '{path}' names the column '{base}' more than once in its "
                "header. Each column needs its own name; rename or drop the repeats."
            )
    if frame.width == 1:
        header = frame.columns[0]
        separator = "," if fmt == "csv" else "\t"
        for delimiter, name in DELIMITERS.items():
            if delimiter != separator and delimiter in header:
                raise InputError(
                    f"The {role} file '{path}' was read as {fmt} (fields separated by "
                    f"{'commas' if fmt == 'csv' else 'tabs'}) but has one column, '{header}', "
                    f"which looks separated by {name}. Save it with "
                    f"{'commas' if fmt == 'csv' else 'tabs'} (or as .tsv if it uses tabs)."
                )


UNPARSED = re.compile(r"could not parse `(.*?)` as dtype `.*?` at column '(.*?)'")


def unparsed_value_line(source: str, message: str) -> str:
    """For polars' "could not parse `v` ... at column 'c'" on CSV/TSV `source` (a file or a
    glob of shards): ", in 'file' line N" of the first row holding that text in that column
    (a second, plain read on the error path only); empty when it cannot be found."""
    try:
        paths = expand_paths(source, "predictions")
        formats = {detect_format(p, None, "predictions") for p in paths}
    except InputError:
        return ""
    if "more fields than" in message or formats == {"ndjson"}:  # the plain reader's line
        for path in paths:
            fmt = detect_format(path, None, "predictions")
            where = _parse_error_line(path, fmt) if fmt in ("csv", "tsv", "ndjson") else ""
            if where:
                return where.replace(", line", f", in '{path}' line", 1)
        return ""
    found = UNPARSED.search(message)
    if found is None:
        return ""
    value, column = found.groups()
    try:
        for path in expand_paths(source, "predictions"):
            fmt = detect_format(path, None, "predictions")
            if fmt not in ("csv", "tsv"):
                return ""
            rows = (
                pl.scan_csv(path, separator="," if fmt == "csv" else "\t", infer_schema=False)
                .with_row_index("row")
                .filter(pl.col(column).str.strip_chars() == value.strip())
                .select("row")
                .head(1)
                .collect()
            )
            if rows.height:
                return f", in '{path}' line {int(rows['row'][0]) + 2}"
    except (pl.exceptions.PolarsError, OSError, InputError):
        return ""
    return ""


def _parse_error_line(path: str, fmt: str, message: str = "") -> str:
    """', line N' for the first line of a CSV/TSV/NDJSON file that does not parse (a second,
    plain read on the error path only); empty when it cannot be found."""
    if fmt not in COMPRESSIBLE_FORMATS:
        return ""
    if UNPARSED.search(message) and not path.lower().endswith(".gz"):
        return unparsed_value_line(path, message).replace(f", in '{path}' line", ", line")
    import csv

    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            if fmt == "ndjson":
                return _first_bad_json_line(handle)
            rows = csv.reader(handle, delimiter="," if fmt == "csv" else "\t", strict=True)
            width = len(next(rows, []))
            started = 1
            for row in rows:
                if row and len(row) != width:
                    return f", line {rows.line_num} (expected {width} fields, found {len(row)})"
                started = rows.line_num + 1
    except UnicodeDecodeError as exc:
        return f" (it is not UTF-8 text: {exc.reason} at byte {exc.start})"
    except csv.Error as exc:
        why = "a quote opened there is never closed" if "end of data" in str(exc) else str(exc)
        return f", the record starting on line {started} ({why})"
    except (OSError, EOFError):
        return ""
    return ""


def _first_bad_json_line(lines: Iterable[str]) -> str:
    import json

    for number, line in enumerate(lines, start=1):
        try:
            if line.strip():
                json.loads(line)
        except json.JSONDecodeError as exc:
            return f", line {number} ({exc.msg})"
    return ""


def read_npy(path: str | os.PathLike[str], role: str) -> np.ndarray:
    """Memory-map a 2-D .npy score matrix, so a large file costs no memory up front."""
    paths = expand_paths(path, role)
    if len(paths) > 1:
        raise InputError(
            f"The {role} pattern '{path}' matches {len(paths)} .npy files; a .npy array is read "
            "whole, one file. Give one file (or tables, whose shards a glob reads as one)."
        )
    one = paths[0]
    try:
        with open(one, "rb") as handle:
            magic = handle.read(6)
    except OSError as exc:
        raise InputError(f"The {role} file '{one}' could not be read: {exc.strerror}.") from exc
    if magic != b"\x93NUMPY":
        raise InputError(
            f"The {role} file '{one}' is not a NumPy .npy file (it lacks the .npy header). Save "
            "the scores with numpy.save, or give a table (csv, parquet, ...)."
        )
    try:
        array = np.load(one, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InputError(
            f"The {role} file '{one}' holds Python objects (a pickled array), which labelaudit "
            "never loads; save the scores as a numeric array (float32 or float64)."
        ) from exc
    except OSError as exc:
        raise InputError(
            f"The {role} file '{one}' could not be read as a .npy array: {_first_line(exc)}."
        ) from exc
    usable = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    if array.ndim != 2 or not usable:
        raise InputError(
            f"The {role} file '{one}' holds an array of shape {array.shape} and type "
            f"{array.dtype}; expected a 2-D array of real numbers (integer or float) of shape "
            "(samples, classes)."
        )
    return array


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
