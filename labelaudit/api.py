"""The Python API the CLI stands on: `scan()` reads inputs, runs the statistics, builds a report."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from labelaudit.config import ScanConfig, build_scan_config, load_config_file
from labelaudit.core import support as support_stats
from labelaudit.core.metrics import metrics_from_confusion
from labelaudit.evaluate import (
    MulticlassEvaluation,
    MultilabelEvaluation,
    evaluate_models,
    evaluate_multiclass,
    evaluate_multilabel,
)
from labelaudit.io.dataset import Dataset, align_boolean_names, build_dataset, resolve_classes
from labelaudit.io.labels import LabelTable, load_labels
from labelaudit.io.models import CombinedScores, align_models, check_same_classes
from labelaudit.io.predictions import ScoreMatrix, load_predictions, read_class_file
from labelaudit.io.thresholds_file import read_thresholds
from labelaudit.recommend import recommendations
from labelaudit.report.findings import collect_findings
from labelaudit.report.schema import (
    AverageMetrics,
    CalibrationBin,
    ClassMetrics,
    ClassSupport,
    ConfusionSection,
    DatasetInfo,
    DuplicatesSection,
    ImbalanceSection,
    LabelPair,
    ModelMember,
    ModelsSection,
    MulticlassMetricsSection,
    MultilabelMetricsSection,
    MultilabelSection,
    ScanReport,
    SupportSection,
)
from labelaudit.suspects import multiclass_label_issues, multilabel_label_issues

Source = str | os.PathLike[str] | pl.DataFrame
ScoreSource = str | os.PathLike[str] | pl.DataFrame | np.ndarray


def scan(
    labels: Source,
    preds: ScoreSource | Sequence[ScoreSource] | None = None,
    *,
    classes: list[str] | None = None,
    config: ScanConfig | None = None,
    config_file: str | os.PathLike[str] | None = None,
    **options: Any,
) -> ScanReport:
    """Audit `labels` (and a model's out-of-sample `preds`) and return the report.

    `preds` is one model's scores, or a list of several models' scores for the same rows (they
    are combined; see docs/detection.md). `options` are ScanConfig fields (min_support=20,
    scores="logits", ...); they override `config_file`'s [tool.labelaudit] settings, which
    override the defaults. `classes` fixes the class vocabulary and its order, like
    `--classes FILE`.
    """
    if config is None:
        loaded = load_config_file(config_file, discover=False)
        config = build_scan_config(loaded.values, options, source="scan() options")
    dataset = load_dataset(labels, preds, config, classes)
    return build_report(dataset, config)


def score_sources(preds: ScoreSource | Sequence[ScoreSource] | None) -> list[ScoreSource]:
    """`preds` as a list of models' score sources: none, one, or several."""
    if preds is None:
        return []
    if isinstance(preds, list | tuple):
        return list(preds)
    return [preds]


def load_dataset(
    labels: Source,
    preds: ScoreSource | Sequence[ScoreSource] | None,
    config: ScanConfig,
    classes: list[str] | None = None,
) -> Dataset:
    """Read labels and scores and join them into a Dataset (several models' scores combined)."""
    fixed = classes if classes is not None else None
    if fixed is None and config.classes is not None:
        fixed = read_class_file(config.classes)
    table = load_label_table(labels, config)
    matrices = load_score_matrices(preds, config, fixed)
    table = align_boolean_names(table, matrices[0] if matrices else None)
    vocabulary, warnings = resolve_classes(table, matrices[0] if matrices else None, fixed)
    return scored_dataset(table, matrices, vocabulary, config, warnings)


def load_score_matrices(
    preds: ScoreSource | Sequence[ScoreSource] | None,
    config: ScanConfig,
    classes: list[str] | None,
) -> list[ScoreMatrix]:
    """Every model's scores, read; several models must score the same classes."""
    matrices = [load_score_matrix(p, config, classes) for p in score_sources(preds)]
    if len(matrices) > 1:
        check_same_classes(matrices)
    return matrices


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
    datasets = [
        build_dataset(table, m, vocabulary, on_missing=config.on_missing, extra_warnings=warnings)
        for m in matrices
    ]
    ensemble = evaluate_models(datasets, align_models(datasets), config.scores, config.chunk_rows)
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
    )


