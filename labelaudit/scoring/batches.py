"""Batches of model inputs, in row order: slices of an in-memory feature array, or decoded images.

Images are decoded in DataLoader worker processes, so decoding runs beside the model; an image
that fails to decode yields zeros, marked not ok, with its error message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelaudit._deps import import_optional
from labelaudit.io.images import ImageDecodeError, ImageFolder, decode_image

torch = import_optional("torch")


@dataclass
class Batch:
    """Rows start .. start + len(inputs) of the rows being scored; ok is False for failed images."""

    start: int
    inputs: Any
    ok: np.ndarray | None = None
    errors: tuple[str, ...] = ()


def feature_batches(features: np.ndarray, batch_size: int, pin: bool) -> Iterator[Batch]:
    """Consecutive slices of the features, as (optionally pinned) CPU tensors."""
    for start in range(0, features.shape[0], batch_size):
        inputs = torch.from_numpy(features[start : start + batch_size])
        yield Batch(start, inputs.pin_memory() if pin else inputs)


class ImageRows(torch.utils.data.Dataset):
    """The chosen rows of an image folder, decoded on demand (in a DataLoader worker)."""

    def __init__(self, folder: ImageFolder, rows: np.ndarray, size: int, mean: Any, std: Any):
        self.folder, self.rows, self.size = folder, rows, size
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, 1, 3)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, 1, 3)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[np.ndarray, bool, str]:
        path = self.folder.path(int(self.rows[index]))
        try:
            return decode_image(path, self.size, self.mean, self.std), True, ""
        except ImageDecodeError as exc:
            return np.zeros((3, self.size, self.size), dtype=np.float32), False, str(exc)


def image_batches(dataset: ImageRows, batch_size: int, workers: int, pin: bool) -> Iterator[Batch]:
    """Decoded images in row order, `workers` processes decoding ahead of the model."""
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )
    start = 0
    for pixels, ok, messages in loader:
        ok_rows = ok.numpy().astype(bool)
        errors = tuple(m for m, good in zip(messages, ok_rows, strict=True) if not good)
        yield Batch(start, pixels, ok_rows, errors)
        start += len(ok_rows)
