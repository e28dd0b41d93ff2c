"""The HTML report: self-contained, every figure present and sized, and as a browser shows it."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from labelaudit.report import figures

from .conftest import FIXTURES, CliRun

MULTI = FIXTURES / "synthetic-multiclass"
SCAN_FIGURES = {
    "support",
    "per_class_metrics",
    "confusion_matrix",
    "confused_pairs",
    "reliability",
    "label_quality",
    "noise_matrix",
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def scan_page(cli: CliRun, tmp_path: Path, *extra: str) -> str:
    out = tmp_path / "report.html"
    result = cli(
        "scan",
        str(MULTI / "labels.csv"),
        "--preds",
        str(MULTI / "preds.parquet"),
        "--format",
        "html",
        "-o",
        str(out),
        *extra,
    )
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def images_of(page: str) -> list[str]:
    return re.findall(r"<img [^>]*>", page)


def page_of(result, path: Path, exit_code: int = 0) -> str:
    """The page a command wrote, after checking its exit code and that it is self-contained."""
    assert result.exit_code == exit_code, result.output
    page = path.read_text(encoding="utf-8")
    assert_self_contained(page)
    return page


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for forbidden in ("<script", "<link", "@import", "url(", "http://", "https://"):
        assert forbidden not in lowered, forbidden
    for tag in images_of(page):
        assert re.search(r'src="data:image/(png|jpeg);base64,', tag), tag[:80]
        assert re.search(r'width="\d+"', tag) and re.search(r'height="\d+"', tag), tag[:80]


def test_scan_page_is_self_contained_with_every_figure(cli: CliRun, tmp_path: Path) -> None:
    page = scan_page(cli, tmp_path, "--plots-dir", str(tmp_path / "plots"))
    assert_self_contained(page)
    assert set(re.findall(r'<figure id="fig-(\w+)"', page)) == SCAN_FIGURES
    for text in (
        "Label audit",
        "samples",
        "macro F1",
        "suspects",
        "Top 20 suspects",
        "Recommendations",
        "Findings",
        "Least healthy classes",
    ):
        assert text in page, text
    written = {p.stem: p.read_bytes() for p in (tmp_path / "plots").glob("*.png")}
    assert set(written) == SCAN_FIGURES
    embedded = re.search(r'id="fig-support"><img src="data:image/png;base64,([^"]+)"', page)
    assert base64.b64decode(embedded.group(1)) == written["support"]
    assert oct((tmp_path / "report.html").stat().st_mode & 0o777) != oct(0o600)


def test_summary_numbers_come_from_the_report(cli: CliRun, tmp_path: Path) -> None:
    page = scan_page(cli, tmp_path)
    result = cli(
        "scan",
        str(MULTI / "labels.csv"),
        "--preds",
        str(MULTI / "preds.parquet"),
        "--format",
        "json",
    )
    data = json.loads(result.stdout)
    assert f"<b>{data['metrics']['accuracy']:.4f}</b><span>accuracy</span>" in page
    first = data["label_issues"]["top_suspects"][0]
    assert f"<td>{first['id']}</td>" in page


def test_plots_dir_with_text_format(cli: CliRun, tmp_path: Path) -> None:
    result = cli(
        "scan",
        str(MULTI / "labels.csv"),
        "--preds",
        str(MULTI / "preds.parquet"),
        "--plots-dir",
        str(tmp_path / "figs"),
    )
    assert result.exit_code == 0, result.output
    assert "3,000 samples, 8 classes" in result.stdout
    assert {p.stem for p in (tmp_path / "figs").glob("*.png")} == SCAN_FIGURES


def test_labels_only_and_multilabel_pages(cli: CliRun, tmp_path: Path) -> None:
    out = tmp_path / "labels.html"
    labels_only = cli("scan", str(MULTI / "labels.csv"), "--format", "html", "-o", str(out))
    page = page_of(labels_only, out)
    assert re.findall(r'<figure id="fig-(\w+)"', page) == ["support"]
    tags = FIXTURES / "synthetic-multilabel"
    result = cli(
        "scan",
        str(tags / "labels.csv"),
        "--preds",
        str(tags / "preds.parquet"),
        "--label-sep",
        "|",
        "--format",
        "html",
        "-o",
        str(out),
    )
    page = page_of(result, out)
    assert {"support", "per_class_metrics", "label_quality"} <= set(
        re.findall(r'<figure id="fig-(\w+)"', page)
    )


def test_diff_and_gate_pages(cli: CliRun, tmp_path: Path) -> None:
    out = tmp_path / "diff.html"
    result = cli(
        "diff",
        str(MULTI / "labels.csv"),
        str(MULTI / "labels_v2.csv"),
        "--preds",
        str(MULTI / "preds_v2.parquet"),
        "--format",
        "html",
        "-o",
        str(out),
    )
    page = page_of(result, out)
    assert set(re.findall(r'<figure id="fig-(\w+)"', page)) == {"diff_support", "transitions"}
    assert "Relabels judged by the model" in page
    (tmp_path / "labelaudit.toml").write_text("[gate]\nmax_suspect_rate = 0.01\n")
    gate = cli(
        "gate",
        str(MULTI / "labels.csv"),
        "--preds",
        str(MULTI / "preds.parquet"),
        "--baseline",
        str(MULTI / "labels_v2.csv"),
        "--format",
        "html",
        "-o",
        "gate.html",
        cwd=tmp_path,
    )
    page = page_of(gate, tmp_path / "gate.html", exit_code=1)
    assert '<div class="verdict fail">FAIL' in page
    assert "max_suspect_rate" in page
    assert set(re.findall(r'<figure id="fig-(\w+)"', page)) >= SCAN_FIGURES


def test_thresholds_page(cli: CliRun, tmp_path: Path) -> None:
    out = tmp_path / "thresholds.html"
    result = cli(
        "thresholds",
        str(MULTI / "labels.csv"),
        "--preds",
        str(MULTI / "preds.parquet"),
        "--html",
        str(out),
        "-o",
        str(tmp_path / "t.json"),
    )
    page = page_of(result, out)
    assert re.findall(r'<figure id="fig-(\w+)"', page) == ["threshold_curves"]
    assert "curves" not in json.loads((tmp_path / "t.json").read_text())


def test_f1_curves_equal_a_direct_computation() -> None:
    from labelaudit.core.thresholds import f1_curves

    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(4), size=500)
    positive = np.eye(4, dtype=bool)[rng.integers(0, 4, size=500)]
    grid, values = f1_curves(probabilities, positive, points=11)
    for c in range(4):
        for j, t in enumerate(grid):
            predicted = probabilities[:, c] >= t
            tp = (predicted & positive[:, c]).sum()
            denominator = predicted.sum() + positive[:, c].sum()
            assert values[c, j] == pytest.approx(2 * tp / denominator if denominator else 0.0)


def test_many_classes_show_the_most_confused() -> None:
    k = 60
    counts = np.diag(np.full(k, 100))
    counts[7, 42] = counts[42, 7] = 30  # two classes far more confused than the rest
    data = {
        "metrics": {
            "confusion_matrix": {
                "classes": [f"c{i}" for i in range(k)],
                "counts": counts.tolist(),
                "normalized": (counts / counts.sum(axis=1, keepdims=True)).tolist(),
            }
        }
    }
    drawn = figures.confusion(data)
    labels = [t.get_text() for t in drawn.axes[0].get_xticklabels()]
    assert len(labels) == figures.MAX_MATRIX_CLASSES
    assert "c7" in labels and "c42" in labels
    assert "the 20 most confused of 60 classes" in drawn.axes[0].get_title()


def test_media_thumbnails_for_suspects(cli: CliRun, tmp_path: Path) -> None:
    from PIL import Image

    result = cli(
        "scan",
        str(MULTI / "labels.csv"),
        "--preds",
        str(MULTI / "preds.parquet"),
        "--format",
        "json",
        "--top",
        "5",
    )
    top = [s["id"] for s in json.loads(result.stdout)["label_issues"]["top_suspects"]]
    labels = pl.read_csv(MULTI / "labels.csv")
    (tmp_path / "img").mkdir()
    for i, sample in enumerate(top[:3]):
        Image.new("RGB", (40, 30), (40 * i, 90, 200)).save(tmp_path / "img" / f"{sample}.png")
    paths = labels["id"].map_elements(lambda i: f"img/{i}.png", return_dtype=pl.String)
    urls = {top[3]: f"https://example.org/{top[3]}.jpg"}
    media = [urls.get(i, p) for i, p in zip(labels["id"], paths, strict=True)]
    labels.with_columns(pl.Series("path", media)).write_csv(tmp_path / "labels.csv")
    out = cli(
        "scan",
        "labels.csv",
        "--preds",
        str(MULTI / "preds.parquet"),
        "--top",
        "5",
        "--media-col",
        "path",
        "--format",
        "html",
        "-o",
        "r.html",
        cwd=tmp_path,
    )
    assert out.exit_code == 0, out.output
    page = (tmp_path / "r.html").read_text()
    assert len(re.findall(r'<img class="thumb" src="data:image/jpeg;base64,', page)) == 3
    assert f'<a href="https://example.org/{top[3]}.jpg">link</a>' in page  # linked, not fetched
    assert f"img/{top[4]}.png" in page  # missing file: the path is shown
    bad = cli(
        "scan",
        "labels.csv",
        "--preds",
        str(MULTI / "preds.parquet"),
        "--media-col",
        "nope",
        "--format",
        "html",
        "-o",
        "x.html",
        cwd=tmp_path,
    )
    assert bad.exit_code == 2
    assert "no column 'nope'" in bad.output
    assert not (tmp_path / "x.html").exists()


CHECKER = """<script>
window.addEventListener('load', () => {
  const images = [...document.images].map(i => [i.naturalWidth, i.naturalHeight, i.width]);
  const fetched = performance.getEntriesByType('resource').map(r => r.name);
  document.body.setAttribute('data-check', JSON.stringify({images, fetched}));
});
</script></body>"""


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed here (Debian "
    "package 'chromium'; .ci/run installs it)",
)
def test_page_renders_in_headless_chromium(cli: CliRun, tmp_path: Path) -> None:
    page = scan_page(cli, tmp_path)
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", CHECKER), encoding="utf-8")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
    ]
    run = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", checked.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    found = re.search(r'data-check="([^"]+)"', run.stdout)
    assert found, run.stdout[:500]
    report = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(report["images"]) == len(SCAN_FIGURES)
    assert all(w > 0 and h > 0 and shown > 0 for w, h, shown in report["images"])
    assert report["fetched"] == []
    shot = tmp_path / "screenshot.png"
    subprocess.run(
        [
            CHROMIUM,
            *flags,
            "--hide-scrollbars",
            "--window-size=1100,1600",
            f"--screenshot={shot}",
            (tmp_path / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000


def test_many_classes_give_bounded_matrices_in_every_format(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above MAX_JSON_MATRIX_CLASSES classes the JSON holds the largest confusion cells instead
    of the K x K matrices, and every format still renders."""
    monkeypatch.setattr("labelaudit.pipelines.metrics_sections.MAX_JSON_MATRIX_CLASSES", 3)
    monkeypatch.setattr("labelaudit.pipelines.label_issues.MAX_JSON_MATRIX_CLASSES", 3)
    rng = np.random.default_rng(0)
    n, k = 400, 5
    names = [f"k{j}" for j in range(k)]
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pl.DataFrame({"id": np.arange(n), "label": [names[i] for i in labels]}).write_csv(
        tmp_path / "l.csv"
    )
    columns = {c: probs[:, j] for j, c in enumerate(names)}
    pl.DataFrame({"id": np.arange(n), **columns}).write_csv(tmp_path / "p.csv")
    result = cli("scan", "l.csv", "--preds", "p.csv", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    confusion = data["metrics"]["confusion_matrix"]
    assert confusion["counts"] is None and confusion["normalized"] is None
    assert data["label_issues"]["noise_matrix"]["given_given_true"] is None
    pairs = confusion["top_pairs"]
    predicted = probs.argmax(axis=1)
    first = pairs[0]
    given, guess = names.index(first["from"]), names.index(first["to"])
    assert first["count"] == int(((labels == given) & (predicted == guess)).sum())
    assert [p["count"] for p in pairs] == sorted((p["count"] for p in pairs), reverse=True)
    for fmt in ("text", "markdown", "html"):
        rendered = cli("scan", "l.csv", "--preds", "p.csv", "--format", fmt, "-o", f"r.{fmt}")
        assert rendered.exit_code == 0, rendered.output
    assert "Most confused pairs" in (tmp_path / "r.text").read_text()


def test_text_and_markdown_tables_list_at_most_fifty_classes(cli, tmp_path: Path) -> None:
    """With many classes the human tables list the rarest classes and the lowest F1 (a note
    says so); the JSON keeps every class."""
    rng = np.random.default_rng(1)
    n, k = 600, 60
    names = [f"k{j:02d}" for j in range(k)]
    labels = rng.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k), n)
    pl.DataFrame({"id": np.arange(n), "label": [names[i] for i in labels]}).write_csv(
        tmp_path / "l.csv"
    )
    columns = {c: probs[:, j] for j, c in enumerate(names)}
    pl.DataFrame({"id": np.arange(n), **columns}).write_csv(tmp_path / "p.csv")
    (tmp_path / "classes.txt").write_text("\n".join(names) + "\n")
    args = ["scan", "l.csv", "--preds", "p.csv", "--classes", "classes.txt"]
    text = cli(*args).stdout
    assert "the 50 smallest of 60 classes" in text and "the 50 lowest F1 of 60 classes" in text
    data = json.loads(cli(*args, "--format", "json").stdout)
    counts = {c["class"]: c["count"] for c in data["support"]["per_class"]}
    largest = max(counts, key=lambda c: (counts[c], c))
    support_part = text.split("Metrics")[0]
    assert f"  {largest} " not in support_part  # the largest class is past the 50 smallest
    assert len(data["support"]["per_class"]) == 60
    markdown = cli(*args, "--format", "markdown").stdout
    assert "the 50 smallest of 60 classes" in markdown
    changed = np.where(rng.random(n) < 0.3, rng.integers(0, k, n), labels)
    pl.DataFrame({"id": np.arange(n), "label": [names[i] for i in changed]}).write_csv(
        tmp_path / "l2.csv"
    )
    for fmt in ("text", "markdown"):  # diff and thresholds too
        diff = cli("diff", "l.csv", "l2.csv", "--format", fmt).stdout
        assert "the 50 most changed of 60 classes" in diff
        assert len(diff.splitlines()) < 80
        tuned = cli("thresholds", "l.csv", "--preds", "p.csv", "--classes", "classes.txt",
                    "--format", fmt).stdout  # fmt: skip
        assert "the 50 most moved (precision and recall) of 60 classes" in tuned
        assert len(tuned.splitlines()) < 80


