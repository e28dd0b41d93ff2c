"""Formatting shared by the renderers: numbers, lists of names, and markdown escaping."""

from __future__ import annotations

import re

MAX_MATRIX_CLASSES = 20  # classes shown in a matrix or heatmap; the full one stays in the JSON
MAX_TABLE_CLASSES = 50  # classes listed in a text or markdown table; all of them are in the JSON


def num(value: float | None, digits: int = 4) -> str:
    """A figure to `digits` places; a value that rounds to zero never shows as -0 (the `z`)."""
    return "n/a" if value is None else f"{value:z.{digits}f}"


def pct(value: float) -> str:
    return f"{100 * value:z.1f}%"


def rate(value: float) -> str:
    """A rate the report states to two decimals in every format (the suspect rate, the estimated
    noise rate): 5.15%, as the finding writes it."""
    return f"{100 * value:z.2f}%"


def times(value: float) -> str:
    """A multiple, rounded, with thousands separators: 1,000x."""
    return f"{value:,.0f}x"


def names_list(names: list[str], limit: int = 10) -> str:
    if not names:
        return "none"
    return ", ".join(names[:limit]) + (
        f" (+{len(names) - limit:,} more)" if len(names) > limit else ""
    )


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


def md_list(items: list[str]) -> list[str]:
    """Plain-text lines as a markdown bullet list, each escaped with `md_text`."""
    return [f"- {md_text(item.strip())}" for item in items]


# A command line quoted in labelaudit's own prose, as the JSON and text reports write it: in
# backticks (`labelaudit thresholds`; errors.python_wording keeps the same spans). The HTML page
# shows it as <code>, the markdown report as inline code; any other backtick stays text.
COMMAND_SPAN = re.compile(r"`(labelaudit [^`]*)`")


def md_prose(text: str) -> str:
    """A sentence of labelaudit's (a finding, a warning, a recommendation) for markdown: escaped
    with `md_text`, except a quoted command line, which becomes an inline code span."""
    parts = COMMAND_SPAN.split(str(text))  # text, command, text, command, ..., text
    return "".join(
        md_code(part) if i % 2 else md_text(part) for i, part in enumerate(parts) if part
    )


def md_prose_list(items: list[str]) -> list[str]:
    """labelaudit's sentences as a markdown bullet list, each with `md_prose`."""
    return [f"- {md_prose(item.strip())}" for item in items]
