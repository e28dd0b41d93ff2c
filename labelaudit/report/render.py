"""Render a report as text, markdown, JSON or HTML; renderers format, never compute statistics."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from labelaudit._text import count, human_lines

FORMATS = ("text", "json", "markdown", "html")
MAX_MATRIX_CLASSES = 20


def render(report: Any, fmt: str) -> str:
    """A scan, diff or gate report in `fmt` (one of FORMATS), ending with a newline."""
    data = report.to_dict()
    if fmt == "json":
        return render_json(data)
    if fmt == "html":
        from labelaudit.report.html import render_html

        return render_html(data)[0]
    renderers: dict[tuple[str, str], Callable[[dict[str, Any]], str]] = {
        ("scan", "text"): render_text,
        ("scan", "markdown"): render_markdown,
        ("diff", "text"): render_diff_text,
        ("diff", "markdown"): render_diff_markdown,
    }
    if data["command"] == "gate":
        from labelaudit.report.render_gate import render_gate

        return render_gate(data, fmt)
    return renderers[(data["command"], fmt)](data)


def render_json(data: dict[str, Any]) -> str:
    """The report as JSON. `##[` can only be inside a string, where `\\u005b` is the same `[`:
    so a name holding it is not read as a workflow command by GitHub's runner in a CI log."""
    return json.dumps(data, indent=2, ensure_ascii=False).replace("##[", "##\\u005b") + "\n"


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _names(names: list[str], limit: int = 10) -> str:
    if not names:
        return "none"
    return ", ".join(names[:limit]) + (
        f" (+{len(names) - limit} more)" if len(names) > limit else ""
    )


def _headline(data: dict[str, Any]) -> list[str]:
    ds = data["dataset"]
    lines = [
        f"labelaudit scan: {ds['source']}",
        f"  {count(ds['n_samples'], 'sample')}, {count(ds['n_classes'], 'class')}, {ds['task']}"
        + (
            f" ({count(ds['null_labels'], 'row')} with no label left out)"
            if ds["null_labels"]
            else ""
        ),
    ]
    if ds["predictions"]:
        mode = data["metrics"]["score_mode"] if data["metrics"] else ""
        lines.append(f"  predictions: {ds['predictions']} (read as {mode})")
    return lines


def _support_summary(data: dict[str, Any]) -> list[str]:
    imb, dup = data["imbalance"], data["duplicates"]
    lines = [
        f"imbalance ratio {_num(imb['ratio'], 2)} (largest / smallest non-empty class)",
        f"normalized entropy {_num(imb['normalized_entropy'], 3)}, "
        f"effective classes {_num(imb['effective_classes'], 2)}",
        f"rare classes (< {imb['min_support']}): {_names(imb['rare_classes'])}; "
        f"zero-support classes: {_names(imb['zero_support_classes'])}",
        f"duplicate ids: {dup['duplicate_ids']:,} ({dup['duplicate_rows']:,} rows); "
        f"conflicting: {dup['conflicting_ids']:,}",
    ]
    ml = data["multilabel"]
    if ml:
        pairs = ", ".join(
            f"{p['classes'][0]}+{p['classes'][1]} ({p['count']})" for p in ml["top_pairs"][:5]
        )
        lines += [
            f"label cardinality {ml['cardinality']:.3f}, density {ml['density']:.4f}, "
            f"max labels per sample {ml['max_labels_per_sample']}, "
            f"samples without label {ml['samples_without_label']:,}",
            f"most frequent label pairs: {pairs or 'none'}",
        ]
    return lines


def _metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = [
        (c["class"], _num(c["precision"]), _num(c["recall"]), _num(c["f1"]), f"{c['support']:,}")
        for c in metrics["per_class"]
    ]
    total = sum(c["support"] for c in metrics["per_class"])
    for name in ("micro", "macro", "weighted"):
        avg = metrics[name]
        rows.append(
            (
                f"{name} avg",
                _num(avg["precision"]),
                _num(avg["recall"]),
                _num(avg["f1"]),
                f"{total:,}",
            )
        )
    return rows