def load_label_table(labels: Source, config: ScanConfig) -> LabelTable:
    """Read a labels table with the configured columns and format."""
    return load_labels(
        labels,
        id_col=config.id_col,
        label_col=config.label_col,
        label_sep=config.label_sep,
        id_col_required=config.id_col != ScanConfig.id_col,
        input_format=None if config.input_format == "npy" else config.input_format,
    )


def load_score_matrix(
    preds: ScoreSource, config: ScanConfig, classes: list[str] | None
) -> ScoreMatrix:
    """Read model scores with the configured columns and format."""
    return load_predictions(
        preds,
        id_col=config.id_col,
        label_col=config.label_col,
        probs_col=config.probs_col,
        classes=classes,
        input_format=config.input_format,
        ignore_cols=config.ignore_cols,
    )


def build_report(dataset: Dataset, config: ScanConfig) -> ScanReport:
    """Run every statistic on a loaded Dataset and assemble the report."""
    classes = dataset.classes
    if dataset.multi_label:
        counts = support_stats.multilabel_class_counts(dataset.indicators)
        label_codes = support_stats.label_set_codes(dataset.indicators)
    else:
        counts = support_stats.class_counts(dataset.labels, dataset.n_classes)
        label_codes = dataset.labels
    total = counts.sum()
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
    dups = support_stats.duplicates(dataset.id_codes, label_codes)
    duplicates = DuplicatesSection(
        duplicate_ids=dups.duplicate_ids,
        duplicate_rows=dups.duplicate_rows,
        conflicting_ids=dups.conflicting_ids,
        example_duplicate_ids=_ids_at(dataset, dups.example_duplicate_rows),
        example_conflicting_ids=_ids_at(dataset, dups.example_conflicting_rows),
    )
    multilabel = _multilabel_section(dataset) if dataset.multi_label else None
    metrics = label_issues = table = None
    warnings = list(dataset.warnings)
    detect = config.suspects != "none"
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
            )
            warnings += evaluation.warnings
            metrics = _multilabel_metrics(
                dataset, evaluation, decision or f"p >= {config.threshold:g}"
            )
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
            metrics = _multiclass_metrics(dataset, evaluation, decision or "argmax")
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
    findings = collect_findings(dataset, imbalance, duplicates, label_issues)
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
        suspects_table=table,
        weights_table=weights_table,
    )


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


def _multiclass_metrics(
    dataset: Dataset, evaluation: MulticlassEvaluation, decision: str
) -> MulticlassMetricsSection:
    sums = evaluation.sums
    result = metrics_from_confusion(sums.confusion)
    per_class = result.per_class
    return MulticlassMetricsSection(
        score_mode=evaluation.score_mode,
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
            for i, name in enumerate(dataset.classes)
        ],
        micro=AverageMetrics(**vars(result.micro)),
        macro=AverageMetrics(**vars(result.macro)),
        weighted=AverageMetrics(**vars(result.weighted)),
        confusion_matrix=ConfusionSection(
            classes=list(dataset.classes),
            counts=result.confusion.tolist(),
            normalized=result.confusion_normalized.tolist(),
        ),
        calibration=_calibration_bins(sums),
    )


def _calibration_bins(sums: Any) -> list[CalibrationBin]:
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


def _multilabel_metrics(
    dataset: Dataset, evaluation: MultilabelEvaluation, decision: str
) -> MultilabelMetricsSection:
    m = evaluation.metrics
    return MultilabelMetricsSection(
        score_mode=evaluation.score_mode,
        decision=decision,
        n_scored=int(dataset.n_scored),
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
            for i, name in enumerate(dataset.classes)
        ],
        micro=AverageMetrics(**vars(m.micro)),
        macro=AverageMetrics(**vars(m.macro)),
        weighted=AverageMetrics(**vars(m.weighted)),
    )
