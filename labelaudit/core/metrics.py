"""Classification metrics from counts: confusion matrix, precision / recall / F1, averages.

Every figure follows scikit-learn's definitions with `zero_division=0`: a ratio whose denominator
is zero is 0.0. F1 is 2·TP / (2·TP + FP + FN), which equals the harmonic mean of precision and
recall wherever both are defined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelaudit.core.accumulators import PairCounts
from labelaudit.core.pair_table import PairTable


@dataclass(frozen=True)
class PerClassScores:
    """Per-class precision, recall, F1 and support (true count), index-aligned with the classes;
    the counts behind them too (true positives, and how often each class was decided)."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    true_positives: np.ndarray
    predicted: np.ndarray


@dataclass(frozen=True)
class Averages:
    """One averaging of precision, recall and F1."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class MulticlassMetrics:
    """Everything derived from one confusion matrix."""

    accuracy: float
    balanced_accuracy: float
    per_class: PerClassScores
    micro: Averages
    macro: Averages
    weighted: Averages
    confusion: PairTable

    @property
    def confusion_normalized(self) -> np.ndarray:
        """Each row of the (dense: small tables only) confusion matrix divided by its sum."""
        dense = self.confusion.dense()
        return safe_divide(dense, dense.sum(axis=1, keepdims=True))


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ratio that is 0.0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """K x K counts, rows the given label, columns the predicted class."""
    pairs = PairCounts(n_classes, n_classes)
    pairs.update(labels, predicted.astype(np.int64))
    return pairs.compute().dense()


def scores_from_counts(
    true_positive: np.ndarray, false_positive: np.ndarray, false_negative: np.ndarray
) -> PerClassScores:
    """Per-class precision, recall and F1 from TP / FP / FN counts."""
    precision = safe_divide(true_positive, true_positive + false_positive)
    recall = safe_divide(true_positive, true_positive + false_negative)
    f1 = safe_divide(2 * true_positive, 2 * true_positive + false_positive + false_negative)
    support = (true_positive + false_negative).astype(np.int64)
    predicted = (true_positive + false_positive).astype(np.int64)
    return PerClassScores(
        precision, recall, f1, support, np.asarray(true_positive, dtype=np.int64), predicted
    )


def indicator_counts(
    truth: np.ndarray, predicted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class TP, FP and FN of (N, K) boolean truth and prediction matrices (one-vs-rest:
    for one-hot rows these equal the confusion matrix's)."""
    truth = truth.astype(bool, copy=False)
    predicted = predicted.astype(bool, copy=False)
    true_positive = (truth & predicted).sum(axis=0, dtype=np.int64)
    false_positive = (~truth & predicted).sum(axis=0, dtype=np.int64)
    false_negative = (truth & ~predicted).sum(axis=0, dtype=np.int64)
    return true_positive, false_positive, false_negative


@dataclass(frozen=True)
class IndicatorMetrics:
    """Per-class scores and the averages of (N, K) boolean truth and prediction matrices."""

    per_class: PerClassScores
    micro: Averages
    macro: Averages
    weighted: Averages


def metrics_from_indicators(truth: np.ndarray, predicted: np.ndarray) -> IndicatorMetrics:
    """Precision, recall and F1 per class (one-vs-rest) and their averages; for one-hot rows
    these equal `metrics_from_confusion`'s."""
    counts = indicator_counts(truth, predicted)
    per_class = scores_from_counts(*counts)
    return IndicatorMetrics(
        per_class, micro_average(*counts), macro_average(per_class), weighted_average(per_class)
    )


def micro_average(
    true_positive: np.ndarray, false_positive: np.ndarray, false_negative: np.ndarray
) -> Averages:
    """Pool the counts over classes, then take the ratios."""
    pooled = scores_from_counts(
        np.array([true_positive.sum()]),
        np.array([false_positive.sum()]),
        np.array([false_negative.sum()]),
    )
    return Averages(float(pooled.precision[0]), float(pooled.recall[0]), float(pooled.f1[0]))


def macro_average(scores: PerClassScores) -> Averages:
    """Unweighted mean over every class of the vocabulary, zero-support classes included."""
    return Averages(
        float(scores.precision.mean()), float(scores.recall.mean()), float(scores.f1.mean())
    )


def weighted_average(scores: PerClassScores) -> Averages:
    """Mean over classes weighted by support; 0.0 when there is no support at all."""
    total = scores.support.sum()
    if total == 0:
        return Averages(0.0, 0.0, 0.0)
    weights = scores.support / total
    return Averages(
        float(scores.precision @ weights),
        float(scores.recall @ weights),
        float(scores.f1 @ weights),
    )


def metrics_from_confusion(confusion: PairTable | np.ndarray) -> MulticlassMetrics:
    """Accuracy, balanced accuracy, per-class scores and the three averages."""
    confusion = PairTable.of(confusion)
    true_positive = confusion.diagonal()
    false_positive = confusion.column_sums() - true_positive
    false_negative = confusion.row_sums() - true_positive
    per_class = scores_from_counts(true_positive, false_positive, false_negative)
    total = confusion.total()
    present = per_class.support > 0
    # Balanced accuracy averages recall over the classes present in the labels (as scikit-learn).
    balanced = float(per_class.recall[present].mean()) if present.any() else 0.0
    return MulticlassMetrics(
        accuracy=float(true_positive.sum() / total) if total else 0.0,
        balanced_accuracy=balanced,
        per_class=per_class,
        micro=micro_average(true_positive, false_positive, false_negative),
        macro=macro_average(per_class),
        weighted=weighted_average(per_class),
        confusion=confusion,
    )
