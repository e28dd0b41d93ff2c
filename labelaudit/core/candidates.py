"""Pass 1's note of each row's other contenders for its confident class, so that confident
learning's second pass rarely has to read the scores again.

A row's confident class is the most probable class whose probability clears that class's
threshold t_j, the mean given-label probability of its class, known only after pass 1. Pass 1
already keeps each row's given label and best other class. While it reads a chunk it also keeps
every other entry with p_ij >= b_j, where b_j is half the running estimate of t_j, and per class
the largest entry it did not keep (U_j). After pass 1, a chunk whose U_j < t_j for every class
has every class that clears in its rows kept, so its rows' confident classes come from the note
exactly; only the other chunks are read again (their unsettled rows). The note is capped at
MAX_ENTRIES_PER_ROW entries per row on average (10 to 20 bytes each); a chunk that would pass
the cap is not kept and is read again, as are rows in no noted chunk (top-k rows are never
noted). Documented in docs/detection.md and docs/performance.md.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from labelaudit.core.accumulators import ClassSums

NO_CLASS = -1
BOUND_SHARE = 0.5  # a class's bound: this share of its running threshold estimate
MIN_SEEN = 50  # classes with fewer labeled rows so far take the lowest bound of all
RESOLVE_ROWS = 1 << 19  # rows settled at a time after pass 1
MAX_ENTRIES_PER_ROW = 2  # on average over the rows; 10 to 20 bytes an entry


@dataclass(frozen=True)
class PassOneRows:
    """What pass 1 keeps per row anyway: the given label and its probability, the best other
    class and its probability."""

    labels: np.ndarray
    given: np.ndarray
    other_class: np.ndarray
    other: np.ndarray


@dataclass
class _Chunk:
    """One chunk's rows (a range when contiguous) and the largest entry per class not kept."""

    rows: slice | np.ndarray
    largest_left: np.ndarray


