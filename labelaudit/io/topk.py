"""Top-k predictions: each row's k most probable classes and their probabilities, as two list
columns (`topk_classes`, `topk_probs`). The rest of the row's mass, 1 - sum(top-k), is shared
equally by the classes outside its top k (docs/inputs.md), so every statistic reads a full row;
rows are made dense one chunk at a time, from compressed arrays of N x k entries.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from labelaudit._text import count
from labelaudit.core.scores import DISTRIBUTION_TOLERANCE, EXACT_SUM
from labelaudit.core.sparse_rows import SparseRows, entries
from labelaudit.errors import InputError, SchemaError
from labelaudit.io.labels import class_names, describe_ids

TOPK_CLASSES_COL = "topk_classes"
TOPK_PROBS_COL = "topk_probs"
DENSE_CHUNK_BYTES = 64 * 2**20  # a dense chunk of top-k rows stays under this


@dataclass(frozen=True)
class TopK:
    """Row r's entries are `column[offsets[r]:offsets[r + 1]]` (indices into the class names)
    with probabilities `probability[...]`."""

    offsets: np.ndarray
    column: np.ndarray
    probability: np.ndarray
    total: np.ndarray | None = None  # each row's sum of probabilities (derived when not given)

    def __post_init__(self) -> None:
        if self.total is None:
            owner = np.repeat(np.arange(self.offsets.size - 1), np.diff(self.offsets))
            total = np.bincount(owner, weights=self.probability, minlength=self.offsets.size - 1)
            object.__setattr__(self, "total", total)

    @property
    def lengths(self) -> np.ndarray:
        """Each row's k."""
        return np.diff(self.offsets)

    def dense(self, rows: slice | np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Rows as an (n, K) float64 block in vocabulary order (`positions`: vocabulary index ->
        class name index, -1 for a class no row names): known entries, and the remaining mass
        spread evenly over each row's other classes."""
        return self._rows(rows, positions).dense()

    def sparse(self, rows: slice | np.ndarray, positions: np.ndarray) -> SparseRows:
        """Rows as SparseRows in vocabulary order (`positions` as for `dense`), read as
        probabilities exactly as the dense rows are: a row whose full sum is off 1 by more than
        EXACT_SUM is divided by it."""
        read = self._rows(rows, positions)
        sums = read.row_sums
        off = np.abs(sums - 1.0) > EXACT_SUM
        if not off.any():
            return read
        scale = np.where(off & (sums > 0), sums, 1.0)
        probability = read.probability / np.repeat(scale, read.lengths)
        return replace(read, probability=probability, rest=read.rest / scale)

    def _rows(self, rows: slice | np.ndarray, positions: np.ndarray) -> SparseRows:
        """The rows' entries in vocabulary order and each one's even share of the rest, as
        written (`row_sums`: each full row's sum)."""
        picked = np.arange(self.offsets.size - 1)[rows]
        k = positions.size
        starts, lengths = self.offsets[picked], self.offsets[picked + 1] - self.offsets[picked]
        entry = entries(starts, lengths)
        where = self._vocabulary(positions)[self.column[entry]]
        if (where < 0).any():  # the vocabulary is resolved to hold every class the lists name
            raise ValueError("a top-k class is missing from the vocabulary")
        known = self.total[picked]
        absent = k - lengths
        share = np.where(absent > 0, np.clip(1.0 - known, 0.0, None) / np.maximum(absent, 1), 0.0)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        probability = self.probability[entry].astype(np.float64)
        return SparseRows(k, offsets, where, probability, share, row_sums=known + absent * share)

    def _vocabulary(self, positions: np.ndarray) -> np.ndarray:
        """Class name index -> vocabulary index (-1 for a name outside the vocabulary)."""
        size = max(int(positions.max(initial=-1)), int(self.column.max(initial=-1))) + 1
        vocabulary = np.full(size, -1, dtype=np.int64)
        present = positions >= 0
        vocabulary[positions[present]] = np.flatnonzero(present)
        return vocabulary

    def chunk_rows(self, n_classes: int, asked: int) -> int:
        """Rows per dense chunk: as asked, fewer when K is large (DENSE_CHUNK_BYTES)."""
        return max(1, min(asked, DENSE_CHUNK_BYTES // (8 * max(n_classes, 1))))


def has_topk_columns(columns: list[str], classes_col: str, probs_col: str) -> bool:
    return classes_col in columns and probs_col in columns


def read_topk(
    frame: pl.DataFrame,
    ids: pl.Series | None,
    name: str,
    classes_col: str,
    probs_col: str,
    fixed: list[str] | None,
) -> tuple[list[str], TopK]:
    """The class names the lists use (`fixed` when given) and the compressed entries, checked:
    two lists of one length per row, probabilities in [0, 1] summing to at most 1 (within the
    tolerance of a distribution), no class twice in a row, no null."""
    ids = ids if ids is not None else pl.Series("id", np.arange(frame.height))
    classes, probs = frame[classes_col], frame[probs_col]
    for column, series in ((classes_col, classes), (probs_col, probs)):
        if not isinstance(series.dtype, pl.List | pl.Array):
            raise SchemaError(
                f"The column '{column}' of '{name}' holds {series.dtype}; top-k predictions "
                "need a list per row (the classes in one column, their probabilities in the "
                "other). CSV and TSV cannot hold lists: write them as parquet, or as JSON lines "
                "with real lists (not text)."
            )
    if isinstance(classes.dtype, pl.Array):
        classes = classes.cast(pl.List(classes.dtype.inner))
    if isinstance(probs.dtype, pl.Array):
        probs = probs.cast(pl.List(probs.dtype.inner))
    _check_inner(classes, name, classes_col, "class names or integers", _is_class_type)
    _check_inner(probs, name, probs_col, "probabilities (numbers)", _is_probability_type)
    lengths = classes.list.len().fill_null(-1).to_numpy()
    other = probs.list.len().fill_null(-2).to_numpy()
    _reject(ids, lengths != other, name,
            f"have lists of different lengths in '{classes_col}' and '{probs_col}' (or a null)",
            "give each row its k classes and their k probabilities")  # fmt: skip
    listed = pl.Series(lengths > 0)  # empty lists explode to a null in some polars versions
    names = class_names(classes.filter(listed).explode(), name, classes_col,
                        "top-k class column", "--topk-classes-col")  # fmt: skip
    values = probs.filter(listed).explode().cast(pl.Float64, strict=False).to_numpy()
    owner = np.repeat(np.arange(frame.height), lengths)
    bad_value = ~np.isfinite(values) | (values < 0) | (values > 1)
    _reject(ids, np.bincount(owner, weights=bad_value, minlength=frame.height) > 0, name,
            "hold a top-k probability that is not a number in [0, 1]",
            "top-k scores must be probabilities")  # fmt: skip
    if names.null_count():
        _reject(ids, np.bincount(owner, weights=names.is_null().to_numpy(),
                                 minlength=frame.height) > 0, name,
                "name a null class", "name every class")  # fmt: skip
    sums = np.bincount(owner, weights=values, minlength=frame.height)
    _reject(ids, sums > 1 + DISTRIBUTION_TOLERANCE, name,
            f"have top-k probabilities summing to more than {1 + DISTRIBUTION_TOLERANCE:g} (1 "
            "and the tolerance of a distribution)",
            "top-k scores must be probabilities of distinct classes")  # fmt: skip
    distinct = names.drop_nulls().unique()
    vocabulary = list(fixed) if fixed is not None else sorted(distinct.to_list())
    unknown = sorted(set(distinct.to_list()) - set(vocabulary))
    if unknown:
        raise InputError(
            f"The top-k lists of '{name}' name {count(len(unknown), 'class')} not in "
            f"--classes: {', '.join(unknown[:10])}. Add them to the classes file."
        )
    column = (
        names.replace_strict(
            vocabulary, np.arange(len(vocabulary), dtype=np.int32), return_dtype=pl.Int32
        )
        .to_numpy()
        .astype(np.int32)  # typed even when no list names a class
    )
    # A class twice in a row: equal adjacent keys once each row's classes are sorted (rows are
    # in order already, so the keys sort fast).
    key = np.sort(owner.astype(np.int64) * max(len(vocabulary), 1) + column)
    twice = np.flatnonzero(key[1:] == key[:-1])
    repeated = np.zeros(frame.height, dtype=bool)
    repeated[key[twice] // max(len(vocabulary), 1)] = True
    _reject(ids, repeated, name, "name a class twice in one top-k list",
            "each class at most once a row")  # fmt: skip
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return vocabulary, TopK(offsets, column, values, total=sums)


def _is_class_type(dtype: pl.DataType) -> bool:
    return (
        dtype in (pl.String, pl.Categorical, pl.Null)
        or dtype.is_numeric()
        or isinstance(dtype, pl.Enum)
    )


def _is_probability_type(dtype: pl.DataType) -> bool:
    return dtype == pl.Null or dtype.is_numeric()


def _check_inner(lists: pl.Series, name: str, column: str, what: str, fits) -> None:
    """Each list's elements must be of a type that can be `what` (not lists, records, booleans
    or text numbers)."""
    inner = lists.dtype.inner
    if not fits(inner):
        raise SchemaError(
            f"The top-k column '{column}' of '{name}' holds lists of {inner}; it needs lists of "
            f"{what}, one list a row. Check --topk-classes-col / --topk-probs-col and how the "
            "lists were written."
        )


def _reject(ids: pl.Series, bad: np.ndarray, name: str, what: str, fix: str) -> None:
    if bad.any():
        raise InputError(
            f"{count(int(bad.sum()), 'row')} of the predictions '{name}' {what} (ids "
            f"{describe_ids(ids, bad)}): {fix}."
        )


TOPK_CHUNK_ROWS = 4096  # rows ranked at a time: the ranking's temporaries are chunk x K


def _top_columns(block: np.ndarray, k: int) -> np.ndarray:
    """The columns of each row's k largest values, in column order; a tie at the k-th value
    goes to the earlier columns (so the lists do not depend on a partition's internals)."""
    m, width = block.shape
    if k >= width:
        return np.broadcast_to(np.arange(width), block.shape)
    kth = -np.partition(-block, k - 1, axis=1)[:, k - 1 : k]
    above = block > kth
    tied = block == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
    return np.nonzero(chosen)[1].reshape(m, k)


def topk_table(wide: pl.DataFrame, k: int, id_col: str = "id") -> pl.DataFrame:
    """A wide predictions table (id + one probability column per class) as top-k lists (see
    `topk_lists`)."""
    names = [c for c in wide.columns if c != id_col]
    return topk_lists(wide[id_col], wide.select(names).to_numpy(), names, k, id_col)


def topk_lists(
    ids: pl.Series, scores: np.ndarray, names: list[str], k: int, id_col: str = "id"
) -> pl.DataFrame:
    """Each row's k most probable classes, most probable first (ties: the earlier column
    first), and their probabilities, as two list columns; k above the number of classes keeps
    them all. Ranked TOPK_CHUNK_ROWS rows at a time, so memory beyond the scores is N x k."""
    if k < 1:
        raise InputError(f"--top-k must be at least 1; found {k}.")
    n, width = scores.shape
    k = min(k, width)
    top = np.empty((n, k), dtype=np.int64)
    values = np.empty((n, k), dtype=scores.dtype)
    for start in range(0, n, TOPK_CHUNK_ROWS):
        block = scores[start : start + TOPK_CHUNK_ROWS]
        if np.isnan(block).any():  # ranked last (scan then refuses them, naming the ids)
            block = np.where(np.isnan(block), -np.inf, block)
        part = _top_columns(block, k)
        chosen = np.take_along_axis(block, part, axis=1)
        order = np.lexsort((part, -chosen), axis=1)  # by probability, then column
        top[start : start + block.shape[0]] = np.take_along_axis(part, order, axis=1)
        values[start : start + block.shape[0]] = np.take_along_axis(chosen, order, axis=1)
    probability_type = pl.Float32 if scores.dtype == np.float32 else pl.Float64  # as given
    classes = pl.Series(names, dtype=pl.String).gather(top.ravel())
    return pl.DataFrame(
        {
            id_col: ids,
            TOPK_CLASSES_COL: classes.reshape((n, k)).cast(pl.List(pl.String)),
            TOPK_PROBS_COL: pl.Series(values.ravel(), dtype=probability_type)
            .reshape((n, k))
            .cast(pl.List(probability_type)),
        }
    )
