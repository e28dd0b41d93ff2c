"""The report's figures, drawn with matplotlib (Agg, no pyplot) from the report's aggregates.

Each function takes the JSON-shaped report data and returns a Figure, or None when the report has
nothing for it. They select and arrange (the most confused classes, the lowest F1) but never
compute a statistic: every number comes from the report, so the figures agree with its JSON.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from labelaudit import _text
from labelaudit._deps import import_optional
from labelaudit.report import _sections as sections
from labelaudit.report._format import MAX_MATRIX_CLASSES
from labelaudit.report.class_figures import (
    class_matrix,
    class_ticks,
    heatmap,
    largest_first,
    new_figure,
    plain,
    short_names,
)

# Every figure a page may draw, by the name its PNG gets under --plots-dir (checked before a run
# so that no figure can replace an input or another output).
FIGURE_NAMES = (
    "support",
    "per_class_metrics",
    "confusion_matrix",
    "confused_pairs",
    "reliability",
    "label_quality",
    "noise_matrix",
    "diff_support",
    "transitions",
    "threshold_curves",
)
MAX_BARS = 30  # classes listed in a per-class chart
PALETTE = {"main": "#3465a4", "second": "#f0a030", "third": "#4e9a06", "alert": "#c4302b"}
# Text settings every figure is drawn under, whatever the user's matplotlibrc says: with usetex,
# class names would go to LaTeX; `plain()` relies on mathtext parsing being on.
TEXT_RC = {"text.usetex": False, "text.parse_math": True}


def draw_png(draw: Any, data: dict[str, Any]) -> tuple[bytes, int, int] | None:
    """Draw one figure with `draw` and return its PNG bytes, width and height in pixels (None
    when the report has nothing for it), under TEXT_RC: tick labels are made while saving."""
    with import_optional("matplotlib").rc_context(TEXT_RC), warnings.catch_warnings():
        # A name in a script the font lacks is drawn as boxes (the tables show it); matplotlib's
        # warning per missing glyph would only be noise on stderr.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        figure = draw(data)
        if figure is None:
            return None
        width, height = (round(v) for v in figure.get_size_inches() * figure.dpi)
        return png_bytes(figure), width, height


def png_bytes(figure: Any) -> bytes:
    """The figure as PNG bytes (fixed metadata, so the same report gives the same bytes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


PROFILE_ABOVE = 200  # above this many classes the support chart is a profile, not bars


def support(data: dict[str, Any]) -> Any:
    """Samples per class, largest first, on a log scale when counts span a wide range."""
    rows = sorted(data["support"]["per_class"], key=lambda r: -r["count"])
    if not rows:
        return None
    min_support = data["imbalance"]["min_support"]
    counts = np.array([r["count"] for r in rows], dtype=float)
    figure = new_figure(7.5, 3.4)
    axes = figure.add_subplot()
    present = counts > 0  # sorted largest first: the empty classes are the last ones
    smallest = counts[present].min() if present.any() else 1.0
    log = counts.max() / smallest > 20
    # Bars start at 0 on a linear axis; on a log axis at 0.5, below a class of one sample. An
    # empty class has no bar (a stub would read as one sample): its place is shaded instead.
    base = 0.5 if log else 0.0
    if len(rows) <= PROFILE_ABOVE:
        x = np.flatnonzero(present)
        colors = [PALETTE["alert"] if c < min_support else PALETTE["main"] for c in counts[x]]
        axes.bar(x, counts[x] - base, bottom=base, color=colors, width=0.8)
    else:  # one bar a class would be thousands of patches: the sorted counts as one profile
        x = np.arange(len(rows))
        rare_part = present & (counts < min_support)
        shown = np.maximum(counts, base)
        axes.fill_between(x, shown, base, where=present & ~rare_part, step="mid",
                          color=PALETTE["main"])  # fmt: skip
        axes.fill_between(x, shown, base, where=rare_part, step="mid", color=PALETTE["alert"])
    axes.set_xlim(-0.5, len(rows) - 0.5)
    if log:
        axes.set_yscale("log")
    empty = int((~present).sum())
    if empty:
        first = len(rows) - empty
        axes.axvspan(first - 0.5, len(rows) - 0.5, color=PALETTE["alert"], alpha=0.12, lw=0)
        axes.text(
            (first - 0.5 + len(rows) - 0.5) / 2,
            0.5,
            f"{empty:,} empty",
            transform=axes.get_xaxis_transform(),
            rotation=90 if empty < 0.08 * len(rows) else 0,
            ha="center",
            va="center",
            fontsize=8,
            color=PALETTE["alert"],
        )
    axes.axhline(min_support, color=PALETTE["alert"], linestyle="--", linewidth=1)
    axes.set_ylim(bottom=base)  # after the line: the top still includes it
    # The line's label in the right margin, at its height: inside the axes it would sit on a bar.
    axes.text(
        1.01,
        min_support,
        f"min support\n{min_support:,}",
        transform=axes.get_yaxis_transform(),
        va="center",
        ha="left",
        fontsize=8,
        color=PALETTE["alert"],
        clip_on=False,
    )
    class_ticks(axes, [r["class"] for r in rows])
    axes.set_ylabel("samples")
    phrase = rare_phrase(data)
    title = f"Support per class ({_text.count(len(rows), 'class')})"
    axes.set_title(title + (f"\n{phrase}" if phrase else ""))
    return figure


def rare_phrase(data: dict[str, Any]) -> str:
    """What the support chart colours red, counted as the report's JSON counts them: the rare
    classes (`imbalance.rare_classes`, in the finding's words) and the empty ones apart, with
    no "0 classes" clause ('' when there are neither)."""
    imbalance = data["imbalance"]
    rare, empty = len(imbalance["rare_classes"]), len(imbalance["zero_support_classes"])
    phrase = _text.rare_and_empty(rare, empty, imbalance["min_support"])
    return phrase + (" (in red)" if phrase else "")


def confusion(data: dict[str, Any]) -> Any:
    """Row-normalized confusion matrix; with many classes, the most confused ones."""
    section = (data.get("metrics") or {}).get("confusion_matrix")
    if not section or section["normalized"] is None:
        return None
    return class_matrix(
        np.array(section["normalized"], dtype=float),
        section["classes"],
        "Confusion matrix, row-normalized (recall on the diagonal)",
        ("most confused", "share"),
        ("given label", "predicted label", "Blues"),
        selection=np.array(section["counts"], dtype=float),
    )


def per_class_metrics(data: dict[str, Any]) -> Any:
    """Precision, recall and F1 per class, lowest F1 first."""
    metrics = data.get("metrics") or {}
    rows = [r for r in metrics.get("per_class", []) if r["support"] > 0]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (r["f1"], r["class"]))
    total = len(rows)
    rows = rows[:MAX_BARS]
    figure = new_figure(7.5, max(2.4, 0.24 * len(rows) + 1.1))
    axes = figure.add_subplot()
    positions = np.arange(len(rows))[::-1]
    for key, marker, color in (
        ("precision", "o", "main"),
        ("recall", "s", "second"),
        ("f1", "D", "third"),
    ):
        axes.scatter(
            [r[key] for r in rows],
            positions,
            marker=marker,
            s=22,
            label=key,
            color=PALETTE[color],
            zorder=3,
        )
    axes.set_yticks(positions, short_names([r["class"] for r in rows]), fontsize=8)
    axes.set_xlim(-0.02, 1.02)
    axes.grid(axis="x", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8, ncols=3)
    shown = f" (the {len(rows)} lowest F1 of {total})" if total > len(rows) else ""
    axes.set_title(f"Precision, recall and F1 per class{shown}")
    return figure


