"""The report's metrics sections from accumulated sums: one builder shared by `scan` and the
training-loop MetricAccumulator, so both give the same object."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labelaudit.core.metrics import MulticlassMetrics, metrics_from_confusion
from labelaudit.core.metrics_multilabel import MultilabelMetrics
from labelaudit.core.pair_table import PairTable
from labelaudit.core.scores import MulticlassScoreSums
from labelaudit.report.schema import (
    MAX_JSON_MATRIX_CLASSES,
    TOP_CONFUSED_PAIRS,
    AverageMetrics,
    CalibrationBin,
    ClassMetrics,
    ConfusedPair,
    ConfusionSection,
    MulticlassMetricsSection,
    MultilabelMetricsSection,
)


def multiclass_metrics_section(
    classes: Sequence[str], sums: MulticlassScoreSums, score_mode: str, decision: str
) -> MulticlassMetricsSection:
    """Accuracy, per-class and averaged P/R/F1, log loss, calibration and the confusion matrix."""
    result = metrics_from_confusion(sums.confusion)
    per_class = result.per_class
    return MulticlassMetricsSection(
        score_mode=score_mode,
        decision=decision,
        fallback_rows=sums.fallback_rows,
        n_scored=sums.rows,
        accuracy=result.accuracy,
        balanced_accuracy=result.balanced_accuracy,
        top_5_accuracy=sums.top_k_accuracy(),
        log_loss=sums.log_loss(),
        expected_calibration_error=sums.expected_calibration_error(),
        per_class=[
            ClassMetrics(
                name,
                float(per_class.precision[i]),
                float(per_class.recall[i]),
                float(per_class.f1[i]),
                int(per_class.support[i]),
            )
            for i, name in enumerate(classes)
        ],
        micro=AverageMetrics(**vars(result.micro)),
        macro=AverageMetrics(**vars(result.macro)),
        weighted=AverageMetrics(**vars(result.weighted)),
        confusion_matrix=confusion_section(classes, result),
        calibration=calibration_bins(sums),
    )


def confusion_section(classes: Sequence[str], result: MulticlassMetrics) -> ConfusionSection:
    """The matrix as written in the JSON: whole up to MAX_JSON_MATRIX_CLASSES classes, else the
    largest off-diagonal cells."""
    if len(classes) <= MAX_JSON_MATRIX_CLASSES:
        counts, normalized = result.confusion.dense(), result.confusion_normalized
        return ConfusionSection(list(classes), counts.tolist(), normalized.tolist())
    return ConfusionSection(list(classes), None, None, largest_cells(classes, result.confusion))


def largest_cells(
    classes: Sequence[str], counts: PairTable, limit: int = TOP_CONFUSED_PAIRS
) -> list[ConfusedPair]:
    """The `limit` largest off-diagonal cells of a K x K count table, largest first
    (ties: row, then column order), with each one's share of its row."""
    totals = counts.row_sums()
    off = counts.off_diagonal()
    return [
        ConfusedPair(
            classes[int(off.rows[i])],
            classes[int(off.columns[i])],
            int(off.values[i]),
            float(off.values[i] / totals[off.rows[i]]) if totals[off.rows[i]] else 0.0,
        )
        for i in off.largest(limit).tolist()
    ]


def calibration_bins(sums: MulticlassScoreSums) -> list[CalibrationBin]:
    """The reliability diagram behind the ECE, one entry per confidence bin."""
    counts, confidence, accuracy = sums.reliability()
    edges = np.linspace(0.0, 1.0, counts.size + 1)
    return [
        CalibrationBin(
            lower=float(edges[b]),
            upper=float(edges[b + 1]),
            count=int(counts[b]),
            mean_confidence=float(confidence[b]) if counts[b] else None,
            accuracy=float(accuracy[b]) if counts[b] else None,
        )
        for b in range(counts.size)
    ]


def multilabel_metrics_section(
    classes: Sequence[str], m: MultilabelMetrics, score_mode: str, decision: str, n_scored: int
) -> MultilabelMetricsSection:
    """Per-class P/R/F1/AP at the decision, the CP..OF1 family, mAP, subset accuracy."""
    return MultilabelMetricsSection(
        score_mode=score_mode,
        decision=decision,
        n_scored=n_scored,
        threshold=None if np.ndim(m.threshold) else float(m.threshold),
        subset_accuracy=m.subset_accuracy,
        hamming_loss=m.hamming_loss,
        cp=m.cp,
        cr=m.cr,
        cf1=m.cf1,
        op=m.op,
        or_=m.or_,
        of1=m.of1,
        mean_average_precision=m.mean_average_precision,
        per_class=[
            ClassMetrics(
                name,
                float(m.per_class.precision[i]),
                float(m.per_class.recall[i]),
                float(m.per_class.f1[i]),
                int(m.per_class.support[i]),
                None if np.isnan(m.average_precision[i]) else float(m.average_precision[i]),
            )
            for i, name in enumerate(classes)
        ],
        micro=AverageMetrics(**vars(m.micro)),
        macro=AverageMetrics(**vars(m.macro)),
        weighted=AverageMetrics(**vars(m.weighted)),
    )
