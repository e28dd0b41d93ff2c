"""Every bad input: exit code 2, one clear paragraph on stderr, no traceback, no output file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import MALFORMED, CliRun

BAD_INPUTS = {
    "missing file": (["nope.csv"], "'nope.csv' does not exist"),
    "unknown extension": (["unknown_extension.xyz"], "extension labelaudit does not know"),
    "unreadable file": (["corrupt.parquet"], "could not be read as parquet"),
    "empty file": (["empty.csv"], "is empty (0 bytes)"),
    "empty table": (["header_only.csv"], "have no rows"),
    "missing label column": (["no_label_column.csv"], "Columns found: id, category"),
    "missing id column": (["labels.csv", "--id-col", "uid"], "no id column 'uid'"),
    "all labels null": (["all_null_labels.csv"], "Every label in column 'label'"),
    "NaN and inf scores": (["labels.csv", "--preds", "nan_scores.csv"], "in 2 rows (ids 2, 5)"),
    "negative probabilities": (
        ["labels.csv", "--preds", "negative_probs.csv", "--scores", "probs"],
        "negative values in 1 row (ids 1)",
    ),
    "rows in [0, 1] not summing to 1": (
        ["labels.csv", "--preds", "not_summing.csv"],
        "1 row does not sum to 1 (sums from 1.7 to 1.7; ids 2)",
    ),
    "ids missing both ways": (
        ["labels.csv", "--preds", "preds_missing_ids.csv"],
        "2 labeled rows have no predictions (e.g. ids 5, 6); 1 prediction row has ids not in "
        "the labels (e.g. 99)",
    ),
    "label not in --classes": (
        ["labels.csv", "--classes", "classes_without_bird.txt"],
        "not in --classes: bird",
    ),
    "npy columns do not name the labels": (
        ["labels.csv", "--preds", "wrong_shape.npy"],
        "not among the 3 score columns",
    ),
    "glob matching nothing": (["*.nothing"], "matches no file"),
    "missing config file": (["labels.csv", "--config", "nope.toml"], "does not exist"),
    "bad choice": (["labels.csv", "--scores", "maybe"], "'maybe' is not one of"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_a_clear_message(cli: CliRun, case: str) -> None:
    args, expected = BAD_INPUTS[case]
    result = cli("scan", *args, cwd=MALFORMED)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_npy_with_wrong_row_count(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("bird\ncat\ndog\n")
    result = cli(
        "scan",
        str(MALFORMED / "labels.csv"),
        "--preds",
        str(MALFORMED / "wrong_shape.npy"),
        "--classes",
        str(tmp_path / "classes.txt"),
        cwd=MALFORMED,
    )
    assert result.exit_code == 2
    assert "have 4 rows and no id column" in result.stderr
    assert "6 rows" in result.stderr


def test_npy_with_wrong_width_for_classes(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("bird\ncat\ndog\nemu\n")
    result = cli(
        "scan",
        str(MALFORMED / "labels.csv"),
        "--preds",
        str(MALFORMED / "wrong_shape.npy"),
        "--classes",
        str(tmp_path / "classes.txt"),
        cwd=MALFORMED,
    )
    assert result.exit_code == 2
    assert "have 3 columns but --classes names 4 classes" in result.stderr


def test_duplicate_prediction_ids_are_an_error(cli: CliRun, tmp_path: Path) -> None:
    preds = tmp_path / "preds.csv"
    preds.write_text("id,bird,cat,dog\n1,0.1,0.8,0.1\n1,0.1,0.8,0.1\n")
    result = cli("scan", str(MALFORMED / "labels.csv"), "--preds", str(preds), cwd=MALFORMED)
    assert result.exit_code == 2
    assert "repeat 1 id on 2 rows (e.g. 1)" in result.stderr


def test_failed_run_leaves_no_output_file(cli: CliRun, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    result = cli(
        "scan", "labels.csv", "--preds", "nan_scores.csv", "-o", str(target), cwd=MALFORMED
    )
    assert result.exit_code == 2
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_null_labels_are_a_finding_not_a_crash(cli: CliRun) -> None:
    result = cli("scan", "null_labels.csv", "--format", "json", cwd=MALFORMED)
    assert result.exit_code == 0
    import json

    report = json.loads(result.stdout)
    assert report["dataset"]["null_labels"] == 2
    assert report["dataset"]["n_samples"] == 4
    finding = next(f for f in report["findings"] if f["code"] == "null_labels")
    assert finding["count"] == 2
    assert "ids 2, 4" in finding["message"]


def test_conflicting_duplicates_are_a_finding(cli: CliRun) -> None:
    import json

    result = cli("scan", "duplicate_ids.csv", "--format", "json", cwd=MALFORMED)
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["duplicates"]["duplicate_ids"] == 2
    assert report["duplicates"]["conflicting_ids"] == 1
    assert report["duplicates"]["example_conflicting_ids"] == [2]  # each id once
    assert "conflicting_duplicates" in [f["code"] for f in report["findings"]]


def test_internal_error_exits_3_with_one_line(cli: CliRun, monkeypatch: pytest.MonkeyPatch) -> None:
    import labelaudit.pipelines.scan

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(labelaudit.pipelines.scan, "run_scan", broken)
    result = cli("scan", "labels.csv", cwd=MALFORMED)
    assert result.exit_code == 3
    assert "Internal error: ZeroDivisionError: boom" in result.stderr
    assert "Traceback" not in result.stderr
    debug = cli("scan", "labels.csv", "--debug", cwd=MALFORMED)
    assert debug.exit_code == 3
    assert "Traceback" in debug.stderr


def test_prediction_column_missing_for_a_label_class_is_zero_filled(
    cli: CliRun, tmp_path: Path
) -> None:
    preds = tmp_path / "preds.csv"
    preds.write_text(
        "id,cat,dog\n1,0.8,0.2\n2,0.3,0.7\n3,0.6,0.4\n4,0.5,0.5\n5,0.4,0.6\n6,0.9,0.1\n"
    )
    result = cli(
        "scan",
        str(MALFORMED / "labels.csv"),
        "--preds",
        str(preds),
        "--format",
        "json",
        cwd=MALFORMED,
    )
    assert result.exit_code == 0, result.stderr
    assert "1 class in the labels has no score column" in result.stderr
    assert np.isclose(0.0, 0.0)