def test_the_support_chart_of_many_classes_is_one_profile() -> None:
    """Past PROFILE_ABOVE classes the support chart draws the sorted counts as one profile (fast,
    readable), not one bar a class."""
    counts = np.random.default_rng(0).zipf(1.5, 5000).clip(0, 5000)
    counts[:90] = 0  # classes without a sample, as --classes can give
    names = [f"c{i}" for i in range(counts.size)]
    data = {
        "support": {
            "per_class": [{"class": n, "count": int(c)} for n, c in zip(names, counts, strict=True)]
        },
        "imbalance": {
            "min_support": 10,
            "rare_classes": [n for n, c in zip(names, counts, strict=True) if 0 < c < 10],
            "zero_support_classes": names[:90],
        },
    }
    figure = figures.support(data)
    axes = figure.axes[0]
    assert len(axes.patches) == 1 and len(axes.collections) == 2  # the patch: the empty span
    rare = len(data["imbalance"]["rare_classes"])
    assert axes.get_title() == (
        f"Support per class (5,000 classes)\n{rare:,} classes have fewer than 10 samples and 90 "
        "have no sample (in red)"
    )


def test_transitions_of_many_classes_show_the_most_changed() -> None:
    """Past MAX_MATRIX_CLASSES classes the transitions figure keeps the classes with the most
    changes (moves in and out, added and removed rows), found from the moves alone."""
    from labelaudit.report._format import MAX_MATRIX_CLASSES

    k = MAX_MATRIX_CLASSES + 30
    classes = [f"k{i:03d}" for i in range(k)]
    moves = [{"from": c, "to": c, "count": 100} for c in classes]  # unchanged rows
    busy = classes[-MAX_MATRIX_CLASSES:]  # the last classes change most
    moves += [{"from": a, "to": b, "count": 7} for a, b in itertools.pairwise(busy)]
    moves += [{"from": None, "to": busy[0], "count": 9}, {"from": busy[-1], "to": None, "count": 9}]
    moves += [{"from": classes[0], "to": classes[1], "count": 1}]
    figure = figures.transitions({"dataset": {"classes": classes}, "transitions": moves})
    axes = figure.axes[0]
    shown = [t.get_text() for t in axes.get_yticklabels()]
    assert shown == [*busy, "(added)"]
    assert f"the {MAX_MATRIX_CLASSES} most changed of {k} classes" in axes.get_title()


