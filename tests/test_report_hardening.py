"""Class names that look like syntax (mathtext) are shown as written in every report format, and
never crash a figure."""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from labelaudit.cli import cli
from labelaudit.report import figures

MATH = ["a $x^$", "50% $", "_x_", "back\\slash", "$\\frac{$", "plain"]


def invoke(*args: str, cwd: Path, env: dict[str, str] | None = None):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner(env=env).invoke(cli, list(args))
    finally:
        os.chdir(old)


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


def test_mathtext_class_names_draw_and_show_in_the_page(tmp_path: Path) -> None:
    write_data(tmp_path, MATH)
    result = invoke("scan", "labels.csv", "--preds", "preds.parquet", "--format", "html",
                    "-o", "page.html", "--plots-dir", "plots", cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    for name in MATH:
        assert html.escape(name) in page, name
    written = {p.stem for p in (tmp_path / "plots").glob("*.png")}
    assert {"support", "confusion_matrix", "confused_pairs", "noise_matrix"} <= written


def test_mathtext_class_names_in_diff_and_thresholds_pages(tmp_path: Path) -> None:
    write_data(tmp_path, MATH)
    diff = invoke("diff", "labels.csv", "labels_v2.csv", "--format", "html", "-o", "diff.html",
                  "--plots-dir", "diff-plots", cwd=tmp_path)  # fmt: skip
    assert diff.exit_code == 0, diff.output
    assert {p.stem for p in (tmp_path / "diff-plots").glob("*.png")} == {
        "diff_support",
        "transitions",
    }
    tuned = invoke("thresholds", "labels.csv", "--preds", "preds.parquet", "-o", "t.json",
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
        "imbalance": {"min_support": 6},
    }
    with matplotlib.rc_context({"text.usetex": True}):  # would hand the names to LaTeX
        png, width, height = figures.draw_png(figures.support, data)
    assert png.startswith(b"\x89PNG") and width > 0 and height > 0
