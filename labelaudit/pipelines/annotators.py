"""`labelaudit annotators`: several labels per item, from several annotators. Reads long-format
annotations (id, annotator, label), finds each item's consensus (Dawid-Skene shrunk toward the
crowd, core/consensus.py; a model's probabilities as each item's prior when given) beside its
majority vote, scores each annotator, and measures the agreement. docs/annotators.md documents
every rule and the evidence for it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from labelaudit._text import agree, count
from labelaudit.config import ScanConfig
from labelaudit.core import annotators as ann
from labelaudit.core import consensus as cons
from labelaudit.errors import InputError, SchemaError
from labelaudit.io.dataset import build_dataset
from labelaudit.io.labels import LabelTable, describe_ids, load_labels
from labelaudit.io.load import ScoreSources, load_score_matrices
from labelaudit.io.predictions import read_class_file
from labelaudit.io.tables import read_table, table_columns
from labelaudit.io.vocabulary import resolve_classes
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
    if config.label_sep is not None:
        raise InputError(
            f"--label-sep: each annotation in '{name}' must be one class (multi-label "
            "annotations are not supported yet)."
        )
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
    if table.null_mask.any():
        n = int(table.null_mask.sum())
        items = describe_ids(table.ids, table.null_mask)
        warnings.append(
            f"{count(n, 'annotation')} of '{name}' {agree(n, 'has', 'have')} no label and "
            f"{agree(n, 'was', 'were')} left out (items {items})."
        )
    fixed = read_class_file(config.classes) if config.classes else None
    matrices = load_score_matrices(preds, config, fixed)
    classes, more = resolve_classes(table, matrices[0] if matrices else None, fixed)
    warnings += more
    encoded = build_dataset(table, None, classes)
    item_ids, item = _codes(encoded.ids)
    who = frame[config.annotator_col].cast(pl.String).filter(pl.Series(~table.null_mask))
    annotator_names, annotator = _codes(who)
    people = ann.Annotations(
        item, annotator, encoded.labels, item_ids.len(), annotator_names.len(), len(classes)
    )
    majority = ann.majority_vote(people)
    models, model_names = [], []
    for number, matrix in enumerate(matrices, start=1):
        model, model_warnings = _model_probabilities(
            item_ids, classes, majority, matrix, config, name
        )
        warnings += model_warnings
        models.append(model)
        model_names.append(f"(model{'' if len(matrices) == 1 else f' {number}'}: {matrix.source})")
    consensus = cons.fit(people, models)
    return _report(
        name, people, models, item_ids, [str(v) for v in annotator_names], model_names, classes,
        majority, consensus, ", ".join(m.source for m in matrices) or None, warnings,
    )  # fmt: skip


def _read(source: str | pl.DataFrame, config: ScanConfig) -> tuple[pl.DataFrame, str]:
    columns = (config.id_col, config.annotator_col, config.label_col)
    if len(set(columns)) < 3:
        raise SchemaError(
            f"--id-col '{config.id_col}', --annotator-col '{config.annotator_col}' and "
            f"--label-col '{config.label_col}' must name three different columns: the item, "
            "who labeled it, and the label."
        )
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
        every = (
            frame.columns
            if isinstance(source, pl.DataFrame)
            else table_columns(source, "annotations", config.input_format)
        )
        raise SchemaError(
            f"The annotations '{name}' have no column {', '.join(repr(c) for c in missing)}. "
            f"Columns found: {', '.join(every[:20])}. Annotations are long-format, one "
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
            f"item {row[0]!r} by {row[1]!r}" for row in conflicting.head(5).select(keys).iter_rows()
        )
        raise InputError(
            f"In '{name}', {count(conflicting.height, 'annotator-item pair')} "
            f"{agree(conflicting.height, 'has', 'have')} several different labels (e.g. "
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
    matrix: Any,
    config: ScanConfig,
    name: str,
) -> tuple[np.ndarray, list[str]]:
    """The model's probabilities of each item, read by the scan's rules (NaN rows for items it
    did not score, under --on-missing drop)."""
    items = LabelTable(
        source=name, ids=item_ids, has_id_column=True, task="multiclass",
        values=pl.Series("label", np.array(classes, dtype=object)[majority], dtype=pl.String),
        null_mask=np.zeros(item_ids.len(), dtype=bool), integer_labels=False,
    )  # fmt: skip
    dataset = build_dataset(items, matrix, classes, on_missing=config.on_missing)
    reading = multiclass_score_mode(dataset, config.scores, config.chunk_rows)
    model = np.full((item_ids.len(), len(classes)), np.nan)
    positions = _positions(item_ids, dataset.ids)
    for probs, rows in probability_chunks(dataset, reading.mode, config.chunk_rows)():
        model[positions[rows]] = probs
    warnings = [w for w in dataset.warnings if not w.startswith("--on-missing drop")]
    missing = int(np.isnan(model[:, 0]).sum())
    if missing:
        warnings.append(
            f"--on-missing drop: {count(missing, 'item')} {agree(missing, 'has', 'have')} no "
            f"scores in '{matrix.source}': the model gives {agree(missing, 'it', 'them')} no "
            "label, and the annotators alone decide."
        )
    return model, [*warnings, *reading.warnings]


def _positions(all_ids: pl.Series, some: pl.Series) -> np.ndarray:
    """Where each of `some` sits in `all_ids`."""
    table = pl.DataFrame({"id": all_ids, "at": np.arange(all_ids.len())})
    return pl.DataFrame({"id": some}).join(table, on="id", how="left")["at"].to_numpy()


def _report(
    name: str,
    people: ann.Annotations,
    models: list[np.ndarray],
    item_ids: pl.Series,
    names: list[str],
    model_names: list[str],
    classes: list[str],
    majority: np.ndarray,
    consensus: cons.Fit,
    predictions: str | None,
    warnings: list[str],
) -> AnnotatorsReport:
    """Agreement from the people's annotations; consensus and quality from the fit (the models
    as each item's prior); the models listed beside the annotators."""
    counts = people.counts()
    per_item = counts.sum(axis=1)
    label = consensus.label
    quality = consensus.quality
    scored = np.zeros(people.n_items, bool)
    for model in models:
        scored |= ~np.isnan(model).any(axis=1)
    measured = cons.annotator_quality(people, consensus, scored)
    known = measured.known
    with_consensus = ann.agreement_with(people, label)
    with_majority = ann.agreement_with(people, majority)
    n_labels = np.bincount(people.annotator, minlength=people.n_annotators)
    flagged = _flag(np.where(known, measured.quality, np.nan), n_labels)
    order = np.lexsort((measured.quality, ~known))  # estimable ones, worst first; then the rest
    annotators = [
        AnnotatorQuality(
            annotator=names[int(j)],
            n_labels=int(n_labels[j]),
            quality=float(measured.quality[j]) if known[j] else None,
            agreement_with_consensus=float(with_consensus[j]),
            agreement_with_majority=float(with_majority[j]),
            flagged=bool(flagged[j]),
            top_confusions=_confusions(consensus.confusion[j], classes) if known[j] else [],
            quality_interval=[float(measured.low[j]), float(measured.high[j])]
            if known[j]
            else None,
            n_checked=int(measured.checked[j]),
        )
        for j in order
    ]
    annotators += [_model_row(model, title, consensus, majority)
                   for model, title in zip(models, model_names, strict=True)]  # fmt: skip
    if not known.all():
        n = int((~known).sum())
        warnings.append(
            f"{count(n, 'annotator')} {agree(n, 'has', 'have')} fewer than "
            f"{cons.MIN_CHECKED} labels on items that someone else (or a model) labeled too, so "
            f"{agree(n, 'its', 'their')} quality is not estimated (shown as n/a): quality comes "
            "from agreeing or disagreeing with other evidence on the same items."
        )
    alpha = ann.krippendorff_alpha(people)
    pairwise = ann.pairwise_agreement(people)
    agreement = AgreementSection(
        krippendorff_alpha=None if np.isnan(alpha) else alpha,
        fleiss_kappa=ann.fleiss_kappa(people),
        pairwise_agreement=None if np.isnan(pairwise) else pairwise,
        majority_agreement=float(np.mean(people.label == majority[people.item])),
    )
    per_class = np.bincount(label, minlength=len(classes)).tolist()
    section = ConsensusSection(
        method="pooled_dawid_skene_with_model" if predictions else "pooled_dawid_skene",
        rounds=consensus.rounds,
        converged=consensus.converged,
        mean_quality=float(quality.mean()),
        low_quality_items=int((quality < LOW_QUALITY).sum()),
        low_quality_threshold=LOW_QUALITY,
        changed_from_majority=int((label != majority).sum()),
        per_class=dict(zip(classes, per_class, strict=True)),
        model_weights={
            title: [round(float(w), 4) for w in weights]
            for title, weights in zip(model_names, consensus.weights, strict=True)
        }
        or None,
    )
    info = AnnotationsInfo(
        source=name,
        predictions=predictions,
        n_annotations=int(people.item.size),
        n_items=people.n_items,
        n_annotators=people.n_annotators,
        n_classes=len(classes),
        classes=list(classes),
        annotations_per_item={
            "min": float(per_item.min()),
            "mean": float(per_item.mean()),
            "max": float(per_item.max()),
        },
        items_with_one_annotation=int((per_item == 1).sum()),
    )
    text = pl.Series(classes, dtype=pl.String)
    table = pl.DataFrame(
        {
            "id": item_ids,
            "consensus_label": text.gather(label),
            "consensus_quality": quality,
            "n_annotations": per_item.astype(np.int64),
            "agreement": np.divide(
                counts[np.arange(people.n_items), label],
                per_item,
                out=np.full(people.n_items, np.nan),
                where=per_item > 0,
            ),
            "majority_label": text.gather(majority),
        }
    )
    if not consensus.converged:
        warnings.append(
            f"The consensus did not settle in {consensus.rounds} rounds (its likelihood still "
            f"changed by more than {cons.TOLERANCE:g} of itself a round); the figures are those "
            "of the last round."
        )
    return AnnotatorsReport(
        dataset=info,
        agreement=agreement,
        consensus=section,
        annotators=annotators,
        findings=_findings(agreement, section, annotators)
        + _unchecked(per_item, scored, consensus.prior.size),
        warnings=warnings,
        consensus_table=table,
        confusions={
            "classes": list(classes),
            "annotators": names,
            "matrices": consensus.confusion.round(6).tolist(),
        },
    )