def _scalar_metrics(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    if "cp" in metrics:
        return [
            ("threshold (predicted when p >= t)", _num(metrics["threshold"], 2)),
            ("subset accuracy", _num(metrics["subset_accuracy"])),
            ("hamming loss", _num(metrics["hamming_loss"])),
            ("CP / CR / CF1", " / ".join(_num(metrics[k]) for k in ("cp", "cr", "cf1"))),
            ("OP / OR / OF1", " / ".join(_num(metrics[k]) for k in ("op", "or", "of1"))),
            ("mAP", _num(metrics["mean_average_precision"])),
        ]
    return [
        ("accuracy", _num(metrics["accuracy"])),
        ("balanced accuracy", _num(metrics["balanced_accuracy"])),
        ("top-5 accuracy", _num(metrics["top_5_accuracy"])),
        ("log loss", _num(metrics["log_loss"])),
        ("expected calibration error (15 bins)", _num(metrics["expected_calibration_error"])),
    ]


def render_text(data: dict[str, Any]) -> str:
    lines = [*_headline(data), "", "Support"]
    width = max(len("class"), *(len(c["class"]) for c in data["support"]["per_class"]))
    lines.append(f"  {'class':<{width}}  {'count':>10}  {'share':>7}")
    for c in data["support"]["per_class"]:
        lines.append(f"  {c['class']:<{width}}  {c['count']:>10,}  {_pct(c['share']):>7}")
    lines += ["", *(f"  {line}" for line in _support_summary(data))]
    metrics = data["metrics"]
    if metrics:
        lines += ["", f"Metrics ({count(metrics['n_scored'], 'sample')} scored)"]
        rows = _metric_rows(metrics)
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
                    f"{c['class']} {_num(c['average_precision'], 3)}" for c in metrics["per_class"]
                ),
            ]
        lines.append("")
        label_width = max(len(k) for k, _ in _scalar_metrics(metrics))
        lines += [f"  {k:<{label_width}}  {v}" for k, v in _scalar_metrics(metrics)]
        if "confusion_matrix" in metrics:
            lines += ["", *_confusion_text(metrics["confusion_matrix"])]
    if data.get("models"):
        lines += ["", "Models (combined: the metrics above are the combination's)"]
        lines += [f"  {line}" for line in _models_lines(data["models"])]
    if data.get("label_issues"):
        lines += _issues_text(data["label_issues"])
    advice = _advice_lines(data)
    if advice:
        lines += ["", "Recommendations", *(f"  {x}" for x in advice)]
    lines += _notes_text(data)
    return human_lines(lines)


def _models_lines(models: dict[str, Any]) -> list[str]:
    """One line per model: its weight in the combination and its own figures."""
    out = []
    for m in models["members"]:
        figures = [f"weight {m['weight']:.3f}", f"scores read as {m['score_mode']}"]
        if m["accuracy"] is not None:
            figures += [
                f"accuracy {_num(m['accuracy'])}",
                f"macro F1 {_num(m['macro_f1'])}",
                f"log loss {_num(m['log_loss'])}",
            ]
        out.append(f"{m['source']}: " + ", ".join(figures))
    out.append(f"weights: {models['weighting'].replace('_', ' ')}")
    return out