def test_the_diff_support_chart_shows_the_30_largest_changes() -> None:
    rows = [{"class": f"c{i}", "old": i, "new": 2 * i, "delta": i} for i in range(100)]
    figure = figures.diff_support({"support": rows})
    assert "the 30 largest changes of 100" in figure.axes[0].get_title()


# ---------------------------------------------------------------- one figure, one phrase


def test_the_support_chart_counts_rare_classes_as_the_text_does(
    cli: CliRun, tmp_path: Path
) -> None:
    """Rare classes are those with samples, but fewer than --min-support (the JSON's
    imbalance.rare_classes); empty classes are counted apart. The chart's title, the text report
    and the finding use one figure in one phrase (`_text.fewer_than`)."""
    from labelaudit._text import fewer_than

    rows = ["id,label", *(f"{i},a" for i in range(20)), "20,b", "21,b", "22,b", "23,c"]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\n")  # d: no sample
    data = json.loads(
        cli("scan", "labels.csv", "--classes", "classes.txt", "--format", "json").stdout
    )
    text = cli("scan", "labels.csv", "--classes", "classes.txt").stdout
    phrase = fewer_than(len(data["imbalance"]["rare_classes"]), data["imbalance"]["min_support"])
    assert phrase == "2 classes have fewer than 10 samples"
    assert f"{phrase}: b, c." in text
    rare = next(f for f in data["findings"] if f["code"] == "rare_classes")
    assert rare["message"].startswith(phrase)
    title = figures.support(data).axes[0].get_title()
    assert title == f"Support per class (4 classes)\n{phrase} and 1 has no sample (in red)"