def _model_row(
    model: np.ndarray, title: str, consensus: cons.Fit, majority: np.ndarray
) -> AnnotatorQuality:
    """A model, listed beside the annotators: its top class on the items it scored, checked as a
    person's labels are (the consensus probability of the class it gives)."""
    scored = np.flatnonzero(~np.isnan(model).any(axis=1))
    top = model[scored].argmax(axis=1)
    right = consensus.posterior[scored, top]
    known = scored.size >= cons.MIN_CHECKED
    value = float(right.mean()) if scored.size else float("nan")
    low, high = cons.wilson(np.array([value]), np.array([float(scored.size)]))
    return AnnotatorQuality(
        annotator=title,
        n_labels=int(scored.size),
        quality=value if known else None,
        agreement_with_consensus=float(np.mean(top == consensus.label[scored])),
        agreement_with_majority=float(np.mean(top == majority[scored])),
        flagged=False,
        top_confusions=[],
        quality_interval=[float(low[0]), float(high[0])] if known else None,
        n_checked=int(scored.size),
    )


def _flag(quality: np.ndarray, n_labels: np.ndarray) -> np.ndarray:
    """Annotators with enough labels whose quality is more than FLAG_MADS scaled MADs below the
    median of those annotators (a robust z-score: one very bad annotator cannot hide); NaN
    quality (not estimable) is never flagged."""
    enough = (n_labels >= MIN_LABELS_TO_FLAG) & ~np.isnan(quality)
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


def _unchecked(per_item: np.ndarray, scored: np.ndarray, k: int) -> list[Finding]:
    """Items with one annotation and no model: nothing checks their label, so their consensus is
    that label, as sure as its annotator is accurate (estimated elsewhere, or the crowd's prior
    accuracy when nothing is checkable). Said plainly, as a warning."""
    n = int(((per_item == 1) & ~scored).sum())
    if not n:
        return []
    return [
        Finding(
            "unchecked_single_labels",
            "warning",
            f"{count(n, 'item')} {agree(n, 'has', 'have')} a single annotation and no model: "
            f"{agree(n, 'its', 'their')} consensus is that label, unchecked (its quality is "
            "what is known of the annotator). Add a second annotator or --preds to check "
            f"{agree(n, 'it', 'them')}.",
            n,
        )
    ]


def _findings(
    agreement: AgreementSection, consensus: ConsensusSection, annotators: list[AnnotatorQuality]
) -> list[Finding]:
    found = []
    bad = [q for q in annotators if q.flagged and q.quality is not None]
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
                f"{consensus.low_quality_threshold:g} probability: review "
                f"{agree(low, 'it', 'them')}.",
                low,
            )
        )
    return found
