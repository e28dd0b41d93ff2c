"""The neighbourhood's formulas (core/neighbourhood.py) against direct computations, and the
nearest-neighbour search against a brute-force one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelaudit.core import neighbourhood as nb

faiss = pytest.importorskip("faiss", reason="the [embeddings] extra is not installed")


def union_find_sets(n: int, pairs: np.ndarray) -> list[frozenset[int]]:
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[root(int(a))] = root(int(b))
    groups: dict[int, set[int]] = {}
    for i in {int(v) for v in pairs.ravel()}:
        groups.setdefault(root(i), set()).add(i)
    return sorted((frozenset(g) for g in groups.values()), key=lambda g: (-len(g), min(g)))


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(2, 40),
    edges=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=60),
)
def test_connected_sets_equal_union_find(n: int, edges: list[tuple[int, int]]) -> None:
    pairs = np.array([(a, b) for a, b in edges if a < n and b < n and a != b], dtype=np.int64)
    pairs = pairs.reshape(-1, 2)
    sets = nb.connected_sets(n, pairs)
    expected = union_find_sets(n, pairs)
    found = [frozenset(np.flatnonzero(sets == s).tolist()) for s in range(sets.max() + 1)]
    assert found == expected  # numbered largest first, then by first row
    in_pairs = np.zeros(n, dtype=bool)
    in_pairs[pairs.ravel()] = True
    assert ((sets >= 0) == in_pairs).all()


def test_drop_self_wherever_it_sits() -> None:
    indices = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 3], [2, 3, 1], [0, 1, 2]])
    distances = np.array([[0, 1, 2], [0, 0, 2], [0, 1, 3], [1, 1, 3], [1, 2, 3]], dtype=np.float32)
    kept, dist = nb.drop_self(indices, distances)
    # Row 1 ties with row 0, row 3 sits second; row 4 is not listed: its farthest goes.
    assert kept.tolist() == [[1, 2], [0, 2], [0, 1], [2, 1], [0, 1]]
    assert dist.tolist() == [[1, 2], [0, 2], [0, 1], [1, 3], [1, 2]]


def test_duplicate_pairs_are_distinct_and_within_the_radius() -> None:
    indices = np.array([[1, 2], [0, 2], [0, 1], [2, 0]])
    distances = np.array([[0.01, 0.5], [0.01, 0.02], [0.5, 0.02], [0.9, 0.9]], dtype=np.float32)
    pairs = nb.duplicate_pairs(indices, distances, radius=0.05)
    assert pairs.tolist() == [[0, 1], [1, 2]]
    # The median nearest-neighbour distance (the first column), exact copies aside.
    typical = np.median([0.01, 0.01, 0.5, 0.9])
    assert nb.duplicate_radius(distances, 0.1) == pytest.approx(0.1 * typical)
    copies = np.array([[0.0, 0.3], [0.0, 0.3], [0.2, 0.4]], dtype=np.float32)
    assert nb.duplicate_radius(copies, 0.5) == pytest.approx(0.1)


def test_outlier_scores_and_fence_by_their_formulas(rng: np.random.Generator) -> None:
    distances = rng.random((500, 7)).astype(np.float32)
    scores = nb.outlier_scores(distances)
    mean = distances.astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(scores, mean / np.median(mean), rtol=1e-6)
    q1, q3 = np.quantile(scores.astype(np.float64), [0.25, 0.75])
    assert nb.outlier_fence(scores) == pytest.approx(q3 + 3 * (q3 - q1))


def test_votes_probabilities_and_agreement_by_direct_loops(rng: np.random.Generator) -> None:
    n, k, classes = 300, 6, 4
    indices = rng.integers(0, n, (n, k))
    labels = rng.integers(0, classes, n)
    distances = rng.random((n, k)).astype(np.float32)
    weights = nb.closeness(distances)
    np.testing.assert_allclose(weights, np.exp(-distances / np.median(distances[:, -1])), 1e-6)
    votes = nb.neighbour_votes(indices, labels, classes, weights)
    direct = np.zeros((n, classes))
    for i in range(n):
        for r in range(k):
            direct[i, labels[indices[i, r]]] += weights[i, r]
    np.testing.assert_allclose(votes, direct, rtol=1e-5)
    prior = np.bincount(labels, minlength=classes) / n
    probs = nb.knn_probabilities(votes, weights.sum(axis=1), prior, multi_label=False)
    expected = (direct + prior) / (weights.sum(axis=1)[:, None] + 1)
    np.testing.assert_allclose(probs, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5)
    counts = nb.neighbour_votes(indices, labels, classes)
    agreement = nb.knn_agreement(counts, k, labels)
    np.testing.assert_allclose(
        agreement, [np.mean(labels[indices[i]] == labels[i]) for i in range(n)]
    )


def test_multilabel_votes_and_jaccard_by_direct_loops(rng: np.random.Generator) -> None:
    n, k, tags = 200, 5, 6
    indices = rng.integers(0, n, (n, k))
    indicators = (rng.random((n, tags)) < 0.3).astype(np.uint8)
    votes = nb.neighbour_tag_votes(indices, indicators)
    np.testing.assert_allclose(votes, indicators[indices].sum(axis=1))
    jaccard = nb.tag_agreement(indices, indicators)
    for i in range(0, n, 17):
        mine = set(np.flatnonzero(indicators[i]))
        values = []
        for j in indices[i]:
            theirs = set(np.flatnonzero(indicators[j]))
            union = mine | theirs
            values.append(len(mine & theirs) / len(union) if union else 1.0)
        assert jaccard[i] == pytest.approx(np.mean(values), rel=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_exact_search_equals_brute_force(metric: str, rng: np.random.Generator) -> None:
    from labelaudit.engines.vector_search import nearest_neighbours

    vectors = rng.normal(size=(400, 12)).astype(np.float32)
    found = nearest_neighbours(vectors, 5, metric, "exact")
    data = (
        vectors / np.linalg.norm(vectors, axis=1, keepdims=True) if metric == "cosine" else vectors
    )
    if metric == "cosine":
        distance = 1 - data.astype(np.float64) @ data.T.astype(np.float64)
    else:
        distance = np.sqrt(
            ((data[:, None, :] - data[None, :, :]) ** 2).sum(axis=2, dtype=np.float64)
        )
    np.fill_diagonal(distance, np.inf)
    expected = np.sort(distance, axis=1)[:, :5]
    np.testing.assert_allclose(found.distances * found.scale, expected, rtol=1e-5, atol=2e-5)
    assert not (found.indices == np.arange(400)[:, None]).any()
    assert found.method == "exact" and found.recall is None


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_approximate_search_reports_its_measured_recall(
    metric: str, rng: np.random.Generator
) -> None:
    from labelaudit.engines.vector_search import nearest_neighbours

    centres = rng.normal(size=(8, 16))
    vectors = (centres[rng.integers(0, 8, 3000)] + 0.1 * rng.normal(size=(3000, 16))).astype(
        np.float32
    )
    found = nearest_neighbours(vectors, 10, metric, "ivf")
    exact = nearest_neighbours(vectors, 10, metric, "exact")
    assert found.method == "ivf" and 0.5 < found.recall <= 1.0
    # What it finds is at least as far as the true neighbours, and never itself.
    assert (found.distances >= exact.distances * (1 - 1e-3) - 1e-4).all()  # float32 sums
    assert found.indices.shape == (3000, 10)
    assert not (found.indices == np.arange(3000)[:, None]).any()
    assert (np.diff(found.distances, axis=1) >= -1e-6).all()  # nearest first
    tiny = nearest_neighbours(vectors[:90], 10, metric, "ivf")  # cells smaller than k: exact
    assert (tiny.indices >= 0).all() and np.isfinite(tiny.distances).all()
