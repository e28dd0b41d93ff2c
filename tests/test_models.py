"""Several models at once: `--preds` repeated (or a list in Python), joined on id in any row order,
combined into one estimate, with per-model figures and per-sample agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from labelaudit.api import scan
from labelaudit.core.metrics import metrics_from_confusion

from .conftest import CliRun, labels_frame, preds_frame

K = 6
CLASSES = [f"c{j}" for j in range(K)]


def planted(n: int = 3_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True labels, given labels with 10% planted errors, and the error mask."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, K, n)
    wrong = rng.random(n) < 0.10
    given = np.where(wrong, (truth + rng.integers(1, K, n)) % K, truth)
    return truth, given, wrong


def weak_model(truth: np.ndarray, strength: float, seed: int) -> np.ndarray:
    """A noisy model: the true class gets `strength` extra logit; independent noise per model."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.0, (truth.size, K))
    logits[np.arange(truth.size), truth] += strength
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


def f1(flagged: np.ndarray, truth: np.ndarray) -> float:
    tp = (flagged & truth).sum()
    return 2 * tp / (flagged.sum() + truth.sum()) if tp else 0.0


def named(given: np.ndarray) -> pl.DataFrame:
    return labels_frame(np.array(CLASSES)[given])


def test_two_weak_models_beat_each_alone() -> None:
    truth, given, wrong = planted()
    a, b = weak_model(truth, 1.6, 1), weak_model(truth, 1.6, 2)
    scores = {}
    for name, preds in {"a": preds_frame(a, CLASSES), "b": preds_frame(b, CLASSES)}.items():
        flagged = scan(named(given), preds).issues["is_suspect"].to_numpy()
        scores[name] = f1(flagged, wrong)
    both = scan(named(given), [preds_frame(a, CLASSES), preds_frame(b, CLASSES)])
    together = f1(both.issues["is_suspect"].to_numpy(), wrong)
    assert together > max(scores.values()) + 0.03, (together, scores)


def test_row_order_and_file_order_of_models_do_not_matter(tmp_path: Path, cli: CliRun) -> None:
    truth, given, _ = planted(800)
    a, b = weak_model(truth, 2.0, 3), weak_model(truth, 1.0, 4)
    named(given).write_csv(tmp_path / "labels.csv")
    preds_frame(a, CLASSES).write_parquet(tmp_path / "a.parquet")
    preds_frame(b, CLASSES).sample(fraction=1.0, shuffle=True, seed=5).write_csv(tmp_path / "b.csv")
    runs = []
    for order in (["a.parquet", "b.csv"], ["b.csv", "a.parquet"]):
        args = ["scan", "labels.csv", "--format", "json", "--issues-out", f"i{len(runs)}.csv"]
        for p in order:
            args += ["--preds", p]
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        runs.append((json.loads(result.stdout), pl.read_csv(tmp_path / f"i{len(runs)}.csv")))
    (first, issues_a), (second, issues_b) = runs
    assert first["metrics"]["accuracy"] == second["metrics"]["accuracy"]
    assert first["metrics"]["log_loss"] == pytest.approx(second["metrics"]["log_loss"], rel=1e-9)
    assert issues_a.sort("id").equals(issues_b.sort("id"))
    weights = {m["source"]: m["weight"] for m in first["models"]["members"]}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["a.parquet"] > weights["b.csv"]  # the stronger model weighs more


def test_each_model_is_reported_as_alone() -> None:
    truth, given, _ = planted(1_000)
    a, b = weak_model(truth, 2.0, 6), weak_model(truth, 1.2, 7)
    combined = scan(named(given), [preds_frame(a, CLASSES), preds_frame(b, CLASSES)]).to_dict()
    for member, probs in zip(combined["models"]["members"], (a, b), strict=True):
        alone = scan(named(given), preds_frame(probs, CLASSES)).to_dict()["metrics"]
        assert member["accuracy"] == pytest.approx(alone["accuracy"])
        assert member["log_loss"] == pytest.approx(alone["log_loss"], rel=1e-9)
        assert member["macro_f1"] == pytest.approx(alone["macro"]["f1"])
    assert combined["models"]["method"] == "weighted_mean_of_probabilities"


def test_models_disagreeing_is_counted_per_sample() -> None:
    truth, given, _ = planted(500)
    a, b = weak_model(truth, 2.0, 8), weak_model(truth, 1.5, 9)
    report = scan(named(given), [preds_frame(a, CLASSES), preds_frame(b, CLASSES)])
    table = report.issues.sort("id")
    expected = (a.argmax(axis=1) != given).astype(int) + (b.argmax(axis=1) != given)
    assert table["n_models_disagree"].to_numpy().tolist() == expected.tolist()
    top = report.to_dict()["label_issues"]["top_suspects"]
    assert all(s["n_models_disagree"] is not None for s in top)
    from labelaudit.report.render import render

    assert "models against" in render(report, "text")  # the text suspects table shows it


def test_one_model_has_no_models_section_but_the_column() -> None:
    truth, given, _ = planted(300)
    report = scan(named(given), preds_frame(weak_model(truth, 2.0, 10), CLASSES))
    assert report.to_dict()["models"] is None
    assert set(report.issues["n_models_disagree"].unique().to_list()) <= {0, 1}


