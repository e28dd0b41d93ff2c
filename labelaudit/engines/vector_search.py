"""Each row's k nearest neighbours among the embeddings, with faiss (`labelaudit[embeddings]`).

Exact search (a flat index: every pair, BLAS) up to EXACT_MAX_ROWS rows, an inverted-file index
above (IVF-Flat: k-means cells, each row compared with the rows of its IVF_PROBES nearest cells;
docs/embeddings.md says why not HNSW and what it costs); cosine compares directions (rows scaled
to unit length, inner product), l2 the straight-line distance. The recall of an approximate
search is measured on a sample of rows against an exact search and reported, never assumed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from labelaudit._deps import import_optional
from labelaudit.core.neighbourhood import drop_self
from labelaudit.errors import InputError

EXACT_MAX_ROWS = 50_000  # above this, exact search grows past a minute on 2 cores (N^2 D)
IVF_CELLS_PER_ROOT = 4  # k-means cells: 4 sqrt(N), about 250 rows a cell at 1M rows
IVF_PROBES = 8  # cells searched per row: time grows with it, recall too
IVF_TRAIN_PER_CELL = 64  # rows sampled per cell to train the k-means (faiss wants 30 to 256)
RECALL_SAMPLE = 500  # rows searched exactly to measure an approximate search's recall


@dataclass(frozen=True)
class Neighbours:
    """Each row's k nearest other rows (indices (N, k), nearest first) and their distances
    (cosine: 1 - cosine similarity, in [0, 2]; l2: Euclidean)."""

    indices: np.ndarray
    distances: np.ndarray
    metric: str
    method: str  # "exact" or "ivf"
    recall: float | None  # measured on RECALL_SAMPLE rows (approximate search only)

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
    n, dim = vectors.shape
    if n < 2:
        raise InputError("Nearest neighbours need at least two rows with embeddings.")
    k = min(k, n - 1)
    data = _prepared(vectors, metric)
    method = "exact" if index == "exact" or (index == "auto" and n <= EXACT_MAX_ROWS) else "ivf"
    inner = metric == "cosine"
    flat = faiss.IndexFlatIP(dim) if inner else faiss.IndexFlatL2(dim)
    if method == "exact":
        search = flat
    else:
        kind = faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2
        cells = max(1, min(int(IVF_CELLS_PER_ROOT * np.sqrt(n)), n // 39))
        search = faiss.IndexIVFFlat(flat, dim, cells, kind)
        rng = np.random.default_rng(seed)
        sample = rng.choice(n, size=min(n, cells * IVF_TRAIN_PER_CELL), replace=False)
        search.cp.seed = seed
        search.train(data[np.sort(sample)])
        search.nprobe = min(IVF_PROBES, cells)
    search.add(data)
    raw_scores, found = search.search(data, k + 1)
    indices, distances = drop_self(found.astype(np.int64), _distances(raw_scores, metric))
    recall = None
    if method != "exact":
        recall = _measured_recall(faiss, data, found, k, inner, seed)
    del search
    return Neighbours(indices, distances, metric, method, recall)


def _prepared(vectors: np.ndarray, metric: str) -> np.ndarray:
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(data, axis=1, keepdims=True)
        data = data / norms
    return data


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
