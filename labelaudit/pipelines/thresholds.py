"""`labelaudit thresholds`: per-class thresholds chosen on one part of the rows, judged on another.

Holdout: a stratified fraction is held out; thresholds are tuned on the rest and the gain is
measured on the held-out rows only (the thresholds written are those). Cross-fitting (--folds K):
each fold is predicted with thresholds tuned on the other folds, so every row is judged by
thresholds it did not help choose; the thresholds written are then tuned on all rows.

The task (multi-class or multi-label) is picked once: `_Task` holds what differs between them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from labelaudit._text import count
from labelaudit.config import ScanConfig
from labelaudit.core import thresholds as th
from labelaudit.core.metrics import IndicatorMetrics, metrics_from_indicators
from labelaudit.errors import InputError
from labelaudit.io.dataset import Dataset
from labelaudit.io.load import ScoreSources, Source
from labelaudit.pipelines.passes import (
    gather_multilabel,
    multiclass_score_mode,
    probability_chunks,
)
from labelaudit.pipelines.scan import load_dataset
from labelaudit.report.schema import ClassThreshold, ThresholdsEvaluation, ThresholdsReport

DEFAULT_HOLDOUT = 0.5


@dataclass(frozen=True)
class _Task:
    """What differs between multi-class and multi-label thresholds: tuning and deciding."""

    multi_label: bool
    objective: th.Objective

    def tune(self, probabilities: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """One threshold per class from (n, K) probabilities and the (n, K) boolean truth."""
        if self.multi_label:
            return th.tune_multilabel(probabilities, truth, self.objective)
        return th.tune_multiclass(probabilities, truth.argmax(axis=1), self.objective)

    def decide(self, probabilities: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
        """(n, K) boolean predictions: the default decision when `thresholds` is None."""
        if self.multi_label:
            if thresholds is None:
                return probabilities >= 0.5
            return th.multilabel_decide(probabilities, thresholds)
        if thresholds is None:
            predicted = probabilities.argmax(axis=1)
        else:
            predicted = th.multiclass_decide(probabilities, thresholds)[0]
        return np.eye(probabilities.shape[1], dtype=bool)[predicted]

    @property
    def rule(self) -> str:
        return "a class is predicted when its probability >= its threshold; 1.0 switches it off" + (
            "" if self.multi_label else "; when no class clears, the argmax is predicted"
        )


def run_thresholds(
    labels: Source,
    preds: ScoreSources,
    config: ScanConfig,
    *,
    metric: str = "f1",
    holdout: float | None = None,
    folds: int | None = None,
    seed: int = 0,
    curves: bool = False,
) -> ThresholdsReport:
    """Tune and honestly evaluate per-class thresholds (with `curves`: also each class's F1
    against threshold on the tuning rows, for the HTML page)."""
    try:
        objective = th.parse_objective(metric)
    except ValueError as exc:
        raise InputError(f"--metric: {exc}.") from exc
    if holdout is not None and folds is not None:
        raise InputError("Give --holdout FRACTION or --folds K, not both.")
    if folds is not None and folds < 2:
        raise InputError(f"--folds must be at least 2; found {folds}.")
    if folds is not None and folds > 10_000:
        raise InputError(f"--folds {folds} is more folds than any split needs; use 2 to 20.")
    if holdout is not None and not 0 < holdout < 1:
        raise InputError(f"--holdout must be a fraction in (0, 1); found {holdout}.")
    dataset = load_dataset(labels, preds, config)
    task = _Task(dataset.multi_label, objective)
    probabilities, truth, strata, warnings = _probabilities(dataset, config)
    if folds is None:
        fraction = DEFAULT_HOLDOUT if holdout is None else holdout
        evaluation_rows = _holdout_mask(strata, fraction, seed)
        tuning = ~evaluation_rows
        _require_rows(int(tuning.sum()), int(evaluation_rows.sum()), fraction)
        held = float(evaluation_rows.mean())
        if abs(held - fraction) > 0.05:
            warnings.append(
                f"--holdout {fraction:g} held out {count(int(evaluation_rows.sum()), 'row')} "
                f"({held:.0%}), not {fraction:.0%}: each class is split on its own, rounded to "
                "whole rows, so small classes go to tuning whole. With many small classes, "
                "--folds K judges every row."
            )
        chosen = task.tune(probabilities[tuning], truth[tuning])
        after = task.decide(probabilities[evaluation_rows], chosen)
        method = ThresholdsEvaluation("holdout", holdout_fraction=fraction, seed=seed)
    else:
        if folds > dataset.n_samples:
            raise InputError(
                f"--folds {folds} is more folds than the {count(dataset.n_samples, 'row')} "
                "to split: every fold needs a row. Use fewer folds (2 to 20 is usual)."
            )
        fold = th.split_folds(strata, folds, seed)
        after = np.zeros(truth.shape, dtype=bool)
        for f in range(folds):  # a loop over folds, each vectorized
            in_fold = fold == f
            fold_thresholds = task.tune(probabilities[~in_fold], truth[~in_fold])
            after[in_fold] = task.decide(probabilities[in_fold], fold_thresholds)
        evaluation_rows = np.ones(dataset.n_samples, dtype=bool)
        tuning = evaluation_rows
        chosen = task.tune(probabilities, truth)
        method = ThresholdsEvaluation("crossfit", folds=folds, seed=seed)
    before = task.decide(probabilities[evaluation_rows], None)
    figures = _figures(truth[evaluation_rows], before, after)
    classes = dataset.classes
    return ThresholdsReport(
        metric=objective.name,
        task=dataset.task,
        rule=task.rule,
        thresholds={c: float(t) for c, t in zip(classes, chosen, strict=True)},
        switched_off=[c for c, t in zip(classes, chosen, strict=True) if t >= th.OFF],
        evaluation=ThresholdsEvaluation(
            method.method,
            holdout_fraction=method.holdout_fraction,
            folds=method.folds,
            seed=seed,
            n_tuning=int(tuning.sum()),
            n_evaluation=int(evaluation_rows.sum()),
            before=figures["before"].macro.f1,
            after=figures["after"].macro.f1,
            micro_f1_before=figures["before"].micro.f1,
            micro_f1_after=figures["after"].micro.f1,
        ),
        per_class=[
            ClassThreshold(
                c,
                float(chosen[i]),
                float(figures["before"].per_class.precision[i]),
                float(figures["before"].per_class.recall[i]),
                float(figures["after"].per_class.precision[i]),
                float(figures["after"].per_class.recall[i]),
            )
            for i, c in enumerate(classes)
        ],
        warnings=list(dataset.warnings) + warnings,
        curves=_curves(probabilities[tuning], truth[tuning], classes) if curves else None,
    )


def _figures(
    target: np.ndarray, before: np.ndarray, after: np.ndarray
) -> dict[str, IndicatorMetrics]:
    """Per-class scores and averages of both decisions (for one-hot multi-class rows these equal
    the scan's confusion-matrix figures)."""
    return {
        "before": metrics_from_indicators(target, before),
        "after": metrics_from_indicators(target, after),
    }


def _curves(probabilities: np.ndarray, truth: np.ndarray, classes: list[str]) -> dict:
    grid, values = th.f1_curves(probabilities, truth)
    return {
        "metric": "f1",
        "grid": grid.tolist(),
        "classes": list(classes),
        "values": values.round(6).tolist(),
    }


def _probabilities(
    dataset: Dataset, config: ScanConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(N, K) probabilities in label order, the (N, K) boolean truth, strata for the split, and
    what reading the scores changed (warnings)."""
    if dataset.scores is None:
        raise InputError("Thresholds are tuned on scores: pass --preds.")
    _require_memory(dataset.n_samples, dataset.n_classes)
    if dataset.multi_label:
        probabilities, _, _, warnings = gather_multilabel(dataset, config.scores, config.chunk_rows)
        truth = dataset.indicators.astype(bool)
        strata = np.where(truth.any(axis=1), truth.argmax(axis=1), -1)
        return probabilities, truth, strata, warnings
    score_reading = multiclass_score_mode(dataset, config.scores, config.chunk_rows)
    probabilities = np.empty((dataset.n_samples, dataset.n_classes), dtype=np.float64)
    for block, rows in probability_chunks(dataset, score_reading.mode, config.chunk_rows)(None):
        probabilities[rows] = block
    truth = np.eye(dataset.n_classes, dtype=bool)[dataset.labels]
    return probabilities, truth, dataset.labels, score_reading.warnings


BYTES_PER_CELL = 24  # measured about 20: the probabilities, the truth, the tuning rows' copy


def _require_memory(n_rows: int, n_classes: int) -> None:
    """Tuning holds every row's K probabilities and truths, and a copy of the tuning rows' (about
    BYTES_PER_CELL bytes a row and class). When that exceeds the memory available, say so
    (exit 2) before reading instead of failing mid-way."""
    needed = BYTES_PER_CELL * n_rows * n_classes
    memory = available_memory()
    if memory is not None and needed > memory:
        raise InputError(
            f"thresholds holds the scores of every row and class ({n_rows:,} x {n_classes:,}, "
            f"about {needed / 2**30:.1f} GiB) and this machine has {memory / 2**30:.1f} GiB of "
            "memory available. Tune on a sample of the rows (a smaller labels file: the "
            "thresholds need a few hundred rows per class), or on fewer classes."
        )


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), else the machine's
    physical memory; None where neither can be read."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _require_rows(tuning: int, judged: int, fraction: float) -> None:
    """Both sides of a holdout need rows: thresholds tuned on nothing, or judged on nothing,
    would be reported as figures."""
    if tuning == 0 or judged == 0:
        side = "tuned on" if tuning == 0 else "judged on"
        raise InputError(
            f"--holdout {fraction:g} leaves {tuning:,} rows to tune on and {judged:,} to judge "
            f"on: the thresholds would be {side} no row. Choose a fraction that leaves rows on "
            "both sides (default 0.5), or --folds K."
        )


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
