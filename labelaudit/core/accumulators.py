"""Statistics as mergeable accumulators: `update(chunk)`, `merge(other)`, `compute()`.

One protocol for every sum the commands keep, so the same code serves a loop over chunks,
threads (each its own accumulator, merged), and a distributed engine (one per worker, merged at
the end). Merging is exact: counts are integers, float sums differ from one pass only by the
order of additions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Self, TypeVar

import numpy as np

from labelaudit.core.pair_table import PairTable

Result = TypeVar("Result", covariant=True)


class Accumulator(Protocol[Result]):
    """What every accumulator offers."""

    def update(self, *chunk: Any) -> None:
        """Add one chunk of rows."""

    def merge(self, other: Self) -> None:
        """Add another accumulator's rows (built with the same settings)."""

    def compute(self) -> Result:
        """The statistic over every row added."""


@dataclass
class ClassCounts:
    """Rows per class of integer labels in [0, n_classes): the support."""

    n_classes: int
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.n_classes, dtype=np.int64)

    def update(self, labels: np.ndarray) -> None:
        self.counts += np.bincount(labels, minlength=self.n_classes)

    def merge(self, other: ClassCounts) -> None:
        self.counts += other.counts

    def compute(self) -> np.ndarray:
        return self.counts.copy()


# Pair tables up to this many cells are counted dense (a bincount a chunk); larger ones (many
# classes) keep their nonzero cells only, so memory follows the pairs seen, not K x K.
DENSE_PAIR_CELLS = 1 << 22


@dataclass
class PairCounts:
    """Counts of (row class, column class) pairs: a confusion matrix, a confident joint, the
    transitions between two label versions. `compute()` gives a sparse PairTable."""

    n_rows: int
    n_columns: int
    counts: np.ndarray | None = field(init=False)  # dense counts (small tables)
    codes: np.ndarray = field(init=False)  # sparse: the cells seen (sorted codes) ...
    code_counts: np.ndarray = field(init=False)  # ... and their counts

    def __post_init__(self) -> None:
        dense = self.n_rows * self.n_columns <= DENSE_PAIR_CELLS
        self.counts = np.zeros((self.n_rows, self.n_columns), dtype=np.int64) if dense else None
        self.codes = np.empty(0, dtype=np.int64)
        self.code_counts = np.empty(0, dtype=np.int64)

    def update(self, row_class: np.ndarray, column_class: np.ndarray) -> None:
        flat = row_class.astype(np.int64) * self.n_columns + column_class
        if self.counts is not None:
            size = self.n_rows * self.n_columns
            self.counts += np.bincount(flat, minlength=size).reshape(self.n_rows, self.n_columns)
            return
        codes, counts = np.unique(flat, return_counts=True)
        self.add_cells(codes, counts.astype(np.int64))

    def merge(self, other: PairCounts) -> None:
        if self.counts is not None:
            self.counts += other.counts
        else:
            self.add_cells(other.codes, other.code_counts)

    def add_cells(self, codes: np.ndarray, counts: np.ndarray) -> None:
        """Add counts of cells by code (row * n_columns + column; sorted, distinct): sparse
        tables only (what a distributed merge gathers)."""
        if self.codes.size == 0:
            self.codes, self.code_counts = codes, counts
            return
        merged, inverse = np.unique(np.concatenate([self.codes, codes]), return_inverse=True)
        both = np.concatenate([self.code_counts, counts]).astype(np.float64)  # exact below 2^53
        totals = np.bincount(inverse, weights=both, minlength=merged.size).astype(np.int64)
        self.codes, self.code_counts = merged, totals

    def compute(self) -> PairTable:
        if self.counts is not None:
            return PairTable.from_dense(self.counts)
        return PairTable.from_codes(self.n_rows, self.n_columns, self.codes, self.code_counts)


@dataclass
class ClassSums:
    """Per class: how many rows and the sum of a value over them (e.g. the given label's
    probability, whose per-class mean is confident learning's threshold)."""

    n_classes: int
    counts: np.ndarray = field(init=False)
    sums: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.n_classes, dtype=np.int64)
        self.sums = np.zeros(self.n_classes, dtype=np.float64)

    def update(self, labels: np.ndarray, values: np.ndarray) -> None:
        self.counts += np.bincount(labels, minlength=self.n_classes)
        self.sums += np.bincount(labels, weights=values, minlength=self.n_classes)

    def merge(self, other: ClassSums) -> None:
        self.counts += other.counts
        self.sums += other.sums

    def compute(self, min_count: int = 1) -> np.ndarray:
        """Per-class means; inf for classes with fewer than `min_count` rows."""
        out = np.full(self.n_classes, np.inf)
        defined = self.counts >= max(min_count, 1)
        out[defined] = self.sums[defined] / self.counts[defined]
        return out
