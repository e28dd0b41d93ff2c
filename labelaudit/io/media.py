"""Media for the HTML report: look up a labels table's path / URL column for a few ids, and make
small embedded thumbnails of local images (never fetched over the network)."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any

import polars as pl

from labelaudit.errors import SchemaError
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
        labels if isinstance(labels, pl.DataFrame) else read_table(labels, "labels", input_format)
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


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://", "s3://", "gs://"))


def thumbnail_uri(value: str, base: Path | None = None) -> str | None:
    """A data: URI of a small JPEG of the local image `value` (relative paths are tried from the
    current folder, then from `base`); None when it is a URL or cannot be read as an image."""
    if is_url(value):
        return None
    from PIL import Image, UnidentifiedImageError

    candidates = [Path(value)] + ([base / value] if base is not None else [])
    for path in candidates:
        if not path.is_file():
            continue
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=85)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
            return None
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return None
