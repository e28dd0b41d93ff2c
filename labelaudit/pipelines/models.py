"""Several models' scores combined into the one estimate the statistics read (pass 0 decides how
each model reads, its weight and per-sample agreement); one model's scores joined as they are."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from labelaudit.config import ScanConfig
from labelaudit.io.dataset import Dataset, build_dataset
from labelaudit.io.labels import LabelTable
from labelaudit.io.models import CombinedScores, align_models
from labelaudit.io.predictions import ScoreMatrix
from labelaudit.pipelines.passes import evaluate_models


def scored_dataset(
    table: LabelTable,
    matrices: list[ScoreMatrix],
    vocabulary: list[str],
    config: ScanConfig,
    warnings: list[str],
) -> Dataset:
    """The labels joined to one model's scores, or to several models' combined scores (pass 0
    over the models decides how each reads, its weight and per-sample agreement)."""
    if len(matrices) <= 1:
        scores = matrices[0] if matrices else None
        return build_dataset(
            table, scores, vocabulary, on_missing=config.on_missing, extra_warnings=warnings
        )
    warnings = [*warnings, *_same_files(matrices)]
    # Combining reads every model's rows in the dataset's order: random access, so in memory.
    datasets = [
        build_dataset(
            table, m.in_memory(), vocabulary, on_missing=config.on_missing, extra_warnings=warnings
        )
        for m in matrices
    ]
    ensemble = evaluate_models(
        datasets, align_models(datasets), config.scores, config.chunk_rows, config.threshold
    )
    first = datasets[0]
    combined = CombinedScores(ensemble.models, ensemble.weights, vocabulary, first.multi_label)
    return replace(
        first,
        scores=combined,
        class_positions=np.arange(len(vocabulary)),
        score_rows=None,
        label_rows=None,
        score_mode="probs",
        ensemble=ensemble,
        warnings=first.warnings + tuple(ensemble.warnings),
        positional_sources=tuple(s for d in datasets for s in d.positional_sources),
    )


def _same_files(matrices: list[ScoreMatrix]) -> list[str]:
    """A warning for each file given twice as two models (it counts twice in the mean)."""
    seen: dict[str, str] = {}
    out = []
    for matrix in matrices:
        key = os.path.realpath(matrix.source) if os.path.exists(matrix.source) else matrix.source
        if key in seen:
            out.append(
                f"--preds names the same file twice ('{seen[key]}' and '{matrix.source}'): it is "
                "one model counted twice, weighted as two."
            )
        seen.setdefault(key, matrix.source)
    return out
