"""Markdown reports, for pull requests and CI step summaries: scan, diff, gate and thresholds."""

from __future__ import annotations

from typing import Any

from labelaudit._text import count, human_lines
from labelaudit.report import _sections as sections
from labelaudit.report._format import (
    MAX_MATRIX_CLASSES,
    md_code,
    md_list,
    md_prose,
    md_prose_list,
    md_table,
    md_text,
    num,
    pct,
)
from labelaudit.report.ci import STATUS_MARK, shown_value


def render_markdown(data: dict[str, Any]) -> str:
    ds = data["dataset"]
    lines = [
        f"# labelaudit scan: {md_code(ds['source'])}",
        "",
        f"{count(ds['n_samples'], 'sample')}, {count(ds['n_classes'], 'class')}, "
        f"{md_text(ds['task'])}"
        + (f"; predictions {md_code(ds['predictions'])}" if ds["predictions"] else "")
        + ".",
        "",
        "## Support",
        "",
    ]
    shown, note = sections.shown_support(data)
    if note:
        lines += [md_text(f"({note})"), ""]
    lines += md_table(
        ["class", "count", "share"],
        [[c["class"], f"{c['count']:,}", pct(c["share"])] for c in shown],
        align="r",
    )
    lines += ["", *md_list(sections.support_summary(data))]
    metrics = data["metrics"]
    if metrics:
        lines += ["", f"## Metrics ({count(metrics['n_scored'], 'sample')} scored)", ""]
        _, note = sections.shown_metric_classes(metrics)
        if note:
            lines += [md_text(f"({note})"), ""]
        lines += md_table(
            ["class", "precision", "recall", "f1", "support"],
            [list(row) for row in sections.metric_rows(metrics)],
            align="r",
        )
        lines += ["", *md_list([f"{k}: {v}" for k, v in sections.scalar_metrics(metrics)])]
        if (metrics.get("confusion_matrix") or {}).get("top_pairs") is not None:
            cells = sections.confused_cells(metrics)
            lines += ["", "### Most confused pairs (given -> predicted)", ""]
            if cells.cells:
                lines += md_table(
                    ["given", "predicted", "count", "share of given"],
                    [[a, b, f"{n:,}", f"{share:.1%}"] for a, b, n, share in cells.cells],
                    align="r",
                )
            lines += [*([""] if cells.cells else []), *(md_text(f"({n})") for n in cells.notes())]
        elif (
            "confusion_matrix" in metrics
            and len(metrics["confusion_matrix"]["classes"]) <= MAX_MATRIX_CLASSES
        ):
            cm = metrics["confusion_matrix"]
            lines += ["", "### Confusion matrix (rows: given, columns: predicted)", ""]
            lines += md_table(
                ["given \\ predicted", *cm["classes"]],
                [
                    [name, *(f"{v:,}" for v in row)]
                    for name, row in zip(cm["classes"], cm["counts"], strict=True)
                ],
                align="r",
            )
    if data.get("models"):
        lines += ["", "### Models (combined)", "", *md_list(sections.models_lines(data["models"]))]
    issues = data.get("label_issues")
    if issues:
        lines += ["", "## Suspected label errors", "", *md_list(sections.issues_summary(issues))]
        if issues["top_suspects"]:
            lines += ["", *md_table(sections.suspect_header(issues), sections.suspect_rows(issues))]
        if issues["pairs"]:
            lines += ["", "### Confused class pairs", "", *md_list(sections.pair_lines(issues))]
        if health := sections.health_lines(issues):
            lines += ["", "### Least healthy classes", "", *md_list(health)]
    for column, groups in (data.get("groups") or {}).items():
        rows = sections.group_rows(groups)
        lines += ["", f"## By {md_text(column)}", ""]
        lines += md_table(sections.GROUP_HEADER, rows)
        if len(groups) > len(rows):
            lines += ["", md_text(f"({len(groups) - len(rows):,} more groups in --format json)")]
    if data.get("neighbours"):
        lines += ["", "## Embeddings", "", *md_list(sections.neighbour_summary(data))]
        sets = sections.duplicate_set_lines(data)
        if sets:
            lines += ["", "### Near-duplicate sets", "", *md_list(sets)]
        lines += ["", "### Most outlying rows", "", *md_list(sections.outlier_lines(data))]
    advice = sections.advice_lines(data)
    if advice:
        lines += ["", "## Recommendations", "", *md_prose_list(advice)]
    lines += _notes_markdown(data)
    return human_lines(lines)


