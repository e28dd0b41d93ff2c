"""Class names that look like syntax (mathtext, markdown, HTML, newlines, workflow commands) are
shown as written in every report format, and never crash a figure or forge an output line."""

from __future__ import annotations

import html
import json
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from labelaudit._text import human_line, printable
from labelaudit.report import figures
from labelaudit.report._format import md_text

from .conftest import CliRun

MATH = ["a $x^$", "50% $", "_x_", "back\\slash", "$\\frac{$", "plain"]
MARKUP = ["a|b", "<script>", "x & y", "a\\|b", "- list", "plain"]
FORGED = ["plain", "evil\n::error file=x::forged", "cr\rreturn", "##[error]legacy", "esc\x1b[31m"]
OUR_ANNOTATION = re.compile(r"^::(error|warning) title=labelaudit gate%3A [a-z_]+::")


def write_data(folder: Path, names: list[str], seed: int = 0, n: int = 400) -> None:
    """labels.csv (every class present, about 15% confused with the next class) and preds."""
    rng = np.random.default_rng(seed)
    k = len(names)
    given = np.arange(n) % k
    probabilities = rng.dirichlet(np.ones(k), size=n)
    probabilities[np.arange(n), given] += 1.5
    flip = rng.random(n) < 0.15
    probabilities[flip, (given[flip] + 1) % k] += 3.0
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    folder.mkdir(parents=True, exist_ok=True)
    labels = [names[i] for i in given]
    pl.DataFrame({"id": np.arange(n), "label": labels}).write_csv(folder / "labels.csv")
    relabeled = [names[(i + 1) % k] if j % 9 == 0 else names[i] for j, i in enumerate(given)]
    pl.DataFrame({"id": np.arange(n), "label": relabeled}).write_csv(folder / "labels_v2.csv")
    columns = {name: probabilities[:, j] for j, name in enumerate(names)}
    pl.DataFrame({"id": np.arange(n), **columns}).write_parquet(folder / "preds.parquet")


# ---------------------------------------------------------------- figures (mathtext)


