"""Turning model scores into probabilities, and the score-based figures summed over row chunks.

Figures that need the scores (predicted class, log loss, calibration, top-k) are sums over rows,
so they are accumulated chunk by chunk with memory bounded by the chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labelaudit.core.metrics import confusion_matrix
from labelaudit.core.thresholds import multiclass_decide

ECE_BINS = 15
TOP_K = 5
SUM_TOLERANCE = 1e-3


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, stable for large logits."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Elementwise logistic function in float64, without overflow warnings."""
    logits = logits.astype(np.float64)
    out = np.empty_like(logits)
    positive = logits >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-logits[positive]))
    exp_neg = np.exp(logits[~positive])
    out[~positive] = exp_neg / (1.0 + exp_neg)
    return out


@dataclass(frozen=True)
class ScoreCheck:
    """What one chunk of raw scores looks like: used to validate and to detect logits."""

    non_finite_rows: np.ndarray
    has_negative: bool
    has_above_one: bool
    off_sum_rows: np.ndarray


def check_scores(scores: np.ndarray, expect_row_sum: bool) -> ScoreCheck:
    """Rows with NaN/inf, negative or >1 values, and rows whose sum is not 1 within tolerance.

    Two passes over the chunk: row sums (a NaN or inf makes its row's sum non-finite, so only
    those rows are inspected element by element) and the minimum.
    """
    sums = scores.sum(axis=1)
    suspect = np.flatnonzero(~np.isfinite(sums))
    finite_rows = np.ones(scores.shape[0], dtype=bool)
    if suspect.size:
        finite_rows[suspect[~np.isfinite(scores[suspect]).all(axis=1)]] = False
    non_finite = np.flatnonzero(~finite_rows)
    finite_scores = scores if non_finite.size == 0 else scores[finite_rows]
    has_negative = bool(finite_scores.size and finite_scores.min() < 0)
    if expect_row_sum:
        off_sum = np.flatnonzero(finite_rows & ~(np.abs(sums - 1.0) <= SUM_TOLERANCE))
        # Rows summing to 1 with no negative value cannot hold a value above 1 (+ tolerance).
        has_above_one = bool(off_sum.size and finite_scores.max() > 1)
    else:
        off_sum = np.empty(0, dtype=np.int64)
        has_above_one = bool(finite_scores.size and finite_scores.max() > 1)
    return ScoreCheck(non_finite, has_negative, has_above_one, off_sum)


def looks_like_logits(check: ScoreCheck, multi_label: bool) -> bool:
    """Auto-detection: values outside [0, 1], or (multi-class) rows not summing to 1."""
    if check.has_negative or check.has_above_one:
        return True
    return (not multi_label) and check.off_sum_rows.size > 0


@dataclass
class MulticlassScoreSums:
    """Running sums over chunks of (probabilities, labels) for a K-class problem."""

    n_classes: int
    top_k: int = TOP_K
    bins: int = ECE_BINS
    thresholds: np.ndarray | None = None
    rows: int = 0
    fallback_rows: int = 0
    confusion: np.ndarray = field(init=False)
    log_loss_sum: float = 0.0
    top_k_hits: int = 0
    bin_count: np.ndarray = field(init=False)
    bin_confidence: np.ndarray = field(init=False)
    bin_correct: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        k = self.n_classes
        self.confusion = np.zeros((k, k), dtype=np.int64)
        self.bin_count = np.zeros(self.bins, dtype=np.int64)
        self.bin_confidence = np.zeros(self.bins, dtype=np.float64)
        self.bin_correct = np.zeros(self.bins, dtype=np.int64)

    def add(self, probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Add one chunk; returns its predicted classes: the argmax (ties to the lowest class), or
        the per-class threshold decision when thresholds are set."""
        if self.thresholds is None:
            predicted = probabilities.argmax(axis=1)
        else:
            predicted, fallback = multiclass_decide(probabilities, self.thresholds)
            self.fallback_rows += fallback
        self.rows += labels.size
        self.confusion += confusion_matrix(labels, predicted, self.n_classes)
        given = np.take_along_axis(probabilities, labels[:, None], axis=1)[:, 0]
        given64 = given.astype(np.float64)
        eps = np.finfo(np.float64).eps
        self.log_loss_sum += float(-np.log(np.clip(given64, eps, 1 - eps)).sum())
        confidence = np.take_along_axis(probabilities, predicted[:, None], axis=1)[:, 0]
        confidence = confidence.astype(np.float64)
        # Bins are (lo, hi]; a confidence of exactly 0 falls in the first bin.
        bin_index = np.clip(np.ceil(confidence * self.bins).astype(np.int64) - 1, 0, self.bins - 1)
        correct = predicted == labels
        self.bin_count += np.bincount(bin_index, minlength=self.bins)
        self.bin_confidence += np.bincount(bin_index, weights=confidence, minlength=self.bins)
        self.bin_correct += np.bincount(bin_index, weights=correct, minlength=self.bins).astype(
            np.int64
        )
        if self.n_classes > self.top_k:
            self.top_k_hits += int(top_k_hits(probabilities, labels, given, self.top_k).sum())
        return predicted

    def merge(self, other: MulticlassScoreSums) -> None:
        """Add another accumulator's sums (from chunks processed elsewhere) into this one."""
        self.rows += other.rows
        self.fallback_rows += other.fallback_rows
        self.confusion += other.confusion
        self.log_loss_sum += other.log_loss_sum
        self.top_k_hits += other.top_k_hits
        self.bin_count += other.bin_count
        self.bin_confidence += other.bin_confidence
        self.bin_correct += other.bin_correct

    def log_loss(self) -> float:
        """Mean negative log probability of the given label (clipped to [eps, 1 - eps])."""
        return self.log_loss_sum / self.rows if self.rows else 0.0

    def expected_calibration_error(self) -> float:
        """Sum over bins of (bin share) x |accuracy - mean confidence| on the top label."""
        if self.rows == 0:
            return 0.0
        occupied = self.bin_count > 0
        gap = np.abs(
            self.bin_correct[occupied] - self.bin_confidence[occupied]
        )  # counts x |acc - conf|
        return float(gap.sum() / self.rows)

    def reliability(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per confidence bin: row count, mean top-label confidence and accuracy (NaN if empty);
        the reliability diagram behind the ECE."""
        count = self.bin_count.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.bin_count.copy(), self.bin_confidence / count, self.bin_correct / count

    def top_k_accuracy(self) -> float | None:
        """Share of rows whose given label is among the k highest scores; None when K <= k."""
        if self.n_classes <= self.top_k or self.rows == 0:
            return None
        return self.top_k_hits / self.rows


def top_k_hits(scores: np.ndarray, labels: np.ndarray, given: np.ndarray, k: int) -> np.ndarray:
    """Whether each row's label ranks in the top k; ties rank the higher class index first.

    That tie rule is scikit-learn's (a stable ascending sort, reversed), so figures agree exactly.
    One full pass: a row with at most k scores >= its label's is a hit whatever the ties; only
    the other rows (mostly misses) are looked at again, with the tie rule.
    """
    at_least = np.count_nonzero(scores >= given[:, None], axis=1)
    hits = at_least <= k
    unsure = np.flatnonzero(~hits)
    if unsure.size:
        sub, sub_given = scores[unsure], given[unsure, None]
        higher = np.count_nonzero(sub > sub_given, axis=1)
        class_index = np.arange(scores.shape[1])
        tied_after = np.count_nonzero(
            (sub == sub_given) & (class_index > labels[unsure, None]), axis=1
        )
        hits[unsure] = (higher + tied_after) < k
    return hits
