"""`labelaudit scan`: read the inputs, run every statistic, assemble the ScanReport."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from labelaudit.config import ScanConfig
from labelaudit.core import support as support_stats
from labelaudit.core.metrics import metrics_from_confusion
from labelaudit.io.dataset import Dataset, dense_codes
from labelaudit.io.load import ScoreSources, Source, read_inputs
from labelaudit.io.thresholds_file import read_thresholds
from labelaudit.pipelines.alignment import (
    AT_CHANCE_FINDINGS,
    from_confusion,
    from_indicators,
    misalignment_findings,
)
from labelaudit.pipelines.findings import FROM_THE_SCORES, collect_findings
from labelaudit.pipelines.label_issues import multiclass_label_issues, multilabel_label_issues
from labelaudit.pipelines.metrics_sections import (
    multiclass_metrics_section,
    multilabel_metrics_section,
)
from labelaudit.pipelines.models import scored_dataset
from labelaudit.pipelines.passes import (
    evaluate_multiclass,
    evaluate_multilabel,
)
from labelaudit.pipelines.recommendations import recommendations
from labelaudit.report.schema import (
    ClassSupport,
    DatasetInfo,
    DuplicatesSection,
    ImbalanceSection,
    LabelPair,
    ModelMember,
    ModelsSection,
    MultilabelSection,
    ScanReport,
    SupportSection,
)


def run_scan(
    labels: Source, preds: ScoreSources, config: ScanConfig, classes: list[str] | None = None
) -> ScanReport:
    """Read `labels` (and `preds`), run every statistic, and return the report."""
    if config.engine == "ray" and preds:
        return _run_on_ray(labels, preds, config, classes)
    return build_report(load_dataset(labels, preds, config, classes), config)


def _run_on_ray(
    labels: Source, preds: ScoreSources, config: ScanConfig, classes: list[str] | None
) -> ScanReport:
    """The same report, the passes over the predictions run as Ray tasks (docs/scale.md)."""
    from labelaudit.engines.ray_engine import RayScan, check_supported, ray_session

    # The driver reads the ids only; the tasks read the scores, range by range. What Ray does
    # not take is refused before Ray starts.
    dataset = load_dataset(labels, preds, replace(config, stream_above_mib=0), classes)
    check_supported(dataset)
    with ray_session(config.ray_address):
        dataset = replace(dataset, engine=RayScan(dataset, config.chunk_rows))
        return build_report(dataset, config)


def load_dataset(
    labels: Source,
    preds: ScoreSources,
    config: ScanConfig,
    classes: list[str] | None = None,
) -> Dataset:
    """Read labels and scores and join them into a Dataset (several models' scores combined)."""
    table, matrices, vocabulary, warnings = read_inputs(labels, preds, config, classes)
    if config.embeddings:
        from labelaudit.pipelines.neighbourhood import with_neighbourhood

        return with_neighbourhood(table, matrices, vocabulary, config, warnings)
    return scored_dataset(table, matrices, vocabulary, config, warnings)


def build_report(dataset: Dataset, config: ScanConfig) -> ScanReport:
    """Run every statistic on a loaded Dataset and assemble the report."""
    classes = dataset.classes
    if dataset.multi_label:
        counts = support_stats.multilabel_class_counts(dataset.indicators)
        label_codes = support_stats.label_set_codes(dataset.indicators)
    else:
        counts = support_stats.class_counts(dataset.labels, dataset.n_classes)
        label_codes = dataset.labels
    # The share is of analyzed samples (multi-label: shares then sum to the cardinality).
    total = dataset.n_samples
    support = SupportSection(
        [
            ClassSupport(name, int(c), float(c / total) if total else 0.0)
            for name, c in zip(classes, counts, strict=True)
        ]
    )
    figures = support_stats.imbalance(counts, config.min_support)
    imbalance = ImbalanceSection(
        ratio=figures.ratio,
        normalized_entropy=figures.normalized_entropy,
        effective_classes=figures.effective_classes,
        min_support=config.min_support,
        rare_classes=[classes[i] for i in figures.rare_classes],
        zero_support_classes=[classes[i] for i in figures.zero_support_classes],
    )
    dups = support_stats.duplicates(dense_codes(dataset.ids), label_codes)  # not kept: N x 8
    duplicates = DuplicatesSection(
        duplicate_ids=dups.duplicate_ids,
        duplicate_rows=dups.duplicate_rows,
        conflicting_ids=dups.conflicting_ids,
        example_duplicate_ids=_ids_at(dataset, dups.example_duplicate_rows),
        example_conflicting_ids=_ids_at(dataset, dups.example_conflicting_rows),
    )
    multilabel = _multilabel_section(dataset) if dataset.multi_label else None
    metrics = label_issues = table = score_mode = None
    warnings = list(dataset.warnings)
    detect = config.suspect_rule != "none"
    agreements = {}  # per score file: its model's decisions against a random row order's
    combination = None  # several models judged one by one: what their combination matched
    thresholds = decision = None
    if dataset.scores is not None and config.thresholds:
        thresholds = read_thresholds(config.thresholds, dataset.classes, dataset.task)
        decision = f"per-class thresholds from {config.thresholds}"
        warnings.append(f"Metrics use the per-class thresholds of '{config.thresholds}'.")
    elif config.thresholds:
        warnings.append(
            f"The thresholds of '{config.thresholds}' were not applied: they decide predictions, "
            "and there are none without --preds."
        )
    if dataset.scores is not None:
        if dataset.multi_label:
            evaluation = evaluate_multilabel(
                dataset,
                config.scores,
                config.chunk_rows,
                config.threshold if thresholds is None else thresholds,
                against_threshold=config.threshold,
            )
            warnings += evaluation.warnings
            score_mode = evaluation.score_mode
            metrics = multilabel_metrics_section(
                dataset.classes,
                evaluation.metrics,
                evaluation.score_mode,
                decision or f"p >= {config.threshold:g}",
                int(dataset.n_scored),
            )
            combined = from_indicators(evaluation.metrics.per_class, int(dataset.n_scored))
            sources = dataset.positional_sources if dataset.ensemble else (dataset.scores.source,)
            agreements = dict.fromkeys(sources, combined)  # several models: their combination
            if detect:
                label_issues, table, extra = multilabel_label_issues(dataset, evaluation, config)
                warnings += extra
        else:
            evaluation = evaluate_multiclass(
                dataset,
                config.scores,
                config.chunk_rows,
                with_entropy=config.quality_score == "confidence_weighted_entropy",
                with_evidence=detect,
                thresholds=thresholds,
            )
            warnings += evaluation.warnings
            score_mode = evaluation.score_mode
            metrics = multiclass_metrics_section(
                dataset.classes, evaluation.sums, evaluation.score_mode, decision or "argmax"
            )
            agreements = _multiclass_agreements(dataset, evaluation.sums.confusion)
            if dataset.ensemble is not None and dataset.ensemble.sums is not None:
                combination = from_confusion(evaluation.sums.confusion)
            if detect:
                label_issues, table, extra = multiclass_label_issues(
                    dataset, evaluation, config, metrics.accuracy
                )
                warnings += extra
    info = DatasetInfo(
        source=dataset.source,
        predictions=dataset.scores.source if dataset.scores is not None else None,
        task=dataset.task,
        n_samples=dataset.n_samples,
        n_classes=dataset.n_classes,
        classes=list(classes),
        rows_read=dataset.n_samples + dataset.null_labels,
        null_labels=dataset.null_labels,
    )
    advice, weights_table = recommendations(
        dataset, counts, imbalance, multilabel, label_issues, config
    )
    misaligned, misaligned_findings = misalignment_findings(dataset, agreements, combination)
    warnings = misaligned + warnings
    findings = misaligned_findings + collect_findings(dataset, imbalance, duplicates, label_issues)
    if any(f.code in AT_CHANCE_FINDINGS for f in misaligned_findings):
        # Scores at chance say nothing of the labels: their suspects are no finding.
        findings = [f for f in findings if f.code not in FROM_THE_SCORES]
    groups = None
    if dataset.groups is not None and config.group_cols:
        from labelaudit.pipelines.groups import group_findings

        groups = _groups(dataset, config, score_mode, thresholds, table, label_issues, warnings)
        findings = group_findings(groups) + findings
    near = dataset.neighbourhood
    if near is not None and table is not None:
        table = table.with_columns(near.issue_columns)
    return ScanReport(
        dataset=info,
        support=support,
        imbalance=imbalance,
        duplicates=duplicates,
        multilabel=multilabel,
        metrics=metrics,
        models=_models_section(dataset),
        label_issues=label_issues,
        recommendations=advice,
        findings=findings,
        config=config.to_dict(),
        warnings=warnings,
        issues_table=table,
        weights_table=weights_table,
        neighbours=near.neighbours if near is not None else None,
        near_duplicates=near.duplicates if near is not None else None,
        outliers=near.outliers if near is not None else None,
        projection=near.projection if near is not None else None,
        groups=groups,
    )


def _groups(
    dataset: Dataset,
    config: ScanConfig,
    score_mode: str | None,
    thresholds: np.ndarray | None,
    table: Any,
    label_issues: Any,
    warnings: list[str],
) -> dict[str, Any]:
    """The --group-col breakdowns (pipelines.groups), from the issues table's suspects."""
    from labelaudit.pipelines.groups import group_sections

    issues = None
    if table is not None:
        frame = table.get().select("given_label", "suggested_label", "is_suspect")
        rows = table.dataset_rows
        issues = frame.with_columns(dataset_row=np.arange(frame.height) if rows is None else rows)
    errors = label_issues.estimated_errors if label_issues is not None else None
    return group_sections(dataset, config, score_mode, thresholds, issues, errors, warnings)


def _multiclass_agreements(dataset: Dataset, confusion: Any) -> dict[str, Any]:
    """Each score file's fit: its own model's decisions (several models: each model's)."""
    ensemble = dataset.ensemble
    if ensemble is None:
        return {dataset.scores.source: from_confusion(confusion)}
    if ensemble.sums is None:
        return dict.fromkeys(dataset.positional_sources, from_confusion(confusion))
    return {
        model.source: from_confusion(sums.confusion)
        for model, sums in zip(ensemble.models, ensemble.sums, strict=True)
    }


def _models_section(dataset: Dataset) -> ModelsSection | None:
    """Per model: weight, score reading and own figures (multi-class), for several models."""
    ensemble = dataset.ensemble
    if ensemble is None:
        return None
    members = []
    for i, model in enumerate(ensemble.models):
        sums = ensemble.sums[i] if ensemble.sums is not None else None
        figures = metrics_from_confusion(sums.confusion) if sums is not None else None
        members.append(
            ModelMember(
                source=model.source,
                weight=float(ensemble.weights[i]),
                score_mode=model.mode,
                accuracy=figures.accuracy if figures else None,
                log_loss=sums.log_loss() if sums is not None else None,
                macro_f1=figures.macro.f1 if figures else None,
                consensus_error_rate=float(ensemble.error_rates[i])
                if ensemble.error_rates is not None
                else None,
            )
        )
    weighting = "equal" if ensemble.error_rates is None else "inverse_consensus_error_rate"
    return ModelsSection(method="weighted_mean_of_probabilities", weighting=weighting,
                         members=members)  # fmt: skip


def _ids_at(dataset: Dataset, rows: np.ndarray) -> list[Any]:
    return dataset.ids.gather(rows).to_list() if rows.size else []


def _multilabel_section(dataset: Dataset) -> MultilabelSection:
    shape = support_stats.multilabel_cardinality(dataset.indicators)
    return MultilabelSection(
        cardinality=shape.cardinality,
        density=shape.density,
        samples_without_label=shape.samples_without_label,
        max_labels_per_sample=shape.max_labels_per_sample,
        top_pairs=[
            LabelPair([dataset.classes[a], dataset.classes[b]], n) for a, b, n in shape.top_pairs
        ],
    )