def test_the_min_support_label_overlaps_no_bar() -> None:
    """The reference line's label sits in the right margin, beside the axes, not on the last
    bar (which, sorted largest first, is the smallest and often just below the line)."""
    counts = [50, 40, 30, 20, 12, 11, 10, 9]
    names = [f"k{i}" for i in range(len(counts))]
    data = {
        "support": {
            "per_class": [{"class": n, "count": c} for n, c in zip(names, counts, strict=True)]
        },
        "imbalance": {"min_support": 10, "rare_classes": ["k7"], "zero_support_classes": []},
    }
    figure = figures.support(data)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    axes = figure.axes[0]
    (label,) = [t for t in axes.texts if "min support" in t.get_text()]
    box = label.get_window_extent(renderer)
    assert box.x0 >= axes.get_window_extent(renderer).x1
    assert box.x1 <= figure.bbox.x1  # inside the picture
    assert not any(box.overlaps(bar.get_window_extent(renderer)) for bar in axes.patches)


def test_the_confused_pairs_chart_needs_two_pairs_counted_twice() -> None:
    """At thousands of classes and few errors every confused pair may be one sample: a pair
    counted once is no evidence, so it is left out (`_sections.confused_cells`, the lists' rule
    too), and the chart is drawn only when two pairs or more remain, with whole-sample ticks."""
    singles = [{"from": f"c{i}", "to": f"c{i + 1}", "count": 1, "share": 0.1} for i in range(20)]
    listed = {"metrics": {"confusion_matrix": {"counts": None, "top_pairs": singles}}}
    assert figures.confused_pairs(listed) is None
    singles[5]["count"] = 2
    singles.sort(key=lambda p: -p["count"])
    assert figures.confused_pairs(listed) is None  # one pair is no ranking
    singles[7]["count"] = 3
    singles.sort(key=lambda p: -p["count"])
    figure = figures.confused_pairs(listed)
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["c7 -> c8", "c5 -> c6"]
    assert axes.get_title() == "Top 2 confused pairs (and 18 pairs seen once)"
    figure.canvas.draw()
    assert all(float(t).is_integer() for t in axes.get_xticks())
    dense = np.eye(4, dtype=int) * 5 + np.roll(np.eye(4, dtype=int), 1, axis=1)  # each pair once
    matrix = {"counts": dense.tolist(), "classes": ["a", "b", "c", "d"]}
    assert figures.confused_pairs({"metrics": {"confusion_matrix": matrix}}) is None
    dense[0, 1] = dense[1, 2] = 2
    matrix["counts"] = dense.tolist()
    assert figures.confused_pairs({"metrics": {"confusion_matrix": matrix}}) is not None


