"""`--engine ray`: scan and gate with their passes as Ray tasks give the local engine's report
and issues file; bad input through the engine is exit 2; the replay of per-chunk parts is the
local pass (checked without Ray too)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from labelaudit.config import ScanConfig
from labelaudit.io.load import read_inputs
from labelaudit.pipelines.chunk_parts import pass_one_chunk, replay_pass_one
from labelaudit.pipelines.models import scored_dataset
from labelaudit.pipelines.passes import evaluate_multiclass

from .conftest import FIXTURES, assert_reports_equal, labels_frame, preds_frame

CLASSES = ["ant", "bee", "cat", "dog", "eel"]


def problem(tmp_path: Path, n: int = 3000, seed: int = 0, shards: int = 3) -> None:
    """Seeded labels and predictions in shuffled parquet shards (small chunks: many tasks)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(CLASSES), n)
    given = np.where(rng.random(n) < 0.1, rng.integers(0, len(CLASSES), n), truth)
    logits = rng.normal(size=(n, len(CLASSES))).astype(np.float32)
    logits[np.arange(n), truth] += 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels_frame(np.array(CLASSES)[given]).write_csv(tmp_path / "labels.csv")
    preds = preds_frame(probs.astype(np.float32), CLASSES).sample(fraction=1.0, seed=1)
    for i, part in enumerate(preds.iter_slices(-(-n // shards))):
        part.write_parquet(tmp_path / f"p-{i}.parquet")
    (tmp_path / "labelaudit.toml").write_text("chunk_rows = 250\n")


def run_json(cli, *args: str) -> tuple[int, dict]:
    result = cli(*args, "--format", "json")
    report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    report.pop("config", None)
    if isinstance(report.get("scan"), dict):  # the gate's report holds the scan's
        report["scan"].pop("config", None)
    return result.exit_code, report


@pytest.mark.usefixtures("local_ray")
def test_scan_on_ray_equals_the_local_engine(cli, tmp_path: Path) -> None:
    problem(tmp_path)
    args = ["scan", "labels.csv", "--preds", "p-*.parquet", "--issues-out"]
    code, on_ray = run_json(cli, *args, "ray.parquet", "--engine", "ray")
    assert code == 0
    code, local = run_json(cli, *args, "local.parquet")
    assert code == 0
    assert_reports_equal(on_ray, local)
    issues = pl.read_parquet(tmp_path / "ray.parquet")
    assert issues.equals(pl.read_parquet(tmp_path / "local.parquet"))


@pytest.mark.usefixtures("local_ray")
def test_the_cifar10_fixture_and_the_gate_on_ray(cli, tmp_path: Path) -> None:
    fixture = FIXTURES / "cifar10-test"
    args = ["scan", str(fixture / "labels.csv"), "--preds", str(fixture / "preds.parquet")]
    assert_reports_equal(run_json(cli, *args, "--engine", "ray")[1], run_json(cli, *args)[1])
    problem(tmp_path, seed=3)
    rules = "chunk_rows = 250\n[gate]\nmax_suspect_rate = 0.01\nmin_accuracy = 0.5\n"
    (tmp_path / "labelaudit.toml").write_text(rules)
    gate = ["gate", "labels.csv", "--preds", "p-*.parquet"]
    ray_code, on_ray = run_json(cli, *gate, "--engine", "ray")
    local_code, local = run_json(cli, *gate)
    assert ray_code == local_code == 1  # the suspect rate fails on both engines
    assert_reports_equal(on_ray, local)


@pytest.mark.usefixtures("local_ray")
def test_late_logits_and_bad_values_on_ray(cli, tmp_path: Path) -> None:
    """Two chunks of probabilities then logits make the whole file logits (the pass runs
    again, on the cluster as locally); a NaN in a late shard is the local exit 2 naming its
    id."""
    problem(tmp_path, seed=4)
    parts = [pl.read_parquet(tmp_path / f"p-{i}.parquet") for i in range(3)]
    whole = pl.concat(parts)
    logits = whole.with_columns([(pl.col(c).log() + 1).alias(c) for c in CLASSES])
    late = pl.concat([whole.head(500), logits.tail(whole.height - 500)])
    for i, part in enumerate(late.iter_slices(1000)):
        part.write_parquet(tmp_path / f"p-{i}.parquet")
    args = ["scan", "labels.csv", "--preds", "p-*.parquet", "--issues-out"]
    code, on_ray = run_json(cli, *args, "ray.parquet", "--engine", "ray")
    assert code == 0 and on_ray["metrics"]["accuracy"] > 0.5
    assert_reports_equal(on_ray, run_json(cli, *args, "local.parquet")[1])
    issues = pl.read_parquet(tmp_path / "ray.parquet")
    assert issues.equals(pl.read_parquet(tmp_path / "local.parquet"))
    last = parts[2]
    nan = pl.lit(float("nan"), dtype=pl.Float32)
    bad = last.with_columns(
        pl.when(pl.col("id") == last["id"][5]).then(nan).otherwise(pl.col("ant")).alias("ant")
    )
    bad.write_parquet(tmp_path / "p-2.parquet")
    result = cli("scan", "labels.csv", "--preds", "p-*.parquet", "--engine", "ray")
    assert result.exit_code == 2, result.output
    assert "not finite" in result.output.lower() or "nan" in result.output.lower()
    assert str(last["id"][5]) in result.output and "Traceback" not in result.output


@pytest.mark.usefixtures("local_ray")
def test_multilabel_on_ray_equals_the_local_engine(cli, tmp_path: Path) -> None:
    """Both multi-label passes on the cluster; logits only in a late shard send pass 1 round
    again in the file's reading."""
    rng = np.random.default_rng(7)
    n, k = 3000, 5
    truth = rng.random((n, k)) < 0.3
    given = truth ^ (rng.random(truth.shape) < 0.05)
    given[:, 0] |= ~given.any(axis=1)
    scores = np.clip(truth * 0.7 + rng.normal(0.15, 0.2, truth.shape), 0, 1).astype(np.float32)
    scores[:800] = np.round(scores[:800] * 8) / 8  # ties
    tags = ["|".join(np.array(CLASSES)[row]) for row in given]
    pl.DataFrame({"id": np.arange(n), "label": tags}).write_csv(tmp_path / "labels.csv")
    preds = preds_frame(scores, CLASSES).sample(fraction=1.0, seed=2)
    for i, part in enumerate(preds.iter_slices(1000)):
        if i == 2:
            part = part.with_columns([(pl.col(c) * 6 - 3).alias(c) for c in CLASSES])
        part.write_parquet(tmp_path / f"p-{i}.parquet")
    (tmp_path / "labelaudit.toml").write_text("chunk_rows = 300\n")
    args = ["scan", "labels.csv", "--preds", "p-*.parquet", "--label-sep", "|", "--issues-out"]
    code, on_ray = run_json(cli, *args, "ray.parquet", "--engine", "ray")
    assert code == 0 and on_ray["metrics"]["score_mode"] == "logits"
    assert_reports_equal(on_ray, run_json(cli, *args, "local.parquet")[1])
    issues = pl.read_parquet(tmp_path / "ray.parquet")
    assert issues.equals(pl.read_parquet(tmp_path / "local.parquet"))


@pytest.mark.usefixtures("local_ray")
def test_topk_lists_on_ray_equal_the_local_engine(cli, tmp_path: Path) -> None:
    """Top-k lists (read by the driver, shipped once) scanned as SparseRows in the tasks."""
    rng = np.random.default_rng(9)
    n, k, top = 2000, 40, 5
    names = [f"k{j:02d}" for j in range(k)]
    truth = rng.integers(0, k, n)
    given = np.where(rng.random(n) < 0.1, rng.integers(0, k, n), truth)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    order = np.argsort(-probs, axis=1)[:, :top]
    lists = pl.DataFrame(
        {
            "id": np.arange(n),
            "topk_classes": [[names[c] for c in row] for row in order],
            "topk_probs": np.take_along_axis(probs, order, axis=1).tolist(),
        }
    ).sample(fraction=1.0, seed=4)
    lists.write_parquet(tmp_path / "topk.parquet")
    labels_frame(np.array(names)[given]).write_csv(tmp_path / "labels.csv")
    (tmp_path / "classes.txt").write_text("\n".join(names) + "\n")
    (tmp_path / "labelaudit.toml").write_text("chunk_rows = 300\n")
    args = ["scan", "labels.csv", "--preds", "topk.parquet", "--classes", "classes.txt"]
    code, on_ray = run_json(cli, *args, "--issues-out", "ray.parquet", "--engine", "ray")
    assert code == 0
    assert_reports_equal(on_ray, run_json(cli, *args, "--issues-out", "local.parquet")[1])
    issues = pl.read_parquet(tmp_path / "ray.parquet")
    assert issues.equals(pl.read_parquet(tmp_path / "local.parquet"))


@pytest.mark.usefixtures("local_ray")
def test_what_the_ray_engine_does_not_take_yet_is_exit_2(cli, tmp_path: Path) -> None:
    problem(tmp_path, seed=10)
    second = ["--preds", "p-0.parquet", "--preds", "p-0.parquet", "--on-missing", "drop"]
    result = cli("scan", "labels.csv", *second, "--engine", "ray")
    assert result.exit_code == 2 and "--engine local" in result.output


def test_what_ray_does_not_take_is_refused_before_ray_starts(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CSV predictions or several models: exit 2 at once, no cluster started or dialled."""
    from labelaudit.engines import ray_engine

    def no_session(address: str | None) -> None:
        raise AssertionError("Ray was started for an input it does not take")

    monkeypatch.setattr(ray_engine, "ray_session", no_session)
    problem(tmp_path, seed=11)
    pl.read_parquet(tmp_path / "p-0.parquet").write_csv(tmp_path / "p.csv")
    for preds in (["p.csv"], ["p-0.parquet", "--preds", "p-0.parquet"]):
        for command in (["scan", "labels.csv"], ["diff", "labels.csv", "labels.csv"]):
            result = cli(*command, "--preds", *preds, "--on-missing", "drop", "--engine", "ray")
            assert result.exit_code == 2, result.output
            assert "does not take" in result.output, result.output


def test_replayed_parts_equal_the_local_pass(tmp_path: Path) -> None:
    """No Ray: parts computed chunk by chunk, alone, then replayed, equal the local pass."""
    problem(tmp_path, seed=6)
    config = ScanConfig(chunk_rows=250, stream_above_mib=0)
    table, matrices, vocabulary, warnings = read_inputs(
        tmp_path / "labels.csv", str(tmp_path / "p-*.parquet"), config
    )
    dataset = scored_dataset(table, matrices, vocabulary, config, warnings)

    def parts(mode: str):
        for raw, rows in dataset.score_chunks(250):
            yield pass_one_chunk(raw, rows, dataset.labels[rows], mode, None, False, True)

    replayed = replay_pass_one(dataset, "auto", 250, False, True, None, parts)
    local = evaluate_multiclass(dataset, "auto", 250)
    assert replayed.score_mode == local.score_mode
    np.testing.assert_array_equal(
        replayed.sums.pairs.compute().dense(), local.sums.pairs.compute().dense()
    )
    assert replayed.sums.log_loss_sum == pytest.approx(local.sums.log_loss_sum, rel=1e-12)
    np.testing.assert_array_equal(
        replayed.evidence.given_probability, local.evidence.given_probability
    )
    np.testing.assert_array_equal(
        replayed.evidence.best_other_class, local.evidence.best_other_class
    )


@pytest.mark.usefixtures("local_ray")
def test_diff_on_ray_judges_the_relabels_as_locally(cli, tmp_path: Path) -> None:
    problem(tmp_path, seed=8)
    labels = pl.read_csv(tmp_path / "labels.csv")
    relabeled = labels.with_columns(
        pl.when(pl.col("id") % 7 == 0).then(pl.lit("ant")).otherwise(pl.col("label")).alias("label")
    )
    relabeled.write_csv(tmp_path / "labels-v2.csv")
    args = ["diff", "labels.csv", "labels-v2.csv", "--preds", "p-*.parquet"]
    code, on_ray = run_json(cli, *args, "--engine", "ray")
    assert code == 0
    assert on_ray["relabels_vs_model"]["checked"] > 0
    assert_reports_equal(on_ray, run_json(cli, *args)[1])
