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


class CliRun:
    """Run labelaudit's CLI in-process (click's CliRunner) from a chosen folder."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
        self.monkeypatch = monkeypatch
        self.folder = folder

    def __call__(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
        from click.testing import CliRunner

        from labelaudit.cli import cli

        self.monkeypatch.chdir(cwd or self.folder)
        return CliRunner(env=env).invoke(cli, [str(a) for a in args])


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRun:
    """`cli("scan", "labels.csv", ...)` runs in tmp_path (or `cwd=`) and returns click's Result."""
    return CliRun(monkeypatch, tmp_path)
