"""`diff()`: compare two versions of a labels table (and judge relabels with a model's scores)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from labelaudit._text import agree, count
from labelaudit.config import ScanConfig
from labelaudit.core import diff as diff_stats
from labelaudit.core.support import class_counts, multilabel_class_counts
from labelaudit.errors import InputError
from labelaudit.io.dataset import Dataset, build_dataset
from labelaudit.io.labels import LabelTable, describe_ids
from labelaudit.io.load import ScoreSources, Source, load_label_table, load_score_matrices
from labelaudit.io.predictions import read_class_file
from labelaudit.io.vocabulary import align_boolean_names, resolve_classes
from labelaudit.pipelines.models import scored_dataset
from labelaudit.pipelines.passes import multiclass_score_mode, probability_chunks
from labelaudit.report.schema import (
    DiffDatasets,
    DiffReport,
    DiffSummary,
    RelabelPair,
    RelabelsVsModel,
    RelabelVerdict,
    ShareChange,
    ShiftSection,
    SupportChange,
    TagChange,
    TransitionCount,
)

EXAMPLES = 5
TOP_PAIRS = 10


def run_diff(old: Source, new: Source, preds: ScoreSources, config: ScanConfig) -> DiffReport:
    """Compare `old` and `new` labels joined on id; `preds` scores NEW's rows (optional); with
    --engine ray, the passes over the scores run as Ray tasks (docs/scale.md)."""
    with contextlib.ExitStack() as session:  # Ray's, when it starts (after the inputs are read)
        return _run_diff(old, new, preds, config, session)


def _run_diff(
    old: Source,
    new: Source,
    preds: ScoreSources,
    config: ScanConfig,
    session: contextlib.ExitStack,
) -> DiffReport:
    old_table = load_label_table(old, config)
    new_table = load_label_table(new, config)
    if old_table.has_id_column != new_table.has_id_column:
        with_ids, without = (
            (old_table, new_table) if old_table.has_id_column else (new_table, old_table)
        )
        raise InputError(
            f"'{with_ids.source}' has an id column ('{config.id_col}') but '{without.source}' "
            "does not, so rows cannot be matched: a row number is not an id. Give both versions "
            "the id column (or neither, when both list the same rows in the same order)."
        )
    if old_table.task != new_table.task:
        raise InputError(
            f"'{old_table.source}' is {old_table.task} but '{new_table.source}' is "
            f"{new_table.task}; both versions must be read the same way (check --label-sep)."
        )
    fixed = read_class_file(config.classes) if config.classes else None
    on_ray = config.engine == "ray"  # the tasks read the scores; the driver their ids only
    matrices = load_score_matrices(
        preds, replace(config, stream_above_mib=0) if on_ray else config, fixed
    )
    scores = matrices[0] if matrices else None
    old_table, new_table = (align_boolean_names(t, scores) for t in (old_table, new_table))
    classes, warnings = _vocabulary(old_table, new_table, scores, fixed)
    old_ds = build_dataset(old_table, None, classes)
    new_ds = build_dataset(new_table, None, classes)
    # Scores judge the relabels only: rows without scores (--on-missing drop) stay in the diff.
    scored = scored_dataset(new_table, matrices, classes, config, []) if matrices else None
    if scored is not None and on_ray:
        from labelaudit.engines.ray_engine import RayScan, check_supported, ray_session

        check_supported(scored)
        session.enter_context(ray_session(config.ray_address))
        scored = replace(scored, engine=RayScan(scored, config.chunk_rows))
    warnings += list(scored.warnings) if scored is not None else []
    for ds in (old_ds, new_ds):
        _require_unique_ids(ds)
        if ds.null_labels:
            warnings.append(
                f"{count(ds.null_labels, 'row')} of '{ds.source}' "
                f"{agree(ds.null_labels, 'has', 'have')} no label and "
                f"{agree(ds.null_labels, 'was', 'were')} left out "
                f"(ids {ds.null_label_examples})."
            )
    matched_old, matched_new = _match(old_ds, new_ds)
    versions = _Versions(old_ds, new_ds, scored, matched_old, matched_new)
    if old_ds.multi_label:
        return _multilabel_diff(versions, config, warnings)
    return _multiclass_diff(versions, config, warnings)


def _vocabulary(
    old: LabelTable, new: LabelTable, scores: Any, fixed: list[str] | None
) -> tuple[list[str], list[str]]:
    """NEW's vocabulary (with its scores' columns), then classes only OLD has, sorted."""
    classes, warnings = resolve_classes(new, scores, fixed)
    if fixed is not None:
        resolve_classes(old, None, fixed)  # errors on an OLD label outside --classes
        return classes, warnings
    old_only, _ = resolve_classes(old, None, None)
    return classes + [c for c in old_only if c not in classes], warnings


def _require_unique_ids(ds: Dataset) -> None:
    repeated = ds.ids.is_duplicated()
    if repeated.any():
        ids = ds.ids.filter(repeated).unique(maintain_order=True)
        raise InputError(
            f"labelaudit diff joins the versions on id, but '{ds.source}' repeats "
            f"{count(ids.len(), 'id')} on {count(int(repeated.sum()), 'row')} (e.g. "
            f"{describe_ids(ids)}). "
            "Make the ids unique (`labelaudit scan` reports the duplicates)."
        )


def _match(old: Dataset, new: Dataset) -> tuple[np.ndarray, np.ndarray]:
    old_ids, new_ids = old.ids, new.ids
    if old_ids.dtype != new_ids.dtype:
        old_ids, new_ids = old_ids.cast(pl.String), new_ids.cast(pl.String)
    if old_ids.len() == new_ids.len() and old_ids.equals(new_ids):
        rows = np.arange(old_ids.len())
        return rows, rows
    joined = pl.DataFrame({"id": old_ids, "old_row": np.arange(old_ids.len())}).join(
        pl.DataFrame({"id": new_ids, "new_row": np.arange(new_ids.len())}), on="id", how="inner"
    )
    return joined["old_row"].to_numpy(), joined["new_row"].to_numpy()


def _summary(n_old: int, n_new: int, unchanged: int, relabeled: int, added: int, removed: int):
    matched = unchanged + relabeled
    return DiffSummary(
        n_old=n_old,
        n_new=n_new,
        unchanged=unchanged,
        relabeled=relabeled,
        added=added,
        removed=removed,
        relabel_rate=relabeled / matched if matched else 0.0,
        removed_rate=removed / n_old if n_old else 0.0,
        added_rate=added / n_old if n_old else 0.0,
    )


def _support_and_shift(
    classes: list[str],
    old_counts: np.ndarray,
    new_counts: np.ndarray,
    min_count: int,
    samples: tuple[int, int] | None = None,
) -> tuple[list[SupportChange], list[str], list[str], ShiftSection]:
    """Support before and after, and the shift of the class distribution. A class's share is of
    the samples, as in `scan` (`samples`, multi-label: shares then sum to the cardinality); the
    shift statistics compare the distributions (counts normalized to sum to 1)."""
    old_total, new_total = max(old_counts.sum(), 1), max(new_counts.sum(), 1)
    old_samples, new_samples = (max(n, 1) for n in samples) if samples else (old_total, new_total)
    support = [
        SupportChange(
            name,
            int(old_counts[c]),
            int(new_counts[c]),
            int(new_counts[c] - old_counts[c]),
            float(old_counts[c] / old_samples),
            float(new_counts[c] / new_samples),
        )
        for c, name in enumerate(classes)
    ]
    new_classes = [classes[c] for c in np.flatnonzero((old_counts == 0) & (new_counts > 0))]
    vanished = [classes[c] for c in np.flatnonzero((old_counts > 0) & (new_counts == 0))]
    shift = diff_stats.distribution_shift(old_counts, new_counts)
    changes = diff_stats.share_changes(old_counts, new_counts, min_count)
    share_delta = np.abs(old_counts / old_total - new_counts / new_total)
    section = ShiftSection(
        tvd=shift.tvd,
        js=shift.js,
        psi=shift.psi,
        chi2_p=shift.chi2_p,
        min_count=min_count,
        share_changes=[ShareChange(classes[c], p, q, r) for c, p, q, r in changes],
        max_share_change=float(share_delta.max()) if share_delta.size else 0.0,
    )
    return support, new_classes, vanished, section


@dataclass(frozen=True)
class _Versions:
    """The two versions, NEW joined to its scores (if any), and the rows present in both."""

    old: Dataset
    new: Dataset
    scored: Dataset | None
    matched_old: np.ndarray
    matched_new: np.ndarray


def _multiclass_diff(versions: _Versions, config: ScanConfig, warnings: list[str]) -> DiffReport:
    old, new, scored = versions.old, versions.new, versions.scored
    matched_old, matched_new = versions.matched_old, versions.matched_new
    classes = old.classes
    k = len(classes)
    changes = diff_stats.label_changes(old.labels, new.labels, matched_old, matched_new, k)
    names: list[str | None] = [*classes, None]
    cells = changes.transitions
    transitions = [
        TransitionCount(names[a], names[b], int(n))
        for a, b, n in zip(cells.rows.tolist(), cells.columns.tolist(), cells.values.tolist(),
                           strict=True)
    ]  # fmt: skip
    old_counts = class_counts(old.labels, k)
    new_counts = class_counts(new.labels, k)
    support, new_classes, vanished, shift = _support_and_shift(
        classes, old_counts, new_counts, config.min_support
    )
    relabeled_new = matched_new[old.labels[matched_old] != new.labels[matched_new]]
    old_label_of_new = np.full(new.n_samples, -1, dtype=np.int64)
    old_label_of_new[matched_new] = old.labels[matched_old]
    return DiffReport(
        dataset=DiffDatasets(
            old.source,
            new.source,
            scored.scores.source if scored is not None else None,
            old.task,
            list(classes),
        ),
        summary=_summary(
            old.n_samples,
            new.n_samples,
            changes.unchanged,
            changes.relabeled,
            changes.added,
            changes.removed,
        ),
        transitions=transitions,
        top_relabels=_top_pairs(new, relabeled_new, old_label_of_new),
        support=support,
        new_classes=new_classes,
        vanished_classes=vanished,
        shift=shift,
        relabels_vs_model=_judge_relabels(
            new, scored, relabeled_new, old_label_of_new, config, warnings
        )
        if scored is not None
        else None,
        tag_changes=None,
        config=config.to_dict(),
        warnings=warnings,
    )


def _top_pairs(new: Dataset, rows: np.ndarray, old_label_of_new: np.ndarray) -> list[RelabelPair]:
    if rows.size == 0:
        return []
    k = new.n_classes
    pair = old_label_of_new[rows] * k + new.labels[rows]
    order = np.argsort(pair, kind="stable")
    sorted_pair = pair[order]
    starts = np.flatnonzero(np.r_[True, sorted_pair[1:] != sorted_pair[:-1]])
    ends = np.r_[starts[1:], sorted_pair.size]
    counts = ends - starts
    top = np.lexsort((sorted_pair[starts], -counts))[:TOP_PAIRS]
    return [
        RelabelPair(
            new.classes[int(sorted_pair[starts[t]] // k)],
            new.classes[int(sorted_pair[starts[t]] % k)],
            int(counts[t]),
            new.ids.gather(rows[order[starts[t] : min(ends[t], starts[t] + EXAMPLES)]]).to_list(),
        )
        for t in top
    ]


def _judge_relabels(
    new: Dataset,
    scored: Dataset,
    relabeled: np.ndarray,
    old_label_of_new: np.ndarray,
    config: ScanConfig,
    warnings: list[str],
) -> RelabelsVsModel:
    """A relabel agrees with the model when the new label is more probable than the old one,
    disagrees when it is less probable, and is tied when both are equally probable (no
    evidence: with top-k lists, neither label in the row's list); relabeled rows without scores
    are not judged. What reading the scores changed is added to
    `warnings`."""
    if scored.engine is not None:  # the reading decided on the cluster, by the same rules
        reading = scored.engine.evaluate_multiclass(config.scores, False, False, None)
        warnings += reading.warnings
        mode = reading.score_mode
        chunks = scored.engine.probability_chunks(mode)
    else:
        score_reading = multiclass_score_mode(scored, config.scores, config.chunk_rows)
        warnings += score_reading.warnings
        mode = score_reading.mode
        chunks = probability_chunks(scored, mode, config.chunk_rows)
    row_of_scored = _rows_of(scored, new)  # scored row -> row of NEW
    has_scores = np.zeros(new.n_samples, dtype=bool)
    has_scores[row_of_scored] = True
    relabeled = relabeled[has_scores[relabeled]]
    needed = np.zeros(scored.n_samples, dtype=bool)
    is_relabeled = np.zeros(new.n_samples, dtype=bool)
    is_relabeled[relabeled] = True
    needed[is_relabeled[row_of_scored]] = True
    p_old = np.zeros(new.n_samples)
    p_new = np.zeros(new.n_samples)
    for block, rows in chunks(needed):
        keep = needed[rows]
        block, target = block[keep], row_of_scored[rows[keep]]
        at = np.arange(target.size)
        p_old[target] = block[at, old_label_of_new[target]]
        p_new[target] = block[at, new.labels[target]]
    gain = p_new[relabeled] - p_old[relabeled]
    agree = int((gain > 0).sum())

    def verdicts(order: np.ndarray) -> list[RelabelVerdict]:
        return [
            RelabelVerdict(
                new.ids[int(r)],
                new.classes[int(old_label_of_new[r])],
                new.classes[int(new.labels[r])],
                float(p_old[r]),
                float(p_new[r]),
            )
            for r in relabeled[order]
        ]

    order = np.argsort(gain, kind="stable")
    worst = order[: min(EXAMPLES, int((gain < 0).sum()))]  # a tie is no evidence either way
    best = order[::-1][: min(EXAMPLES, agree)]
    return RelabelsVsModel(
        score_mode=mode,
        checked=int(relabeled.size),
        agree=agree,
        disagree=int((gain < 0).sum()),
        agree_rate=agree / relabeled.size if relabeled.size else 0.0,
        worst_regressions=verdicts(worst),
        best_fixes=verdicts(best),
        tied=int((gain == 0).sum()),
    )


def _rows_of(scored: Dataset, new: Dataset) -> np.ndarray:
    """For each row of `scored` (NEW joined to its scores), its row in NEW."""
    if scored.ids.len() == new.ids.len() and scored.ids.equals(new.ids):
        return np.arange(new.n_samples)
    position = pl.DataFrame({"id": new.ids, "row": np.arange(new.n_samples)})
    joined = pl.DataFrame({"id": scored.ids}).join(
        position, on="id", how="left", maintain_order="left"
    )
    return joined["row"].to_numpy()


def _multilabel_diff(versions: _Versions, config: ScanConfig, warnings: list[str]) -> DiffReport:
    old, new, scored = versions.old, versions.new, versions.scored
    matched_old, matched_new = versions.matched_old, versions.matched_new
    old_y = old.indicators[matched_old].astype(bool)
    new_y = new.indicators[matched_new].astype(bool)
    changed = (old_y != new_y).any(axis=1)
    added_tags = (new_y & ~old_y).sum(axis=0)
    removed_tags = (old_y & ~new_y).sum(axis=0)
    old_counts = multilabel_class_counts(old.indicators)
    new_counts = multilabel_class_counts(new.indicators)
    support, new_classes, vanished, shift = _support_and_shift(
        old.classes, old_counts, new_counts, config.min_support, (old.n_samples, new.n_samples)
    )
    relabeled = int(changed.sum())
    if scored is not None:
        warnings.append("--preds is not used by diff for multi-label data yet.")
    return DiffReport(
        dataset=DiffDatasets(old.source, new.source, None, old.task, list(old.classes)),
        summary=_summary(
            old.n_samples,
            new.n_samples,
            int(matched_old.size - relabeled),
            relabeled,
            int(new.n_samples - matched_new.size),
            int(old.n_samples - matched_old.size),
        ),
        transitions=[],
        top_relabels=[],
        support=support,
        new_classes=new_classes,
        vanished_classes=vanished,
        shift=shift,
        relabels_vs_model=None,
        tag_changes=[
            TagChange(name, int(added_tags[c]), int(removed_tags[c]))
            for c, name in enumerate(old.classes)
        ],
        config=config.to_dict(),
        warnings=warnings,
    )
