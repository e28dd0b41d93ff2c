"""Scores joined by row position are checked for a fit: the chance agreement's formula against
every permutation of a small case, and scan's warning and finding when the rows are shuffled."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import polars as pl

from labelaudit.core.alignment import chance_agreement

from .conftest import FIXTURES, CliRun

CIFAR = FIXTURES / "cifar10-test"
MULTILABEL = FIXTURES / "synthetic-multilabel"


def test_the_chance_mean_and_spread_against_every_permutation() -> None:
    labels = np.array([0, 0, 1, 2, 2, 2, 1])
    predicted = np.array([0, 1, 1, 2, 0, 2, 2])
    n, k = labels.size, 3
    matches = np.array(
        [int((labels == predicted[list(p)]).sum()) for p in itertools.permutations(range(n))]
    )
    found = chance_agreement(
        np.bincount(labels[labels == predicted], minlength=k),
        np.bincount(labels, minlength=k),
        np.bincount(predicted, minlength=k),
        n,
    )
    assert found.agreeing == int((labels == predicted).sum())
    assert np.isclose(found.chance_mean, matches.mean())  # exact
    assert abs(found.chance_sd - matches.std()) < 0.25 * matches.std()  # covariances left out
    # One class (a binary indicator): the variance is exactly hypergeometric.
    truth, decided = labels == 2, predicted == 2
    hits = np.array(
        [int((truth & decided[list(p)]).sum()) for p in itertools.permutations(range(n))]
    )
    one = chance_agreement(
        np.array([int((truth & decided).sum())]),
        np.array([truth.sum()]),
        np.array([decided.sum()]),
        n,
    )
    assert np.isclose(one.chance_mean, hits.mean()) and np.isclose(one.chance_sd, hits.std())


def _positional(folder: Path, shuffle: bool, rows: int = 2000) -> None:
    labels = pl.read_csv(CIFAR / "labels.csv").head(rows)
    preds = pl.read_parquet(CIFAR / "preds.parquet").head(rows).drop("id")
    if shuffle:
        preds = preds[np.random.default_rng(0).permutation(rows)]
    labels.select("label").write_csv(folder / "labels.csv")
    preds.write_parquet(folder / "preds.parquet")


def test_shuffled_rows_joined_by_position_are_a_warning_and_a_finding(
    cli: CliRun, tmp_path: Path
) -> None:
    _positional(tmp_path, shuffle=True)
    result = cli("scan", "labels.csv", "--preds", "preds.parquet", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    first = report["findings"][0]
    assert first["code"] == "misaligned_rows" and first["severity"] == "warning"
    assert "look misaligned" in report["warnings"][0] and "id column" in report["warnings"][0]
    assert "look misaligned" in result.stderr
    text = cli("scan", "labels.csv", "--preds", "preds.parquet")
    assert "[warning] The rows of 'preds.parquet' look misaligned" in text.stdout


def test_aligned_rows_and_id_joins_say_nothing(cli: CliRun, tmp_path: Path) -> None:
    _positional(tmp_path, shuffle=False)
    result = cli("scan", "labels.csv", "--preds", "preds.parquet", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "misaligned_rows" not in {f["code"] for f in json.loads(result.stdout)["findings"]}
    # Shuffled rows with ids join on them: nothing to warn about.
    preds = pl.read_parquet(CIFAR / "preds.parquet").sample(fraction=1.0, shuffle=True, seed=1)
    preds.write_parquet(tmp_path / "with_ids.parquet")
    joined = cli("scan", str(CIFAR / "labels.csv"), "--preds", "with_ids.parquet", "--format",
                 "json")  # fmt: skip
    assert "misaligned_rows" not in {f["code"] for f in json.loads(joined.stdout)["findings"]}


def test_one_misaligned_model_of_several_is_named(cli: CliRun, tmp_path: Path) -> None:
    _positional(tmp_path, shuffle=False)
    (tmp_path / "good.parquet").write_bytes((tmp_path / "preds.parquet").read_bytes())
    _positional(tmp_path, shuffle=True)
    result = cli("scan", "labels.csv", "--preds", "good.parquet", "--preds", "preds.parquet",
                 "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    messages = [f["message"] for f in json.loads(result.stdout)["findings"]]
    misaligned = [m for m in messages if "look misaligned" in m]
    assert len(misaligned) == 1 and "'preds.parquet'" in misaligned[0]


def test_multilabel_rows_joined_by_position_are_checked(cli: CliRun, tmp_path: Path) -> None:
    labels = pl.read_parquet(MULTILABEL / "labels.parquet")
    preds = pl.read_parquet(MULTILABEL / "preds.parquet").drop("id")
    labels.drop("id").write_parquet(tmp_path / "labels.parquet")
    preds[np.random.default_rng(3).permutation(preds.height)].write_parquet(tmp_path / "p.parquet")
    result = cli("scan", "labels.parquet", "--preds", "p.parquet", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["findings"][0]["code"] == "misaligned_rows"
    preds.write_parquet(tmp_path / "aligned.parquet")
    fine = cli("scan", "labels.parquet", "--preds", "aligned.parquet", "--format", "json")
    assert "misaligned_rows" not in {f["code"] for f in json.loads(fine.stdout)["findings"]}


def test_tiny_inputs_are_not_called_misaligned(cli: CliRun, tmp_path: Path) -> None:
    for rows in (3, 20, 60):
        _positional(tmp_path, shuffle=False, rows=rows)
        result = cli("scan", "labels.csv", "--preds", "preds.parquet", "--format", "json",
                     "--classes", str(CIFAR / "classes.txt"))  # fmt: skip
        assert result.exit_code == 0, result.output
        codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
        assert "misaligned_rows" not in codes, rows  # too few labels to tell a fit from chance


def test_a_model_at_chance_is_said_and_its_ties_count_no_flip(cli: CliRun, tmp_path: Path) -> None:
    """Uniform scores (every row ties): no flip into the lowest class, a model_at_chance finding;
    the gate's rules that read the scores are uncomputable, so it does not pass."""
    labels = np.repeat(["a", "b", "c", "d"], 100)
    pl.DataFrame({"id": range(400), "label": labels}).write_csv(tmp_path / "labels.csv")
    flat = {c: np.full(400, 0.25) for c in "abcd"}
    pl.DataFrame({"id": range(400), **flat}).write_parquet(tmp_path / "flat.parquet")
    result = cli("scan", "labels.csv", "--preds", "flat.parquet", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["findings"][0]["code"] == "model_at_chance"
    # scores at chance say nothing of the labels: their suspects are no finding
    assert not {"suspected_label_errors", "confused_pair", "weak_evidence"} & {
        f["code"] for f in report["findings"]
    }
    assert report["label_issues"]["estimated_errors"] == 0 == report["label_issues"]["n_suspects"]
    assert report["label_issues"]["pairs"] == []
    (tmp_path / "rules.toml").write_text("[gate]\nmin_accuracy = 0.05\nmax_suspect_rate = 0.9\n")
    gate = cli("gate", "labels.csv", "--preds", "flat.parquet", "--config", "rules.toml",
               "--format", "json")  # fmt: skip
    assert gate.exit_code == 1, gate.output
    assert "no better than chance (finding model_at_chance)" in gate.stdout


def test_the_gate_does_not_pass_misaligned_rows(cli: CliRun, tmp_path: Path) -> None:
    _positional(tmp_path, shuffle=True)
    (tmp_path / "rules.toml").write_text("[gate]\nmin_accuracy = 0.05\nmax_suspect_rate = 0.95\n")
    gate = cli("gate", "labels.csv", "--preds", "preds.parquet", "--config", "rules.toml",
               "--junit", "gate.xml")  # fmt: skip
    assert gate.exit_code == 1, gate.output
    assert "finding misaligned_rows" in (tmp_path / "gate.xml").read_text()


def test_the_python_api_warns_what_the_cli_prints(tmp_path: Path) -> None:
    import pytest

    import labelaudit

    _positional(tmp_path, shuffle=True)
    with pytest.warns(labelaudit.LabelAuditWarning, match="look misaligned"):
        report = labelaudit.scan(tmp_path / "labels.csv", preds=tmp_path / "preds.parquet")
    assert report.findings[0].code == "misaligned_rows"


def test_a_member_at_chance_does_not_block_the_combination(cli: CliRun, tmp_path: Path) -> None:
    """One of two models has random scores: it is named (`member_at_chance`), gets little
    weight, and the gate still reads the combination's figures."""
    labels = pl.read_csv(CIFAR / "labels.csv").head(2000)
    labels.write_csv(tmp_path / "labels.csv")
    pl.read_parquet(CIFAR / "preds.parquet").head(2000).write_parquet(tmp_path / "good.parquet")
    classes = [c for c in pl.read_parquet(CIFAR / "preds.parquet").columns if c != "id"]
    noise = np.random.default_rng(1).dirichlet(np.ones(len(classes)), size=2000)
    pl.DataFrame({"id": labels["id"], **dict(zip(classes, noise.T, strict=True))}).write_parquet(
        tmp_path / "random.parquet"
    )
    args = ("--preds", "good.parquet", "--preds", "random.parquet")
    report = json.loads(cli("scan", "labels.csv", *args, "--format", "json", cwd=tmp_path).stdout)
    codes = [f["code"] for f in report["findings"]]
    assert "member_at_chance" in codes and "model_at_chance" not in codes
    member = next(f for f in report["findings"] if f["code"] == "member_at_chance")
    assert "'random.parquet'" in member["message"]
    (tmp_path / "labelaudit.toml").write_text("[gate]\nmin_accuracy = 0.5\n")
    gate = cli("gate", "labels.csv", *args, "--format", "json", cwd=tmp_path)
    assert gate.exit_code == 0, gate.stdout
    assert json.loads(gate.stdout)["findings"][0]["status"] == "pass"


def test_one_class_given_is_not_called_chance(cli: CliRun, tmp_path: Path) -> None:
    """With one class given no shuffle changes the agreement: there is nothing to test."""
    labels = pl.read_csv(CIFAR / "labels.csv").filter(pl.col("label") == "cat").head(500)
    labels.write_csv(tmp_path / "labels.csv")
    preds = pl.read_parquet(CIFAR / "preds.parquet").join(labels.select("id"), on="id")
    preds.write_parquet(tmp_path / "preds.parquet")
    classes = str(CIFAR / "classes.txt")
    result = cli("scan", "labels.csv", "--preds", "preds.parquet", "--classes", classes,
                 "--format", "json", cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert "model_at_chance" not in {f["code"] for f in report["findings"]}
    agreement = chance_agreement(np.array([450]), np.array([500]), np.array([450]), 500)
    assert agreement.chance_sd == 0 and not agreement.at_chance
