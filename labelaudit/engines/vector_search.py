"""Each row's k nearest neighbours among the embeddings, with faiss (`labelaudit[embeddings]`).

Exact search (every pair, by BLAS) up to EXACT_MAX_ROWS rows; above, an inverted-file join:
k-means cells, each cell's rows compared exactly with the rows of the IVF_PROBES cells nearest
it (docs/embeddings.md says why not HNSW or faiss's per-row IVF search, and what it costs);
cosine compares directions (rows scaled to unit length, inner product), l2 the straight-line
distance. The recall of an approximate
search is measured on a sample of rows against an exact search and reported, never assumed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelaudit._deps import import_optional
from labelaudit.core.grouping import group_positions
from labelaudit.core.neighbourhood import drop_self
from labelaudit.errors import InputError

EXACT_MAX_ROWS = 50_000  # above this, exact search grows past a minute on 2 cores (N^2 D)
IVF_CELLS_PER_ROOT = 4  # k-means cells: 4 sqrt(N), about 250 rows a cell at 1M rows
IVF_PROBES = 8  # cells searched per row: time grows with it, recall too
IVF_LISTED = 2  # cells a row is listed in (its nearest ones): found from both sides of a border
IVF_TRAIN_PER_CELL = 40  # rows sampled per cell to train the k-means (faiss wants 39 to 256)
IVF_TRAIN_ROUNDS = 10  # k-means iterations: the cells only need to be roughly right
RECALL_SAMPLE = 500  # rows searched exactly to measure an approximate search's recall
NORM_BLOCK = 65_536  # rows whose norms are taken in float64 at a time


@dataclass(frozen=True)
class Neighbours:
    """Each row's k nearest other rows (indices (N, k), nearest first) and their distances
    (cosine: 1 - cosine similarity, in [0, 2]; l2: Euclidean, over `scale`)."""

    indices: np.ndarray
    distances: np.ndarray
    metric: str
    method: str  # "exact" or "ivf"
    recall: float | None  # measured on RECALL_SAMPLE rows (approximate search only)
    # l2: `distances` are in units of the rows' root-mean-square norm; times `scale` they are
    # the vectors' own (every rule is relative; only reported distances are scaled back).
    scale: float = 1.0

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])


def nearest_neighbours(
    vectors: np.ndarray, k: int, metric: str, index: str = "auto", seed: int = 0
) -> Neighbours:
    """The k nearest neighbours of every row (itself excluded). `vectors` is float32 (N, D),
    finite, and for cosine without zero rows (the caller checks, naming the ids)."""
    faiss = import_optional("faiss")
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    n = vectors.shape[0]
    if n < 2:
        raise InputError("Nearest neighbours need at least two rows with embeddings.")
    k = min(k, n - 1)
    data, scale = _prepared(vectors, metric)
    small = n < 2 * IVF_TRAIN_PER_CELL  # too few rows for cells: exact whatever was asked
    exact = small or index == "exact" or (index == "auto" and n <= EXACT_MAX_ROWS)
    method = "exact" if exact else "ivf"
    inner = metric == "cosine"
    kind = faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2
    if method == "exact":
        raw_scores, found = faiss.knn(data, data, k + 1, metric=kind)
    else:
        raw_scores, found = _cell_join(faiss, data, k + 1, kind, seed)
    indices, distances = drop_self(found.astype(np.int64), _distances(raw_scores, metric))
    if np.isnan(distances).any():
        raise InputError(
            "The embeddings' distances are not numbers (the vectors' values are too large or too "
            "small to compare in float32); rescale the embeddings."
        )
    recall = None
    if method != "exact":
        recall = _measured_recall(faiss, data, found, k, inner, seed)
    return Neighbours(indices, distances, metric, method, recall, scale)


def _cell_join(
    faiss: Any, data: np.ndarray, width: int, kind: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate k nearest of every row: k-means cells (4 sqrt(N), trained on a seeded
    sample), each row listed in its IVF_LISTED nearest cells; the rows of a cell are compared,
    exactly and together (one BLAS product), with the rows listed in the IVF_PROBES cells whose
    centres are nearest its own. A loop over cells (4,000 at 1M rows), never over rows."""
    n, dim = data.shape
    inner = kind == faiss.METRIC_INNER_PRODUCT
    cells = max(1, min(int(IVF_CELLS_PER_ROOT * np.sqrt(n)), n // IVF_TRAIN_PER_CELL))
    sample = np.random.default_rng(seed).choice(
        n, size=min(n, cells * IVF_TRAIN_PER_CELL), replace=False
    )
    kmeans = faiss.Kmeans(dim, cells, niter=IVF_TRAIN_ROUNDS, seed=seed, spherical=inner)
    kmeans.train(np.ascontiguousarray(data[np.sort(sample)]))
    centres = kmeans.centroids
    # A row near a border is listed on both sides, so it is found from either.
    _, cell_of = faiss.knn(data, centres, min(IVF_LISTED, cells), metric=kind)
    own_order, own_bounds = group_positions(cell_of[:, 0], cells)
    list_order, list_bounds = group_positions(cell_of.ravel(), cells)
    list_rows = list_order // cell_of.shape[1]
    _, near_cells = faiss.knn(centres, centres, min(IVF_PROBES, cells), metric=kind)
    scores = np.full((n, width), -np.inf if inner else np.inf, dtype=np.float32)
    found = np.full((n, width), -1, dtype=np.int64)
    for cell in range(cells):
        rows = own_order[own_bounds[cell] : own_bounds[cell + 1]]
        if rows.size == 0:
            continue
        probed = near_cells[cell][near_cells[cell] >= 0]
        candidates = np.unique(
            np.concatenate([list_rows[list_bounds[c] : list_bounds[c + 1]] for c in probed])
        )
        reach = min(width, candidates.size)
        best, at = _block_knn(data[rows], data[candidates], reach, inner)
        scores[rows, :reach] = best
        found[rows, :reach] = candidates[at]
    short = np.flatnonzero((found < 0).any(axis=1))  # cells too small: these rows, exactly
    if short.size:
        scores[short], found[short] = faiss.knn(data[short], data, width, metric=kind)
    return scores, found


def _block_knn(
    queries: np.ndarray, base: np.ndarray, k: int, inner: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest of a block of queries among a block of rows, by one BLAS product: the
    largest inner products (descending), or the smallest squared L2 distances (ascending), as
    faiss returns them."""
    products = queries @ base.T
    # L2: |b|^2 - 2 q.b orders a row's candidates as |q - b|^2 does (|q|^2 is the same).
    key = -products if inner else (base * base).sum(axis=1)[None, :] - 2 * products
    if k < key.shape[1]:
        part = np.argpartition(key, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(key.shape[1]), key.shape).copy()
    ranked = np.argsort(np.take_along_axis(key, part, axis=1), axis=1, kind="stable")
    at = np.take_along_axis(part, ranked, axis=1)
    best = np.take_along_axis(products if inner else key, at, axis=1)
    if not inner:
        best = best + (queries * queries).sum(axis=1)[:, None]
    return best.astype(np.float32), at


def _prepared(vectors: np.ndarray, metric: str) -> tuple[np.ndarray, float]:
    """The rows as searched, and the scale the distances are multiplied back by. Cosine: rows
    at unit length (norms in float64: tiny or huge values neither underflow nor overflow). L2:
    the rows divided by their root-mean-square norm, so squared distances stay in float32's
    range; every rule on distances is relative, and reported distances are scaled back."""
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.empty(data.shape[0], dtype=np.float64)
    for start in range(0, data.shape[0], NORM_BLOCK):  # float64 a block at a time
        block = data[start : start + NORM_BLOCK].astype(np.float64)
        norms[start : start + NORM_BLOCK] = np.sqrt(np.einsum("ij,ij->i", block, block))
    if metric == "cosine":
        return data / norms.astype(np.float32)[:, None], 1.0
    scale = float(np.sqrt(np.mean(norms * norms))) or 1.0
    return data / np.float32(scale), scale


def _distances(raw: np.ndarray, metric: str) -> np.ndarray:
    """faiss's scores as distances: 1 - inner product for unit rows; sqrt of squared L2.
    Missing neighbours (a graph search that found fewer) are +inf."""
    cosine = metric == "cosine"
    out = np.clip(1.0 - raw, 0.0, 2.0) if cosine else np.sqrt(np.maximum(raw, 0.0))
    out[~np.isfinite(raw) | (np.abs(raw) >= np.finfo(np.float32).max / 2)] = np.inf
    return out.astype(np.float32)


def _measured_recall(
    faiss: object, data: np.ndarray, found: np.ndarray, k: int, inner: bool, seed: int
) -> float:
    """The share of the true k + 1 nearest (the row included) that the approximate search
    found, over RECALL_SAMPLE rows searched exactly."""
    n = data.shape[0]
    rows = np.random.default_rng(seed).choice(n, size=min(RECALL_SAMPLE, n), replace=False)
    metric = faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2  # type: ignore[attr-defined]
    _, truth = faiss.knn(data[rows], data, k + 1, metric=metric)  # type: ignore[attr-defined]
    hits = sum(np.intersect1d(a, b).size for a, b in zip(found[rows], truth, strict=True))
    return hits / float(truth.size)