def test_mathtext_class_names_draw_and_show_in_the_page(cli: CliRun, tmp_path: Path) -> None:
    write_data(tmp_path, MATH)
    result = cli("scan", "labels.csv", "--preds", "preds.parquet", "--format", "html",
                 "-o", "page.html", "--plots-dir", "plots", cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    for name in MATH:
        assert html.escape(name) in page, name
    written = {p.stem for p in (tmp_path / "plots").glob("*.png")}
    assert {"support", "confusion_matrix", "confused_pairs", "noise_matrix"} <= written


def test_mathtext_class_names_in_diff_and_thresholds_pages(cli: CliRun, tmp_path: Path) -> None:
    write_data(tmp_path, MATH)
    diff = cli("diff", "labels.csv", "labels_v2.csv", "--format", "html", "-o", "diff.html",
               "--plots-dir", "diff-plots", cwd=tmp_path)  # fmt: skip
    assert diff.exit_code == 0, diff.output
    assert {p.stem for p in (tmp_path / "diff-plots").glob("*.png")} == {
        "diff_support",
        "transitions",
    }
    tuned = cli("thresholds", "labels.csv", "--preds", "preds.parquet", "-o", "t.json",
                "--html", "t.html", cwd=tmp_path)  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    assert html.escape("a $x^$") in (tmp_path / "t.html").read_text(encoding="utf-8")


def test_figure_text_is_shown_literally() -> None:
    for name in [*MATH, "a\\$b", "$$", "\\"]:
        escaped = figures.plain(name)
        # matplotlib's own rule: an even count of unescaped `$` is mathtext; escaped ones show.
        assert escaped.count("$") == escaped.count("\\$")
        assert escaped.replace("\\$", "$") == name
    assert figures.plain("two\nlines") == "two\\nlines"


def test_figures_ignore_a_usetex_matplotlibrc() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    data = {
        "support": {"per_class": [{"class": n, "count": 5 + i} for i, n in enumerate(MATH)]},
        "imbalance": {"min_support": 6, "rare_classes": [MATH[0]], "zero_support_classes": []},
    }
    with matplotlib.rc_context({"text.usetex": True}):  # would hand the names to LaTeX
        png, width, height = figures.draw_png(figures.support, data)
    assert png.startswith(b"\x89PNG") and width > 0 and height > 0


def test_names_the_font_lacks_draw_without_warnings() -> None:
    names = ["猫", "犬", "🐦"]
    data = {
        "support": {"per_class": [{"class": n, "count": 5} for n in names]},
        "imbalance": {"min_support": 1, "rare_classes": [], "zero_support_classes": []},
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert figures.draw_png(figures.support, data) is not None
    assert [str(w.message) for w in caught] == []


# ---------------------------------------------------------------- markdown


def cells(line: str) -> list[str]:
    """A markdown table row split as GitHub splits it: a backslash escapes the next character."""
    parts, current, i = [], "", 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            current += line[i : i + 2]
            i += 2
            continue
        if line[i] == "|":
            parts.append(current)
            current = ""
        else:
            current += line[i]
        i += 1
    return parts[1:]  # the text before the first pipe is empty


def assert_tables_intact(text: str) -> None:
    """Every row of every table has as many cells as its header; no raw tag survives."""
    widths: list[int] = []
    for line in text.splitlines():
        if line.startswith("|"):
            widths.append(len(cells(line)))
        elif widths:
            assert len(set(widths)) == 1, widths
            widths = []
    assert "<script>" not in text


def test_markdown_tables_escape_pipes_and_html(cli: CliRun, tmp_path: Path) -> None:
    write_data(tmp_path, MARKUP)
    result = cli("scan", "labels.csv", "--preds", "preds.parquet", "--format", "markdown",
                 cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert_tables_intact(text)
    header = next(line for line in text.splitlines() if line.startswith("| given"))
    assert cells(header)[1:] == [f" {md_text(name)} " for name in MARKUP]
    assert "| a\\|b |" in text and "| &lt;script> |" in text and "| x &amp; y |" in text
    assert "| a\\\\\\|b |" in text  # the backslash is escaped too, so the pipe stays escaped
    assert "\n- - list" not in text and "\n- \\- list" in text  # not a nested list


def test_markdown_diff_and_gate_tables(cli: CliRun, tmp_path: Path) -> None:
    write_data(tmp_path, MARKUP)
    diff = cli("diff", "labels.csv", "labels_v2.csv", "--format", "markdown", cwd=tmp_path)
    assert diff.exit_code == 0, diff.output
    assert_tables_intact(diff.stdout)
    assert "&lt;script>" in diff.stdout
    (tmp_path / "labelaudit.toml").write_text('[gate]\nallowed_classes = ["plain"]\n')
    gate = cli("gate", "labels.csv", "--format", "markdown", cwd=tmp_path)
    assert gate.exit_code == 1, gate.output
    assert_tables_intact(gate.stdout)
    assert "a\\|b" in gate.stdout


def test_md_text_shows_names_as_written() -> None:
    assert md_text("a|b") == "a\\|b"
    assert md_text("<b>&amp;") == "&lt;b>&amp;amp;"  # no tag, no entity
    assert md_text("> quote") == "\\> quote" and md_text("a -> b") == "a -> b"
    assert md_text("_x_ *y* `z` [l](u) $m$ ~s~ #h") == (
        "\\_x\\_ \\*y\\* \\`z\\` \\[l\\](u) \\$m\\$ \\~s\\~ \\#h"
    )
    assert md_text("1. one") == "1\\. one" and md_text("0.95") == "0.95" and md_text("-3") == "-3"


# ---------------------------------------------------------------- human lines, CI logs


def assert_no_forged_line(*outputs: str) -> None:
    for output in outputs:
        for line in output.splitlines():
            body = line.lstrip()
            assert not body.startswith("::") or OUR_ANNOTATION.match(body), line
            assert "##[" not in line.replace("##[\\", ""), line
            assert "\r" not in line and "\x1b" not in line, repr(line)


def test_gate_on_github_actions_prints_no_forged_workflow_command(
    cli: CliRun, tmp_path: Path
) -> None:
    write_data(tmp_path, FORGED)
    (tmp_path / "labelaudit.toml").write_text('[gate]\nallowed_classes = ["plain"]\n')
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    for fmt in ("text", "markdown", "json", "html"):
        result = cli("gate", "labels.csv", "--preds", "preds.parquet", "--format", fmt,
                     "--junit", "junit.xml", cwd=tmp_path, env=env)  # fmt: skip
        assert result.exit_code == 1, result.output
        assert_no_forged_line(result.stdout, result.stderr)
        if fmt == "json":  # the JSON keeps every name exactly
            assert json.loads(result.stdout)["scan"]["dataset"]["classes"] == FORGED
        ours = [line for line in result.stderr.splitlines() if line.startswith("::")]
        assert len(ours) == 1 and OUR_ANNOTATION.match(ours[0])
        assert "measured evil\\n::error file=x::forged, cr\\rreturn" in result.stderr
        root = ET.parse(tmp_path / "junit.xml").getroot()  # control characters escaped: valid
        assert "esc\\x1b[31m" in ET.tostring(root, encoding="unicode")
    assert_no_forged_line(summary.read_text(encoding="utf-8"))


def test_text_and_markdown_reports_keep_each_name_on_one_line(cli: CliRun, tmp_path: Path) -> None:
    write_data(tmp_path, FORGED)
    for command in (["scan", "labels.csv", "--preds", "preds.parquet"],
                    ["diff", "labels.csv", "labels_v2.csv"]):  # fmt: skip
        for fmt in ("text", "markdown"):
            result = cli(*command, "--format", fmt, cwd=tmp_path)
            assert result.exit_code == 0, result.output
            assert_no_forged_line(result.stdout, result.stderr)
            assert "evil\\n" in result.stdout and "cr\\rreturn" in result.stdout
            assert not any(line.startswith("::error") for line in result.stdout.splitlines())


def test_error_messages_are_one_line(cli: CliRun, tmp_path: Path) -> None:
    write_data(tmp_path, FORGED)
    (tmp_path / "classes.txt").write_text("plain\n")
    result = cli("scan", "labels.csv", "--classes", "classes.txt", cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert_no_forged_line(result.stderr)


def test_human_line() -> None:
    assert human_line("a\nb\r\tc") == "a\\nb\\r\\tc"
    assert human_line("::error::x") == "\\::error::x"
    assert human_line("  ::warning::x") == "  \\::warning::x"
    assert human_line("a ::b") == "a ::b"  # only a line start is read as a command
    assert human_line("see ##[error]x") == "see ##[\\error]x"
    assert printable("\x1b[2J\x00\x7f\x85\u2028") == "\\x1b[2J\\x00\\x7f\\x85\\u2028"
    assert printable("naïve 猫 ok") == "naïve 猫 ok"
