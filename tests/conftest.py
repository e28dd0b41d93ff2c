"""Shared helpers: paths to fixtures, and frames built from arrays."""

from __future__ import annotations

import math
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


def assert_reports_equal(a: object, b: object, path: str = "") -> None:
    """Equal JSON trees: counts, names and order exactly; floats to 1e-12 (sums over other
    batchings add in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_reports_equal(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_reports_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (path, a, b)  # type: ignore[arg-type]
    else:
        assert a == b, (path, a, b)


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


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray (2 CPUs) for the whole session; `--engine ray` runs reuse it."""
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()
