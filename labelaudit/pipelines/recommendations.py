"""Assemble the scan's recommendations: class weights, the loss, the sampling weights."""

from __future__ import annotations

import numpy as np
import polars as pl

from labelaudit._text import agree, count
from labelaudit.config import ScanConfig
from labelaudit.core import remedies
from labelaudit.io.dataset import Dataset
from labelaudit.pipelines.label_issues import LazyTable
from labelaudit.report.schema import (
    ClassWeightsSection,
    ImbalanceSection,
    LabelIssuesSection,
    LossSection,
    MultilabelSection,
    RecommendationsSection,
    SamplingSection,
)


def _by_class(classes: list[str], values: np.ndarray) -> dict[str, float | None]:
    return {c: (None if np.isnan(v) else float(v)) for c, v in zip(classes, values, strict=True)}


def recommendations(
    dataset: Dataset,
    counts: np.ndarray,
    imbalance: ImbalanceSection,
    multilabel: MultilabelSection | None,
    label_issues: LabelIssuesSection | None,
    config: ScanConfig,
) -> tuple[RecommendationsSection, LazyTable]:
    """Every weighting, the recommended loss, and the per-sample weights (built on demand)."""
    n = dataset.n_samples
    all_weights = {
        method: remedies.class_weights(counts, method, n, max_weight=config.max_weight)
        for method in remedies.WEIGHTING_METHODS
    }
    recommended = remedies.recommended_weighting(imbalance.ratio, dataset.multi_label)
    chosen = config.weighting or recommended
    sampling = all_weights[chosen]
    per_sample = remedies.sample_weights(sampling, dataset.labels, dataset.indicators)
    notes = []
    if imbalance.zero_support_classes:
        n_empty = len(imbalance.zero_support_classes)
        notes.append(
            f"{count(n_empty, 'class')} {agree(n_empty, 'has', 'have')} no sample and "
            f"{agree(n_empty, 'gets', 'get')} no weight: "
            f"{', '.join(imbalance.zero_support_classes[:10])}."
        )
    if config.max_weight is not None:
        notes.append(f"Weights are capped at {config.max_weight:g} (not renormalized after).")
    loss = remedies.recommend_loss(
        multi_label=dataset.multi_label,
        imbalance_ratio=imbalance.ratio,
        effective_classes=imbalance.effective_classes,
        n_classes=dataset.n_classes,
        rare_classes=len(imbalance.rare_classes),
        noise_rate=_noise_evidence(label_issues),
        label_density=multilabel.density if multilabel else None,
        zero_support_classes=len(imbalance.zero_support_classes),
    )
    section = RecommendationsSection(
        class_weights=[
            ClassWeightsSection(w.method, w.params, _by_class(dataset.classes, w.weights))
            for w in all_weights.values()
        ],
        pos_weight=_by_class(dataset.classes, remedies.pos_weights(counts, n))
        if dataset.multi_label
        else None,
        loss=LossSection(loss.name, loss.params, loss.reasons, loss.runner_up, loss.risks),
        sampling=SamplingSection(
            method=chosen,
            params=sampling.params,
            recommended=chosen == recommended,
            min_weight=float(per_sample.min()) if n else 0.0,
            max_weight=float(per_sample.max()) if n else 0.0,
            notes=notes,
        ),
    )

    def rows(start: int, stop: int) -> pl.DataFrame:
        ids = dataset.ids.slice(start, stop - start)
        return pl.DataFrame({"id": ids, "weight": per_sample[start:stop]})

    return section, LazyTable(lambda: rows(0, n), rows, n)


# Fewer scored rows than this and a noise rate is a handful of rows: the loss does not read it.
MIN_ROWS_FOR_NOISE_ADVICE = 100


def _noise_evidence(label_issues: LabelIssuesSection | None) -> float | None:
    """The noise rate the loss advice may read: none under weak evidence (the estimate says
    nothing of the noise) or on fewer than MIN_ROWS_FOR_NOISE_ADVICE scored rows."""
    if label_issues is None or label_issues.weak_evidence:
        return None
    if label_issues.n_scored < MIN_ROWS_FOR_NOISE_ADVICE:
        return None
    return label_issues.estimated_noise_rate
