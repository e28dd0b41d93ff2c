"""Pass 2 of detection reads only the classes an unsettled row can clear, each read exactly as
its whole row was in pass 1 (core.scores.RowReading): the same confident classes, bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelaudit.core.scores import RowReading, check_scores, read_rows

from .conftest import CliRun, assert_reports_equal


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    mode=st.sampled_from(["probs", "percent", "logits"]),
    dtype=st.sampled_from([np.float32, np.float64, np.int64]),
)
def test_columns_read_as_their_whole_rows(seed: int, mode: str, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    m, k = 60, 9
    if mode == "logits":
        raw = rng.normal(scale=4, size=(m, k))
    else:
        raw = rng.dirichlet(np.ones(k), m) * (100 if mode == "percent" else 1)
        raw *= rng.choice([1.0, 1.02, 0.97], size=(m, 1))  # some rows off their sum
        if seed % 3 == 0:
            raw[rng.integers(0, m), rng.integers(0, k)] = -0.004  # a chunk to clip
    if dtype is np.int64 and mode != "percent":
        return  # integer scores are read as percentages only
    raw = raw.astype(dtype)
    check = check_scores(raw.copy(), expect_row_sum=True) if mode == "probs" else None
    whole, read = read_rows(raw.copy(), mode, check)
    reading = RowReading.empty(m, mode)
    reading.record(np.arange(m), read)
    columns = np.sort(rng.choice(k, 4, replace=False))
    picked = rng.permutation(m)[:25]  # rows asked in any order
    part = reading.apply(raw[picked][:, columns].copy(), picked)
    np.testing.assert_array_equal(part, whole[picked][:, columns])


def _write(folder: Path, scores: np.ndarray, labels: np.ndarray) -> None:
    classes = [f"c{i}" for i in range(scores.shape[1])]
    pl.DataFrame({"id": np.arange(labels.size), "label": [classes[i] for i in labels]}).write_csv(
        folder / "labels.csv"
    )
    pl.DataFrame(
        {"id": np.arange(labels.size), **{c: scores[:, i] for i, c in enumerate(classes)}}
    ).write_parquet(folder / "preds.parquet")


def _scan(cli: CliRun, *extra: str) -> tuple[dict, pl.DataFrame]:
    result = cli(
        "scan", "labels.csv", "--preds", "preds.parquet", "--format", "json",
        "--issues-out", "issues.parquet", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    data.pop("config")
    return data, pl.read_parquet(cli.folder / "issues.parquet")


@pytest.mark.parametrize("kind", ["probs32", "logits", "percent", "streamed"])
def test_pass_2_on_columns_equals_pass_2_on_whole_rows(
    cli: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    rng = np.random.default_rng(5)
    n, k = 2000, 12
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += rng.choice([0.0, 3.0], n)  # many rows left unsettled
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    scores = {
        "probs32": (probs * 1.01).astype(np.float32),  # renormalized in float32
        "logits": logits,
        "percent": probs * 100,
        "streamed": probs,
    }[kind]
    _write(tmp_path, scores, np.where(rng.random(n) < 0.15, rng.integers(0, k, n), labels))
    (tmp_path / "labelaudit.toml").write_text("chunk_rows = 97\n")  # many chunks, some skipped
    extra = ("--stream-above-mib", "0") if kind == "streamed" else ()
    asked: list[int] = []
    from labelaudit.core import noise

    reachable = noise.reachable_classes

    def spy(*args: object) -> np.ndarray:
        columns = reachable(*args)
        asked.append(columns.size)
        return columns

    monkeypatch.setattr(noise, "reachable_classes", spy)
    on_columns = _scan(cli, *extra)
    assert asked and 0 < asked[-1] < k  # pass 2 did read fewer classes
    everything = np.arange(k)
    monkeypatch.setattr(noise, "reachable_classes", lambda *args: everything)
    whole = _scan(cli, *extra)
    assert_reports_equal(on_columns[0], whole[0])
    assert on_columns[1].equals(whole[1])
