"""Read model scores (wide table, list column, or .npy) and serve them in row chunks.

Wide parquet files whose scores would take more than `stream_above` bytes in memory (the
`stream_above_mib` setting) are not read whole: only their id column is, and the class columns
are streamed in row batches when a pass asks for them (memory bounded by the batch). Smaller
ones are read whole: passes over memory are faster than decoding the file again for each pass.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from labelaudit._text import agree, count
from labelaudit.errors import InputError, SchemaError
from labelaudit.io.labels import checked_ids
from labelaudit.io.tables import (
    STREAMABLE_TEXT,
    canonical_integers,
    detect_format,
    expand_paths,
    read_npy,
    read_sample,
    read_table,
    scan_text_table,
    unparsed_value_line,
)
from labelaudit.io.topk import TOPK_CLASSES_COL, TOPK_PROBS_COL, TopK, read_topk

STREAM_ABOVE_BYTES = 512 * 2**20  # default: scores larger than this in memory are streamed


@dataclass(frozen=True)
class ScoreMatrix:
    """An (N, K) score matrix kept as it was read: a polars frame of class columns, or an array.

    `columns` names the classes in the source's order; `ids` are the rows' ids, or None when the
    scores are row-aligned with the labels. Nothing is copied until a chunk is asked for. A
    `lazy` matrix (wide parquet files) is read from disk batch by batch, in file order.
    """

    source: str
    ids: pl.Series | None
    columns: list[str]
    frame: pl.DataFrame | None = None
    matrix: np.ndarray | None = None
    lazy: pl.LazyFrame | None = None
    lazy_rows: int = 0
    ignored: tuple[str, ...] = ()  # the --ignore-cols this source had (and were dropped)
    topk: TopK | None = None  # top-k lists, made dense chunk by chunk
    skipped_label_col: str | None = None  # a numeric column named like the labels' column
    text_columns: tuple[str, ...] = ()  # columns holding text (not scores): never classes
    text: bool = False  # a lazy matrix of CSV, TSV or NDJSON

    @property
    def n_rows(self) -> int:
        if self.topk is not None:
            return int(self.topk.offsets.size - 1)
        if self.matrix is not None:
            return int(self.matrix.shape[0])
        return self.frame.height if self.frame is not None else self.lazy_rows

    def in_memory(self) -> ScoreMatrix:
        """This matrix with its scores read into memory (for random access by several models)."""
        if self.lazy is None:
            return self
        frame = _collect(self.source, lambda: self.lazy.collect())
        return replace(self, frame=frame, lazy=None)

    def stream(
        self,
        positions: np.ndarray,
        chunk_rows: int,
        ranges: list[tuple[int, int]] | None = None,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, block) for consecutive row batches of a lazy matrix in file order, each
        block a fresh C-ordered array with columns in `positions` order. With `ranges`, only
        those [start, stop) file rows are read (parquet skips the row groups outside them)."""
        if self.lazy is None:
            raise ValueError("stream() reads a lazy score matrix; take() serves one in memory")
        query = self.lazy.select(_ordered_columns(self.columns, positions))
        for start, stop in ranges if ranges is not None else [(0, None)]:
            part = query if stop is None else query.slice(start, stop - start)
            yield from self._batches(part, start, chunk_rows)

    def _batches(
        self, query: pl.LazyFrame, start: int, chunk_rows: int
    ) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, block) for the batches of one query whose first row is `start`."""
        # Text read through a projection skips checking the other fields of a row (a line with
        # a field too many would pass): parse whole rows, as a whole read does.
        flags = pl.QueryOptFlags(projection_pushdown=not self.text)
        batches = _collect(
            self.source, lambda: iter(query.collect_batches(chunk_size=chunk_rows,
                                                            optimizations=flags))
        )  # fmt: skip
        while True:
            batch = _collect(self.source, lambda: next(batches, None))
            if batch is None:
                break
            if batch.height:
                yield start, batch.to_numpy(order="c")
                start += batch.height

    def take(self, rows: slice | np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Rows of the matrix, columns in `positions` order (-1: a class with no column, zeros).

        Returns a C-contiguous array (one copy), so row-wise statistics on it are fast.
        """
        if self.topk is not None:
            return self.topk.dense(rows, positions)
        identity = positions.size == len(self.columns) and bool(
            (positions == np.arange(positions.size)).all()
        )
        if self.matrix is not None:
            block = self.matrix[rows]
            if identity:
                return np.array(block, order="C", copy=True)  # callers may write to it
            out = np.zeros((block.shape[0], positions.size), dtype=block.dtype)
            present = positions >= 0
            out[:, present] = block[:, positions[present]]
            return out
        if self.lazy is not None:  # a file is read in order (`stream`), or whole (`in_memory`)
            raise ValueError("take() on a streamed score matrix")
        if isinstance(rows, slice):
            part = self.frame.slice(rows.start, rows.stop - rows.start)
        else:
            part = self.frame[rows]
        if not identity:
            part = part.select(_ordered_columns(self.columns, positions))
        return part.to_numpy(order="c")


