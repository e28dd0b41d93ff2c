"""Top-k rows kept sparse (core.sparse_rows) give every per-row figure of their dense rows, ties
and irregular rows included (the confident class: among the listed classes only); sparse K x K
tables (core.pair_table) hold the dense table's cells."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from labelaudit.core.evidence import normalized_entropy
from labelaudit.core.pair_table import PairTable
from labelaudit.core.scores import top_k_hits
from labelaudit.core.sparse_rows import SparseRows
from labelaudit.core.thresholds import multiclass_decide


def sparse_rows(rng: np.random.Generator, m: int, k: int, steps: int | None) -> SparseRows:
    """m rows of k classes with 0..k listed entries each; `steps` rounds probabilities to a
    grid (ties between listed entries and the shared rest), None leaves them continuous."""
    lengths = rng.integers(0, k + 1, m)
    columns = [rng.choice(k, n, replace=False) for n in lengths]
    probability = [rng.dirichlet(np.ones(n + 1))[:n] for n in lengths]
    probability = np.concatenate(probability) if m else np.empty(0)
    if steps:
        probability = np.round(probability * steps) / steps
    owner = np.repeat(np.arange(m), lengths)
    total = np.bincount(owner, weights=probability, minlength=m)
    unlisted = k - lengths
    rest = np.where(unlisted > 0, np.clip(1 - total, 0, None) / np.maximum(unlisted, 1), 0.0)
    if steps:
        rest = np.round(rest * steps) / steps
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    column = np.concatenate(columns).astype(np.int64) if m else np.empty(0, dtype=np.int64)
    return SparseRows(k, offsets, column, probability, rest)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    k=st.integers(2, 9),
    steps=st.sampled_from([None, 2, 4, 8]),
)
def test_sparse_figures_equal_the_dense_rows(seed: int, k: int, steps: int | None) -> None:
    rng = np.random.default_rng(seed)
    m = 40
    rows = sparse_rows(rng, m, k, steps)
    dense = rows.dense()
    at = np.arange(m)
    labels = rng.integers(0, k, m)
    given_p = rows.given(labels)
    np.testing.assert_array_equal(given_p, dense[at, labels])
    best, best_p = rows.best()
    np.testing.assert_array_equal(best, dense.argmax(axis=1))
    np.testing.assert_array_equal(best_p, dense.max(axis=1))
    others = dense.copy()
    others[at, labels] = -np.inf
    other, other_p = rows.best(excluded=labels)
    np.testing.assert_array_equal(other, others.argmax(axis=1))
    np.testing.assert_array_equal(other_p, others.max(axis=1))
    for top in (1, 2, 5):
        np.testing.assert_array_equal(
            rows.top_k_hits(labels, given_p, top), top_k_hits(dense, labels, given_p, top)
        )
    np.testing.assert_allclose(rows.normalized_entropy(), normalized_entropy(dense), atol=1e-12)
    thresholds = rng.random(k) * 0.6
    if steps:
        thresholds = np.round(thresholds * steps) / steps
    thresholds[rng.integers(0, k)] = np.inf  # a class without a threshold
    # The confident class: the dense rule over each row's listed classes only.
    listed = np.zeros(dense.shape, dtype=bool)
    listed[rows.owner, rows.columns] = True
    confident, confident_p = rows.confident(thresholds)
    cleared = np.where(listed & (dense >= thresholds), dense, -1.0)
    pick = cleared.argmax(axis=1)
    value = cleared[at, pick]
    np.testing.assert_array_equal(confident, np.where(value >= 0, pick, -1))
    np.testing.assert_array_equal(confident_p, np.where(value >= 0, value, 0.0))
    keep = rng.random(m) < 0.5
    np.testing.assert_array_equal(rows[keep].dense(), dense[keep])
    decided, fallback = multiclass_decide(rows, thresholds)
    none = value < 0  # no listed class clears: the argmax of the whole row
    np.testing.assert_array_equal(decided, np.where(none, dense.argmax(axis=1), pick))
    assert fallback == int(none.sum())
    np.testing.assert_array_equal(rows.lists(labels), listed[at, labels])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), k=st.integers(1, 7))
def test_pair_tables_hold_the_dense_cells(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, k, 50), rng.integers(0, k, 50)
    dense = np.zeros((k, k), dtype=np.int64)
    np.add.at(dense, (a, b), 1)
    table = PairTable.from_pairs(k, k, a, b)
    np.testing.assert_array_equal(table.dense(), dense)
    np.testing.assert_array_equal(PairTable.from_dense(dense).codes, table.codes)
    np.testing.assert_array_equal(table.row_sums(), dense.sum(axis=1))
    np.testing.assert_array_equal(table.column_sums(), dense.sum(axis=0))
    np.testing.assert_array_equal(table.diagonal(), np.diag(dense))
    np.testing.assert_array_equal(table.row_maxima(), dense.max(axis=1))
    i, j = rng.integers(0, k, 20), rng.integers(0, k, 20)
    np.testing.assert_array_equal(table.at(i, j), dense[i, j])
    order = table.largest(4)
    expected = sorted(zip(-table.values, table.rows, table.columns, strict=True))[:4]
    got = list(zip(-table.values[order], table.rows[order], table.columns[order], strict=True))
    assert got == expected
