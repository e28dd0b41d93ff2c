"""Findings: facts about the labels that deserve a look, each with a code, severity and count."""

from __future__ import annotations

from typing import Any

from labelaudit._text import agree, count, fewer_than, pair_arrow
from labelaudit.io.dataset import Dataset
from labelaudit.report.schema import (
    DuplicatesSection,
    Finding,
    ImbalanceSection,
    LabelIssuesSection,
)

# Findings drawn from the scores' detection: none is a finding when the scores are at chance.
FROM_THE_SCORES = ("suspected_label_errors", "confused_pair", "weak_evidence")


def collect_findings(
    dataset: Dataset,
    imbalance: ImbalanceSection,
    duplicates: DuplicatesSection,
    label_issues: LabelIssuesSection | None = None,
) -> list[Finding]:
    """The label-level findings of a scan, most serious first."""
    found: list[Finding] = []
    if label_issues is not None and label_issues.n_suspects:
        n = label_issues.n_suspects
        found.append(
            Finding(
                "suspected_label_errors",
                "warning",
                f"{count(n, 'label')} {agree(n, 'is', 'are')} suspected wrong "
                f"({100 * label_issues.suspect_rate:.2f}% of scored samples; rule "
                f"{label_issues.rule}); estimated label errors: {label_issues.estimated_errors:,}.",
                label_issues.n_suspects,
            )
        )
    if label_issues is not None and label_issues.weak_evidence:
        found.append(
            Finding(
                "weak_evidence",
                "warning",
                "The model's most probable class differs from the given label on most rows, so "
                "its disagreements cannot be told from its own mistakes: the estimated "
                f"{label_issues.estimated_errors:,} label errors (between "
                f"{label_issues.estimated_errors_low or 0:,} and "
                f"{label_issues.estimated_errors_high or 0:,}) and the suspects are weak "
                "evidence; the gate's rules that read them are not computed. A stronger model "
                "(out-of-sample scores) would settle it.",
                label_issues.n_suspects,
            )
        )
    for pair in (label_issues.pairs if label_issues is not None else [])[:5]:
        arrow = pair_arrow(pair.kind)
        found.append(
            Finding(
                "confused_pair",
                "info",
                f"{pair.from_class} {arrow} {pair.to_class}: {count(pair.count, 'sample')} labeled "
                f"{pair.from_class} {agree(pair.count, 'looks', 'look')} like {pair.to_class} "
                f"({100 * pair.share:.1f}%, "
                f"{pair.ratio_to_median:,.0f}x the typical pair; reverse: {pair.reverse_count:,}).",
                pair.count,
            )
        )
    if duplicates.conflicting_ids:
        found.append(
            Finding(
                "conflicting_duplicates",
                "warning",
                f"{count(duplicates.conflicting_ids, 'id')} "
                f"{agree(duplicates.conflicting_ids, 'appears', 'appear')} on several rows with "
                "different labels "
                f"(e.g. {_show(duplicates.example_conflicting_ids)}).",
                duplicates.conflicting_ids,
            )
        )
    if dataset.neighbourhood is not None:
        found += _neighbourhood_findings(dataset.neighbourhood)
    if dataset.null_labels:
        found.append(
            Finding(
                "null_labels",
                "warning",
                f"{count(dataset.null_labels, 'row')} "
                f"{agree(dataset.null_labels, 'has', 'have')} a null or empty label and "
                f"{agree(dataset.null_labels, 'was', 'were')} left out "
                f"(ids {dataset.null_label_examples}).",
                dataset.null_labels,
            )
        )
    if imbalance.zero_support_classes:
        names = imbalance.zero_support_classes
        found.append(
            Finding(
                "zero_support_classes",
                "warning",
                f"{count(len(names), 'class')} {agree(len(names), 'has', 'have')} no sample: "
                f"{_show(names)}.",
                len(names),
            )
        )
    if imbalance.rare_classes:
        names = imbalance.rare_classes
        found.append(
            Finding(
                "rare_classes",
                "info",
                f"{fewer_than(len(names), imbalance.min_support)}: {_show(names)}.",
                len(names),
            )
        )
    if duplicates.duplicate_ids:
        found.append(
            Finding(
                "duplicate_ids",
                "info",
                f"{count(duplicates.duplicate_ids, 'id')} "
                f"{agree(duplicates.duplicate_ids, 'appears', 'appear')} on more than one row "
                f"({count(duplicates.duplicate_rows, 'row')}; "
                f"e.g. {_show(duplicates.example_duplicate_ids)}).",
                duplicates.duplicate_ids,
            )
        )
    return found


def _neighbourhood_findings(found: Any) -> list[Finding]:
    """Near-duplicate sets that leak across a group column or carry conflicting labels, and
    outliers (scan --embeddings)."""
    dup, out, out_list = found.duplicates, found.outliers, []
    for leak in dup.leakage:
        if leak.sets:
            out_list.append(
                Finding(
                    "duplicate_leakage",
                    "warning",
                    f"{count(leak.sets, 'near-duplicate set')} ({count(leak.rows, 'row')}) "
                    f"{agree(leak.sets, 'spans', 'span')} several values of '{leak.column}': "
                    "the same sample on both sides of a split leaks.",
                    leak.sets,
                )
            )
    if dup.conflicting_sets:
        out_list.append(
            Finding(
                "conflicting_near_duplicates",
                "warning",
                f"{count(dup.conflicting_sets, 'near-duplicate set')} "
                f"({count(dup.rows_in_conflicting_sets, 'row')}) "
                f"{agree(dup.conflicting_sets, 'carries', 'carry')} different labels: at most one "
                "label of each is right.",
                dup.conflicting_sets,
            )
        )
    if dup.sets:
        out_list.append(
            Finding(
                "near_duplicates",
                "info",
                f"{count(dup.rows_in_sets, 'row')} {agree(dup.rows_in_sets, 'is', 'are')} in "
                f"{count(dup.sets, 'near-duplicate set')} (largest: {dup.largest_set}).",
                dup.sets,
            )
        )
    if out.flagged:
        out_list.append(
            Finding(
                "outliers",
                "info",
                f"{count(out.flagged, 'row')} ({100 * out.share:.2f}%) "
                f"{agree(out.flagged, 'lies', 'lie')} far from {agree(out.flagged, 'its', 'their')}"
                " nearest neighbours (outlier score above "
                f"{out.fence:.3g}; e.g. ids {_show([o.id for o in out.worst if o.is_outlier])}).",
                out.flagged,
            )
        )
    return out_list


def _show(values: list, limit: int = 5) -> str:
    """The first `limit` values, and how many more (never a bare "..." before a full stop)."""
    text = ", ".join(str(v) for v in values[:limit])
    return text + (f" and {len(values) - limit:,} more" if len(values) > limit else "")
