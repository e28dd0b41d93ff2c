"""An image folder (`root/<class>/<file>`): list its files, and decode one image with Pillow.

Ids are the paths relative to the root (`cat/001.jpg`), labels the class folder names; classes are
the folder names in sorted order, as torchvision's ImageFolder orders them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from labelaudit.errors import InputError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImageFolder:
    """The files of an image folder, in a stable order (sorted by relative path)."""

    root: Path
    classes: list[str]
    ids: pl.Series
    labels: pl.Series

    @property
    def n_rows(self) -> int:
        return self.ids.len()

    def path(self, row: int) -> Path:
        return self.root / self.ids[row]


def list_image_folder(root: str | os.PathLike[str]) -> ImageFolder:
    """Every image file one level below a class folder; other files are ignored."""
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"The image folder '{root}' does not exist or is not a folder.")
    classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    ids: list[str] = []
    labels: list[str] = []
    for name in classes:
        files = sorted(
            f.name
            for f in (base / name).iterdir()
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
        )
        ids.extend(f"{name}/{f}" for f in files)
        labels.extend([name] * len(files))
    if not ids:
        raise InputError(
            f"The image folder '{root}' has no images in class folders. Expected "
            f"root/<class>/<image> with one of: {', '.join(sorted(IMAGE_SUFFIXES))}."
        )
    return ImageFolder(base, classes, pl.Series("id", ids), pl.Series("label", labels))


class ImageDecodeError(Exception):
    """One image could not be read or decoded; the caller skips it or stops (--strict)."""


def decode_image(
    path: str | os.PathLike[str], size: int, mean: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """RGB, shorter side resized to `size`, center-cropped square, normalized, CHW float32."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            width, height = image.size
            scale = size / min(width, height)
            resized = (max(size, round(width * scale)), max(size, round(height * scale)))
            image = image.resize(resized, Image.Resampling.BILINEAR)
            left, top = (resized[0] - size) // 2, (resized[1] - size) // 2
            image = image.crop((left, top, left + size, top + size))
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"{path}: {exc}") from exc
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1), dtype=np.float32)
