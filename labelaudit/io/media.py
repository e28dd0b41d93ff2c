"""Media for the HTML report: look up a labels table's path / URL column for a few ids, and make
small embedded thumbnails of local images inside the media root (URLs are never fetched)."""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from labelaudit._text import human_line
from labelaudit.errors import InputError, SchemaError
from labelaudit.io.tables import read_table

THUMBNAIL_PIXELS = 96


def lookup_media(
    labels: str | os.PathLike[str] | pl.DataFrame,
    id_col: str,
    media_col: str,
    ids: list[Any],
    input_format: str | None = None,
) -> dict[Any, str]:
    """The media column's value for each of `ids` (ids absent or with an empty value are left
    out)."""
    frame = (
        labels
        if isinstance(labels, pl.DataFrame)
        else read_table(labels, "labels", input_format, ids=(id_col,))
    )
    if media_col not in frame.columns:
        raise SchemaError(
            f"--media-col: the labels have no column '{media_col}'. Columns found: "
            f"{', '.join(frame.columns[:20])}."
        )
    if not ids:
        return {}
    wanted = pl.Series("id", ids)
    key = frame[id_col] if id_col in frame.columns else pl.Series(range(frame.height))
    rows = frame.select(key.alias("id"), pl.col(media_col).cast(pl.String).alias("media"))
    rows = rows.filter(pl.col("id").is_in(wanted.cast(rows["id"].dtype, strict=False).implode()))
    return {i: m for i, m in zip(rows["id"], rows["media"], strict=True) if m}


def media_paths(
    labels: str | os.PathLike[str] | pl.DataFrame,
    media_col: str,
    base: Path,
    input_format: str | None = None,
) -> list[str]:
    """Every local file the media column names (relative paths tried from the current folder and
    from `base`, the labels' folder), for the output checks; URLs and absent files left out."""
    frame = (
        labels if isinstance(labels, pl.DataFrame) else read_table(labels, "labels", input_format)
    )
    if media_col not in frame.columns:
        raise SchemaError(
            f"--media-col: the labels have no column '{media_col}'. Columns found: "
            f"{', '.join(frame.columns[:20])}."
        )
    values = frame[media_col].cast(pl.String).drop_nulls().unique().to_list()
    found = []
    for value in values:  # one per distinct file, on the --media-col path only
        if not value or is_url(value):
            continue
        found += [str(p) for p in (Path(value), base / value) if p.is_file()]
    return found


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://", "s3://", "gs://"))


@dataclass(frozen=True)
class MediaCell:
    """What the suspects table shows for one sample's media value."""

    value: str
    thumbnail: str | None = None  # a data: URI, for a readable local image inside the media root
    outside: bool = False  # a local file outside the media root: shown as text, never embedded


def media_root(root: str | os.PathLike[str] | None, labels_folder: Path) -> Path:
    """The folder whose images may be embedded: --media-root, else the labels file's folder;
    resolved (`..` and symlinks), so a path is judged by where it really is."""
    if root is None:
        return labels_folder.resolve()
    folder = Path(root)
    if not folder.is_dir():
        raise InputError(
            f"--media-root '{root}' is not a folder. Give the folder that holds the images the "
            "report may embed (default: the labels file's folder)."
        )
    return folder.resolve()


def media_cells(
    values: dict[Any, str], base: Path, root: Path
) -> tuple[dict[Any, MediaCell], str | None]:
    """A cell per media value (relative paths are tried from the current folder, then from
    `base`), and a warning when some local files were left out for being outside `root`: a report
    is meant to be shared, so it embeds nothing from outside the dataset's folder."""
    cells = {key: _cell(value, base, root) for key, value in values.items()}
    outside = [c.value for c in cells.values() if c.outside]
    if not outside:
        return cells, None
    return cells, human_line(
        f"{len(outside)} media file(s) of the top suspects are outside '{root}' and were not "
        f"embedded in the HTML report (shown as text; e.g. '{outside[0]}'). Pass --media-root "
        "DIR to allow a folder that holds them."
    )


def _cell(value: str, base: Path, root: Path) -> MediaCell:
    if is_url(value):  # never fetched: the page must not depend on the network
        return MediaCell(value)
    path, outside = _locate(value, base, root)
    if path is None:
        return MediaCell(value, outside=outside)
    return MediaCell(value, thumbnail=thumbnail_uri(path))


def _locate(value: str, base: Path, root: Path) -> tuple[Path | None, bool]:
    """The first existing file `value` names inside `root` (resolved: `..` and symlinks
    followed), and whether an existing file it names lies outside `root`."""
    outside = False
    for candidate in (Path(value), base / value):
        try:
            if not candidate.is_file():
                continue
            resolved = candidate.resolve(strict=True)
        except (OSError, ValueError):  # a name the OS rejects, a symlink loop
            continue
        if resolved.is_relative_to(root):
            return resolved, False
        outside = True
    return None, outside


def thumbnail_uri(path: Path) -> str | None:
    """A data: URI of a small JPEG of the local image `path`; None when it cannot be read as an
    image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
