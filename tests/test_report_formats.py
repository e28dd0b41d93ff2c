"""Every human format says the same thing the same way: the confused pairs (one rule), the
anomalous pairs (one limit), numbers (thousands separators, two-decimal rates), the metric names,
the imbalance ratio of the classes with samples, commands as code; and figures that stay
readable (distinct short names, nothing cut off or covered, bars that start at zero)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import polars as pl

from labelaudit._text import rare_and_empty
from labelaudit.report import _sections as sections
from labelaudit.report import figures
from labelaudit.report._format import md_prose
from labelaudit.report.html import render_html
from labelaudit.report.markdown import render_markdown
from labelaudit.report.text import render_text

from .conftest import FIXTURES, CliRun

CIFAR = FIXTURES / "cifar10-test"
K = 1001  # above 1,000 classes the JSON lists the largest confusion cells, not the matrix


def _many_classes(folder: Path) -> tuple[str, ...]:
    """K classes, 4 rows each, top-3 scores: c0000 -> c0001 four times, c0002 -> c0003 three
    times, and 20 other errors each a pair of its own."""
    names = [f"c{i:04d}" for i in range(K)]
    given = np.arange(4 * K) % K
    predicted = given.copy()
    predicted[given == 0] = 1
    predicted[np.flatnonzero(given == 2)[:3]] = 3
    for c in range(20, 40):  # one row of each: a pair seen once
        predicted[np.flatnonzero(given == c)[0]] = c + 100
    top = [[names[p], names[(p + 7) % K], names[(p + 11) % K]] for p in predicted]
    probs = [[0.8, 0.15, 0.05]] * given.size
    ids = [f"r{i}" for i in range(given.size)]
    pl.DataFrame({"id": ids, "label": [names[g] for g in given]}).write_csv(folder / "labels.csv")
    pl.DataFrame({"id": ids, "topk_classes": top, "topk_probs": probs}).write_parquet(
        folder / "preds.parquet"
    )
    (folder / "classes.txt").write_text("\n".join(names) + "\n")
    return ("scan", "labels.csv", "--preds", "preds.parquet", "--classes", "classes.txt")


def test_a_pair_counted_once_is_no_confusion_in_any_format(cli: CliRun, tmp_path: Path) -> None:
    args = _many_classes(tmp_path)
    data = json.loads(cli(*args, "--format", "json", cwd=tmp_path).stdout)
    found = sections.confused_cells(data["metrics"])
    assert [c[:3] for c in found.cells] == [("c0000", "c0001", 4), ("c0002", "c0003", 3)]
    assert found.once == 20 and found.more == 0
    text = cli(*args, cwd=tmp_path).stdout
    listed = text.split("Most confused pairs")[1].split("\n\n")[0].splitlines()[1:]
    assert listed == [
        "  c0000 -> c0001: 4 (100.0% of c0000)",
        "  c0002 -> c0003: 3 (75.0% of c0002)",
        "  (and 20 pairs seen once)",
    ]
    markdown = cli(*args, "--format", "markdown", cwd=tmp_path).stdout
    part = markdown.split("### Most confused pairs")[1].split("\n## ")[0]
    assert "| c0000 | c0001 | 4 |" in part and "(and 20 pairs seen once)" in part
    assert part.count("\n| c") == 2
    page = cli(*args, "--format", "html", cwd=tmp_path).stdout
    assert 'id="fig-confused_pairs"' in page
    assert f"Per-class table ({K:,} classes)" in page


def test_no_list_of_single_pairs(cli: CliRun) -> None:
    """Only pairs seen once: the lists say so, the chart is not drawn."""
    singles = [{"from": f"c{i}", "to": f"c{i + 1}", "count": 1, "share": 0.1} for i in range(5)]
    per_class = [{"class": f"c{i}", "support": 10, "recall": 0.9} for i in range(5)]
    metrics = {"confusion_matrix": {"counts": None, "top_pairs": singles}, "per_class": per_class}
    found = sections.confused_cells(metrics)
    assert found.cells == [] and found.once == 5
    assert sections.confused_lines(found) == ["(5 pairs seen once)"]
    assert figures.confused_pairs({"metrics": metrics}) is None


def _pair(i: int, count: int = 6) -> dict:
    return {"from": f"a{i}", "to": f"b{i}", "kind": "asymmetric", "count": count, "share": 0.1,
            "reverse_count": 1, "ratio_to_median": 5.0, "example_ids": [i]}  # fmt: skip


def test_every_format_lists_the_same_pairs_and_counts_the_rest() -> None:
    """One limit (MAX_PAIRS) for text, markdown and HTML, and a note for the others."""
    issues = {"pairs": [_pair(i) for i in range(sections.MAX_PAIRS + 5)]}
    shown, note = sections.shown_pairs(issues)
    assert len(shown) == sections.MAX_PAIRS
    assert note == "+5 more pairs; --format json lists every pair"
    lines = sections.pair_lines(issues)
    assert len(lines) == sections.MAX_PAIRS + 1 and lines[-1] == f"({note})"
    assert sections.shown_pairs({"pairs": [_pair(0)]}) == ([_pair(0)], None)


def test_cifar_pairs_are_all_listed_in_every_format(cli: CliRun) -> None:
    args = ("scan", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet"))
    pairs = json.loads(cli(*args, "--format", "json").stdout)["label_issues"]["pairs"]
    assert len(pairs) == 11
    last = f"{pairs[-1]['from']} -> {pairs[-1]['to']}: {pairs[-1]['count']}"
    for fmt in ("text", "markdown"):
        assert last in cli(*args, "--format", fmt).stdout, fmt
    page = html.unescape(cli(*args, "--format", "html").stdout)
    assert page.count("<td>" + pairs[-1]["from"] + " -> " + pairs[-1]["to"] + "</td>") == 1


def test_numbers_read_the_same_in_every_format() -> None:
    """Thousands separators in the pair lines and the HTML pairs table; one rounding of the
    multiple (1,000x), two decimals for the suspect rate; the text's metric names on the page."""
    big = _pair(0, 1298) | {"reverse_count": 1195, "ratio_to_median": 1000.2, "kind": "symmetric"}
    (line,) = sections.pair_lines({"pairs": [big]})
    assert "a0 <-> b0: 1,298 (" in line and "reverse 1,195; 1,000x typical" in line
    data = _scan_data()
    data["label_issues"]["pairs"] = [big]
    page, _ = render_html(data)
    assert "<td>1,000x</td>" in page and "<td>1,298</td>" in page and "1000.0x" not in page
    assert "suspects (5.15%)" in page and "5.15% of 10,000 scored" in render_text(data)
    assert "balanced accuracy" in page and "balanced_accuracy" not in page
    assert "expected calibration error (15 bins)" in page


