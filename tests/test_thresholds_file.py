"""`scan --thresholds FILE` applies a thresholds.json exactly as `labelaudit thresholds` wrote it;
anything else (tampered, the other task, another schema version, not JSON) is exit 2 with one
clear paragraph, and no report is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from labelaudit.cli import cli
from labelaudit.report.schema import SCHEMA_VERSION

from .conftest import FIXTURES

MULTI = FIXTURES / "synthetic-multiclass"
TAGS = FIXTURES / "synthetic-multilabel"
SCAN_MULTI = ["scan", str(MULTI / "labels.csv"), "--preds", str(MULTI / "preds.parquet")]
SCAN_TAGS = ["scan", str(TAGS / "labels.parquet"), "--preds", str(TAGS / "preds.parquet")]


def tune(labels: Path, preds: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["thresholds", str(labels), "--preds", str(preds)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def tuned() -> dict[str, dict[str, Any]]:
    """A thresholds.json of each task, as `labelaudit thresholds` writes them."""
    return {
        "multiclass": tune(MULTI / "labels.csv", MULTI / "preds.parquet"),
        "multilabel": tune(TAGS / "labels.parquet", TAGS / "preds.parquet"),
    }


def scan_with(tmp_path: Path, content: str | bytes, scan: list[str] = SCAN_MULTI):
    target = tmp_path / "thresholds.json"
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content, encoding="utf-8")
    out = tmp_path / "report.json"
    args = [*scan, "--thresholds", str(target), "--format", "json", "-o", str(out)]
    return CliRunner().invoke(cli, args), out


def assert_refused(result: Any, out: Path, *phrases: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: The thresholds file '"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in result.stderr, (phrase, result.stderr)
    assert not out.exists()


def edited(data: dict[str, Any], **changes: Any) -> str:
    return json.dumps({**data, **changes})


def with_threshold(data: dict[str, Any], name: str, value: Any) -> str:
    return edited(data, thresholds={**data["thresholds"], name: value})


def test_the_file_as_written_is_applied(tuned: dict[str, Any], tmp_path: Path) -> None:
    for task, scan in (("multiclass", SCAN_MULTI), ("multilabel", SCAN_TAGS)):
        result, out = scan_with(tmp_path, json.dumps(tuned[task]), scan)
        assert result.exit_code == 0, result.output
        metrics = json.loads(out.read_text())["metrics"]
        assert metrics["decision"].startswith("per-class thresholds from")


BAD_VALUES = {
    "a string": ("0.5", '"0.5" (a string)'),
    "true": (True, ": true"),
    "null": (None, ": null"),
    "above 1": (1.5, ": 1.5"),
    "below 0": (-0.1, ": -0.1"),
    "a list": ([0.5], ": [0.5]"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES), ids=list(BAD_VALUES))
def test_a_threshold_that_is_not_a_number_in_0_1(tuned: dict, tmp_path: Path, case: str) -> None:
    data = tuned["multiclass"]
    name = next(iter(data["thresholds"]))
    value, shown = BAD_VALUES[case]
    result, out = scan_with(tmp_path, with_threshold(data, name, value))
    assert_refused(result, out, "1 threshold(s) that are not numbers in [0, 1]", f"'{name}'", shown)


@pytest.mark.parametrize("spelling", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity(tuned: dict, tmp_path: Path, spelling: str) -> None:
    data = tuned["multiclass"]
    name = next(iter(data["thresholds"]))
    text = with_threshold(data, name, 0.123456789).replace("0.123456789", spelling)
    result, out = scan_with(tmp_path, text)
    assert_refused(result, out, f"'{name}': {spelling}")


def test_unknown_and_missing_classes(tuned: dict, tmp_path: Path) -> None:
    data = tuned["multiclass"]
    result, out = scan_with(tmp_path, with_threshold(data, "zebra", 0.5))
    assert_refused(result, out, "thresholds for 1 class(es) not in the data: zebra")
    first, *rest = data["thresholds"]
    fewer = edited(data, thresholds={c: data["thresholds"][c] for c in rest})
    result, out = scan_with(tmp_path, fewer)
    assert_refused(result, out, f"no threshold for 1 classes: {first}")
    renamed = edited(data, thresholds={**{c: data["thresholds"][c] for c in rest}, "Ant": 0.5})
    result, out = scan_with(tmp_path, renamed)
    assert_refused(result, out, "not in the data: Ant; and no threshold for 1 classes")


def test_a_file_of_the_other_task(tuned: dict, tmp_path: Path) -> None:
    result, out = scan_with(tmp_path, json.dumps(tuned["multilabel"]), SCAN_MULTI)
    assert_refused(result, out, "tuned for a 'multilabel' task, but these labels are multiclass")
    result, out = scan_with(tmp_path, json.dumps(tuned["multiclass"]), SCAN_TAGS)
    assert_refused(result, out, "tuned for a 'multiclass' task, but these labels are multilabel")
    result, out = scan_with(tmp_path, edited(tuned["multiclass"], task=None))
    assert_refused(result, out, "does not record the task", "'task': null")


@pytest.mark.parametrize(
    ("version", "phrase"),
    [
        ("2.0", f"schema version 2.0, newer than the version {SCHEMA_VERSION}"),
        ("1.7", f"schema version 1.7, newer than the version {SCHEMA_VERSION}"),
        ("0.9", f"schema version 0.9, older than the version {SCHEMA_VERSION}"),
        ("one", "no readable 'schema_version' (found 'one'"),
        (1.0, "no readable 'schema_version' (found 1.0"),
        (None, "no readable 'schema_version' (found None"),
    ],
)
def test_another_schema_version(tuned: dict, tmp_path: Path, version: Any, phrase: str) -> None:
    result, out = scan_with(tmp_path, edited(tuned["multiclass"], schema_version=version))
    assert_refused(result, out, phrase)


def test_not_a_thresholds_file(tuned: dict, tmp_path: Path) -> None:
    report = CliRunner().invoke(cli, [*SCAN_MULTI, "--format", "json"]).stdout
    cases = {
        report: "its 'command' is 'scan'",
        json.dumps({"thresholds": tuned["multiclass"]["thresholds"]}): "no 'command'",
        edited(tuned["multiclass"], thresholds=[0.5] * 8): "'thresholds' as a JSON array",
        "[0.5, 0.5]": "holds a JSON array, not the object",
        '"thresholds"': "holds a JSON string",
        "": "is not valid JSON (Expecting value at line 1, column 1)",
        "{'thresholds': {}}": "is not valid JSON",
        '{"command": "thresholds", "command": "scan"}': "gives the key 'command' twice",
    }
    for content, phrase in cases.items():
        result, out = scan_with(tmp_path, content)
        assert_refused(result, out, phrase)


def test_invalid_utf8_a_folder_and_a_missing_file(tuned: dict, tmp_path: Path) -> None:
    text = json.dumps(tuned["multiclass"]).encode("utf-8")
    result, out = scan_with(tmp_path, b"\xff\xfe" + text)
    assert_refused(result, out, "is not UTF-8 text (byte 0 is not valid UTF-8)")
    folder = tmp_path / "folder"
    folder.mkdir()
    out = tmp_path / "report.json"
    for path, phrase in ((folder, "is a folder, not a file"), (tmp_path / "no.json", "not exist")):
        args = [*SCAN_MULTI, "--thresholds", str(path), "--format", "json", "-o", str(out)]
        assert_refused(CliRunner().invoke(cli, args), out, phrase)


def test_thresholds_without_predictions_warn(tuned: dict, tmp_path: Path) -> None:
    target = tmp_path / "t.json"
    target.write_text(json.dumps(tuned["multiclass"]))
    result = CliRunner().invoke(
        cli, ["scan", str(MULTI / "labels.csv"), "--thresholds", str(target), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.stdout)["warnings"]
    assert any("were not applied" in w and "without --preds" in w for w in warnings)


def test_a_holdout_far_from_its_fraction_is_said(cli, tmp_path) -> None:
    """Many one-row classes go to tuning whole: the held-out share is far from --holdout."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    labels = np.r_[np.repeat(np.arange(5), 40), np.arange(5, 105)]  # 100 classes of one row
    names = [f"c{i:03d}" for i in range(105)]
    probs = rng.dirichlet(np.ones(105), labels.size)
    pl.DataFrame({"id": np.arange(labels.size), "label": [names[i] for i in labels]}).write_csv(
        tmp_path / "l.csv"
    )
    pl.DataFrame({"id": np.arange(labels.size), **{c: probs[:, i] for i, c in enumerate(names)}}
                 ).write_parquet(tmp_path / "p.parquet")  # fmt: skip
    result = cli("thresholds", "l.csv", "--preds", "p.parquet", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "small classes go to tuning whole" in result.output