def reliability(data: dict[str, Any]) -> Any:
    """Accuracy against confidence per bin, the diagonal of perfect calibration, and the ECE."""
    metrics = data.get("metrics") or {}
    bins = [b for b in metrics.get("calibration", []) if b["count"]]
    if not bins:
        return None
    figure = new_figure(4.8, 4.0)
    axes = figure.add_subplot()
    lower = np.array([b["lower"] for b in bins])
    width = np.array([b["upper"] - b["lower"] for b in bins])
    accuracy = np.array([b["accuracy"] for b in bins])
    confidence = np.array([b["mean_confidence"] for b in bins])
    axes.bar(
        lower,
        accuracy,
        width=width,
        align="edge",
        color=PALETTE["main"],
        alpha=0.8,
        edgecolor="white",
        label="accuracy",
    )
    axes.bar(
        lower,
        confidence - accuracy,
        bottom=accuracy,
        width=width,
        align="edge",
        color=PALETTE["alert"],
        alpha=0.35,
        label="gap to confidence",
    )
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence (top score)")
    axes.set_ylabel("accuracy")
    axes.legend(loc="upper left", fontsize=8)
    ece = metrics["expected_calibration_error"]
    axes.set_title(f"Reliability diagram (ECE {ece:.4f})")
    return figure


