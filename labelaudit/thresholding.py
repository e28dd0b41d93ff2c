"""`tune_thresholds()`: per-class thresholds chosen on one part of the rows, judged on another.

Holdout: a stratified fraction is held out; thresholds are tuned on the rest and the gain is
measured on the held-out rows only (the thresholds written are those). Cross-fitting (--folds K):
each fold is predicted with thresholds tuned on the other folds, so every row is judged by
thresholds it did not help choose; the thresholds written are then tuned on all rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelaudit.api import load_dataset
from labelaudit.config import ScanConfig
from labelaudit.core import thresholds as th
from labelaudit.core.metrics import confusion_matrix, metrics_from_confusion, scores_from_counts
from labelaudit.errors import InputError
from labelaudit.evaluate import evaluate_multilabel, multiclass_score_mode, probability_chunks
from labelaudit.io.dataset import Dataset
from labelaudit.report.schema import SCHEMA_VERSION

DEFAULT_HOLDOUT = 0.5


def tune_thresholds(
    labels: Any,
    preds: Any,
    *,
    config: ScanConfig,
    metric: str = "f1",
    holdout: float | None = None,
    folds: int | None = None,
    seed: int = 0,
    curves: bool = False,
) -> dict[str, Any]:
    """Tune and honestly evaluate per-class thresholds; returns the thresholds.json content
    (with `curves`: also each class's F1 against threshold on the tuning rows, for the HTML)."""
    try:
        objective = th.parse_objective(metric)
    except ValueError as exc:
        raise InputError(f"--metric: {exc}.") from exc
    if holdout is not None and folds is not None:
        raise InputError("Give --holdout FRACTION or --folds K, not both.")
    if folds is not None and folds < 2:
        raise InputError(f"--folds must be at least 2; found {folds}.")
    if holdout is not None and not 0 < holdout < 1:
        raise InputError(f"--holdout must be a fraction in (0, 1); found {holdout}.")
    dataset = load_dataset(labels, preds, config)
    probabilities, truth, strata, warnings = _probabilities(dataset, config)
    if folds is None:
        fraction = DEFAULT_HOLDOUT if holdout is None else holdout
        evaluation_rows = _holdout_mask(strata, fraction, seed)
        chosen = _tune(probabilities[~evaluation_rows], truth, ~evaluation_rows, dataset, objective)
        after = _decide(probabilities[evaluation_rows], chosen, dataset)
        method = {"method": "holdout", "holdout_fraction": fraction}
        tuning_rows = int((~evaluation_rows).sum())
    else:
        fold = th.split_folds(strata, folds, seed)
        after = np.zeros((dataset.n_samples, dataset.n_classes), dtype=bool)
        for f in range(folds):  # a loop over folds, each vectorized
            in_fold = fold == f
            fold_thresholds = _tune(probabilities[~in_fold], truth, ~in_fold, dataset, objective)
            after[in_fold] = _decide(probabilities[in_fold], fold_thresholds, dataset)
        evaluation_rows = np.ones(dataset.n_samples, dtype=bool)
        chosen = _tune(probabilities, truth, evaluation_rows, dataset, objective)
        method = {"method": "crossfit", "folds": folds}
        tuning_rows = dataset.n_samples
    before = _decide(probabilities[evaluation_rows], None, dataset)
    target = _truth_matrix(truth, dataset)[evaluation_rows]
    result = _result(dataset, objective, chosen, target, before, after, method, tuning_rows, seed)
    result["warnings"] = list(dataset.warnings) + warnings
    if curves:
        tuning = ~evaluation_rows if folds is None else np.ones(dataset.n_samples, dtype=bool)
        grid, values = th.f1_curves(probabilities[tuning], _truth_matrix(truth, dataset)[tuning])
        result["curves"] = {
            "metric": "f1",
            "grid": grid.tolist(),
            "classes": list(dataset.classes),
            "values": values.round(6).tolist(),
        }
    return result


def _probabilities(
    dataset: Dataset, config: ScanConfig
) -> tuple[np.ndarray, Any, np.ndarray, list[str]]:
    """(N, K) probabilities in label order, the truth, strata for the split, and what reading
    the scores changed (warnings)."""
    if dataset.scores is None:
        raise InputError("Thresholds are tuned on scores: pass --preds.")
    if dataset.multi_label:
        evaluation = evaluate_multilabel(dataset, config.scores, config.chunk_rows, 0.5)
        truth = dataset.indicators.astype(bool)
        strata = np.where(truth.any(axis=1), truth.argmax(axis=1), -1)
        return evaluation.probabilities, truth, strata, evaluation.warnings
    score_reading = multiclass_score_mode(dataset, config.scores, config.chunk_rows)
    probabilities = np.empty((dataset.n_samples, dataset.n_classes), dtype=np.float64)
    for block, rows in probability_chunks(dataset, score_reading.mode, config.chunk_rows)(None):
        probabilities[rows] = block
    return probabilities, dataset.labels, dataset.labels, score_reading.warnings


def _holdout_mask(strata: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """True for held-out rows: `fraction` of each stratum, at random (seeded)."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(strata.size), strata))
    sorted_strata = strata[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_strata)) + 1]
    sizes = np.diff(np.r_[starts, strata.size])
    position = np.arange(strata.size) - np.repeat(starts, sizes)
    held = position < np.round(np.repeat(sizes, sizes) * fraction)
    mask = np.zeros(strata.size, dtype=bool)
    mask[order[held]] = True
    return mask


def _tune(probabilities, truth, rows, dataset, objective) -> np.ndarray:
    if dataset.multi_label:
        return th.tune_multilabel(probabilities, truth[rows], objective)
    return th.tune_multiclass(probabilities, truth[rows], objective)


def _decide(probabilities: np.ndarray, thresholds: np.ndarray | None, dataset: Dataset):
    """(n, K) boolean predictions: the default decision when `thresholds` is None."""
    k = dataset.n_classes
    if dataset.multi_label:
        return (
            probabilities >= 0.5
            if thresholds is None
            else th.multilabel_decide(probabilities, thresholds)
        )
    predicted = (
        probabilities.argmax(axis=1)
        if thresholds is None
        else th.multiclass_decide(probabilities, thresholds)[0]
    )
    return np.eye(k, dtype=bool)[predicted]


def _truth_matrix(truth: Any, dataset: Dataset) -> np.ndarray:
    if dataset.multi_label:
        return truth
    return np.eye(dataset.n_classes, dtype=bool)[truth]


def _per_class(target: np.ndarray, predicted: np.ndarray):
    tp = (target & predicted).sum(axis=0)
    fp = (~target & predicted).sum(axis=0)
    fn = (target & ~predicted).sum(axis=0)
    return scores_from_counts(tp, fp, fn), (tp.sum(), fp.sum(), fn.sum())


def _result(dataset, objective, chosen, target, before, after, method, tuning_rows, seed):
    scores_before, pooled_before = _per_class(target, before)
    scores_after, pooled_after = _per_class(target, after)

    def micro(pooled) -> float:
        tp, fp, fn = pooled
        return float(2 * tp / (2 * tp + fp + fn)) if (2 * tp + fp + fn) else 0.0

    if not dataset.multi_label:
        # Multi-class: the same figures as the scan's metrics, from the confusion matrix.
        labels = target.argmax(axis=1)
        before_m = metrics_from_confusion(
            confusion_matrix(labels, before.argmax(axis=1), dataset.n_classes)
        )
        after_m = metrics_from_confusion(
            confusion_matrix(labels, after.argmax(axis=1), dataset.n_classes)
        )
        macro_before, macro_after = before_m.macro.f1, after_m.macro.f1
    else:
        macro_before, macro_after = float(scores_before.f1.mean()), float(scores_after.f1.mean())
    classes = dataset.classes
    return {
        "schema_version": SCHEMA_VERSION,
        "command": "thresholds",
        "metric": objective.name,
        "task": dataset.task,
        "rule": "a class is predicted when its probability >= its threshold; 1.0 switches it off"
        + ("" if dataset.multi_label else "; when no class clears, the argmax is predicted"),
        "thresholds": {c: float(t) for c, t in zip(classes, chosen, strict=True)},
        "switched_off": [c for c, t in zip(classes, chosen, strict=True) if t >= th.OFF],
        "evaluation": {
            **method,
            "seed": seed,
            "n_tuning": tuning_rows,
            "n_evaluation": int(target.shape[0]),
            "measure": "macro_f1",
            "before": macro_before,
            "after": macro_after,
            "micro_f1_before": micro(pooled_before),
            "micro_f1_after": micro(pooled_after),
            "note": "Before: the default decision (argmax, or p >= 0.5 for multi-label). After: "
            "the tuned thresholds. Both are measured on rows that did not choose the thresholds.",
        },
        "per_class": [
            {
                "class": c,
                "threshold": float(chosen[i]),
                "precision_before": float(scores_before.precision[i]),
                "recall_before": float(scores_before.recall[i]),
                "precision_after": float(scores_after.precision[i]),
                "recall_after": float(scores_after.recall[i]),
            }
            for i, c in enumerate(classes)
        ],
    }