def test_the_imbalance_ratio_says_what_it_is_of(cli: CliRun, tmp_path: Path) -> None:
    """With empty classes the ratio is of the classes with samples: the card says so."""
    rows = ["id,label", *(f"{i},{'ab'[i % 2]}" for i in range(40))]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\ne\n")
    args = ("scan", "labels.csv", "--classes", "classes.txt")
    of = "largest / smallest of the 2 classes with samples; 3 have none"
    page = cli(*args, "--format", "html", cwd=tmp_path).stdout
    assert f"<b>1.00x</b><span>imbalance ratio ({of})</span>" in page
    assert f"imbalance ratio 1.00 ({of})" in cli(*args, cwd=tmp_path).stdout
    full = ("scan", str(CIFAR / "labels.csv"))
    assert "imbalance ratio 1.00 (largest / smallest non-empty class)" in cli(*full).stdout


def test_markdown_shows_a_quoted_command_as_code() -> None:
    assert md_prose("a class `x|y` and `labelaudit scan a|b`") == (
        "a class \\`x\\|y\\` and `labelaudit scan a|b`"
    )
    data = _scan_data()
    data["findings"] = [
        {"severity": "info", "code": "x", "message": "Run `labelaudit thresholds`."}
    ]
    data["warnings"] = ["class `odd` and `labelaudit gate`"]
    shown = render_markdown(data)
    assert "- **info** Run `labelaudit thresholds`." in shown
    assert "- class \\`odd\\` and `labelaudit gate`" in shown


