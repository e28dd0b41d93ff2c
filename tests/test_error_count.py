"""One estimate of how many labels are wrong (core/error_count.py): its interval by formula, the
figures of a report that read it, weak evidence, and thousands of classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelaudit.core.error_count import HIGH_RATIO, LOW_RATIO, MOST_DISAGREE, count_errors
from labelaudit.core.noise import detect, in_memory_chunks

from .conftest import FIXTURES, CliRun
from .noise_scenarios import make_scenario

CIFAR = FIXTURES / "cifar10-test"


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 400),
    st.integers(2, 6),
    st.floats(0.0, 1.0),
    st.integers(0, 400),
    st.integers(0, 2**31 - 1),
)
def test_interval_by_formula(n: int, k: int, share: float, disagreements: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    estimate_set = rng.random(n) < share
    disagreements = min(disagreements, n)
    e = count_errors(estimate_set, labels, k, 7, disagreements)
    c = int(estimate_set.sum())
    spread = 2.0 * np.sqrt(c * (1.0 - c / n))
    weak = disagreements > MOST_DISAGREE * n
    low = 0 if weak else min(max(0, int(np.floor(c * LOW_RATIO - spread))), c)
    high = max(min(n, int(np.ceil(c * HIGH_RATIO + spread))), c)
    assert (e.count, e.low, e.high, e.weak_evidence) == (c, low, high, weak)
    assert e.low <= e.count <= e.high <= n
    assert e.class_errors.sum() == c
    np.testing.assert_array_equal(e.class_errors, np.bincount(labels[estimate_set], minlength=k))
    counts = np.bincount(labels, minlength=k)
    np.testing.assert_allclose(e.class_rates(counts) * counts, e.class_errors)


def test_every_count_of_a_detection_reads_the_one_estimate() -> None:
    scenario = make_scenario("confusion", seed=3, n=4000, model="medium")
    probs, labels = scenario.probabilities, scenario.given
    d = detect(in_memory_chunks(probs.copy()), labels, probs.shape[1])
    assert d.errors.count == int(d.flagged.sum())  # the default rule flags the estimate
    assert d.errors.confident_joint == d.noise.estimated_errors
    # confused pairs: the calibrated joint scaled to the estimate
    scale = d.errors.count / d.noise.estimated_errors
    joint = d.noise.calibrated_joint
    for p in d.pairs:
        cell = joint.at(np.array([p.source]), np.array([p.target]))[0]
        assert p.count == int(np.rint(cell * scale))
    other = detect(in_memory_chunks(probs.copy()), labels, probs.shape[1], rule="argmax")
    assert other.errors.count == d.errors.count  # the estimate does not follow --suspects
    assert other.flagged.sum() > other.errors.count


def _scan_json(cli: CliRun, folder: Path, *extra: str) -> dict:
    result = cli("scan", "labels.csv", "--preds", "preds.parquet", "--format", "json", *extra,
                 cwd=folder)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_report_figures_agree_with_the_estimate(cli: CliRun, tmp_path: Path) -> None:
    pl.read_csv(CIFAR / "labels.csv").write_csv(tmp_path / "labels.csv")
    pl.read_parquet(CIFAR / "preds.parquet").write_parquet(tmp_path / "preds.parquet")
    issues = _scan_json(cli, tmp_path)["label_issues"]
    e, n = issues["estimated_errors"], issues["n_scored"]
    assert issues["n_suspects"] == e
    assert issues["estimated_errors_low"] <= e <= issues["estimated_errors_high"]
    assert issues["estimated_noise_rate"] == pytest.approx(e / n)
    assert issues["health_score"] == pytest.approx(1 - e / n)
    per_class = sum(h["estimated_noise_rate"] * h["support"] for h in issues["per_class"])
    assert per_class == pytest.approx(e)
    assert sum(p["count"] for p in issues["pairs"]) <= e
    assert not issues["weak_evidence"]


def _weak_model(folder: Path, n: int = 3000, k: int = 20) -> None:
    """Labels 8% wrong, scores from a model right on about 40% of the rows."""
    rng = np.random.default_rng(5)
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += 1.6
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    given = truth.copy()
    wrong = rng.random(n) < 0.08
    given[wrong] = (truth[wrong] + rng.integers(1, k, int(wrong.sum()))) % k
    names = [f"c{j:02d}" for j in range(k)]
    ids = [f"r{i}" for i in range(n)]
    pl.DataFrame({"id": ids, "label": [names[g] for g in given]}).write_csv(folder / "labels.csv")
    frame = pl.DataFrame({"id": ids, **{c: probs[:, j] for j, c in enumerate(names)}})
    frame.write_parquet(folder / "preds.parquet")


def test_weak_evidence_is_a_finding_and_the_gate_does_not_read_it(
    cli: CliRun, tmp_path: Path
) -> None:
    _weak_model(tmp_path)
    report = _scan_json(cli, tmp_path)
    issues = report["label_issues"]
    assert issues["weak_evidence"] and issues["estimated_errors_low"] == 0
    assert issues["estimated_errors"] <= issues["estimated_errors_high"]
    codes = [f["code"] for f in report["findings"]]
    assert "weak_evidence" in codes
    assert report["recommendations"]["loss"]["name"] != "cross_entropy_label_smoothing"
    (tmp_path / "labelaudit.toml").write_text(
        "[gate]\nmax_suspect_rate = 0.99\nmax_class_noise_rate = 0.99\nmin_accuracy = 0.01\n"
    )
    gate = cli("gate", "labels.csv", "--preds", "preds.parquet", "--format", "json", cwd=tmp_path)
    findings = {f["rule"]: f for f in json.loads(gate.stdout)["findings"]}
    assert gate.exit_code == 1
    for rule in ("max_suspect_rate", "max_class_noise_rate"):
        assert findings[rule]["status"] == "error"
        assert "weak_evidence" in findings[rule]["message"]
    assert findings["min_accuracy"]["status"] == "pass"  # a metric still reads the scores
    text = cli("scan", "labels.csv", "--preds", "preds.parquet", cwd=tmp_path).stdout
    assert "weak evidence" in text


def test_thousands_of_classes_give_a_count_near_the_planted_one() -> None:
    """4 rows a class over 1,000 classes, 10% of labels wrong (the confident joint once said
    several times the planted count at this scale)."""
    rng = np.random.default_rng(0)
    n, k = 4000, 1000
    truth = np.arange(n) % k
    logits = rng.normal(0, 1, (n, k)).astype(np.float32)
    logits[np.arange(n), truth] += 6.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    given = truth.copy()
    wrong = rng.random(n) < 0.10
    given[wrong] = (truth[wrong] + rng.integers(1, k, int(wrong.sum()))) % k
    d = detect(in_memory_chunks(probs), given, k)
    assert d.errors.low <= int(wrong.sum()) <= d.errors.high
    assert abs(d.errors.count - wrong.sum()) / wrong.sum() < 0.2


def test_the_loss_reads_no_noise_rate_on_a_handful_of_rows(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("id,label\n1,a\n2,b\n3,a\n4,b\n")
    (tmp_path / "preds.csv").write_text("id,a,b\n1,.1,.9\n2,.9,.1\n3,.8,.2\n4,.3,.7\n")
    result = cli("scan", "labels.csv", "--preds", "preds.csv", "--format", "json", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert report["label_issues"]["estimated_noise_rate"] == 0.5
    assert report["recommendations"]["loss"]["name"] == "cross_entropy"
