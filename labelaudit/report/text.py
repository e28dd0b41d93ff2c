"""Plain-text reports for people: scan, diff, gate and thresholds."""

from __future__ import annotations

from typing import Any

from labelaudit._text import count, human_lines
from labelaudit.report import _sections as sections
from labelaudit.report._format import MAX_MATRIX_CLASSES, names_list, num, pct
from labelaudit.report.ci import STATUS_MARK, shown_value, summary_line


def render_text(data: dict[str, Any]) -> str:
    shown, note = sections.shown_support(data)
    lines = [*sections.headline(data), "", "Support" + (f" ({note})" if note else "")]
    width = max(len("class"), *(len(c["class"]) for c in data["support"]["per_class"]))
    lines.append(f"  {'class':<{width}}  {'count':>10}  {'share':>7}")
    for c in shown:
        lines.append(f"  {c['class']:<{width}}  {c['count']:>10,}  {pct(c['share']):>7}")
    lines += ["", *(f"  {line}" for line in sections.support_summary(data))]
    metrics = data["metrics"]
    if metrics:
        _, note = sections.shown_metric_classes(metrics)
        lines += ["", f"Metrics ({count(metrics['n_scored'], 'sample')} scored)"]
        if note:
            lines.append(f"  ({note})")
        rows = sections.metric_rows(metrics)
        name_width = max(width, len("weighted avg"))
        lines.append(
            f"  {'':<{name_width}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'support':>10}"
        )
        for i, row in enumerate(rows):
            if i == len(rows) - 3:
                lines.append("")
            lines.append(
                f"  {row[0]:<{name_width}}  {row[1]:>9}  {row[2]:>9}  {row[3]:>9}  {row[4]:>10}"
            )
        if "cp" in metrics:
            lines += [
                "",
                "  average precision per class: "
                + ", ".join(
                    f"{c['class']} {num(c['average_precision'], 3)}"
                    for c in sections.shown_metric_classes(metrics)[0]
                ),
            ]
        lines.append("")
        label_width = max(len(k) for k, _ in sections.scalar_metrics(metrics))
        lines += [f"  {k:<{label_width}}  {v}" for k, v in sections.scalar_metrics(metrics)]
        if "confusion_matrix" in metrics:
            lines += ["", *_confusion_text(metrics)]
    if data.get("models"):
        lines += ["", "Models (combined: the metrics above are the combination's)"]
        lines += [f"  {line}" for line in sections.models_lines(data["models"])]
    if data.get("label_issues"):
        lines += _issues_text(data["label_issues"])
    for column, groups in (data.get("groups") or {}).items():
        lines += [
            "",
            f"By {column} ({len(groups):,} groups)",
            *_table_text(sections.GROUP_HEADER, sections.group_rows(groups)),
        ]
    if data.get("neighbours"):
        lines += ["", "Embeddings", *(f"  {x}" for x in sections.neighbour_summary(data))]
        sets = sections.duplicate_set_lines(data)
        if sets:
            lines += ["", "  Near-duplicate sets", *(f"    {x}" for x in sets)]
        lines += ["", "  Most outlying rows", *(f"    {x}" for x in sections.outlier_lines(data))]
    advice = sections.advice_lines(data)
    if advice:
        lines += ["", "Recommendations", *(f"  {x}" for x in advice)]
    lines += _notes_text(data)
    return human_lines(lines)


def _confusion_text(metrics: dict[str, Any]) -> list[str]:
    confusion = metrics["confusion_matrix"]
    classes = confusion["classes"]
    if confusion["counts"] is None:
        cells = sections.confused_cells(metrics)
        lines = [f"Most confused pairs ({len(classes):,} classes; given -> predicted)"]
        return lines + [f"  {line}" for line in sections.confused_lines(cells)]
    if len(classes) > MAX_MATRIX_CLASSES:
        return [
            f"Confusion matrix: {len(classes):,} classes, too many to print; the full matrix is "
            "in the JSON report (--format json)."
        ]
    counts = confusion["counts"]
    # Columns as wide as the numbers (at least 6): long class names are cut in the header only.
    cell = max(6, *(len(f"{v:,}") for row in counts for v in row))
    short = [c[:cell] for c in classes]
    width = max(len(c) for c in classes)
    lines = ["Confusion matrix (rows: given label, columns: predicted class)"]
    lines.append(f"  {'':<{width}}  " + "  ".join(f"{c:>{cell}}" for c in short))
    for name, row in zip(classes, counts, strict=True):
        lines.append(f"  {name:<{width}}  " + "  ".join(f"{v:>{cell},}" for v in row))
    return lines


