"""A labels file written again with some rows relabeled (`review apply`): CSV, TSV and NDJSON
line by line, every unchanged line byte for byte (gzip inside or not), other formats as the
same table in the same types. docs/review.md has the rules."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import polars as pl

from labelaudit.errors import InputError
from labelaudit.io.tables import COMPRESSIBLE_FORMATS, FORMATS_BY_EXTENSION
from labelaudit.io.writers import write_atomically

GZIP_MAGIC = b"\x1f\x8b"


def output_compressed(output: str, fmt: str) -> bool:
    """NEW_LABELS is written in the labels' format; gzip-compressed when its name ends in .gz
    (text formats only). A name that says another format is exit 2, not a file misnamed."""
    name = Path(output).name.lower()
    compressed = name.endswith(".gz")
    named = FORMATS_BY_EXTENSION.get(Path(name[:-3] if compressed else name).suffix)
    if (named is not None and named != fmt) or (compressed and fmt not in COMPRESSIBLE_FORMATS):
        shown = {"ipc": "Arrow", "ndjson": "NDJSON"}.get(fmt, fmt.upper())
        raise InputError(
            f"-o {output!r}: the new labels are written in the labels' format ({shown}), which "
            "that name does not say. Name it like the labels file"
            + (" (plus .gz to compress it)." if fmt in COMPRESSIBLE_FORMATS else ".")
        )
    return compressed


def write_relabeled(
    source: str,
    output: str,
    fmt: str,
    labels: pl.DataFrame,
    label_col: str,
    changing: list[tuple[int, str]],
    compressed: bool,
) -> None:
    """The labels file with those rows' labels replaced. CSV, TSV and NDJSON (gzip-compressed
    or not: the text inside is what is copied): every other line copied byte for byte; other
    formats, or text whose cells hold line breaks: the table written again in its format. The
    output is gzip-compressed when `compressed` (its name ends in .gz), plain otherwise."""

    def put(data: bytes) -> None:
        if compressed:  # mtime 0: the same labels give the same bytes
            data = gzip.compress(data, mtime=0)
        write_atomically(output, lambda target: Path(target).write_bytes(data))

    if fmt in ("csv", "tsv"):
        lines = _text_bytes(source).split(b"\n")
        body = len(lines) - 1 - (1 if lines[-1] == b"" else 0)
        if body == labels.height:  # one line a row (no line breaks inside a cell)
            delimiter = "," if fmt == "csv" else "\t"
            header = next(
                csv.reader([lines[0].decode("utf-8-sig").rstrip("\r")], delimiter=delimiter)
            )
            position = header.index(label_col)
            for row, label in changing:  # the changed rows only
                lines[row + 1] = _relabeled_line(lines[row + 1], position, label, delimiter)
            put(b"\n".join(lines))
            return
    if fmt == "ndjson":
        lines = _text_bytes(source).split(b"\n")
        filled = [i for i, line in enumerate(lines) if line.strip()]
        if len(filled) == labels.height:  # one object a line: only the changed lines rewritten
            for row, label in changing:
                lines[filled[row]] = _relabeled_json(lines[filled[row]], label_col, label)
            put(b"\n".join(lines))
            return
    column = labels[label_col]
    values = column.cast(pl.String).to_list()
    for row, label in changing:
        values[row] = label
    new = pl.Series(label_col, values, dtype=pl.String)
    if column.dtype != pl.String:  # integers, categoricals, enums keep their type
        new = new.cast(column.dtype)
    frame = labels.with_columns(new)
    if fmt in COMPRESSIBLE_FORMATS:
        buffer = io.BytesIO()
        if fmt == "ndjson":
            frame.write_ndjson(buffer)
        else:
            frame.write_csv(buffer, separator="," if fmt == "csv" else "\t")
        put(buffer.getvalue())
        return
    writers = {"parquet": frame.write_parquet, "ipc": frame.write_ipc}
    write_atomically(output, lambda target: writers.get(fmt, frame.write_parquet)(target))


def _text_bytes(source: str) -> bytes:
    """A text labels file's bytes, decompressed when they are gzip (by the first bytes, as
    `io.tables` reads it: a `.csv` that is gzip inside, or a `.csv.gz`)."""
    raw = Path(source).read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as exc:  # read_table read it, so this is a file changed since
        raise InputError(f"The labels file '{source}' could not be decompressed: {exc}.") from exc


def _relabeled_json(line: bytes, label_col: str, label: str) -> bytes:
    """One NDJSON line with its label replaced (an integer label stays an integer), written
    compact when the line was (no blank after `:` or `,`), else with json's blanks."""
    ending = b"\r" if line.endswith(b"\r") else b""
    record = json.loads(line)
    record[label_col] = int(label) if isinstance(record.get(label_col), int) else label
    compact = b'": ' not in line and b', "' not in line
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(record, ensure_ascii=False, separators=separators).encode("utf-8") + ending


def _relabeled_line(line: bytes, position: int, label: str, delimiter: str) -> bytes:
    """One CSV line with one field replaced, written back with minimal quoting."""
    ending = b"\r" if line.endswith(b"\r") else b""
    fields = next(csv.reader([line.rstrip(b"\r").decode("utf-8")], delimiter=delimiter))
    fields[position] = label
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(fields)
    return out.getvalue().encode("utf-8") + ending
