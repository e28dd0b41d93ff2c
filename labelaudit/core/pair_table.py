"""A K x K table of counts or weights kept sparse: its nonzero cells only.

Confusion matrices, confident joints and noise matrices have K^2 cells but at most one nonzero
cell per sample, so with 50,000 classes (2.5 billion cells, 20 GB dense) they hold a few million
numbers. Every operation the statistics need (row and column sums, the diagonal, scaling, lookups,
the largest cells) works on the cells, in O(nonzero cells); `dense()` is for small tables only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairTable:
    """Cells (row, column, value), sorted by row then column, no cell twice, no zero value."""

    n_rows: int
    n_columns: int
    rows: np.ndarray
    columns: np.ndarray
    values: np.ndarray

    @classmethod
    def from_codes(
        cls, n_rows: int, n_columns: int, codes: np.ndarray, values: np.ndarray
    ) -> PairTable:
        """From cell codes (row * n_columns + column), sorted and distinct, and their values."""
        keep = values != 0
        codes, values = codes[keep], values[keep]
        return cls(n_rows, n_columns, codes // n_columns, codes % n_columns, values)

    @classmethod
    def from_pairs(
        cls,
        n_rows: int,
        n_columns: int,
        rows: np.ndarray,
        columns: np.ndarray,
        weights: np.ndarray | None = None,
    ) -> PairTable:
        """Count (or sum `weights` over) each (row, column) pair."""
        codes = np.asarray(rows, dtype=np.int64) * n_columns + np.asarray(columns, dtype=np.int64)
        unique, inverse = np.unique(codes, return_inverse=True)
        if weights is None:
            values = np.bincount(inverse, minlength=unique.size).astype(np.int64)
        else:
            values = np.bincount(inverse, weights=weights, minlength=unique.size)
        return cls.from_codes(n_rows, n_columns, unique, values)

    @classmethod
    def from_dense(cls, matrix: np.ndarray) -> PairTable:
        matrix = np.asarray(matrix)
        rows, columns = np.nonzero(matrix)
        return cls(matrix.shape[0], matrix.shape[1], rows, columns, matrix[rows, columns])

    @classmethod
    def of(cls, table: PairTable | np.ndarray) -> PairTable:
        """A table as given, or a dense matrix's cells."""
        return table if isinstance(table, PairTable) else cls.from_dense(table)

    @property
    def codes(self) -> np.ndarray:
        return self.rows * self.n_columns + self.columns

    def dense(self) -> np.ndarray:
        """The full matrix (n_rows x n_columns): for small tables (reports, figures, tests)."""
        dtype = self.values.dtype if self.values.size else np.int64
        out = np.zeros((self.n_rows, self.n_columns), dtype=dtype)
        out[self.rows, self.columns] = self.values
        return out

    def with_values(self, values: np.ndarray) -> PairTable:
        """The same cells holding other values (zeros dropped)."""
        return PairTable.from_codes(self.n_rows, self.n_columns, self.codes, values)

    def row_sums(self) -> np.ndarray:
        return np.bincount(self.rows, weights=self.values, minlength=self.n_rows).astype(
            self.values.dtype
        )

    def column_sums(self) -> np.ndarray:
        return np.bincount(self.columns, weights=self.values, minlength=self.n_columns).astype(
            self.values.dtype
        )

    def diagonal(self) -> np.ndarray:
        on = self.rows == self.columns
        out = np.zeros(min(self.n_rows, self.n_columns), dtype=self.values.dtype)
        out[self.rows[on]] = self.values[on]
        return out

    def total(self) -> float | int:
        return self.values.sum().item() if self.values.size else 0

    def off_diagonal(self) -> PairTable:
        off = self.rows != self.columns
        return PairTable(
            self.n_rows, self.n_columns, self.rows[off], self.columns[off], self.values[off]
        )

    def at(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """The values of cells (rows[i], columns[i]); 0 for a cell not held."""
        codes = self.codes
        wanted = np.asarray(rows, dtype=np.int64) * self.n_columns + np.asarray(columns)
        where = np.clip(np.searchsorted(codes, wanted), 0, max(codes.size - 1, 0))
        found = codes[where] == wanted if codes.size else np.zeros(wanted.shape, dtype=bool)
        zero = np.zeros(1, dtype=self.values.dtype if self.values.size else np.int64)
        return np.where(found, self.values[where] if codes.size else zero, zero)

    def row_maxima(self) -> np.ndarray:
        """Each row's largest held value (0 for a row holding none; values are assumed >= 0)."""
        out = np.zeros(self.n_rows, dtype=self.values.dtype if self.values.size else np.int64)
        if self.values.size:
            starts = np.flatnonzero(np.r_[True, self.rows[1:] != self.rows[:-1]])
            out[self.rows[starts]] = np.maximum.reduceat(self.values, starts)
        return out

    def largest(self, limit: int) -> np.ndarray:
        """Indices (into the cells) of the `limit` largest values, largest first; ties in row,
        then column order."""
        take = min(limit, self.values.size)
        if take == 0:
            return np.empty(0, dtype=np.int64)
        cut = np.partition(self.values, self.values.size - take)[self.values.size - take]
        top = np.flatnonzero(self.values >= cut)  # in row, column order
        return top[np.argsort(-self.values[top], kind="stable")][:take]