def quality_histogram(data: dict[str, Any]) -> Any:
    """Label quality of every scored sample, the flagged ones in red, and the suspect cut."""
    issues = data.get("label_issues") or {}
    histogram = issues.get("quality_histogram")
    if not histogram or not sum(histogram["counts"]):
        return None
    edges = np.array(histogram["edges"])
    figure = new_figure(7.5, 3.2)
    axes = figure.add_subplot()
    widths = np.diff(edges)
    axes.bar(
        edges[:-1],
        histogram["counts"],
        width=widths,
        align="edge",
        color=PALETTE["main"],
        alpha=0.75,
        label="all scored samples",
    )
    axes.bar(
        edges[:-1],
        histogram["flagged_counts"],
        width=widths,
        align="edge",
        color=PALETTE["alert"],
        label="flagged as suspects",
    )
    if histogram["cut"] is not None:
        axes.axvline(histogram["cut"], color=PALETTE["alert"], linestyle="--", linewidth=1)
        axes.text(
            histogram["cut"],
            axes.get_ylim()[1] * 0.9,
            f" cut {histogram['cut']:.3f}",
            color=PALETTE["alert"],
            fontsize=8,
        )
    axes.set_yscale("log")
    axes.set_xlabel(f"label quality ({plain(issues['quality_score'])}; low = suspect)")
    axes.set_ylabel("samples")
    # Below the figure, beside nothing drawn: inside the axes it covered the cut's label.
    figure.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    axes.set_title(f"Label quality: {issues['n_suspects']:,} of {issues['n_scored']:,} flagged")
    return figure


def projection(data: dict[str, Any], legend_classes: int = 10) -> Any:
    """A sample of the embedded rows on their first two principal components, coloured by
    label; outliers as crosses, near-duplicates ringed, rows whose neighbours mostly disagree
    with their label edged in red."""
    points = data.get("projection")
    if not points or not points["x"]:
        return None
    x, y = np.array(points["x"]), np.array(points["y"])
    figure = new_figure(7.5, 5.0)
    axes = figure.add_subplot()
    colours = import_optional("matplotlib").colormaps[
        "tab10" if len(points["classes"]) <= 10 else "tab20"
    ]
    labels = np.array(points["label"]) if points["label"] else np.zeros(x.size, dtype=int)
    plain_rows = ~np.array(points["outlier"])
    legend_names = short_names(list(points["classes"][:legend_classes]))
    for code in np.unique(labels):
        rows = (labels == code) & plain_rows
        name = legend_names[int(code)] if points["label"] and code < legend_classes else "rows"
        shown = name if code < legend_classes else None
        colour = colours(int(code) % colours.N)
        axes.scatter(x[rows], y[rows], s=6, color=colour, alpha=0.6, label=shown, linewidths=0)
    disagree = np.array(points["disagrees"])
    axes.scatter(x[disagree], y[disagree], s=14, facecolors="none", edgecolors=PALETTE["alert"],
                 linewidths=0.7, label="neighbours disagree with the label")  # fmt: skip
    duplicate = np.array(points["duplicate"])
    axes.scatter(x[duplicate], y[duplicate], s=40, facecolors="none", edgecolors="black",
                 linewidths=0.8, label="near-duplicate")  # fmt: skip
    outlier = np.array(points["outlier"])
    axes.scatter(x[outlier], y[outlier], s=30, marker="x", color="black", linewidths=1.0,
                 label="outlier")  # fmt: skip
    axes.set_xlabel("first principal component")
    axes.set_ylabel("second principal component")
    every = points.get("every_row", False)
    axes.set_title(f"Embeddings: {'all' if every else 'a sample of'} {x.size:,} rows")
    axes.legend(loc="best", fontsize=7, markerscale=1.5)
    return figure


