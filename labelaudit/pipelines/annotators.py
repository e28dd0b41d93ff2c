"""`labelaudit annotators`: several labels per item, from several annotators. Reads long-format
annotations (id, annotator, label), finds each item's consensus (Dawid-Skene, with a model's
probabilities when given) beside its majority vote, scores each annotator, and measures the
agreement. docs/annotators.md documents every rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from labelaudit._text import agree, count
from labelaudit.config import ScanConfig
from labelaudit.core import annotators as ann
from labelaudit.errors import InputError, SchemaError
from labelaudit.io.dataset import build_dataset, resolve_classes
from labelaudit.io.labels import LabelTable, describe_ids, load_labels
from labelaudit.io.load import ScoreSources, load_score_matrices
from labelaudit.io.predictions import read_class_file
from labelaudit.io.tables import read_table
from labelaudit.pipelines.passes import multiclass_score_mode, probability_chunks
from labelaudit.report.schema import (
    AgreementSection,
    AnnotationsInfo,
    AnnotatorQuality,
    AnnotatorsReport,
    Confusion,
    ConsensusSection,
    Finding,
)

LOW_QUALITY = 0.5  # a consensus whose probability is below this is more likely wrong than right
FLAG_MADS = 3.0  # an annotator this many scaled MADs below the median quality is flagged
MIN_LABELS_TO_FLAG = 20  # fewer labels: too little evidence to flag anyone
LOW_ALPHA = 0.667  # Krippendorff's guide: below it, conclusions are not even tentative


def run_annotators(
    source: str | pl.DataFrame, preds: ScoreSources, config: ScanConfig
) -> AnnotatorsReport:
    """Read the annotations (and a model's scores of the items) and build the report."""
    frame, name = _read(source, config)
    warnings: list[str] = []
    frame, dropped = _drop_unattributed(frame, config, name)
    warnings += dropped
    frame, collapsed = _one_label_per_annotator(frame, config, name)
    warnings += collapsed
    table = load_labels(
        frame.select(config.id_col, config.label_col).rename({config.label_col: "label"}),
        id_col=config.id_col,
        label_col="label",
    )
    table = replace(table, source=name)
    if table.task != "multiclass":
        raise InputError(
            f"The annotations '{name}' hold label lists: each annotation must be one class "
            "(multi-label annotations are not supported yet)."
        )
    fixed = read_class_file(config.classes) if config.classes else None
    matrices = load_score_matrices(preds, config, fixed)
    classes, more = resolve_classes(table, matrices[0] if matrices else None, fixed)
    warnings += more
    encoded = build_dataset(table, None, classes)
    item_ids, item = _codes(encoded.ids)
    annotator_names, annotator = _codes(frame[config.annotator_col].cast(pl.String))
    annotations = ann.Annotations(
        item, annotator, encoded.labels, item_ids.len(), annotator_names.len(), len(classes)
    )
    majority = ann.majority_vote(annotations)
    model = None
    if matrices:
        model, model_warnings = _model_probabilities(
            item_ids, classes, majority, matrices, config, name
        )
        warnings += model_warnings
    consensus = ann.dawid_skene(annotations, model)
    return _report(
        name, annotations, item_ids, annotator_names, classes, majority, consensus,
        matrices[0].source if matrices else None, warnings,
    )  # fmt: skip


def _read(source: str | pl.DataFrame, config: ScanConfig) -> tuple[pl.DataFrame, str]:
    columns = (config.id_col, config.annotator_col, config.label_col)
    if isinstance(source, pl.DataFrame):
        frame, name = source, "annotations DataFrame"
    else:
        name = str(source)
        frame = read_table(source, "annotations", config.input_format, ids=(config.id_col,),
                           label=config.label_col, keep=columns)  # fmt: skip
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        flags = {config.id_col: "--id-col", config.annotator_col: "--annotator-col",
                 config.label_col: "--label-col"}  # fmt: skip
        raise SchemaError(
            f"The annotations '{name}' have no column {', '.join(repr(c) for c in missing)}. "
            f"Columns found: {', '.join(frame.columns[:20])}. Annotations are long-format, one "
            "row an annotation: the item's id, the annotator, the label (name them with "
            f"{', '.join(flags[c] for c in missing)})."
        )
    if frame.height == 0:
        raise InputError(f"The annotations '{name}' have no rows.")
    return frame.select(columns), name


def _drop_unattributed(
    frame: pl.DataFrame, config: ScanConfig, name: str
) -> tuple[pl.DataFrame, list[str]]:
    """Rows without an item id are an error; rows without an annotator are left out with a
    warning (their labels cannot be held to anyone's confusion matrix)."""
    if frame[config.id_col].null_count():
        raise InputError(
            f"The annotations '{name}' have {count(frame[config.id_col].null_count(), 'row')} "
            f"without an item id ('{config.id_col}'). Every annotation names its item."
        )
    nameless = frame[config.annotator_col].is_null()
    nameless |= frame[config.annotator_col].cast(pl.String).str.strip_chars() == ""
    if not nameless.any():
        return frame, []
    n = int(nameless.sum())
    examples = describe_ids(frame[config.id_col], nameless.to_numpy())
    kept = frame.filter(~nameless)
    if kept.height == 0:
        raise InputError(
            f"No annotation of '{name}' names its annotator ('{config.annotator_col}')."
        )
    return kept, [
        f"{count(n, 'annotation')} of '{name}' {agree(n, 'has', 'have')} no annotator and "
        f"{agree(n, 'was', 'were')} left out (items {examples})."
    ]


def _one_label_per_annotator(
    frame: pl.DataFrame, config: ScanConfig, name: str
) -> tuple[pl.DataFrame, list[str]]:
    """An annotator labels an item once: exact repeats are collapsed with a warning; repeats
    with different labels are an error (which one counts is not ours to guess)."""
    keys = [config.id_col, config.annotator_col]
    repeated = frame.filter(pl.len().over(keys) > 1)
    if repeated.height == 0:
        return frame, []
    labels = repeated.group_by(keys).agg(pl.col(config.label_col).n_unique().alias("labels"))
    conflicting = labels.filter(pl.col("labels") > 1)
    if conflicting.height:
        shown = ", ".join(
            f"{row[0]!r} by {row[1]!r}" for row in conflicting.head(5).select(keys).iter_rows()
        )
        raise InputError(
            f"In '{name}', {count(conflicting.height, 'annotator-item pair')} "
            f"{agree(conflicting.height, 'has', 'have')} several different labels (e.g. item "
            f"{shown}). An annotator gives an item one label: keep the one that counts."
        )
    unique = frame.unique(subset=keys, keep="first", maintain_order=True)
    n = frame.height - unique.height
    return unique, [
        f"{count(n, 'annotation')} of '{name}' repeated an earlier one exactly (same item, "
        f"annotator and label) and {agree(n, 'was', 'were')} counted once."
    ]


def _codes(values: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """The distinct values in first-seen order and each row's index among them."""
    distinct = values.unique(maintain_order=True)
    codes = (
        pl.DataFrame({"v": values})
        .join(pl.DataFrame({"v": distinct, "code": np.arange(distinct.len())}), on="v", how="left")[
            "code"
        ]
        .to_numpy()
    )
    return distinct, codes.astype(np.int64)


def _model_probabilities(
    item_ids: pl.Series,
    classes: list[str],
    majority: np.ndarray,
    matrices: list,
    config: ScanConfig,
    name: str,
) -> tuple[np.ndarray, list[str]]:
    """The model's probabilities of each item (uniform for an item it did not score, under
    --on-missing drop), read by the scan's rules."""
    if len(matrices) > 1:
        raise InputError("labelaudit annotators takes one model's --preds.")
    items = LabelTable(
        source=name, ids=item_ids, has_id_column=True, task="multiclass",
        values=pl.Series("label", np.array(classes, dtype=object)[majority], dtype=pl.String),
        null_mask=np.zeros(item_ids.len(), dtype=bool), integer_labels=False,
    )  # fmt: skip
    dataset = build_dataset(items, matrices[0], classes, on_missing=config.on_missing)
    reading = multiclass_score_mode(dataset, config.scores, config.chunk_rows)
    model = np.full((item_ids.len(), len(classes)), 1 / len(classes))
    positions = _positions(item_ids, dataset.ids)
    for probs, rows in probability_chunks(dataset, reading.mode, config.chunk_rows)():
        model[positions[rows]] = probs
    return model, [*dataset.warnings, *reading.warnings]


def _positions(all_ids: pl.Series, some: pl.Series) -> np.ndarray:
    """Where each of `some` sits in `all_ids`."""
    table = pl.DataFrame({"id": all_ids, "at": np.arange(all_ids.len())})
    return pl.DataFrame({"id": some}).join(table, on="id", how="left")["at"].to_numpy()


def _report(
    name: str,
    a: ann.Annotations,
    item_ids: pl.Series,
    annotator_names: pl.Series,
    classes: list[str],
    majority: np.ndarray,
    consensus: ann.Consensus,
    predictions: str | None,
    warnings: list[str],
) -> AnnotatorsReport:
    counts = a.counts()
    per_item = counts.sum(axis=1)
    label = consensus.label
    quality = consensus.quality
    estimated = consensus.annotator_accuracy()
    with_consensus = ann.agreement_with(a, label)
    with_majority = ann.agreement_with(a, majority)
    n_labels = np.bincount(a.annotator, minlength=a.n_annotators)
    flagged = _flag(estimated, n_labels)
    annotators = [
        AnnotatorQuality(
            annotator=str(annotator_names[int(j)]),
            n_labels=int(n_labels[j]),
            quality=float(estimated[j]),
            agreement_with_consensus=float(with_consensus[j]),
            agreement_with_majority=float(with_majority[j]),
            flagged=bool(flagged[j]),
            top_confusions=_confusions(consensus.confusion[j], classes),
        )
        for j in np.argsort(estimated, kind="stable")
    ]
    alpha = ann.krippendorff_alpha(a)
    pairwise = ann.pairwise_agreement(a)
    agreement = AgreementSection(
        krippendorff_alpha=None if np.isnan(alpha) else alpha,
        fleiss_kappa=ann.fleiss_kappa(a),
        pairwise_agreement=None if np.isnan(pairwise) else pairwise,
        majority_agreement=float(np.mean(a.label == majority[a.item])),
    )
    section = ConsensusSection(
        method="dawid_skene_with_model" if predictions else "dawid_skene",
        rounds=consensus.rounds,
        converged=consensus.converged,
        mean_quality=float(quality.mean()),
        low_quality_items=int((quality < LOW_QUALITY).sum()),
        low_quality_threshold=LOW_QUALITY,
        changed_from_majority=int((label != majority).sum()),
        per_class={
            c: int(n)
            for c, n in zip(classes, np.bincount(label, minlength=len(classes)), strict=True)
        },
    )
    info = AnnotationsInfo(
        source=name,
        predictions=predictions,
        n_annotations=int(a.item.size),
        n_items=a.n_items,
        n_annotators=a.n_annotators,
        n_classes=len(classes),
        classes=list(classes),
        annotations_per_item={
            "min": float(per_item.min()),
            "mean": float(per_item.mean()),
            "max": float(per_item.max()),
        },
        items_with_one_annotation=int((per_item == 1).sum()),
    )
    names = pl.Series(classes, dtype=pl.String)
    agreement_share = counts[np.arange(a.n_items), label] / per_item
    table = pl.DataFrame(
        {
            "id": item_ids,
            "consensus_label": names.gather(label),
            "consensus_quality": quality,
            "n_annotations": per_item.astype(np.int64),
            "agreement": agreement_share,
            "majority_label": names.gather(majority),
        }
    )
    if not consensus.converged:
        warnings.append(
            f"Dawid-Skene did not settle in {consensus.rounds} rounds (its likelihood still rose "
            f"by more than {ann.TOLERANCE:g} of itself a round); the figures are those of the "
            "last round."
        )
    return AnnotatorsReport(
        dataset=info,
        agreement=agreement,
        consensus=section,
        annotators=annotators,
        findings=_findings(agreement, section, annotators),
        warnings=warnings,
        consensus_table=table,
        confusions={
            "classes": list(classes),
            "annotators": [str(v) for v in annotator_names],
            "matrices": consensus.confusion.round(6).tolist(),
        },
    )


def _flag(quality: np.ndarray, n_labels: np.ndarray) -> np.ndarray:
    """Annotators with enough labels whose quality is more than FLAG_MADS scaled MADs below the
    median of those annotators (a robust z-score: one very bad annotator cannot hide)."""
    enough = n_labels >= MIN_LABELS_TO_FLAG
    if enough.sum() < 3:
        return np.zeros(quality.size, dtype=bool)
    median = float(np.median(quality[enough]))
    spread = 1.4826 * float(np.median(np.abs(quality[enough] - median)))
    return enough & (quality < median - FLAG_MADS * max(spread, 0.01))


def _confusions(matrix: np.ndarray, classes: list[str], limit: int = 3) -> list[Confusion]:
    """The annotator's largest off-diagonal rates: which true classes it labels as what."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")[:limit]
    return [
        Confusion(classes[i // len(classes)], classes[i % len(classes)], float(off.flat[i]))
        for i in flat
        if off.flat[i] > 0.05
    ]


def _findings(
    agreement: AgreementSection, consensus: ConsensusSection, annotators: list[AnnotatorQuality]
) -> list[Finding]:
    found = []
    bad = [q for q in annotators if q.flagged]
    if bad:
        shown = ", ".join(f"{q.annotator} ({q.quality:.2f})" for q in bad[:5])
        found.append(
            Finding(
                "low_quality_annotators",
                "warning",
                f"{count(len(bad), 'annotator')} {agree(len(bad), 'is', 'are')} far less accurate "
                f"than the others (estimated accuracy: {shown}).",
                len(bad),
            )
        )
    alpha = agreement.krippendorff_alpha
    if alpha is not None and alpha < LOW_ALPHA:
        found.append(
            Finding(
                "low_agreement",
                "warning",
                f"Krippendorff's alpha is {alpha:.3f}, below {LOW_ALPHA}: the annotators agree too "
                "little for the labels to be taken as given.",
                1,
            )
        )
    low = consensus.low_quality_items
    if low:
        found.append(
            Finding(
                "uncertain_consensus",
                "info",
                f"{count(low, 'item')} {agree(low, 'has', 'have')} a consensus below "
                f"{consensus.low_quality_threshold:g} probability: review them.",
                low,
            )
        )
    return found
