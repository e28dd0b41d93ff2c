"""Rows of K-class probabilities given by a few listed entries each (top-k predictions): the
listed classes' probabilities, and the rest of each row's mass shared evenly by its unlisted
classes. Every per-row figure the statistics need (the given label's probability, the most
probable class, the best other class, top-5 hits, entropy, the confident class) is computed from
the entries in O(entries), never from a dense row, so 50,000 classes cost what 10 do.

Each figure equals the one of the dense row (`dense()`), ties included (the lowest class index
wins, as numpy's argmax); a test compares them. One rule differs on purpose: the confident class
is chosen among a row's listed classes only (see `confident`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ENTROPY_CLIP = 1e-12  # each probability's floor in a row's entropy (dense or sparse)


@dataclass(frozen=True)
class SparseRows:
    """m rows: row r's listed classes are `columns[offsets[r]:offsets[r + 1]]` (vocabulary
    indices, distinct) with `probability[...]`; each of its K - k unlisted classes has `rest[r]`."""

    n_classes: int
    offsets: np.ndarray
    columns: np.ndarray
    probability: np.ndarray
    rest: np.ndarray
    row_sums: np.ndarray | None = None  # the rows' sums before renormalizing (for warnings)
    owner: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "owner", np.repeat(np.arange(self.n_rows), self.lengths))

    @property
    def n_rows(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_rows, self.n_classes

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def unlisted(self) -> np.ndarray:
        """Each row's number of unlisted classes."""
        return self.n_classes - self.lengths

    def __getitem__(self, rows: np.ndarray) -> SparseRows:
        return self.take(rows)

    def take(self, rows: np.ndarray) -> SparseRows:
        """The rows at positions `rows` (a boolean mask or indices), as `block[rows]`."""
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows
        lengths = self.lengths[rows]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        entry = entries(self.offsets[rows], lengths)
        return SparseRows(
            self.n_classes, offsets, self.columns[entry], self.probability[entry], self.rest[rows]
        )

    def dense(self) -> np.ndarray:
        """The (m, K) float64 rows."""
        out = np.repeat(self.rest[:, None], self.n_classes, axis=1)
        out[self.owner, self.columns] = self.probability
        return out

    def given(self, labels: np.ndarray) -> np.ndarray:
        """Each row's probability of its label."""
        out = self.rest.astype(np.float64, copy=True)
        match = self.columns == labels[self.owner]
        out[self.owner[match]] = self.probability[match]
        return out

    def best(self, excluded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each row's most probable class (ties: the lowest index) and its probability; with
        `excluded` (a class per row), the most probable other class."""
        values = self.probability
        if excluded is not None:
            values = np.where(self.columns == excluded[self.owner], -np.inf, values)
        top, top_class = self._listed_best(values)
        unlisted = self.unlisted
        excluded_unlisted = np.zeros(self.n_rows, dtype=bool)
        if excluded is not None:
            excluded_unlisted = ~self.lists(excluded)
            unlisted = unlisted - excluded_unlisted
        rest_wins = (unlisted > 0) & (self.rest >= top)
        best_class, best = top_class, top
        if rest_wins.any():
            rows = np.flatnonzero(rest_wins)
            first = self._lowest_unlisted(rows, excluded, excluded_unlisted)
            tie = self.rest[rows] == top[rows]
            best_class = best_class.copy()
            best_class[rows] = np.where(tie, np.minimum(first, top_class[rows]), first)
            best = np.where(rest_wins, self.rest, top)
        return best_class, best

    def top_k_hits(self, labels: np.ndarray, given: np.ndarray, k: int) -> np.ndarray:
        """Whether each row's label ranks in the top k, ties ranking the higher index first
        (scikit-learn's rule, as core.scores.top_k_hits)."""
        g = given[self.owner]
        label = labels[self.owner]
        higher = self._count(self.probability > g)
        higher += np.where(self.rest > given, self.unlisted, 0)
        tied_after = self._count((self.probability == g) & (self.columns > label))
        listed_after = self._count(self.columns > label)
        unlisted_after = (self.n_classes - 1 - labels) - listed_after
        tied_after += np.where(self.rest == given, unlisted_after, 0)
        return (higher + tied_after) < k

    def normalized_entropy(self) -> np.ndarray:
        """Row entropy over log K, each probability clipped at 1e-12 (as core.noise's)."""
        if self.n_classes <= 1:
            return np.zeros(self.n_rows)
        p = np.clip(self.probability.astype(np.float64), ENTROPY_CLIP, None)
        listed = np.bincount(self.owner, weights=p * np.log(p), minlength=self.n_rows)
        r = np.clip(self.rest, ENTROPY_CLIP, None)
        return -(listed + self.unlisted * (r * np.log(r))) / np.log(self.n_classes)

    def confident(self, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's confident class: among its listed classes whose probability reaches their
        threshold, the most probable (ties: the lowest index); -1 and 0 when none does. A class
        outside the row's list is never confident: all of them hold the same even share of the
        rest, an imputation that says nothing of any one class (counting it would hand every
        row to the lowest-index class whose threshold is below the share, e.g. a rare class
        whose few samples are all mislabeled)."""
        cleared = np.where(self.probability >= thresholds[self.columns], self.probability, -1.0)
        top, top_class = self._listed_best(cleared)
        found = top >= 0
        return np.where(found, top_class, -1), np.where(found, top, 0.0)

    def lists(self, classes: np.ndarray) -> np.ndarray:
        """Whether each row lists its class in `classes`."""
        return self._count(self.columns == classes[self.owner]) > 0

    def _count(self, flags: np.ndarray) -> np.ndarray:
        return np.bincount(self.owner, weights=flags, minlength=self.n_rows).astype(np.int64)

    def _listed_best(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the largest listed value (-inf for none) and its class (lowest on ties)."""
        top = _segment_reduce(np.maximum, values, self.offsets, -np.inf)
        at_top = np.isfinite(values) & (values == top[self.owner])
        top_class = _segment_reduce(
            np.minimum, np.where(at_top, self.columns, self.n_classes), self.offsets,
            self.n_classes,
        )  # fmt: skip
        return top, top_class

    def _lowest_unlisted(
        self, rows: np.ndarray, excluded: np.ndarray | None, excluded_unlisted: np.ndarray
    ) -> np.ndarray:
        """For `rows`, the lowest class index neither listed nor excluded. With the row's listed
        classes sorted, c_0 < c_1 < ..., the j-th missing index is j + #{i: c_i - i <= j}."""
        part = self.take(rows)
        order = np.lexsort((part.columns, part.owner))
        columns = part.columns[order].astype(np.int64)
        position = np.arange(columns.size) - np.repeat(part.offsets[:-1], part.lengths)
        gap = columns - position
        first = part._count(gap <= 0)
        if excluded is None:
            return first
        second = 1 + part._count(gap <= 1)
        skip = excluded_unlisted[rows] & (excluded[rows] == first)
        return np.where(skip, second, first)


def entries(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The entry positions of rows starting at `starts` with `lengths` entries."""
    total = int(lengths.sum())
    return (
        np.arange(total)
        - np.repeat(np.cumsum(lengths) - lengths, lengths)
        + np.repeat(starts, lengths)
    )


def _segment_reduce(ufunc: np.ufunc, values: np.ndarray, offsets: np.ndarray, empty) -> np.ndarray:
    """ufunc.reduce over each row's entries; `empty` for a row without any."""
    n = offsets.size - 1
    lengths = np.diff(offsets)
    out = np.full(n, empty, dtype=np.result_type(values.dtype, np.asarray(empty).dtype))
    filled = lengths > 0
    if filled.any():
        out[filled] = ufunc.reduceat(values, offsets[:-1][filled])
    return out