def group_rates(data: dict[str, Any], column: str, limit: int = 30) -> Any:
    """Each group's suspect rate with its 95% Wilson interval (the first `limit` groups)."""
    groups = [
        g for g in (data.get("groups") or {}).get(column, []) if g["suspect_rate"] is not None
    ]
    if not groups:
        return None
    groups = groups[:limit]
    rates = np.array([g["suspect_rate"] for g in groups])
    low = rates - np.array([g["suspect_rate_interval"][0] for g in groups])
    high = np.array([g["suspect_rate_interval"][1] for g in groups]) - rates
    flagged = np.array([g["flagged"] for g in groups])
    figure = new_figure(7.5, 0.9 + 0.28 * len(groups))
    axes = figure.add_subplot()
    y = np.arange(len(groups))[::-1]
    colours = [PALETTE["alert"] if f else PALETTE["main"] for f in flagged]
    axes.errorbar(rates, y, xerr=[low, high], fmt="none", ecolor="grey", capsize=2)
    axes.scatter(rates, y, color=colours, zorder=3)
    overall = sum(g["n_suspects"] for g in groups) / max(sum(g["n_scored"] for g in groups), 1)
    axes.axvline(overall, color="grey", linestyle="--", linewidth=1)
    axes.set_yticks(y, short_names([g["group"] for g in groups], 24), fontsize=8)
    axes.set_xlabel("suspect rate")
    axes.set_title(f"Suspects by {plain(column)}")
    return figure


def annotator_quality(data: dict[str, Any]) -> Any:
    """Each annotator's estimated accuracy against its agreement with the majority vote, dot
    size by its number of labels; flagged ones in red."""
    people = [p for p in data.get("annotators") or [] if p["quality"] is not None]
    if not people:
        return None
    quality = np.array([p["quality"] for p in people])
    majority = np.array([p["agreement_with_majority"] for p in people])
    labels = np.array([p["n_labels"] for p in people], dtype=float)
    flagged = np.array([p["flagged"] for p in people])
    size = 15 + 120 * labels / max(labels.max(), 1)
    figure = new_figure(6.5, 4.2)
    axes = figure.add_subplot()
    axes.scatter(majority[~flagged], quality[~flagged], s=size[~flagged], color=PALETTE["main"],
                 alpha=0.7, label="annotator")  # fmt: skip
    if flagged.any():
        axes.scatter(majority[flagged], quality[flagged], s=size[flagged], color=PALETTE["alert"],
                     label="flagged")  # fmt: skip
        marked = [p for p in people if p["flagged"]]
        for p, name in zip(marked, short_names([p["annotator"] for p in marked]), strict=True):
            axes.annotate(name, (p["agreement_with_majority"], p["quality"]), fontsize=7)
    axes.set_xlabel("agreement with the majority vote")
    axes.set_ylabel("estimated accuracy (Dawid-Skene)")
    axes.set_title(f"{len(people):,} annotators (dot size: labels given)")
    axes.legend(loc="lower right", fontsize=8)
    return figure


def noise_matrix(data: dict[str, Any]) -> Any:
    """Estimated P(given label | true label); with many classes, the noisiest ones."""
    section = (data.get("label_issues") or {}).get("noise_matrix")
    if not section or section["given_given_true"] is None:
        return None
    return class_matrix(
        np.array(section["given_given_true"], dtype=float),
        section["classes"],
        "Estimated noise: P(given label | true label)",
        ("noisiest", "value"),
        ("given label", "true label", "Oranges"),
    )


def confused_pairs(data: dict[str, Any], limit: int = 15) -> Any:
    """The most frequent (given, predicted) disagreements, as counts, by the lists' rule
    (`_sections.confused_cells`: pairs counted twice or more; one sample is no confusion);
    drawn only when at least two such pairs remain."""
    found = sections.confused_cells(data.get("metrics") or {}, limit)
    if found is None or len(found.cells) < 2:
        return None
    cells = found.cells
    figure = new_figure(7.5, max(2.2, 0.26 * len(cells) + 1.0))
    axes = figure.add_subplot()
    positions = np.arange(len(cells))[::-1]
    axes.barh(positions, [n for _, _, n, _ in cells], color=PALETTE["second"])
    short = dict(zip(*_names_of(cells), strict=True))
    labels = [f"{short[a]} -> {short[b]}" for a, b, _, _ in cells]
    axes.set_yticks(positions, labels, fontsize=8)
    axes.xaxis.set_major_locator(
        import_optional("matplotlib.ticker").MaxNLocator(integer=True, min_n_ticks=1)
    )
    axes.set_xlabel("samples (given label -> predicted label)")
    left_out = "; ".join(found.notes())
    axes.set_title(f"Top {len(cells)} confused pairs" + (f" ({left_out})" if left_out else ""))
    return figure


