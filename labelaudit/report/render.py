"""One entry to every output format: `render(report, fmt)` and `render_page(report, ...)`.

Renderers format a report's JSON data; they never compute statistics. Each (command, format)
pair has one function in RENDERERS; HTML pages (with figures) come from report/html.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from labelaudit.report import markdown, text

FORMATS = ("text", "json", "markdown", "html")

RENDERERS: dict[tuple[str, str], Callable[[dict[str, Any]], str]] = {
    ("scan", "text"): text.render_text,
    ("scan", "markdown"): markdown.render_markdown,
    ("diff", "text"): text.render_diff_text,
    ("diff", "markdown"): markdown.render_diff_markdown,
    ("gate", "text"): text.render_gate_text,
    ("gate", "markdown"): markdown.render_gate_markdown,
    ("thresholds", "text"): text.render_thresholds_text,
    ("thresholds", "markdown"): markdown.render_thresholds_markdown,
    ("annotators", "text"): text.render_annotators_text,
    ("annotators", "markdown"): markdown.render_annotators_markdown,
}


def render(report: Any, fmt: str) -> str:
    """A scan, diff, gate or thresholds report in `fmt` (one of FORMATS), ending in a newline."""
    if fmt == "html":
        return render_page(report)[0]
    data = report.to_dict()
    if fmt == "json":
        return render_json(data)
    return RENDERERS[(data["command"], fmt)](data)


def render_page(report: Any, media: dict[Any, Any] | None = None) -> tuple[str, dict[str, bytes]]:
    """The HTML page of a report and its figures as PNG bytes by name (matplotlib, lazily)."""
    from labelaudit.report.html import render_html

    return render_html(report.page_data(), media=media)


def render_json(data: dict[str, Any]) -> str:
    """The report as JSON. `##[` can only be inside a string, where `\\u005b` is the same `[`:
    so a name holding it is not read as a workflow command by GitHub's runner in a CI log."""
    return json.dumps(data, indent=2, ensure_ascii=False).replace("##[", "##\\u005b") + "\n"