def _confusion_text(confusion: dict[str, Any]) -> list[str]:
    classes = confusion["classes"]
    if len(classes) > MAX_MATRIX_CLASSES:
        return [
            f"Confusion matrix: {len(classes)} classes, too many to print; the full matrix is "
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


def _suspect_rows(issues: dict[str, Any]) -> list[list[str]]:
    ensemble = _from_models(issues)
    return [
        [
            str(s["rank"]),
            str(s["id"]),
            f"{s['given_label']} -> {s['suggested_label']}",
            _num(s["label_quality"], 3),
            _num(s["given_probability"], 3),
            _num(s["suggested_probability"], 3),
        ]
        + ([str(s["n_models_disagree"])] if ensemble else [])
        for s in issues["top_suspects"]
    ]


def _from_models(issues: dict[str, Any]) -> bool:
    """Whether the suspects come from several models (they then say how many disagree)."""
    return any(s.get("n_models_disagree") is not None for s in issues["top_suspects"])


def suspect_header(issues: dict[str, Any]) -> list[str]:
    """The suspects table's columns; with several models, how many disagree with the label."""
    return SUSPECT_HEADER + (["models against"] if _from_models(issues) else [])


SUSPECT_HEADER = ["rank", "id", "given -> suggested", "quality", "p(given)", "p(suggested)"]


def _issues_summary(issues: dict[str, Any]) -> list[str]:
    return [
        f"{issues['n_suspects']:,} suspected label errors ({100 * issues['suspect_rate']:.2f}% of "
        f"{issues['n_scored']:,} scored; rule {issues['rule']}, "
        f"ranked by {issues['quality_score']})",
        f"estimated label errors {issues['estimated_errors']:,} "
        f"(noise rate {100 * issues['estimated_noise_rate']:.2f}%); "
        f"label health {issues['health_score']:.3f}",
    ]


def _pair_lines(issues: dict[str, Any]) -> list[str]:
    lines = []
    for p in issues["pairs"][:10]:
        arrow = "->" if p["kind"] == "asymmetric" else "<->"
        examples = ", ".join(str(i) for i in p["example_ids"][:3])
        lines.append(
            f"{p['from']} {arrow} {p['to']}: {p['count']} ({100 * p['share']:.1f}% of "
            f"{p['from']}; reverse {p['reverse_count']}; {p['ratio_to_median']:.0f}x typical) "
            f"e.g. ids {examples}"
        )
    return lines


def _health_lines(issues: dict[str, Any], limit: int = 5) -> list[str]:
    return [
        f"{h['class']}: estimated noise {100 * h['estimated_noise_rate']:.1f}%, "
        f"{count(h['suspects'], 'suspect')} ({100 * h['suspect_share']:.1f}%)"
        for h in issues["per_class"][:limit]
    ]


def _issues_text(issues: dict[str, Any]) -> list[str]:
    lines = ["", "Suspected label errors", *(f"  {line}" for line in _issues_summary(issues))]
    if issues["top_suspects"]:
        header = suspect_header(issues)
        rows = [header, *_suspect_rows(issues)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines.append("")
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    pairs = _pair_lines(issues)
    if pairs:
        lines += ["", "  Confused class pairs (-> one-way, <-> both ways)"]
        lines += [f"    {line}" for line in pairs]
    lines += ["", "  Least healthy classes", *(f"    {line}" for line in _health_lines(issues))]
    return lines


def _advice_lines(data: dict[str, Any]) -> list[str]:
    advice = data.get("recommendations")
    if not advice:
        return []
    loss = advice["loss"]
    params = ", ".join(f"{k}={v}" for k, v in loss["params"].items())
    runner = loss["runner_up"]
    runner_params = ", ".join(f"{k}={v}" for k, v in runner.get("params", {}).items())
    lines = [f"loss: {loss['name']}" + (f" ({params})" if params else "")]
    lines += [f"  why: {r}" for r in loss["reasons"]]
    lines.append(
        f"  runner-up: {runner['name']}" + (f" ({runner_params})" if runner_params else "")
    )
    lines += [f"  risk: {r}" for r in loss["risks"]]
    sampling = advice["sampling"]
    chosen = next(w for w in advice["class_weights"] if w["method"] == sampling["method"])
    defined = {c: w for c, w in chosen["weights"].items() if w is not None}
    counts = {c["class"]: c["count"] for c in data["support"]["per_class"]}
    if defined:
        rarest = min(defined, key=lambda c: (counts[c], c))
        largest = max(defined, key=lambda c: (counts[c], c))
        lines.append(
            f"sampling weights ({sampling['method']}"
            + (", recommended" if sampling["recommended"] else "")
            + f"): rarest class {rarest} {defined[rarest]:.3g}, largest {largest} "
            f"{defined[largest]:.3g}; per sample {sampling['min_weight']:.3g} to "
            f"{sampling['max_weight']:.3g} (--weights-out)"
        )
    lines += [f"  note: {n}" for n in sampling["notes"]]
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


def md_table(header: list[str], rows: list[list[str]], align: str = "l") -> list[str]:
    """A markdown table of plain-text cells, every cell and header escaped with `md_text`.
    `align`: "l" (all left), "r" (first column left, the rest right), or one l/r per column."""
    if len(align) == len(header) and len(header) > 1:
        marks = ["---:" if a == "r" else "---" for a in align]
    else:
        marks = ["---" if i == 0 or align != "r" else "---:" for i in range(len(header))]
    out = ["| " + " | ".join(md_text(h) for h in header) + " |", "| " + " | ".join(marks) + " |"]
    out += ["| " + " | ".join(md_text(c) for c in row) + " |" for row in rows]
    return out


# Characters markdown (GitHub's included) reads as syntax inside a line: backslash first, so the
# escapes added for the others are not escaped again.
_MD_SYNTAX = re.compile(r"([\\`*_\[\]|$~#])")
# What only acts at the start of a line: a list marker, a block quote.
_MD_LINE_START = re.compile(r"^(?:[-+]|\d+[.)])(?=\s|$)|^>")


def md_text(text: object) -> str:
    """Plain text (a class name, a message) for a markdown line or table cell, shown as written:
    `&` and `<` as HTML entities (no tag or entity reaches the page), markdown syntax and `|`
    (which would end a table cell) backslash-escaped, and no list marker or `>` at its start.
    A `>` elsewhere acts on nothing, so arrows (`a -> b`) stay readable in the raw text."""
    escaped = str(text).replace("&", "&amp;").replace("<", "&lt;")
    escaped = _MD_SYNTAX.sub(r"\\\1", escaped)
    return _MD_LINE_START.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], escaped)