@dataclass
class CandidateNote:
    """Entries (row, class, probability) that may clear their class's threshold, chunk by chunk.

    `record` is called from several threads, one chunk each; `resolve` once after pass 1.
    """

    n_samples: int
    n_classes: int
    _rows: list[np.ndarray] = field(default_factory=list, init=False)
    _classes: list[np.ndarray] = field(default_factory=list, init=False)
    _probabilities: list[np.ndarray] = field(default_factory=list, init=False)
    _chunks: list[_Chunk] = field(default_factory=list, init=False)
    _entries: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._row_type = np.int32 if self.n_samples < 2**31 else np.int64
        self._class_type = np.int16 if self.n_classes < 2**15 else np.int32

    def bounds(self, so_far: ClassSums, labels: np.ndarray, given: np.ndarray) -> np.ndarray:
        """Per-class bounds for one chunk: BOUND_SHARE of the mean given-label probability over
        the rows seen so far and this chunk. A class seen fewer than MIN_SEEN times, whose mean
        may still fall far, takes the lowest bound of those seen more (of all, when none is),
        or its own when lower."""
        sums = ClassSums(self.n_classes)
        sums.update(labels, given)
        sums.merge(so_far)
        estimate = sums.compute(min_count=1)
        known = sums.counts >= MIN_SEEN
        pool = estimate[known] if known.any() else estimate[np.isfinite(estimate)]
        lowest = pool.min() if pool.size else 0.0
        return BOUND_SHARE * np.where(known, estimate, np.minimum(estimate, lowest))

    def record(
        self,
        probabilities: np.ndarray,
        labels: np.ndarray,
        other: np.ndarray,
        rows: np.ndarray,
        bounds: np.ndarray,
    ) -> None:
        """Keep this chunk's entries at or above their class's bound (besides the given label and
        the best other class, which pass 1 keeps anyway) and the largest entry left per class."""
        below = probabilities < bounds
        largest_left = np.max(probabilities, axis=0, where=below, initial=-np.inf)
        kept = ~below
        at = np.arange(labels.size)
        kept[at, labels] = False
        kept[at, other] = False
        local, classes = np.divmod(np.flatnonzero(kept), self.n_classes)  # faster than nonzero
        chunk_rows: slice | np.ndarray = rows.copy()
        if rows.size and rows[-1] - rows[0] + 1 == rows.size and np.all(np.diff(rows) == 1):
            chunk_rows = slice(int(rows[0]), int(rows[-1]) + 1)
        values = _compact(probabilities[local, classes])
        with self._lock:
            if self._entries + local.size > MAX_ENTRIES_PER_ROW * max(self.n_samples, 1):
                largest_left = np.full(self.n_classes, np.inf)  # not kept: read again
            else:
                self._entries += local.size
                self._rows.append(rows[local].astype(self._row_type))
                self._classes.append(classes.astype(self._class_type))
                self._probabilities.append(values)
            self._chunks.append(_Chunk(chunk_rows, largest_left))

    def export(self) -> dict[str, list]:
        """The note's entries and chunks as plain lists (to ship from a worker)."""
        return {
            "rows": self._rows,
            "classes": self._classes,
            "probabilities": self._probabilities,
            "chunks": [(chunk.rows, chunk.largest_left) for chunk in self._chunks],
        }

    def absorb(self, part: dict[str, list], rows: np.ndarray) -> None:
        """Add another note's `export()`, whose row i is this note's row rows[i]."""
        rows = np.asarray(rows)
        for local, classes, values in zip(
            part["rows"], part["classes"], part["probabilities"], strict=True
        ):
            self._rows.append(rows[local].astype(self._row_type))
            self._classes.append(classes.astype(self._class_type))
            self._probabilities.append(values)
            self._entries += local.size
        for local_rows, largest_left in part["chunks"]:
            self._chunks.append(_Chunk(rows[local_rows], largest_left))

    def resolve(
        self,
        thresholds: np.ndarray,
        evidence: PassOneRows,
        unsettled: np.ndarray,
        confident_class: np.ndarray,
        confident_probability: np.ndarray,
    ) -> np.ndarray:
        """Write the confident class (and its probability) of every unsettled row in a chunk
        whose kept entries hold all that clear; returns the mask of rows left to a second read
        (the unsettled rows of the other chunks)."""
        again = np.ones(self.n_samples, dtype=bool)  # rows in no noted chunk: read again
        for chunk in self._chunks:
            again[chunk.rows] = bool(np.any(chunk.largest_left >= thresholds))
        again &= unsettled
        resolving = unsettled & ~again

        # The given label and the best other class, when they clear, in blocks of rows on two
        # threads (no gathers over the rows); ties go to the lower class.
        def settle(rows: slice) -> None:
            best_class = np.full(resolving[rows].size, NO_CLASS, dtype=np.int64)
            best = np.zeros(best_class.size)
            _take_better(best_class, best, evidence.labels[rows], evidence.given[rows], thresholds)
            _take_better(
                best_class, best, evidence.other_class[rows], evidence.other[rows], thresholds
            )
            mine = resolving[rows]
            confident_class[rows][mine] = best_class[mine]
            confident_probability[rows][mine] = best[mine]

        in_row_blocks(self.n_samples, settle)
        # The best kept entry per row against the given label and the best other class.
        at, classes, kept = self._clearing(thresholds, resolving)
        best_class, best = confident_class[at].astype(np.int64), confident_probability[at]
        _take_better(best_class, best, classes, kept, thresholds)
        confident_class[at], confident_probability[at] = best_class, best
        return again

    def _clearing(
        self, thresholds: np.ndarray, resolving: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per `resolving` row, its best kept entry that clears its class's threshold (the most
        probable, then the lowest class): rows, classes and probabilities."""
        rows, classes, probabilities = [], [], []
        for piece_rows, piece_classes, piece in zip(
            self._rows, self._classes, self._probabilities, strict=True
        ):
            clears = piece >= thresholds[piece_classes]
            clears[clears] = resolving[piece_rows[clears]]
            best = _best_per_row(piece_rows[clears], piece_classes[clears], piece[clears])
            rows.append(best[0].astype(np.int64))
            classes.append(best[1].astype(np.int64))
            probabilities.append(best[2].astype(np.float64))
        if not rows:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0)
        return np.concatenate(rows), np.concatenate(classes), np.concatenate(probabilities)


def in_row_blocks(n_rows: int, work: Callable[[slice], None]) -> None:
    """Run `work` on consecutive blocks of RESOLVE_ROWS rows, on two threads (NumPy releases
    the GIL); `work` must only write its own rows."""
    blocks = [slice(start, start + RESOLVE_ROWS) for start in range(0, n_rows, RESOLVE_ROWS)]
    if len(blocks) <= 1:
        for block in blocks:
            work(block)
        return
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(work, blocks))


def _best_per_row(
    rows: np.ndarray, classes: np.ndarray, probabilities: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The most probable entry of each row, the lowest class on ties, for entries as a chunk
    keeps them: a row's entries side by side, its classes increasing (no sort needed)."""
    if rows.size == 0:
        return rows, classes, probabilities
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    group = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, rows.size]))
    top = np.maximum.reduceat(probabilities, starts)
    at_top = np.flatnonzero(probabilities == top[group])
    first = at_top[np.r_[True, group[at_top][1:] != group[at_top][:-1]]]
    return rows[first], classes[first], probabilities[first]


def _compact(values: np.ndarray) -> np.ndarray:
    """The values as float32 when that loses nothing (scores read from float32 files), else
    float64."""
    narrow = values.astype(np.float32)
    return narrow if np.array_equal(narrow, values) else values.astype(np.float64)


def _take_better(
    best_class: np.ndarray,
    best: np.ndarray,
    classes: np.ndarray,
    probability: np.ndarray,
    thresholds: np.ndarray,
) -> None:
    """Replace each row's best (in place) by the candidate when it clears its threshold and
    beats it: none yet, more probable, or as probable with a lower class index (the dense
    rule's argmax)."""
    clears = probability >= thresholds[classes]
    better = clears & (
        (best_class == NO_CLASS)
        | (probability > best)
        | ((probability == best) & (classes < best_class))
    )
    best_class[better] = classes[better]
    best[better] = probability[better]