def test_backticked_commands_are_code_in_the_page(cli: CliRun, tmp_path: Path) -> None:
    """The recommendations quote `labelaudit thresholds` in backticks (JSON and text keep them);
    the page shows it as <code>, never with the backticks, and leaves other backticks alone."""
    from labelaudit.report.html import _prose

    page = scan_page(cli, tmp_path)
    assert "<code>labelaudit thresholds</code>" in page
    assert "`labelaudit" not in page
    assert _prose("a class `x` and `labelaudit scan a<b`") == (
        "a class `x` and <code>labelaudit scan a&lt;b</code>"
    )


def test_a_pair_counted_both_ways_has_one_arrow_in_every_format(cli: CliRun) -> None:
    """Anomalous pairs: `a <-> b` when both ways are counted, `a -> b` when one dominates, in
    the text, markdown and HTML reports alike (`_text.pair_arrow`)."""
    import html

    from labelaudit._text import pair_arrow

    args = ("scan", str(FIXTURES / "cifar10-test" / "labels.csv"), "--preds",
            str(FIXTURES / "cifar10-test" / "preds.parquet"))  # fmt: skip
    pairs = json.loads(cli(*args, "--format", "json").stdout)["label_issues"]["pairs"]
    assert {p["kind"] for p in pairs} == {"symmetric", "asymmetric"}
    shown = {fmt: html.unescape(cli(*args, "--format", fmt).stdout) for fmt in ("text", "markdown")}
    shown["html"] = html.unescape(cli(*args, "--format", "html").stdout)
    for p in pairs:
        expected = f"{p['from']} {pair_arrow(p['kind'])} {p['to']}"
        for fmt, output in shown.items():
            assert expected in output, (fmt, expected)
        other = {"symmetric": "->", "asymmetric": "<->"}[p["kind"]]
        assert f"<td>{p['from']} {other} {p['to']}</td>" not in shown["html"]