def md_code(text: str) -> str:
    """`text` as an inline code span, fenced with more backticks than it holds in a row."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_list(items: list[str]) -> list[str]:
    """Plain-text lines as a markdown bullet list, each escaped with `md_text`."""
    return [f"- {md_text(item.strip())}" for item in items]


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
    lines += md_table(
        ["class", "count", "share"],
        [[c["class"], f"{c['count']:,}", _pct(c["share"])] for c in data["support"]["per_class"]],
        align="r",
    )
    lines += ["", *_md_list(_support_summary(data))]
    metrics = data["metrics"]
    if metrics:
        lines += ["", f"## Metrics ({count(metrics['n_scored'], 'sample')} scored)", ""]
        lines += md_table(
            ["class", "precision", "recall", "f1", "support"],
            [list(row) for row in _metric_rows(metrics)],
            align="r",
        )
        lines += ["", *_md_list([f"{k}: {v}" for k, v in _scalar_metrics(metrics)])]
        if (
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
        lines += ["", "### Models (combined)", "", *_md_list(_models_lines(data["models"]))]
    issues = data.get("label_issues")
    if issues:
        lines += ["", "## Suspected label errors", "", *_md_list(_issues_summary(issues))]
        if issues["top_suspects"]:
            lines += ["", *md_table(suspect_header(issues), _suspect_rows(issues))]
        if issues["pairs"]:
            lines += ["", "### Confused class pairs", "", *_md_list(_pair_lines(issues))]
        lines += ["", "### Least healthy classes", "", *_md_list(_health_lines(issues))]
    advice = _advice_lines(data)
    if advice:
        lines += ["", "## Recommendations", "", *_md_list(advice)]
    if data["findings"]:
        lines += ["", "## Findings", ""]
        lines += [
            f"- **{md_text(f['severity'])}** {md_text(f['message'])}" for f in data["findings"]
        ]
    if data["warnings"]:
        lines += ["", "## Warnings", "", *_md_list(data["warnings"])]
    return human_lines(lines)


def _diff_summary(data: dict[str, Any]) -> list[str]:
    sm, sh = data["summary"], data["shift"]
    lines = [
        f"{count(sm['n_old'], 'row')} before, {sm['n_new']:,} after: "
        f"{sm['unchanged']:,} unchanged, "
        f"{sm['relabeled']:,} relabeled ({100 * sm['relabel_rate']:.2f}% of matched), "
        f"{sm['added']:,} added, {sm['removed']:,} removed",
        f"class distribution shift: TVD {sh['tvd']:.4f}, Jensen-Shannon {sh['js']:.4f}, "
        f"PSI {sh['psi']:.4f}, chi-square p {_num(sh['chi2_p'], 4)} (information only)",
        f"new classes: {_names(data['new_classes'])}; vanished: {_names(data['vanished_classes'])}",
    ]
    verdict = data.get("relabels_vs_model")
    if verdict:
        lines.append(
            f"relabels judged by the model: {verdict['agree']:,} agree (likely fixes), "
            f"{verdict['disagree']:,} disagree (likely regressions) of {verdict['checked']:,}"
        )
    return lines


def _diff_support_rows(data: dict[str, Any]) -> list[list[str]]:
    return [
        [s["class"], f"{s['old']:,}", f"{s['new']:,}", f"{s['delta']:+,}",
         _pct(s["old_share"]), _pct(s["new_share"])]
        for s in data["support"]
    ]  # fmt: skip


def _relabel_lines(data: dict[str, Any]) -> list[str]:
    return [
        f"{p['from']} -> {p['to']}: {p['count']:,} (e.g. "
        f"{', '.join(str(i) for i in p['example_ids'][:3])})"
        for p in data["top_relabels"]
    ]


def _regression_lines(data: dict[str, Any]) -> list[str]:
    verdict = data.get("relabels_vs_model") or {}
    return [
        f"{v['id']}: {v['old_label']} -> {v['new_label']} "
        f"(p old {v['old_label_probability']:.3f}, p new {v['new_label_probability']:.3f})"
        for v in verdict.get("worst_regressions", [])
    ]


def _tag_lines(data: dict[str, Any]) -> list[str]:
    return [
        f"{t['class']}: +{t['added']:,} / -{t['removed']:,}"
        for t in data.get("tag_changes") or []
        if t["added"] or t["removed"]
    ]


DIFF_SUPPORT_HEADER = ["class", "before", "after", "delta", "share before", "share after"]


def render_diff_text(data: dict[str, Any]) -> str:
    ds = data["dataset"]
    lines = [f"labelaudit diff: {ds['old']} -> {ds['new']} ({ds['task']})", ""]
    lines += [f"  {x}" for x in _diff_summary(data)]
    rows = [DIFF_SUPPORT_HEADER, *_diff_support_rows(data)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(DIFF_SUPPORT_HEADER))]
    lines += ["", "Support"]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  " + "  ".join(cells))
    for title, body in (
        ("Top relabels (before -> after)", _relabel_lines(data)),
        ("Tags added / removed", _tag_lines(data)),
        ("Relabels the model disagrees with most (likely regressions)", _regression_lines(data)),
    ):
        if body:
            lines += ["", title, *(f"  {x}" for x in body)]
    lines += _notes_text({"findings": [], "warnings": data["warnings"]})
    return human_lines(lines)


def render_diff_markdown(data: dict[str, Any]) -> str:
    ds = data["dataset"]
    lines = [f"# labelaudit diff: {md_code(ds['old'])} -> {md_code(ds['new'])}", ""]
    lines += _md_list(_diff_summary(data))
    lines += ["", "## Support", "", *md_table(DIFF_SUPPORT_HEADER, _diff_support_rows(data), "r")]
    for title, body in (
        ("Top relabels", _relabel_lines(data)),
        ("Tags added / removed", _tag_lines(data)),
        ("Likely regressions", _regression_lines(data)),
    ):
        if body:
            lines += ["", f"## {title}", "", *_md_list(body)]
    if data["warnings"]:
        lines += ["", "## Warnings", "", *_md_list(data["warnings"])]
    return human_lines(lines)
