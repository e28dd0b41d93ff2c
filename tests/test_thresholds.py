"""Thresholds: the exact sweep against brute force, honest evaluation, scan --thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from labelaudit.cli import cli
from labelaudit.core.thresholds import (
    BELOW_OFF,
    OFF,
    Objective,
    best_threshold,
    multiclass_decide,
    parse_objective,
    split_folds,
)

from .conftest import FIXTURES

CIFAR = FIXTURES / "cifar10-test"


def _brute(scores: np.ndarray, positives: np.ndarray, objective: Objective) -> float:
    n_pos = positives.sum()
    best = None
    for t in sorted(set(scores.tolist()), reverse=True):
        predicted = scores >= t
        tp = (predicted & positives).sum()
        precision, recall = tp / predicted.sum(), (tp / n_pos if n_pos else 0.0)
        if objective.kind == "f1":
            value = 2 * tp / (predicted.sum() + n_pos)
        elif objective.kind == "precision@recall":
            value = precision if recall >= objective.target else -1
        else:
            value = recall if precision >= objective.target else -1
        if best is None or value > best[0]:
            best = (value, t)
    # A chosen threshold of 1.0 is stored just below the OFF marker (the same rows clear it).
    return OFF if n_pos == 0 or best[0] <= 0 else min(best[1], BELOW_OFF)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 80),
    metric=st.sampled_from(["f1", "precision@recall=0.8", "recall@precision=0.7"]),
)
def test_sweep_equals_brute_force(seed: int, n: int, metric: str) -> None:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(n), 2)
    positives = rng.random(n) < rng.random()
    objective = parse_objective(metric)
    assert best_threshold(scores, positives, objective) == _brute(scores, positives, objective)


def test_bad_metric_names() -> None:
    for text in ("accuracy", "precision@recall=2", "recall@precision="):
        with pytest.raises(ValueError):
            parse_objective(text)


def test_multiclass_decision_rule_and_fallback() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])
    thresholds = np.array([0.6, 0.25, OFF])
    predicted, fallback = multiclass_decide(probs, thresholds)
    # row 0: only class 1 clears; row 1: class 1 clears, class 2 is off; row 2: class 1 clears
    assert predicted.tolist() == [1, 1, 1]
    assert fallback == 0
    predicted, fallback = multiclass_decide(probs, np.array([0.9, 0.9, 0.9]))
    assert predicted.tolist() == [0, 2, 0] and fallback == 3  # never silently class 0


def test_folds_are_stratified_and_cover_every_row() -> None:
    strata = np.repeat(np.arange(4), [10, 20, 30, 41])
    fold = split_folds(strata, 5, seed=0)
    assert set(fold.tolist()) == set(range(5))
    for s in range(4):
        counts = np.bincount(fold[strata == s], minlength=5)
        assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("split", [["--holdout", "0.4"], ["--folds", "4"]])
def test_thresholds_json_and_honest_evaluation(split: list[str], tmp_path: Path) -> None:
    target = tmp_path / "thresholds.json"
    result = CliRunner().invoke(
        cli,
        ["thresholds", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet"),
         *split, "-o", str(target)],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(target.read_text())
    assert data["metric"] == "f1"
    assert len(data["thresholds"]) == 10
    ev = data["evaluation"]
    assert ev["method"] == ("holdout" if split[0] == "--holdout" else "crossfit")
    assert {"before", "after", "n_tuning", "n_evaluation"} <= set(ev)
    if ev["method"] == "holdout":
        assert ev["n_evaluation"] == 4000 and ev["n_tuning"] == 6000
    else:
        assert ev["n_evaluation"] == 10_000
    assert "did not choose the thresholds" in ev["note"]
    assert "did not choose the thresholds" in result.stderr
    scanned = CliRunner().invoke(
        cli,
        ["scan", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet"),
         "--thresholds", str(target), "--format", "json", "--suspects", "none"],
    )  # fmt: skip
    metrics = json.loads(scanned.stdout)["metrics"]
    assert metrics["decision"].startswith("per-class thresholds from")
    assert any("per-class thresholds" in w for w in json.loads(scanned.stdout)["warnings"])


def test_evaluation_does_not_leak_the_tuning_rows(tmp_path: Path) -> None:
    """Noise scores: tuned on the same rows, thresholds would look like a gain; held out, the
    'gain' must not be systematically positive."""
    rng = np.random.default_rng(0)
    n, k = 2000, 4
    labels = rng.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k), n)
    import polars as pl

    pl.DataFrame({"id": np.arange(n), "label": labels}).write_csv(tmp_path / "l.csv")
    pl.DataFrame({"id": np.arange(n), **{str(c): probs[:, c] for c in range(k)}}).write_csv(
        tmp_path / "p.csv"
    )
    gains = []
    for seed in range(3):
        out = CliRunner().invoke(
            cli,
            ["thresholds", str(tmp_path / "l.csv"), "--preds", str(tmp_path / "p.csv"),
             "--folds", "5", "--seed", str(seed)],
        )  # fmt: skip
        ev = json.loads(out.stdout)["evaluation"]
        gains.append(ev["after"] - ev["before"])
    assert np.mean(gains) < 0.03


def test_multilabel_thresholds_and_bad_input(tmp_path: Path) -> None:
    folder = FIXTURES / "synthetic-multilabel"
    ok = CliRunner().invoke(
        cli,
        ["thresholds", str(folder / "labels.parquet"), "--preds", str(folder / "preds.parquet")],
    )
    assert ok.exit_code == 0
    assert json.loads(ok.stdout)["task"] == "multilabel"
    both = CliRunner().invoke(
        cli,
        ["thresholds", str(folder / "labels.parquet"), "--preds", str(folder / "preds.parquet"),
         "--holdout", "0.5", "--folds", "3"],
    )  # fmt: skip
    assert both.exit_code == 2 and "not both" in both.stderr
    no_preds = CliRunner().invoke(cli, ["thresholds", str(folder / "labels.parquet")])
    assert no_preds.exit_code == 2 and "pass --preds" in no_preds.stderr
    bad = tmp_path / "t.json"
    header = {"schema_version": "1.0", "command": "thresholds", "task": "multilabel"}
    bad.write_text(json.dumps({**header, "thresholds": {"animal": 0.5}}))
    missing = CliRunner().invoke(
        cli,
        ["scan", str(folder / "labels.parquet"), "--preds", str(folder / "preds.parquet"),
         "--thresholds", str(bad)],
    )  # fmt: skip
    assert missing.exit_code == 2 and "no threshold for 5 classes" in missing.stderr
