"""What the figures draw with: a new Agg figure, data text made literal for matplotlib, K x K
heatmaps (the most confused or largest classes first), and class names shortened for an axis
without two becoming the same."""

from __future__ import annotations

from typing import Any

import numpy as np

from labelaudit._deps import import_optional
from labelaudit._text import printable
from labelaudit.report._format import MAX_MATRIX_CLASSES


def new_figure(width: float, height: float) -> Any:
    """A Figure on the Agg canvas, without pyplot's global state."""
    figure_module = import_optional("matplotlib.figure")
    agg = import_optional("matplotlib.backends.backend_agg")
    figure = figure_module.Figure(figsize=(width, height), dpi=100, layout="constrained")
    agg.FigureCanvasAgg(figure)
    return figure


def plain(text: Any) -> str:
    """Text from the data as matplotlib should show it, literally: control characters escaped,
    and every `$` escaped as `\\$`, so no name is parsed as mathtext (`a $x^$` crashed the
    drawing). matplotlib shows an escaped `\\$` as `$` in every kind of text; parse_math=False
    cannot be given to legend entries, and set for all text it breaks the log-scale tick labels,
    which are mathtext."""
    return printable(str(text)).replace("$", "\\$")


def class_matrix(
    matrix: np.ndarray,
    classes: list[str],
    title: str,
    words: tuple[str, str],
    axes_and_colors: tuple[str, str, str],
    selection: np.ndarray | None = None,
) -> Any:
    """A class-by-class heatmap; beyond MAX_MATRIX_CLASSES classes, those with the most off-diagonal
    mass in `selection` (default: the matrix itself), colors capped at the largest confusion."""
    chosen = most_confused(matrix if selection is None else selection)
    if chosen.size < matrix.shape[0]:
        title += f"\nthe {chosen.size} {words[0]} of {matrix.shape[0]} classes"
    names = [classes[i] for i in chosen]
    shown = matrix[np.ix_(chosen, chosen)]
    vmax = off_diagonal_cap(shown)
    if vmax is not None:
        title += f"; color capped at the largest off-diagonal {words[1]}"
    rows, columns, colormap = axes_and_colors
    return heatmap(shown, names, names, title, rows, columns, colormap, vmax=vmax)


def largest_first(mass: np.ndarray) -> np.ndarray:
    """All indices when there are at most MAX_MATRIX_CLASSES, else those of the largest `mass`
    (ties: lower index), in index order."""
    if mass.size <= MAX_MATRIX_CLASSES:
        return np.arange(mass.size)
    order = np.lexsort((np.arange(mass.size), -mass))[:MAX_MATRIX_CLASSES]
    return np.sort(order)


def most_confused(matrix: np.ndarray) -> np.ndarray:
    """Indices of the classes with the most off-diagonal mass (at most MAX_MATRIX_CLASSES), in
    order."""
    if matrix.shape[0] <= MAX_MATRIX_CLASSES:
        return np.arange(matrix.shape[0])
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    return largest_first(off.sum(axis=0) + off.sum(axis=1))


def off_diagonal_cap(matrix: np.ndarray) -> float | None:
    """Too many classes to print the values: cap the colors at the largest off-diagonal cell, so
    the confusions (not the diagonal) use the color range."""
    if matrix.shape[0] <= 12:
        return None
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    return float(off.max()) if off.max() > 0 else None


def heatmap(
    matrix: np.ndarray,
    rows: list[str],
    columns: list[str],
    title: str,
    row_label: str,
    column_label: str,
    colormap: str,
    annotate: np.ndarray | None = None,
    vmax: float | None = None,
) -> Any:
    size = max(4.2, 0.32 * len(columns) + 2.4)
    figure = new_figure(size + 0.8, size + 0.6)
    # A square image (aspect "equal") under "constrained" layout may overflow the picture: its
    # title and the column label were cut off. "compressed" is the layout for fixed aspects.
    figure.set_layout_engine("compressed")
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap=colormap, aspect="equal", vmin=0, vmax=vmax)
    names = list(dict.fromkeys([*rows, *columns]))
    short = dict(zip(names, short_names(names), strict=True))
    axes.set_xticks(range(len(columns)), [short[c] for c in columns], rotation=90, fontsize=8)
    axes.set_yticks(range(len(rows)), [short[r] for r in rows], fontsize=8)
    axes.set_xlabel(column_label)
    axes.set_ylabel(row_label)
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, shrink=0.8)
    if len(columns) <= 12:
        values = matrix if annotate is None else annotate
        top = float(matrix.max()) or 1.0
        for (i, j), value in np.ndenumerate(values):
            text = f"{value:.2f}" if annotate is None else f"{int(value)}"
            color = "white" if matrix[i, j] > 0.6 * top else "black"
            axes.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
    return figure


def class_ticks(axes: Any, names: list[str]) -> None:
    if len(names) <= 40:
        axes.set_xticks(range(len(names)), short_names(names), rotation=60, fontsize=8, ha="right")
    else:
        axes.set_xticks([])
        axes.set_xlabel(f"{len(names):,} classes, largest first")


def short_names(names: list[str], limit: int = 18) -> list[str]:
    """Names for a figure, each at most `limit` characters and made `plain`, kept distinct: a
    long name keeps its start and its end around an ellipsis; names that would still read the
    same (a long shared prefix) show what differs, after the part they share; names alike even
    there get a number."""
    shown = [_cut(n, limit) for n in names]
    for group in _same(shown, names):
        members = [names[i] for i in group]
        shared = len(_common_prefix(members))
        for i in group:
            rest = names[i][shared:]
            shown[i] = "…" + (rest if len(rest) < limit else rest[: limit - 2] + "…")
    for group in _same(shown, names):
        for number, i in enumerate(group, start=1):
            mark = f"~{number}"
            shown[i] = shown[i][: limit - len(mark)] + mark
    return [plain(n) for n in shown]


def _cut(name: str, limit: int) -> str:
    """`name` in at most `limit` characters: its start, an ellipsis, its end."""
    if len(name) <= limit:
        return name
    tail = (limit - 1) // 3
    return name[: limit - 1 - tail] + "…" + name[len(name) - tail :]


def _same(shown: list[str], names: list[str]) -> list[list[int]]:
    """Groups of positions whose shown forms are equal but whose names differ."""
    where: dict[str, list[int]] = {}
    for i, text in enumerate(shown):
        where.setdefault(text, []).append(i)
    return [g for g in where.values() if len({names[i] for i in g}) > 1]


def _common_prefix(names: list[str]) -> str:
    """The longest start all `names` share (that of the first and last in sorted order)."""
    first, last = min(names), max(names)
    size = next(
        (i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), len(first)
    )
    return first[:size]
