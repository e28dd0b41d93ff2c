"""`--group-col`: per-group metrics equal scikit-learn's on each subset, the standing-out test,
pooling of small groups, intervals, gate rules and formats."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from .conftest import CliRun

CLASSES = ["w", "x", "y", "z"]


def write_problem(folder: Path, n: int = 4000, seed: int = 1) -> dict[str, np.ndarray]:
    """Sources a-d and a tiny one; source c's labels are flipped five times as often."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n)
    source = rng.choice(["a", "b", "c", "d", "tiny"], n, p=[0.3, 0.3, 0.2, 0.195, 0.005])
    given = truth.copy()
    flipped = rng.random(n) < np.where(source == "c", 0.25, 0.05)
    given[flipped] = (truth[flipped] + 1) % 4
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), truth] += 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = np.array(CLASSES)
    pl.DataFrame({"id": np.arange(n), "label": names[given], "source": source,
                  "split": np.where(np.arange(n) % 4 == 0, "test", "train")}).write_csv(
        folder / "labels.csv"
    )  # fmt: skip
    pl.DataFrame(
        {"id": np.arange(n), **{c: probs[:, i] for i, c in enumerate(CLASSES)}}
    ).write_parquet(folder / "preds.parquet")
    return {"given": given, "probs": probs, "source": source}


def scan_json(cli: CliRun, *args: str) -> dict:
    result = cli("scan", "labels.csv", "--preds", "preds.parquet", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_per_group_metrics_equal_scikit_learn_on_each_subset(cli: CliRun, tmp_path: Path) -> None:
    problem = write_problem(tmp_path)
    report = scan_json(cli, "--group-col", "source")
    groups = {g["group"]: g for g in report["groups"]["source"]}
    assert set(groups) == {"a", "b", "c", "d", "(groups under 30 rows)"}  # tiny pooled
    predicted = problem["probs"].argmax(axis=1)
    for name, g in groups.items():
        rows = problem["source"] == (name if name != "(groups under 30 rows)" else "tiny")
        y, p = problem["given"][rows], predicted[rows]
        assert g["n"] == rows.sum() and g["pooled"] == (name.startswith("("))
        metrics = g["metrics"]
        assert metrics["accuracy"] == pytest.approx(accuracy_score(y, p), abs=1e-12)
        assert metrics["balanced_accuracy"] == pytest.approx(
            balanced_accuracy_score(y, p), abs=1e-12
        )
        labels = list(range(4))
        assert metrics["macro"]["f1"] == pytest.approx(
            f1_score(y, p, labels=labels, average="macro", zero_division=0), abs=1e-12
        )


def test_the_noisy_source_stands_out_and_the_rest_do_not(cli: CliRun, tmp_path: Path) -> None:
    write_problem(tmp_path)
    report = scan_json(cli, "--group-col", "source", "--group-col", "split")
    source = report["groups"]["source"]
    assert source[0]["group"] == "c" and source[0]["flagged"]
    assert not any(g["flagged"] for g in source[1:])
    assert not any(g["flagged"] for g in report["groups"]["split"])
    codes = [f["code"] for f in report["findings"]]
    assert codes.count("group_stands_out") == 1
    for g in source:  # the Wilson interval holds the rate
        low, high = g["suspect_rate_interval"]
        assert low <= g["suspect_rate"] <= high
        n, k = g["n_scored"], g["n_suspects"]
        p, z = k / n, 1.959963984540054
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        assert low == pytest.approx(max(0.0, centre - half))
    issues_suspects = sum(g["n_suspects"] for g in source)
    assert issues_suspects == report["label_issues"]["n_suspects"]


def test_group_gate_rules(cli: CliRun, tmp_path: Path) -> None:
    write_problem(tmp_path)
    for rules, code in (
        ("max_group_suspect_rate = 0.5\nmin_group_macro_f1 = 0.5\nmax_flagged_groups = 1\n", 0),
        ("max_group_suspect_rate = 0.1\n", 1),
        ("min_group_macro_f1 = 0.9\n", 1),
        ("max_flagged_groups = 0\n", 1),
    ):
        (tmp_path / "labelaudit.toml").write_text("[gate]\n" + rules)
        result = cli("gate", "labels.csv", "--preds", "preds.parquet", "--group-col", "source",
                     "--format", "json")  # fmt: skip
        assert result.exit_code == code, result.output
    missing = cli("gate", "labels.csv", "--preds", "preds.parquet", "--format", "json")
    assert missing.exit_code == 1 and "--group-col" in missing.stdout


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_every_format_shows_the_groups(cli: CliRun, tmp_path: Path, fmt: str) -> None:
    write_problem(tmp_path)
    result = cli("scan", "labels.csv", "--preds", "preds.parquet", "--group-col", "source",
                 "--format", fmt)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "c (stands out)" in result.stdout
    if fmt == "html":
        assert 'id="fig-groups_1"' in result.stdout


def test_groups_without_predictions_and_multilabel(cli: CliRun, tmp_path: Path) -> None:
    write_problem(tmp_path)
    result = cli("scan", "labels.csv", "--group-col", "source", "--format", "json")
    assert result.exit_code == 0
    groups = json.loads(result.stdout)["groups"]["source"]
    assert all(g["metrics"] is None and g["suspect_rate"] is None for g in groups)
    assert all(g["n_suspects"] is None and not g["flagged"] for g in groups)
    assert sum(g["n"] for g in groups) == 4000
    rng = np.random.default_rng(3)
    tags = rng.random((600, 3)) < 0.4
    tags[:, 0] |= ~tags.any(axis=1)
    text = ["|".join(np.array(CLASSES[:3])[t]) for t in tags]
    source = rng.choice(["a", "b"], 600)
    pl.DataFrame({"id": np.arange(600), "label": text, "source": source}).write_csv(
        tmp_path / "ml.csv"
    )
    scores = np.clip(tags * 0.7 + rng.normal(0.15, 0.2, tags.shape), 0, 1)
    pl.DataFrame(
        {"id": np.arange(600), **{c: scores[:, i] for i, c in enumerate(CLASSES[:3])}}
    ).write_parquet(tmp_path / "ml.parquet")
    result = cli("scan", "ml.csv", "--label-sep", "|", "--preds", "ml.parquet", "--group-col",
                 "source", "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)["groups"]["source"]
    predicted = scores >= 0.5
    for g in groups:
        rows = source == g["group"]
        expected = f1_score(tags[rows], predicted[rows], average="micro", zero_division=0)
        assert g["metrics"]["micro"]["f1"] == pytest.approx(expected, abs=1e-12)
        assert g["suspect_rate"] is not None


def test_missing_values_and_id_like_columns(cli: CliRun, tmp_path: Path) -> None:
    write_problem(tmp_path)
    labels = pl.read_csv(tmp_path / "labels.csv")
    source = labels["source"].to_list()
    source[:40] = [""] * 20 + ["NaN"] * 20
    labels.with_columns(
        pl.Series("source", source), pl.format("u{}", pl.col("id")).alias("uid")
    ).write_csv(tmp_path / "labels.csv")
    result = cli("scan", "labels.csv", "--preds", "preds.parquet", "--group-col", "source,uid",
                 "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = [g["group"] for g in report["groups"]["source"]]
    assert "(none)" in names and "" not in names and "NaN" not in names
    assert any("like an id" in w for w in report["warnings"])
