"""Per-class decision thresholds: a sweep over sorted scores, and honest held-out evaluation.

A class is predicted when its probability is >= its threshold; a threshold of 1.0 switches the
class off (it is treated as never cleared). Multi-class decision: among the classes that clear
their thresholds, the most probable; when none clears, the plain argmax (the fallback, counted).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from labelaudit.core.sparse_rows import SparseRows

OFF = 1.0
BELOW_OFF = float(np.nextafter(1.0, 0.0))
_METRIC = re.compile(r"^(f1|precision@recall=(?P<r>[0-9.]+)|recall@precision=(?P<p>[0-9.]+))$")


@dataclass(frozen=True)
class Objective:
    """What a threshold maximizes: F1, precision subject to recall >= target, or the reverse."""

    kind: str  # "f1", "precision@recall", "recall@precision"
    target: float | None

    @property
    def name(self) -> str:
        return self.kind if self.target is None else f"{self.kind}={self.target:g}"


def parse_objective(text: str) -> Objective:
    """`f1`, `precision@recall=0.9` or `recall@precision=0.95`; ValueError otherwise."""
    match = _METRIC.match(text.strip())
    if not match:
        raise ValueError(
            f"metric {text!r} is not one of: f1, precision@recall=R, recall@precision=P"
        )
    target_text = match.group("r") or match.group("p")
    if target_text is None:
        return Objective("f1", None)
    target = float(target_text)
    if not 0 < target <= 1:
        raise ValueError(f"the target in {text!r} must be in (0, 1]")
    return Objective("precision@recall" if match.group("r") else "recall@precision", target)


def best_threshold(
    scores: np.ndarray, positives: np.ndarray, objective: Objective, known_f1: float = 0.0
) -> float:
    """The threshold that maximizes the objective for one class (ties: the highest threshold).

    OFF when the class has no positive sample, or no threshold meets the constraint.
    `known_f1`: the F1 of any decision already known for this class (e.g. the argmax), which
    bounds the F1 search and saves a pass over the column.
    """
    positives = positives.astype(bool, copy=False)
    n_pos = int(positives.sum())
    if n_pos == 0:
        return OFF
    candidates = (
        _candidate_rows(scores, positives, n_pos, known_f1) if objective.kind == "f1" else None
    )
    s = scores if candidates is None else scores[candidates]
    y = positives if candidates is None else positives[candidates]
    # Sorting values is cheaper than an argsort; positives at each threshold by binary search.
    descending = np.sort(s)[::-1]
    last = np.r_[np.flatnonzero(np.diff(descending)), descending.size - 1]
    thresholds = descending[last]
    predicted = last + 1
    positive_scores = np.sort(s[y])
    tp = positive_scores.size - np.searchsorted(positive_scores, thresholds, side="left")
    precision = tp / predicted
    recall = tp / n_pos
    if objective.kind == "f1":
        value = 2 * tp / (predicted + n_pos)
    elif objective.kind == "precision@recall":
        value = np.where(recall >= objective.target, precision, -1.0)
    else:
        value = np.where(precision >= objective.target, recall, -1.0)
    best = int(np.argmax(value))  # the first maximum: the highest threshold among ties
    if value[best] < 0 or value[best] == 0:
        return OFF
    # 1.0 is the OFF marker: a class best predicted at p >= 1.0 gets the largest float below 1,
    # which selects exactly the same rows and still reads as "on".
    return min(float(thresholds[best]), BELOW_OFF)


def _candidate_rows(
    scores: np.ndarray, positives: np.ndarray, n_pos: int, known_f1: float
) -> np.ndarray | None:
    """Rows that can hold the F1-optimal threshold, found without sorting the column.

    With m rows predicted positive, F1 <= 2P / (m + P). Any decision with F1 = F0 bounds the
    optimum from below, so the optimum predicts fewer than P (2 / F0 - 1) rows; only the top that
    many scores are sorted. F0 is `known_f1`, else that of predicting the top P rows.
    None means: use every row.
    """
    n = scores.size
    if n_pos >= n:
        return None
    f0 = known_f1
    if f0 <= 0:
        top_value = np.partition(scores, n - n_pos)[n - n_pos]
        f0 = float((scores[positives] >= top_value).sum()) / n_pos
    if f0 <= 0:
        return None
    m_max = min(n, math.ceil(n_pos * (2.0 / f0 - 1.0)) + 1)
    if m_max >= n:
        return None
    cut = np.partition(scores, n - m_max)[n - m_max]
    return np.flatnonzero(scores >= cut)


def tune_multiclass(
    probabilities: np.ndarray, labels: np.ndarray, objective: Objective
) -> np.ndarray:
    """One threshold per class, each class one-vs-rest. A loop over classes, not rows: the
    matrix is transposed once so each class's scores are contiguous."""
    k = probabilities.shape[1]
    columns = np.ascontiguousarray(probabilities.T)
    predicted = probabilities.argmax(axis=1)
    tp = np.bincount(labels[predicted == labels], minlength=k)
    argmax_f1 = (
        2
        * tp
        / np.maximum(np.bincount(predicted, minlength=k) + np.bincount(labels, minlength=k), 1)
    )
    return np.array(
        [best_threshold(columns[c], labels == c, objective, argmax_f1[c]) for c in range(k)]
    )