def _issues_text(issues: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "Suspected label errors",
        *(f"  {line}" for line in sections.issues_summary(issues)),
    ]
    if issues["top_suspects"]:
        header = sections.suspect_header(issues)
        rows = [header, *sections.suspect_rows(issues)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines.append("")
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    pairs = sections.pair_lines(issues)
    if pairs:
        lines += ["", "  Confused class pairs (-> one-way, <-> both ways)"]
        lines += [f"    {line}" for line in pairs]
    health = sections.health_lines(issues)
    if health:  # a class with samples and some noise or suspects
        lines += ["", "  Least healthy classes", *(f"    {line}" for line in health)]
    return lines


def _notes_text(data: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if data["findings"]:
        lines += ["", "Findings"]
        lines += [f"  [{f['severity']}] {f['message']}" for f in data["findings"]]
    if data["warnings"]:
        lines += ["", "Warnings"]
        lines += [f"  - {w}" for w in data["warnings"]]
    return lines


def render_diff_text(data: dict[str, Any]) -> str:
    ds = data["dataset"]
    lines = [f"labelaudit diff: {ds['old']} -> {ds['new']} ({ds['task']})", ""]
    lines += [f"  {x}" for x in sections.diff_summary(data)]
    rows = [sections.DIFF_SUPPORT_HEADER, *sections.diff_support_rows(data)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(sections.DIFF_SUPPORT_HEADER))]
    _, note = sections.shown_diff_support(data)
    lines += ["", "Support" + (f" ({note})" if note else "")]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  " + "  ".join(cells))
    for title, body in (
        ("Top relabels (before -> after)", sections.relabel_lines(data)),
        ("Tags added / removed", sections.tag_lines(data)),
        (
            "Relabels the model disagrees with most (likely regressions)",
            sections.regression_lines(data),
        ),
    ):
        if body:
            lines += ["", title, *(f"  {x}" for x in body)]
    lines += _notes_text({"findings": [], "warnings": data["warnings"]})
    return human_lines(lines)


def render_gate_text(data: dict[str, Any]) -> str:
    lines = [summary_line(data), ""]
    width = max((len(f["rule"]) for f in data["findings"]), default=4)
    for f in data["findings"]:
        severity = f"[{f['severity']}]"
        lines.append(
            f"  {STATUS_MARK[f['status']]:<5} {f['rule']:<{width}}  {severity:<9}  "
            f"measured {shown_value(f['value'])}, limit {shown_value(f['limit'])}"
        )
    accepted = data.get("accepted")
    if accepted:
        lines += [
            "",
            f"  accepted suspects ({accepted['file']}): {accepted['still_suspected']} still "
            f"suspected, {accepted['new_suspects']} new, {accepted['no_longer_apply']} no longer "
            "apply",
        ]
    if data["warnings"]:
        lines += ["", "Warnings", *(f"  - {w}" for w in data["warnings"])]
    return human_lines(lines)


def render_thresholds_text(data: dict[str, Any]) -> str:
    """Per-class thresholds for people: the honest gain, then each class's threshold."""
    ev = data["evaluation"]
    lines = [
        f"labelaudit thresholds ({data['metric']}, {data['task']}, {ev['method']})",
        f"  macro F1 {num(ev['before'])} -> {num(ev['after'])} on "
        f"{count(ev['n_evaluation'], 'row')} that did not choose the thresholds "
        f"(tuned on {count(ev['n_tuning'], 'row')})",
        f"  rule: {data['rule']}",
        "",
    ]
    shown, note = sections.shown_thresholds(data)
    lines.append("Thresholds" + (f" ({note})" if note else ""))
    width = max((len(c["class"]) for c in shown), default=5)
    lines.append(f"  {'class':<{width}}  {'threshold':>9}  {'precision':>17}  {'recall':>17}")
    for c in shown:
        lines.append(
            f"  {c['class']:<{width}}  {num(c['threshold'], 3):>9}  "
            f"{num(c['precision_before'], 3) + ' -> ' + num(c['precision_after'], 3):>17}  "
            f"{num(c['recall_before'], 3) + ' -> ' + num(c['recall_after'], 3):>17}"
        )
    if data["switched_off"]:
        lines += ["", f"  switched off: {names_list(data['switched_off'])}"]
    if data["warnings"]:
        lines += ["", "Warnings", *(f"  - {w}" for w in data["warnings"])]
    return human_lines(lines)


def render_annotators_text(data: dict[str, Any]) -> str:
    lines = [f"labelaudit annotators: {data['dataset']['source']}", ""]
    lines += [f"  {x}" for x in sections.annotators_summary(data)]
    rows = sections.annotator_rows(data)
    lines += ["", "Annotators (worst first)", *_table_text(sections.ANNOTATOR_HEADER, rows)]
    if len(data["annotators"]) > len(rows):
        lines.append(f"  ... {len(data['annotators']) - len(rows):,} more in --format json")
    lines += _notes_text(data)
    return human_lines(lines)


def _table_text(header: list[str], rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell, indented two spaces."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    return [
        ("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))).rstrip()
        for row in [header, *rows]
    ]