def test_the_cifar_markdown_has_no_escaped_command(cli: CliRun) -> None:
    args = ("scan", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet"))
    shown = cli(*args, "--format", "markdown").stdout
    assert "(`labelaudit thresholds`)" in shown and "\\`labelaudit" not in shown


# ---------------------------------------------------------------- figures


def test_the_support_title_has_no_zero_clause() -> None:
    assert rare_and_empty(0, 9, 10) == "9 classes have no sample"
    assert rare_and_empty(0, 0, 10) == ""
    assert rare_and_empty(2, 1, 10) == "2 classes have fewer than 10 samples and 1 has no sample"
    assert rare_and_empty(1, 0, 10) == "1 class has fewer than 10 samples"
    title = figures.support(_support([500, *[0] * 9])).axes[0].get_title()
    assert title == "Support per class (10 classes)\n9 classes have no sample (in red)"
    title = figures.support(_support([50, 40])).axes[0].get_title()
    assert title == "Support per class (2 classes)"


def _support(counts: list[int], min_support: int = 10) -> dict:
    names = [f"k{i}" for i in range(len(counts))]
    return {
        "support": {
            "per_class": [{"class": n, "count": c} for n, c in zip(names, counts, strict=True)]
        },
        "imbalance": {
            "min_support": min_support,
            "rare_classes": [n for n, c in zip(names, counts, strict=True) if 0 < c < min_support],
            "zero_support_classes": [n for n, c in zip(names, counts, strict=True) if c == 0],
        },
    }


def test_support_bars_start_at_zero_and_empty_classes_draw_none() -> None:
    linear = figures.support(_support([500, 300, 200, 0, 0])).axes[0]
    assert linear.get_yscale() == "linear" and linear.get_ylim()[0] == 0
    bars = [p for p in linear.patches if p.get_height() > 0 and p.get_width() < 1]
    assert len(bars) == 3 and all(b.get_y() == 0 for b in bars)
    log = figures.support(_support([5000, 30, 1, 0, 0, 0])).axes[0]
    assert log.get_yscale() == "log" and log.get_ylim()[0] < 1
    bars = [p for p in log.patches if p.get_width() < 1]
    assert len(bars) == 3 and min(b.get_y() + b.get_height() for b in bars) == 1
    profile = figures.support(_support([12] * 150 + [3] * 100 + [0] * 50)).axes[0]
    for fill in profile.collections:  # the profile starts at zero too
        assert fill.get_paths()[0].vertices[:, 1].min() == 0
    small = figures.support(_support([4] * 300)).axes[0]  # all below the line: it still shows
    assert small.get_ylim()[1] > 10


def test_long_names_with_one_prefix_stay_distinct() -> None:
    names = [f"a very long class name number {i} with words" for i in range(12)]
    shown = figures.short_names(names)
    assert len(set(shown)) == 12 and all(len(s) <= 18 for s in shown)
    assert figures.short_names(["cat", "x" * 30]) == ["cat", "x" * 12 + "…" + "x" * 5]
    twins = ["x" * 20 + "1" + "y" * 30, "x" * 20 + "2" + "y" * 30]
    assert len(set(figures.short_names(twins, 10))) == 2


def test_the_heatmap_of_long_names_is_not_cut_off() -> None:
    names = [f"a very long class name number {i} with words" for i in range(25)]
    counts = np.random.default_rng(1).integers(0, 9, size=(25, 25)) + np.eye(25, dtype=int) * 50
    normalized = counts / counts.sum(axis=1, keepdims=True)
    data = {"metrics": {"confusion_matrix": {"classes": names, "counts": counts.tolist(),
                                             "normalized": normalized.tolist()}}}  # fmt: skip
    figure = figures.confusion(data)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    box, page = figure.axes[0].get_tightbbox(renderer), figure.bbox
    assert box.y0 >= page.y0 and box.y1 <= page.y1 and box.x0 >= page.x0
    shown = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert len(set(shown)) == len(shown)


def test_the_quality_legend_covers_no_label() -> None:
    data = _scan_data()
    figure = figures.quality_histogram(data)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    (cut,) = [t for t in figure.axes[0].texts if "cut" in t.get_text()]
    legend = figure.legends[0].get_window_extent(renderer)
    assert not legend.overlaps(cut.get_window_extent(renderer))
    assert not legend.overlaps(figure.axes[0].title.get_window_extent(renderer))


def _scan_data() -> dict:
    """A small scan report's data, made by hand (the fields the renderers read)."""
    classes = ["cat", "dog"]
    edges = np.linspace(0, 1, 21).tolist()
    counts = [5, 20, 40, 80, 120, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200,
              1000, 800, 600, 635]  # fmt: skip
    flagged = [5, 20, 40, 80, 120, 200, 50] + [0] * 13
    per_class = [
        {"class": c, "precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 5000} for c in classes
    ]
    avg = {"precision": 0.9, "recall": 0.9, "f1": 0.9}
    return {
        "command": "scan",
        "schema_version": "x",
        "dataset": {
            "source": "l.csv",
            "n_samples": 10000,
            "n_classes": 2,
            "task": "multiclass",
            "null_labels": 0,
            "predictions": "p.parquet",
        },
        "support": {"per_class": [{"class": c, "count": 5000, "share": 0.5} for c in classes]},
        "imbalance": {
            "ratio": 1.0,
            "normalized_entropy": 1.0,
            "effective_classes": 2.0,
            "min_support": 10,
            "rare_classes": [],
            "zero_support_classes": [],
        },
        "duplicates": {"duplicate_ids": 0, "duplicate_rows": 0, "conflicting_ids": 0},
        "multilabel": None,
        "metrics": {
            "n_scored": 10000,
            "score_mode": "probs",
            "accuracy": 0.9,
            "balanced_accuracy": 0.9,
            "top_5_accuracy": None,
            "log_loss": 0.3,
            "expected_calibration_error": 0.02,
            "per_class": per_class,
            "micro": avg,
            "macro": avg,
            "weighted": avg,
            "calibration": [],
        },
        "label_issues": {
            "n_suspects": 515,
            "suspect_rate": 0.0515,
            "n_scored": 10000,
            "rule": "r",
            "quality_score": "q",
            "estimated_errors": 500,
            "estimated_noise_rate": 0.05,
            "health_score": 0.9,
            "top_suspects": [],
            "pairs": [],
            "per_class": [],
            "quality_histogram": {
                "edges": edges,
                "counts": counts,
                "flagged_counts": flagged,
                "cut": 0.336,
            },
        },
        "findings": [],
        "warnings": [],
    }