def _ordered_columns(columns: list[str], positions: np.ndarray) -> list[pl.Expr]:
    """Select expressions for the vocabulary's order (-1: a class with no column, zeros)."""
    return [
        pl.col(columns[p]) if p >= 0 else pl.lit(0.0).alias(f"__absent_{j}")
        for j, p in enumerate(positions)
    ]


def _collect(source: str, read: Any) -> Any:
    """Run a read of `source`'s scores; a damaged file is bad input naming it."""
    try:
        return read()
    except (pl.exceptions.PolarsError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = unparsed_value_line(source, detail)
        raise InputError(
            f"The predictions '{source}' could not be read ({detail[:200]}{where}). Check that the "
            "file is complete, of the format its extension says, and that every score is a "
            "number."
        ) from exc


def load_predictions(
    source: str | os.PathLike[str] | pl.DataFrame | np.ndarray,
    *,
    id_col: str = "id",
    label_col: str = "label",
    probs_col: str | None = None,
    classes: list[str] | None = None,
    input_format: str | None = None,
    ignore_cols: tuple[str, ...] = (),
    topk_cols: tuple[str, str] = (TOPK_CLASSES_COL, TOPK_PROBS_COL),
    stream_above: int | None = None,
) -> ScoreMatrix:
    """Read scores from a path, a DataFrame or an array, and check their shape and types.

    `ignore_cols` names columns of a table that are neither the id nor scores (a fold, an
    index); they are dropped before the class columns are chosen. A table holding both
    `topk_cols` (list columns) is top-k predictions (io/topk.py)."""
    if isinstance(source, np.ndarray):
        return _from_array(source, "predictions array", classes)
    if isinstance(source, pl.DataFrame):
        frame = _drop_ignored(source, ignore_cols)
        matrix = _from_frame(
            frame, "predictions DataFrame", id_col, label_col, probs_col, classes, topk_cols
        )
        return replace(matrix, ignored=_present(source.columns, ignore_cols))
    paths = expand_paths(source, "predictions")
    if detect_format(paths[0], input_format, "predictions") == "npy":
        return _from_array(read_npy(source, "predictions"), str(source), classes)
    if probs_col is None:
        limit = STREAM_ABOVE_BYTES if stream_above is None else stream_above
        lazy = _lazy_table(paths, str(source), input_format, id_col, label_col, classes,
                             ignore_cols, topk_cols, limit)  # fmt: skip
        if lazy is not None:
            return lazy
    table = read_table(source, "predictions", input_format, ids=(id_col,), floats=True)
    if detect_format(paths[0], input_format, "predictions") in ("csv", "tsv"):
        table = _scores_written_as_text(table, (id_col, label_col))
    frame = _drop_ignored(table, ignore_cols)
    matrix = _from_frame(frame, str(source), id_col, label_col, probs_col, classes, topk_cols)
    return replace(matrix, ignored=_present(table.columns, ignore_cols))


MISSING_TEXT = ("", "na", "n/a", "nan", "null", "none")  # how a missing score may be written
NUMBER_TEXT = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^(?i:[-+]?(nan|inf|infinity))$"


def _scores_written_as_text(frame: pl.DataFrame, skip: tuple[str, ...]) -> pl.DataFrame:
    """CSV columns of numbers with a missing value written as text (`nan`, `NA`, `null`) are
    read by polars as text; read them as numbers, the missing ones as null (so a class's
    scores are never dropped as a non-numeric column: their NaN is reported with its ids)."""
    converted = _text_scores(frame, skip)
    return frame.with_columns(converted) if converted else frame


def _text_scores(frame: pl.DataFrame, skip: tuple[str, ...]) -> list[pl.Series]:
    """The text columns of `frame` (but `skip`) that hold numbers and missing values only, as
    float columns."""
    converted = []
    for name, dtype in frame.schema.items():
        if name in skip or dtype != pl.String:
            continue
        text = frame[name].str.strip_chars()
        missing = text.is_null() | text.str.to_lowercase().is_in(MISSING_TEXT)
        number = text.str.contains(NUMBER_TEXT).fill_null(False)
        if bool((missing | number).all()) and bool(number.any()):
            as_number = pl.when(pl.Series(missing)).then(None).otherwise(pl.Series(text))
            converted.append(as_number.cast(pl.Float64).alias(name))
    return converted


def _lazy_table(
    paths: list[str],
    name: str,
    input_format: str | None,
    id_col: str,
    label_col: str,
    classes: list[str] | None,
    ignore_cols: tuple[str, ...],
    topk_cols: tuple[str, str],
    stream_above: int,
) -> ScoreMatrix | None:
    """Wide tables as a lazy matrix: the schema and the id column read now, the scores when
    streamed. Parquet files whose scores exceed `stream_above` bytes; plain CSV, TSV and NDJSON
    files larger than that (text is about the size of its numbers). None (read them whole
    instead) for smaller ones, other formats, compressed files, pipes, empty files, shards
    whose schemas differ and text whose first rows hold scores written as text (`NA`): the
    whole read says what is wrong, or reads them."""
    formats = {detect_format(p, input_format, "predictions") for p in paths}
    if len(formats) != 1 or not all(os.path.isfile(p) and os.path.getsize(p) for p in paths):
        return None
    fmt = formats.pop()
    if fmt == "parquet":
        try:
            schemas = [pl.read_parquet_schema(p) for p in paths]
        except (pl.exceptions.PolarsError, OSError):
            return None  # the whole read reports the damage with the file's name
        if any(list(s.items()) != list(schemas[0].items()) for s in schemas[1:]):
            return None
        lazy, schema = pl.scan_parquet(paths), dict(schemas[0])
    elif fmt in STREAMABLE_TEXT and not any(p.lower().endswith(".gz") for p in paths):
        if sum(os.path.getsize(p) for p in paths) <= stream_above:
            return None
        samples = [read_sample(p, fmt, "predictions", (id_col,)) for p in paths]
        if any(s is None or s.columns != samples[0].columns for s in samples):
            return None
        # A shard with a header and no rows adds nothing (its columns would read as text).
        paths = [p for p, sample in zip(paths, samples, strict=True) if sample.height]
        samples = [sample for sample in samples if sample.height]
        if not paths:
            return None
        if _text_scores(samples[0], (id_col, label_col)):
            return None  # scores written as text: read whole, where they are converted
        lazy = _collect(name, lambda: scan_text_table(paths, fmt, (id_col,)))
        schema = dict(_collect(name, lambda: lazy.collect_schema()))
    else:
        return None
    if set(topk_cols) & set(schema) or topk_cols != (TOPK_CLASSES_COL, TOPK_PROBS_COL):
        return None  # top-k lists are compact: read whole (and checked there)
    ignored = _present(list(schema), ignore_cols)
    for column in ignored:
        schema.pop(column)
    normalized = _normalized_names(list(schema))
    if normalized is not None:
        lazy = lazy.rename(normalized)
        schema = {normalized[c]: t for c, t in schema.items()}
    id_values = None
    if fmt == "parquet":
        height = _collect(name, lambda: lazy.select(pl.len()).collect().item())
    else:  # counting text rows maps the whole file into memory: count the ids read anyway
        first = lazy.select(id_col if id_col in schema else pl.first())
        id_values = _collect(name, lambda: first.collect()).to_series()
        height = id_values.len()
    if height == 0:
        raise InputError(f"The predictions in '{name}' have no rows.")
    columns = _score_columns(schema, name, id_col, label_col, classes)
    width = sum(4 if schema[c] == pl.Float32 else 8 for c in columns)
    if fmt == "parquet" and height * width <= stream_above:
        return None
    ids = None
    if id_col in schema:
        if id_values is None:
            id_values = _collect(name, lambda: lazy.select(id_col).collect())[id_col]
        if fmt in ("csv", "tsv"):
            id_values = canonical_integers(id_values)
        ids = checked_ids(id_values, id_col, f"the predictions '{name}'")
    scores = lazy.select(_as_float(schema, columns))
    skipped = _skipped_label(schema, label_col, columns)
    return ScoreMatrix(name, ids, columns, lazy=scores, lazy_rows=int(height), ignored=ignored,
                       skipped_label_col=skipped, text=fmt != "parquet",
                       text_columns=_text_columns(schema, id_col, label_col))  # fmt: skip


def _present(columns: list[str], ignore_cols: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c for c in ignore_cols if c in columns)


def _drop_ignored(frame: pl.DataFrame, ignore_cols: tuple[str, ...]) -> pl.DataFrame:
    """The frame without the --ignore-cols it has (a column absent from one of several models'
    files is no error; `io.load` checks that each is in at least one)."""
    return frame.drop(list(_present(frame.columns, ignore_cols)))


def check_ignored_found(matrices: list[ScoreMatrix], ignore_cols: tuple[str, ...]) -> None:
    """Every --ignore-cols name must be a column of at least one predictions file (a typo
    would otherwise leave the column it meant as a phantom class)."""
    absent = [c for c in ignore_cols if not any(c in m.ignored for m in matrices)]
    if absent and matrices:
        files = ", ".join(f"'{m.source}'" for m in matrices)
        raise SchemaError(
            f"--ignore-cols names {', '.join(repr(c) for c in absent)}, which the predictions "
            f"{files} do not have. Columns found: {', '.join(matrices[0].columns[:20])}."
        )


def _score_columns(
    schema: Mapping[str, Any],
    name: str,
    id_col: str,
    label_col: str,
    classes: list[str] | None,
) -> list[str]:
    """The class columns of a wide table: those of --classes, else every numeric column but the
    id and the label; each must hold numbers."""
    if classes is not None:
        missing = [c for c in classes if c not in schema]
        if missing:
            raise SchemaError(
                f"The predictions '{name}' lack a column for {len(missing)} of the classes in "
                f"--classes: {', '.join(missing[:10])}. Columns found: "
                f"{', '.join(list(schema)[:20])}. Wide predictions need one column per class, "
                "named by the class; or name a list column with --probs-col."
            )
        columns = list(classes)
    else:
        skip = {id_col, label_col}
        columns = [c for c, dtype in schema.items() if c not in skip and dtype.is_numeric()]
        if not columns:
            raise SchemaError(
                f"The predictions '{name}' have no numeric score columns. Columns found: "
                f"{', '.join(schema)}. Give one numeric column per class, or --probs-col "
                "with a list column and --classes."
            )
    for column in columns:
        if not schema[column].is_numeric():
            raise SchemaError(
                f"The score column '{column}' of '{name}' holds {schema[column]}, not numbers."
            )
    return columns


def _normalized_names(columns: list[str]) -> dict[str, str] | None:
    """Column names as label values compare (Unicode NFC, no surrounding blanks), as a rename;
    None when nothing changes or a rename would merge two columns (left to the repeat check)."""
    normalized = {c: unicodedata.normalize("NFC", c).strip() for c in columns}
    if len(set(normalized.values())) != len(normalized) or all(
        k == v for k, v in normalized.items()
    ):
        return None
    return normalized


def _skipped_label(schema: Mapping[str, Any], label_col: str, columns: list[str]) -> str | None:
    """The label column's name when a numeric column of that name was left out of the class
    columns (resolve_classes refuses it when it is also a class)."""
    numeric = label_col in schema and schema[label_col].is_numeric()
    return label_col if numeric and label_col not in columns else None


def _as_float(schema: Mapping[str, Any], columns: list[str]) -> list[pl.Expr]:
    """Float columns as they are (float32 stays float32), others as float64; nulls become NaN
    later, reported with their ids."""
    return [
        pl.col(c) if schema[c] in (pl.Float32, pl.Float64) else pl.col(c).cast(pl.Float64)
        for c in columns
    ]


def _from_array(array: np.ndarray, name: str, classes: list[str] | None) -> ScoreMatrix:
    if array.ndim != 2:
        raise InputError(f"The predictions '{name}' have shape {array.shape}; expected (N, K).")
    k = array.shape[1]
    if classes is not None and len(classes) != k:
        raise InputError(
            f"The predictions '{name}' have {k} columns but --classes names {len(classes)} "
            "classes. Give a class list with one name per score column, in order."
        )
    columns = classes if classes is not None else [str(i) for i in range(k)]
    if array.dtype == np.float16:  # too coarse to sum or compare rows in: widen once
        array = array.astype(np.float32)
    elif not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return ScoreMatrix(name, None, list(columns), matrix=array)


def _from_frame(
    frame: pl.DataFrame,
    name: str,
    id_col: str,
    label_col: str,
    probs_col: str | None,
    classes: list[str] | None,
    topk_cols: tuple[str, str] = (TOPK_CLASSES_COL, TOPK_PROBS_COL),
) -> ScoreMatrix:
    if frame.height == 0:
        raise InputError(f"The predictions in '{name}' have no rows.")
    # Column names compare in Unicode NFC without surrounding blanks, like label values (a
    # composed and a decomposed "café" are one class); a rename that would merge two columns is
    # left to the repeat check.
    normalized = _normalized_names(frame.columns)
    if normalized is not None:
        frame = frame.rename(normalized)
    ids = (
        checked_ids(frame[id_col], id_col, f"the predictions '{name}'")
        if id_col in frame.columns
        else None
    )
    if probs_col is not None:
        return _from_list_column(frame, name, ids, probs_col, classes)
    present = [c for c in topk_cols if c in frame.columns]
    named = topk_cols != (TOPK_CLASSES_COL, TOPK_PROBS_COL)
    if len(present) == 1 or (named and len(present) < 2):
        missing = [c for c in topk_cols if c not in frame.columns]
        raise SchemaError(
            f"Top-k predictions need both list columns, but '{name}' has no "
            f"{' and no '.join(repr(c) for c in missing)} (--topk-classes-col / "
            f"--topk-probs-col). Columns found: {', '.join(frame.columns[:20])}."
        )
    if present:
        columns, topk = read_topk(frame, ids, name, *topk_cols, classes)
        return ScoreMatrix(name, ids, columns, topk=topk)
    columns = _score_columns(frame.schema, name, id_col, label_col, classes)
    scores = frame.select(_as_float(frame.schema, columns))
    skipped = _skipped_label(frame.schema, label_col, columns)
    return ScoreMatrix(name, ids, columns, frame=scores, skipped_label_col=skipped,
                       text_columns=_text_columns(frame.schema, id_col, label_col))  # fmt: skip


def _text_columns(schema: Mapping[str, Any], id_col: str, label_col: str) -> tuple[str, ...]:
    """The columns that are not numbers (nor the id or the label): named like a class, they
    are scores with a value that is not a number, an error (not a class without scores)."""
    return tuple(
        c for c, t in schema.items() if c not in (id_col, label_col) and not t.is_numeric()
    )


def _from_list_column(
    frame: pl.DataFrame,
    name: str,
    ids: pl.Series | None,
    probs_col: str,
    classes: list[str] | None,
) -> ScoreMatrix:
    if probs_col not in frame.columns:
        raise SchemaError(
            f"The predictions '{name}' have no column '{probs_col}' (--probs-col). Columns found: "
            f"{', '.join(frame.columns)}."
        )
    series = frame[probs_col]
    if not isinstance(series.dtype, pl.List | pl.Array):
        raise SchemaError(
            f"The column '{probs_col}' of '{name}' holds {series.dtype}; --probs-col needs a list "
            "of one score per class."
        )
    if classes is None:
        raise SchemaError(
            f"The scores in list column '{probs_col}' of '{name}' need the class order: pass "
            "--classes FILE with one class name a line, in the order of the list."
        )
    lengths = series.list.len() if isinstance(series.dtype, pl.List) else None
    k = len(classes)
    if lengths is not None:
        wrong = (lengths != k).fill_null(True).to_numpy()
        if wrong.any():
            rows = np.flatnonzero(wrong)[:5].tolist()
            raise SchemaError(
                f"{count(int(wrong.sum()), 'row')} of '{probs_col}' in '{name}' "
                f"{agree(int(wrong.sum()), 'does', 'do')} not hold {k} scores "
                f"(one per class in --classes); first rows: {rows}."
            )
    flat = series.explode().cast(pl.Float64).to_numpy() if lengths is not None else None
    matrix = flat.reshape(-1, k) if flat is not None else series.to_numpy().astype(np.float64)
    return ScoreMatrix(name, ids, list(classes), matrix=matrix)


def read_class_file(path: str | os.PathLike[str]) -> list[str]:
    """Read `--classes FILE`: one class name a line, in order; blank lines skipped."""
    file = Path(path)
    if not file.exists() or file.is_dir():  # a pipe (<(...)) is read like a file
        what = "is a folder" if file.is_dir() else "does not exist"
        raise InputError(f"The classes file '{path}' {what}. Give a file with one class a line.")
    try:
        text = file.read_text(encoding="utf-8-sig")  # a byte-order mark is not a class name
    except UnicodeDecodeError as exc:
        raise InputError(
            f"The classes file '{path}' is not UTF-8 text ({exc.reason} at byte {exc.start}). "
            "Re-save it as UTF-8, one class name a line."
        ) from exc
    except OSError as exc:
        raise InputError(
            f"The classes file '{path}' could not be read: {exc.strerror or exc}."
        ) from exc
    names = [unicodedata.normalize("NFC", line.strip()) for line in text.splitlines()]
    names = [n for n in names if n]
    if not names:
        raise InputError(f"The classes file '{path}' names no class. Give one class name a line.")
    seen: set[str] = set()
    repeated = [n for n in names if n in seen or seen.add(n)]
    if repeated:
        raise InputError(
            f"The classes file '{path}' names some classes twice: {', '.join(repeated[:5])}. "
            "Each class must appear once."
        )
    return names
