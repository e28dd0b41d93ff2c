"""Render a report as text, markdown or JSON; renderers format, they never compute statistics."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from labelaudit.report.schema import ScanReport

FORMATS = ("text", "json", "markdown")
MAX_MATRIX_CLASSES = 20


def render(report: ScanReport, fmt: str) -> str:
    """The report in `fmt` (one of FORMATS), ending with a newline."""
    renderers: dict[str, Callable[[dict[str, Any]], str]] = {
        "text": render_text,
        "json": render_json,
        "markdown": render_markdown,
    }
    return renderers[fmt](report.to_dict())


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


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
        f"  {ds['n_samples']:,} samples, {ds['n_classes']} classes, {ds['task']}"
        + (f" ({ds['null_labels']:,} rows with no label left out)" if ds["null_labels"] else ""),
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
        lines += ["", f"Metrics ({metrics['n_scored']:,} samples scored)"]
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
    lines += _notes_text(data)
    return "\n".join(lines) + "\n"


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


def _notes_text(data: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if data["findings"]:
        lines += ["", "Findings"]
        lines += [f"  [{f['severity']}] {f['message']}" for f in data["findings"]]
    if data["warnings"]:
        lines += ["", "Warnings"]
        lines += [f"  - {w}" for w in data["warnings"]]
    return lines


def _md_table(header: list[str], rows: list[list[str]], align: str = "l") -> list[str]:
    marks = (
        ["---" if i == 0 else "---:" for i in range(len(header))]
        if align == "r"
        else ["---"] * len(header)
    )
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    out += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return out


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(data: dict[str, Any]) -> str:
    ds = data["dataset"]
    lines = [
        f"# labelaudit scan: `{ds['source']}`",
        "",
        f"{ds['n_samples']:,} samples, {ds['n_classes']} classes, {ds['task']}"
        + (f"; predictions `{ds['predictions']}`" if ds["predictions"] else "")
        + ".",
        "",
        "## Support",
        "",
    ]
    lines += _md_table(
        ["class", "count", "share"],
        [[c["class"], f"{c['count']:,}", _pct(c["share"])] for c in data["support"]["per_class"]],
        align="r",
    )
    lines += ["", *(f"- {line}" for line in _support_summary(data))]
    metrics = data["metrics"]
    if metrics:
        lines += ["", f"## Metrics ({metrics['n_scored']:,} samples scored)", ""]
        lines += _md_table(
            ["class", "precision", "recall", "f1", "support"],
            [list(row) for row in _metric_rows(metrics)],
            align="r",
        )
        lines += ["", *(f"- {k}: {v}" for k, v in _scalar_metrics(metrics))]
        if (
            "confusion_matrix" in metrics
            and len(metrics["confusion_matrix"]["classes"]) <= MAX_MATRIX_CLASSES
        ):
            cm = metrics["confusion_matrix"]
            lines += ["", "### Confusion matrix (rows: given, columns: predicted)", ""]
            lines += _md_table(
                ["given \\ predicted", *cm["classes"]],
                [
                    [name, *(f"{v:,}" for v in row)]
                    for name, row in zip(cm["classes"], cm["counts"], strict=True)
                ],
                align="r",
            )
    if data["findings"]:
        lines += ["", "## Findings", ""]
        lines += [f"- **{f['severity']}** {f['message']}" for f in data["findings"]]
    if data["warnings"]:
        lines += ["", "## Warnings", ""]
        lines += [f"- {w}" for w in data["warnings"]]
    return "\n".join(lines) + "\n"