def test_logits_and_probabilities_mix(tmp_path: Path) -> None:
    truth, given, _ = planted(400)
    probs = weak_model(truth, 2.0, 11)
    logits = np.log(probs) + 3.0  # the same model as logits
    report = scan(named(given), [preds_frame(probs, CLASSES), preds_frame(logits, CLASSES)])
    modes = [m["score_mode"] for m in report.to_dict()["models"]["members"]]
    assert modes == ["probs", "logits"]
    alone = scan(named(given), preds_frame(probs, CLASSES)).to_dict()["metrics"]
    assert report.to_dict()["metrics"]["log_loss"] == pytest.approx(alone["log_loss"], rel=1e-9)


def test_npy_models(tmp_path: Path, cli: CliRun) -> None:
    truth, given, _ = planted(300)
    pl.DataFrame({"label": given}).write_csv(tmp_path / "labels.csv")
    np.save(tmp_path / "a.npy", weak_model(truth, 2.0, 12))
    np.save(tmp_path / "b.npy", weak_model(truth, 2.0, 13))
    result = cli("scan", "labels.csv", "--preds", "a.npy", "--preds", "b.npy", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["models"]["members"]) == 2


def test_multilabel_models_are_averaged() -> None:
    rng = np.random.default_rng(14)
    tags = rng.random((200, 3)) < 0.3
    labels = pl.DataFrame({"label": [[f"t{j}" for j in np.flatnonzero(r)] for r in tags]})
    a = np.clip(tags * 0.8 + rng.random((200, 3)) * 0.2, 0, 1)
    b = np.clip(tags * 0.6 + rng.random((200, 3)) * 0.3, 0, 1)
    names = ["t0", "t1", "t2"]
    report = scan(labels, [preds_frame(a, names), preds_frame(b, names)]).to_dict()
    assert [m["weight"] for m in report["models"]["members"]] == [0.5, 0.5]
    assert report["models"]["weighting"] == "equal"


def test_models_with_different_classes_or_rows_are_an_error(tmp_path: Path, cli: CliRun) -> None:
    truth, given, _ = planted(50)
    named(given).write_csv(tmp_path / "labels.csv")
    preds_frame(weak_model(truth, 2.0, 15), CLASSES).write_csv(tmp_path / "a.csv")
    other = preds_frame(weak_model(truth, 2.0, 16), CLASSES)
    other.rename({"c5": "c9"}).write_csv(tmp_path / "classes.csv")
    other.head(40).write_csv(tmp_path / "fewer.csv")
    wrong_classes = cli("scan", "labels.csv", "--preds", "a.csv", "--preds", "classes.csv")
    assert wrong_classes.exit_code == 2
    assert "'a.csv' and 'classes.csv' score different classes" in wrong_classes.stderr
    assert "only in the first: c5; only in the second: c9" in wrong_classes.stderr
    dropped = cli("scan", "labels.csv", "--preds", "a.csv", "--preds", "fewer.csv",
                  "--on-missing", "drop")  # fmt: skip
    assert dropped.exit_code == 2
    assert "score different rows" in dropped.stderr
    missing = cli("scan", "labels.csv", "--preds", "a.csv", "--preds", "fewer.csv")
    assert missing.exit_code == 2
    assert "10 labeled rows have no predictions" in missing.stderr


@pytest.mark.parametrize("command", ["gate", "diff", "thresholds"])
def test_every_command_takes_several_models(command: str, tmp_path: Path, cli: CliRun) -> None:
    truth, given, _ = planted(600)
    named(given).write_csv(tmp_path / "labels.csv")
    preds_frame(weak_model(truth, 2.0, 17), CLASSES).write_csv(tmp_path / "a.csv")
    preds_frame(weak_model(truth, 2.0, 18), CLASSES).write_csv(tmp_path / "b.csv")
    args = [command, "labels.csv"] + (["labels.csv"] if command == "diff" else [])
    result = cli(*args, "--preds", "a.csv", "--preds", "b.csv")
    assert result.exit_code == 0, result.stderr


def test_confusion_of_the_combination_matches_its_argmax() -> None:
    truth, given, _ = planted(700)
    a, b = weak_model(truth, 2.0, 19), weak_model(truth, 1.0, 20)
    report = scan(named(given), [preds_frame(a, CLASSES), preds_frame(b, CLASSES)])
    data = report.to_dict()
    weights = np.array([m["weight"] for m in data["models"]["members"]])
    combined = weights[0] * a + weights[1] * b
    counts = np.zeros((K, K), dtype=int)
    np.add.at(counts, (given, combined.argmax(axis=1)), 1)
    assert data["metrics"]["confusion_matrix"]["counts"] == counts.tolist()
    assert data["metrics"]["accuracy"] == metrics_from_confusion(counts).accuracy


def test_a_model_whose_later_chunks_show_logits_is_read_as_logits() -> None:
    truth, given, _ = planted(300)
    rng = np.random.default_rng(21)
    logits = rng.normal(0, 1.0, (300, K))
    logits[:100] = np.eye(K)[truth[:100]]  # the first chunk looks like probabilities
    probs = weak_model(truth, 2.0, 22)
    report = scan(
        named(given), [preds_frame(probs, CLASSES), preds_frame(logits, CLASSES)], chunk_rows=100
    )
    assert [m["score_mode"] for m in report.to_dict()["models"]["members"]] == ["probs", "logits"]


def test_the_old_name_of_the_issues_table_still_works_with_a_warning() -> None:
    truth, given, _ = planted(100)
    report = scan(named(given), preds_frame(weak_model(truth, 2.0, 26), CLASSES))
    with pytest.warns(DeprecationWarning, match="use ScanReport.issues"):
        assert report.suspects.equals(report.issues)