def tune_multilabel(
    probabilities: np.ndarray, truth: np.ndarray, objective: Objective
) -> np.ndarray:
    """One threshold per class of an (N, K) 0/1 matrix."""
    columns = np.ascontiguousarray(probabilities.T)
    targets = np.ascontiguousarray(truth.T.astype(bool))
    at_half = columns >= 0.5
    tp = (at_half & targets).sum(axis=1)
    half_f1 = 2 * tp / np.maximum(at_half.sum(axis=1) + targets.sum(axis=1), 1)
    return np.array(
        [
            best_threshold(columns[c], targets[c], objective, half_f1[c])
            for c in range(truth.shape[1])
        ]
    )


def multiclass_decide(
    probabilities: np.ndarray | SparseRows, thresholds: np.ndarray
) -> tuple[np.ndarray, int]:
    """Predicted classes under per-class thresholds, and how many rows fell back to argmax."""
    effective = np.where(thresholds >= OFF, np.inf, thresholds)
    if isinstance(probabilities, SparseRows):
        decided, _ = probabilities.confident(effective)
        none = decided < 0
        return np.where(none, probabilities.best()[0], decided), int(none.sum())
    cleared = np.where(probabilities >= effective, probabilities, -1.0)
    best = cleared.argmax(axis=1)
    none = cleared[np.arange(best.size), best] < 0
    return np.where(none, probabilities.argmax(axis=1), best), int(none.sum())


def multilabel_decide(probabilities: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N, K) predictions: p >= threshold, classes at OFF never predicted."""
    effective = np.where(thresholds >= OFF, np.inf, thresholds)
    return probabilities >= effective


def split_folds(strata: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """A fold index per row, stratified: each stratum is dealt round-robin after a shuffle."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(strata.size)
    order = order[np.argsort(strata[order], kind="stable")]
    fold = np.empty(strata.size, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(strata[order])) + 1]
    position = np.arange(strata.size) - np.repeat(starts, np.diff(np.r_[starts, strata.size]))
    fold[order] = position % folds
    return fold


def f1_curves(
    probabilities: np.ndarray, positive: np.ndarray, points: int = 101
) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest F1 of each class at `points` thresholds from 0 to 1 (predict the class when
    its score >= t): (grid, (K, points)). One bincount per class over the rows, no sort."""
    grid = np.linspace(0.0, 1.0, points)
    steps = points - 1
    values = np.zeros((probabilities.shape[1], points))
    for c in range(probabilities.shape[1]):  # a loop over classes, each vectorized over rows
        # index of the highest grid point <= p (p >= grid[j] exactly when j <= index)
        index = np.clip(np.floor(probabilities[:, c] * steps + 1e-9), 0, steps).astype(np.int64)
        at_least = np.cumsum(np.bincount(index, minlength=points)[::-1])[::-1]
        true_at_least = np.cumsum(
            np.bincount(index, weights=positive[:, c], minlength=points)[::-1]
        )[::-1]
        total = at_least + positive[:, c].sum()
        values[c] = np.divide(2 * true_at_least, total, out=np.zeros(points), where=total > 0)
    return grid, values