def _notes_markdown(data: dict[str, Any]) -> list[str]:
    """The findings and warnings sections (scan, annotators)."""
    lines: list[str] = []
    if data["findings"]:
        lines += ["", "## Findings", ""]
        lines += [
            f"- **{md_text(f['severity'])}** {md_prose(f['message'])}" for f in data["findings"]
        ]
    if data["warnings"]:
        lines += ["", "## Warnings", "", *md_prose_list(data["warnings"])]
    return lines


def render_diff_markdown(data: dict[str, Any]) -> str:
    ds = data["dataset"]
    lines = [f"# labelaudit diff: {md_code(ds['old'])} -> {md_code(ds['new'])}", ""]
    lines += md_list(sections.diff_summary(data))
    lines += [
        "",
        "## Support",
        "",
        *md_table(sections.DIFF_SUPPORT_HEADER, sections.diff_support_rows(data), "r"),
    ]
    _, note = sections.shown_diff_support(data)
    if note:
        lines += ["", md_text(f"({note})")]
    for title, body in (
        ("Top relabels", sections.relabel_lines(data)),
        ("Tags added / removed", sections.tag_lines(data)),
        ("Likely regressions", sections.regression_lines(data)),
    ):
        if body:
            lines += ["", f"## {title}", "", *md_list(body)]
    if data["warnings"]:
        lines += ["", "## Warnings", "", *md_prose_list(data["warnings"])]
    return human_lines(lines)


def render_gate_markdown(data: dict[str, Any]) -> str:
    s = data["summary"]
    icon = "✅" if s["verdict"] == "pass" else "❌"
    lines = [
        f"## {icon} labelaudit gate: {s['verdict'].upper()}",
        "",
        f"{s['passed']} passed, {s['failed']} failed, {s['errors']} uncomputable, "
        f"{s['skipped']} skipped (failing on {md_text(s['fail_on'])}).",
        "",
    ]
    rows = [
        [
            STATUS_MARK[f["status"]],
            f["rule"],
            f["severity"],
            shown_value(f["value"]),
            shown_value(f["limit"]),
        ]
        for f in data["findings"]
    ]
    lines += md_table(["status", "rule", "severity", "measured", "limit"], rows, align="lllrr")
    if data["warnings"]:
        lines += ["", *md_prose_list(data["warnings"])]
    return human_lines(lines)


def render_thresholds_markdown(data: dict[str, Any]) -> str:
    """Per-class thresholds for a pull request: the honest gain and the table."""
    ev = data["evaluation"]
    lines = [
        f"# labelaudit thresholds ({md_text(data['metric'])}, {md_text(data['task'])})",
        "",
        f"Macro F1 **{num(ev['before'])} -> {num(ev['after'])}** on "
        f"{count(ev['n_evaluation'], 'row')} that did not choose the thresholds "
        f"({md_text(ev['method'])}; tuned on {count(ev['n_tuning'], 'row')}).",
        "",
    ]
    shown, note = sections.shown_thresholds(data)
    lines += md_table(
        ["class", "threshold", "precision before", "precision after", "recall before",
         "recall after"],
        [
            [c["class"], num(c["threshold"], 3), num(c["precision_before"], 3),
             num(c["precision_after"], 3), num(c["recall_before"], 3), num(c["recall_after"], 3)]
            for c in shown
        ],
        align="r",
    )  # fmt: skip
    if note:
        lines += ["", md_text(f"({note})")]
    if data["warnings"]:
        lines += ["", "## Warnings", "", *md_prose_list(list(data["warnings"]))]
    return human_lines(lines)


def render_annotators_markdown(data: dict[str, Any]) -> str:
    lines = [f"# labelaudit annotators: {md_code(data['dataset']['source'])}", ""]
    lines += md_list(sections.annotators_summary(data))
    lines += ["", "## Annotators (worst first)", ""]
    lines += md_table(sections.ANNOTATOR_HEADER, sections.annotator_rows(data))
    lines += _notes_markdown(data)
    return human_lines(lines)