def _names_of(cells: list[tuple[str, str, int, float]]) -> tuple[list[str], list[str]]:
    """The class names in confused cells, once each, and their short forms (`short_names`)."""
    names = list(dict.fromkeys(name for a, b, _, _ in cells for name in (a, b)))
    return names, short_names(names)


def diff_support(data: dict[str, Any]) -> Any:
    """Samples per class before and after; with many classes, the largest changes."""
    rows = data.get("support") or []
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (-abs(r["delta"]), r["class"]))[:MAX_BARS]
    rows = sorted(rows, key=lambda r: -max(r["old"], r["new"]))
    figure = new_figure(7.5, 3.4)
    axes = figure.add_subplot()
    positions = np.arange(len(rows))
    axes.bar(
        positions - 0.2, [r["old"] for r in rows], width=0.4, label="old", color=PALETTE["main"]
    )
    axes.bar(
        positions + 0.2, [r["new"] for r in rows], width=0.4, label="new", color=PALETTE["second"]
    )
    class_ticks(axes, [r["class"] for r in rows])
    axes.set_ylabel("samples")
    axes.legend(fontsize=8)
    total = len(data["support"])
    shown = f" (the {len(rows)} largest changes of {total})" if total > len(rows) else ""
    axes.set_title(f"Support before and after{shown}")
    return figure


def transitions(data: dict[str, Any]) -> Any:
    """Old label -> new label counts (log color), with rows for added and columns for removed."""
    moves = data.get("transitions") or []
    if not moves:
        return None
    classes = list(data["dataset"]["classes"])
    index = {name: i for i, name in enumerate(classes)}
    size = len(classes) + 1  # the last row: added; the last column: removed
    source = np.array([index.get(m["from"], size - 1) if m["from"] is not None else size - 1
                       for m in moves])  # fmt: skip
    target = np.array([index.get(m["to"], size - 1) if m["to"] is not None else size - 1
                       for m in moves])  # fmt: skip
    count = np.array([m["count"] for m in moves], dtype=float)
    # The classes with the most changes (rows and columns, added and removed included), found
    # from the moves themselves: a (K + 1)^2 matrix is 3 GB at 20,000 classes.
    moved = count * (source != target)
    mass = np.bincount(source, weights=moved, minlength=size)
    mass += np.bincount(target, weights=moved, minlength=size)
    chosen = largest_first(mass[:-1])
    rows = [*chosen.tolist(), size - 1]
    position = np.full(size, -1)
    position[rows] = np.arange(len(rows))
    inside = (position[source] >= 0) & (position[target] >= 0)
    matrix = np.zeros((len(rows), len(rows)))
    np.add.at(matrix, (position[source[inside]], position[target[inside]]), count[inside])
    shown = np.log10(1 + matrix)
    names = [classes[i] for i in chosen]
    title = "Label transitions, old -> new (color: log10 of 1 + count)"
    if chosen.size < len(classes):
        title += f"\nthe {chosen.size} most changed of {len(classes)} classes"
    return heatmap(
        shown,
        [*names, "(added)"],
        [*names, "(removed)"],
        title,
        "old label",
        "new label",
        "Purples",
        annotate=matrix,
    )


def threshold_curves(data: dict[str, Any]) -> Any:
    """Per-class metric against threshold (the tuning rows), chosen thresholds marked."""
    curves = data.get("curves")
    if not curves:
        return None
    grid = np.array(curves["grid"])
    classes = curves["classes"][:MAX_MATRIX_CLASSES]
    figure = new_figure(7.5, 3.8)
    axes = figure.add_subplot()
    colormap = import_optional("matplotlib").colormaps["tab20"]
    for k, (name, short) in enumerate(zip(classes, short_names(classes), strict=True)):
        color = colormap(k % 20)
        axes.plot(grid, curves["values"][k], color=color, linewidth=1.2, label=short)
        chosen = data["thresholds"].get(name)
        if chosen is not None:
            axes.axvline(chosen, color=color, linestyle=":", linewidth=0.8)
    axes.set_xlabel("threshold")
    axes.set_ylabel(plain(curves["metric"]))
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    if len(classes) <= 12:
        axes.legend(fontsize=7, ncols=2, loc="lower left")
    more = (
        f" (first {len(classes)} of {len(curves['classes'])})"
        if len(curves["classes"]) > len(classes)
        else ""
    )
    metric = plain(curves["metric"])
    axes.set_title(f"Per-class {metric} against threshold{more}; dotted: chosen")
    return figure
