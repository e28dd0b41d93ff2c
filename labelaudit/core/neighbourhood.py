"""What each row's nearest neighbours say (pure numpy on the (N, k) neighbour arrays; the
search itself is `labelaudit.embeddings`): near-duplicate pairs and their sets, outlier scores,
and the neighbours' labels as a class distribution."""

from __future__ import annotations

import numpy as np

DUPLICATE_FACTOR = 0.15  # a pair within this x the median nearest-neighbour distance
EXACT_DISTANCE = 1e-6  # closer than this is the same vector (float error), whatever the scale
OUTLIER_FENCE = 3.0  # Tukey's far-out fence: above Q3 + 3 x IQR of the outlier scores
KNN_PRIOR_WEIGHT = 1.0  # the class prior counts as this many neighbours (no zero probability)
BLOCK_ROWS = 65_536  # rows at a time for anything (rows, k, K) large


def drop_self(indices: np.ndarray, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest neighbours of each row without the row itself, from a search for k + 1:
    the row's own entry is dropped wherever it sits (exact duplicates tie with it), else the
    farthest entry."""
    n, width = indices.shape
    own = indices == np.arange(n)[:, None]
    missing = ~own.any(axis=1)
    own[missing, width - 1] = True
    first = own.cumsum(axis=1) == 1  # only one entry a row, should the row be listed twice
    keep = ~(own & first)
    return indices[keep].reshape(n, width - 1), distances[keep].reshape(n, width - 1)


def duplicate_radius(distances: np.ndarray, factor: float) -> float:
    """Pairs at most this far apart are near-duplicates: `factor` x the median over rows of
    the distance to the nearest neighbour that is not an exact copy (scale-free: the same rule
    for any embedding model; cleanlab's Datalab uses the median nearest-neighbour distance)."""
    nearest = distances[:, 0]
    apart = nearest[np.isfinite(nearest) & (nearest > EXACT_DISTANCE)]
    typical = float(np.median(apart)) if apart.size else 0.0
    return max(factor * typical, EXACT_DISTANCE)


def duplicate_pairs(indices: np.ndarray, distances: np.ndarray, radius: float) -> np.ndarray:
    """Distinct (i, j) pairs, i < j, of neighbours at most `radius` apart: a (P, 2) int64 array
    sorted by i then j."""
    n, k = indices.shape
    close = (distances <= radius) & (indices >= 0)
    rows = np.repeat(np.arange(n, dtype=np.int64), k)[close.ravel()]
    cols = indices.ravel()[close.ravel()].astype(np.int64)
    low, high = np.minimum(rows, cols), np.maximum(rows, cols)
    keys = np.unique(low[low != high] * n + high[low != high])
    return np.stack([keys // n, keys % n], axis=1) if n else np.empty((0, 2), np.int64)


def connected_sets(n: int, pairs: np.ndarray) -> np.ndarray:
    """Each row's set (connected component of the pairs), numbered 0.. by size (largest first,
    then by first row); -1 for a row in no pair. Label propagation with pointer jumping:
    vectorized, a few rounds even for long chains."""
    out = np.full(n, -1, dtype=np.int64)
    if pairs.size == 0:
        return out
    nodes, edges = np.unique(pairs, return_inverse=True)
    edges = edges.reshape(-1, 2)
    parent = np.arange(nodes.size, dtype=np.int64)
    while True:
        a, b = parent[edges[:, 0]], parent[edges[:, 1]]
        if np.array_equal(a, b):
            break
        low = np.minimum(a, b)
        np.minimum.at(parent, a, low)
        np.minimum.at(parent, b, low)
        while True:  # pointer jumping: every node straight to its root
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    roots, component, sizes = np.unique(parent, return_inverse=True, return_counts=True)
    order = np.lexsort((roots, -sizes))  # largest first, then by first row (roots are minima)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    out[nodes] = rank[component]
    return out


def outlier_scores(distances: np.ndarray) -> np.ndarray:
    """Each row's mean distance to its k neighbours over the median of that mean: 1 is a typical
    row, 3 a row three times as far from its neighbours (higher = more outlying)."""
    mean = distances.mean(axis=1, dtype=np.float64)
    typical = float(np.median(mean)) if mean.size else 0.0
    if typical <= 0:  # most rows duplicated: the scale of the others
        positive = mean[mean > 0]
        typical = float(np.median(positive)) if positive.size else 1.0
    return (mean / typical).astype(np.float32)


def outlier_fence(scores: np.ndarray, fence: float = OUTLIER_FENCE) -> float:
    """Rows scoring above Q3 + fence x IQR are outliers (Tukey's rule, fence 3: 'far out')."""
    q1, q3 = np.quantile(scores.astype(np.float64), [0.25, 0.75])
    return float(q3 + fence * (q3 - q1))


def closeness(distances: np.ndarray) -> np.ndarray:
    """Each neighbour's vote weight, exp(-d / typical d) with typical d the median distance to
    the k-th neighbour: 1 for a copy, about 0.37 for a typical neighbour; scale-free, and it
    orders rows that plain counts would tie."""
    last = distances[:, -1][np.isfinite(distances[:, -1])]
    typical = float(np.median(last)) if last.size else 1.0
    weights = np.exp(-distances / max(typical, EXACT_DISTANCE), dtype=np.float64)
    return np.where(np.isfinite(distances), weights, 0.0).astype(np.float32)


def neighbour_votes(
    indices: np.ndarray, labels: np.ndarray, n_classes: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """(N, K) counts of the neighbours' classes (multi-class labels as class indices), or the
    sums of their `weights`."""
    n = indices.shape[0]
    votes = np.zeros((n, n_classes), dtype=np.float32)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(start + BLOCK_ROWS, n)
        neighbour_class = labels[indices[start:stop]]  # (rows, k)
        flat = (np.arange(stop - start)[:, None] * n_classes + neighbour_class).ravel()
        part = None if weights is None else weights[start:stop].ravel()
        counts = np.bincount(flat, weights=part, minlength=(stop - start) * n_classes)
        votes[start:stop] = counts.reshape(stop - start, n_classes)
    return votes


def neighbour_tag_votes(
    indices: np.ndarray, indicators: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """(N, K) counts of neighbours holding each tag (multi-label 0/1 indicators), or the sums
    of their `weights`."""
    n, k = indices.shape
    votes = np.zeros((n, indicators.shape[1]), dtype=np.float32)
    step = max(BLOCK_ROWS // max(k, 1), 1)
    for start in range(0, n, step):
        stop = min(start + step, n)
        tags = indicators[indices[start:stop]].astype(np.float32)  # (rows, k, K)
        if weights is not None:
            tags *= weights[start:stop, :, None]
        votes[start:stop] = tags.sum(axis=1)
    return votes


def knn_probabilities(
    votes: np.ndarray, total: np.ndarray, prior: np.ndarray, multi_label: bool
) -> np.ndarray:
    """The neighbours' (weighted) votes as out-of-sample scores, the prior counting as
    KNN_PRIOR_WEIGHT neighbours so no class is impossible: (votes + w prior) / (total + w), with
    `total` each row's sum of weights. Multi-class rows sum to 1; multi-label entries are each
    tag's smoothed neighbour share."""
    weight = np.float32(KNN_PRIOR_WEIGHT)
    out = votes + weight * prior.astype(np.float32)[None, :]
    out /= total.astype(np.float32)[:, None] + weight
    if not multi_label:
        out /= out.sum(axis=1, keepdims=True)  # exact sum 1 whatever the rounding
    return out


def knn_agreement(votes: np.ndarray, k: int, labels: np.ndarray) -> np.ndarray:
    """The share of a row's neighbours that carry its given class (multi-class)."""
    return votes[np.arange(labels.size), labels] / np.float32(k)


def tag_agreement(indices: np.ndarray, indicators: np.ndarray) -> np.ndarray:
    """Multi-label: the mean Jaccard similarity of a row's tag set with its neighbours'."""
    n, k = indices.shape
    out = np.empty(n, dtype=np.float32)
    step = max(BLOCK_ROWS // max(k, 1), 1)
    own_size = indicators.sum(axis=1, dtype=np.int64)
    for start in range(0, n, step):
        stop = min(start + step, n)
        theirs = indicators[indices[start:stop]]  # (rows, k, K)
        mine = indicators[start:stop, None, :]
        both = (theirs & mine).sum(axis=2, dtype=np.int64)
        either = own_size[start:stop, None] + theirs.sum(axis=2, dtype=np.int64) - both
        jaccard = np.where(either > 0, both / np.maximum(either, 1), 1.0)
        out[start:stop] = jaccard.mean(axis=1)
    return out
