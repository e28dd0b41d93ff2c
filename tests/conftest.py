"""Shared helpers: paths to fixtures, and frames built from arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MALFORMED = FIXTURES / "malformed"


def labels_frame(labels: np.ndarray, ids: np.ndarray | None = None) -> pl.DataFrame:
    ids = np.arange(len(labels)) if ids is None else ids
    return pl.DataFrame({"id": ids, "label": labels})


def preds_frame(
    probs: np.ndarray, classes: list[str], ids: np.ndarray | None = None
) -> pl.DataFrame:
    ids = np.arange(probs.shape[0]) if ids is None else ids
    return pl.DataFrame({"id": ids, **{c: probs[:, j] for j, c in enumerate(classes)}})


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
