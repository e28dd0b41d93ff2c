"""Multi-label metrics at a decision threshold, and threshold-free average precision.

A class is predicted when its probability is >= the threshold (0.5 by default). CP / CR are the
per-class (macro) precision and recall, OP / OR the overall (micro) ones. CF1 is reported in the
convention of the multi-label image literature, the harmonic mean of CP and CR; the other
convention, the mean of per-class F1 (scikit-learn's macro F1), is reported as `macro.f1`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelaudit.core.metrics import Averages, PerClassScores, metrics_from_indicators
from labelaudit.core.thresholds import multilabel_decide

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class MultilabelMetrics:
    """Per-class scores at a threshold, the CP..OF1 family, AP per class and mAP."""

    threshold: float | np.ndarray
    per_class: PerClassScores
    micro: Averages
    macro: Averages
    weighted: Averages
    cp: float
    cr: float
    cf1: float
    op: float
    or_: float
    of1: float
    subset_accuracy: float
    hamming_loss: float
    average_precision: np.ndarray
    mean_average_precision: float | None


def harmonic_mean(a: float, b: float) -> float:
    """2ab / (a + b), and 0.0 when both are 0."""
    return 2 * a * b / (a + b) if (a + b) > 0 else 0.0


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Step-wise area under the precision-recall curve, ties grouped (scikit-learn's AP).

    NaN when there is no positive sample: the figure is undefined, not zero.
    """
    positives = positives.astype(bool, copy=False)
    n_positive = int(positives.sum())
    if n_positive == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    sorted_positive = positives[order]
    true_positives = np.cumsum(sorted_positive, dtype=np.int64)
    # Only the last row of each run of tied scores is a threshold on the curve.
    last_of_run = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    tp_at = true_positives[last_of_run]
    precision = tp_at / (last_of_run + 1)
    recall = tp_at / n_positive
    recall_step = np.diff(np.r_[0.0, recall])
    return float(recall_step @ precision)


def multilabel_metrics(
    indicators: np.ndarray,
    probabilities: np.ndarray,
    threshold: float | np.ndarray = DEFAULT_THRESHOLD,
) -> MultilabelMetrics:
    """All multi-label figures for an (N, K) 0/1 matrix and an (N, K) probability matrix.

    `threshold` is one number, or one per class (1.0 switches a class off)."""
    truth = indicators.astype(bool, copy=False)
    if np.ndim(threshold):
        predicted = multilabel_decide(probabilities, np.asarray(threshold))
    else:
        predicted = probabilities >= threshold
    figures = metrics_from_indicators(truth, predicted)
    mismatches = truth != predicted
    n, k = truth.shape
    ap = np.array(
        [average_precision(probabilities[:, c], truth[:, c]) for c in range(k)], dtype=np.float64
    )
    return assemble(
        threshold,
        figures.per_class,
        figures.micro,
        figures.macro,
        figures.weighted,
        subset_accuracy=float((~mismatches.any(axis=1)).mean()) if n else 0.0,
        hamming_loss=float(mismatches.mean()) if n * k else 0.0,
        average_precision=ap,
    )


def assemble(
    threshold: float | np.ndarray,
    per_class: PerClassScores,
    micro: Averages,
    macro: Averages,
    weighted: Averages,
    subset_accuracy: float,
    hamming_loss: float,
    average_precision: np.ndarray,
) -> MultilabelMetrics:
    """The figures from their parts: CP..OF1 from the averages, mAP over the defined APs (for a
    whole matrix here, for streamed sums in core.multilabel_stream)."""
    defined = ~np.isnan(average_precision)
    return MultilabelMetrics(
        threshold=threshold,
        per_class=per_class,
        micro=micro,
        macro=macro,
        weighted=weighted,
        cp=macro.precision,
        cr=macro.recall,
        cf1=harmonic_mean(macro.precision, macro.recall),
        op=micro.precision,
        or_=micro.recall,
        of1=micro.f1,
        subset_accuracy=subset_accuracy,
        hamming_loss=hamming_loss,
        average_precision=average_precision,
        mean_average_precision=(
            float(average_precision[defined].mean()) if defined.any() else None
        ),
    )
