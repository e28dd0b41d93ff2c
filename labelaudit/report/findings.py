"""Findings: facts about the labels that deserve a look, each with a code, severity and count."""

from __future__ import annotations

from labelaudit.io.dataset import Dataset
from labelaudit.report.schema import (
    DuplicatesSection,
    Finding,
    ImbalanceSection,
    LabelIssuesSection,
)


def collect_findings(
    dataset: Dataset,
    imbalance: ImbalanceSection,
    duplicates: DuplicatesSection,
    label_issues: LabelIssuesSection | None = None,
) -> list[Finding]:
    """The label-level findings of a scan, most serious first."""
    found: list[Finding] = []
    if label_issues is not None and label_issues.n_suspects:
        found.append(
            Finding(
                "suspected_label_errors",
                "warning",
                f"{label_issues.n_suspects} labels are suspected wrong "
                f"({100 * label_issues.suspect_rate:.2f}% of scored samples; rule "
                f"{label_issues.rule}); estimated label errors: {label_issues.estimated_errors}.",
                label_issues.n_suspects,
            )
        )
    for pair in (label_issues.pairs if label_issues is not None else [])[:5]:
        arrow = "->" if pair.kind == "asymmetric" else "<->"
        found.append(
            Finding(
                "confused_pair",
                "info",
                f"{pair.from_class} {arrow} {pair.to_class}: {pair.count} samples labeled "
                f"{pair.from_class} look like {pair.to_class} ({100 * pair.share:.1f}%, "
                f"{pair.ratio_to_median:.0f}x the typical pair; reverse: {pair.reverse_count}).",
                pair.count,
            )
        )
    if duplicates.conflicting_ids:
        found.append(
            Finding(
                "conflicting_duplicates",
                "warning",
                f"{duplicates.conflicting_ids} ids appear on several rows with different labels "
                f"(e.g. {_show(duplicates.example_conflicting_ids)}).",
                duplicates.conflicting_ids,
            )
        )
    if dataset.null_labels:
        found.append(
            Finding(
                "null_labels",
                "warning",
                f"{dataset.null_labels} rows have a null or empty label and were left out "
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
                f"{len(names)} classes have no sample: {_show(names)}.",
                len(names),
            )
        )
    if imbalance.rare_classes:
        names = imbalance.rare_classes
        found.append(
            Finding(
                "rare_classes",
                "info",
                f"{len(names)} classes have fewer than {imbalance.min_support} samples: "
                f"{_show(names)}.",
                len(names),
            )
        )
    if duplicates.duplicate_ids:
        found.append(
            Finding(
                "duplicate_ids",
                "info",
                f"{duplicates.duplicate_ids} ids appear on more than one row "
                f"({duplicates.duplicate_rows} rows; "
                f"e.g. {_show(duplicates.example_duplicate_ids)}).",
                duplicates.duplicate_ids,
            )
        )
    return found


def _show(values: list, limit: int = 5) -> str:
    text = ", ".join(str(v) for v in values[:limit])
    return text + (" ..." if len(values) > limit else "")
