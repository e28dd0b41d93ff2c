"""One report never contradicts itself: one class present of ten, equal counts, empty classes;
no "-0" figure in any format; and the messages for inputs that are not what they seem (a
Parquet file named .csv, score columns that are no class, the Python wording of a flag)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import labelaudit
from labelaudit.errors import InputError

from .conftest import FIXTURES, CliRun

CIFAR = FIXTURES / "cifar10-test"
FORMATS = ("text", "markdown", "html", "json")


def _one_class(folder: Path) -> None:
    """CIFAR-10 rows all labeled airplane: about 90% of the labels are wrong."""
    labels = pl.read_csv(CIFAR / "labels.csv").head(2000).with_columns(label=pl.lit("airplane"))
    labels.write_csv(folder / "labels.csv")
    pl.read_parquet(CIFAR / "preds.parquet").head(2000).write_parquet(folder / "preds.parquet")


def test_one_class_present_of_ten_is_one_consistent_story(cli: CliRun, tmp_path: Path) -> None:
    _one_class(tmp_path)
    args = (
        "scan",
        "labels.csv",
        "--preds",
        "preds.parquet",
        "--classes",
        str(CIFAR / "classes.txt"),
    )
    result = cli(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    issues = report["label_issues"]
    flagged, estimated = issues["n_suspects"], issues["estimated_errors"]
    assert flagged > 1500 and abs(estimated - flagged) <= 0.1 * flagged  # not 0 beside 1,800
    assert issues["health_score"] < 0.2
    assert report["imbalance"]["normalized_entropy"] == 0.0
    reasons = " ".join(report["recommendations"]["loss"]["reasons"])
    risks = " ".join(report["recommendations"]["loss"]["risks"])
    assert "nearly balanced" not in reasons and "9 of the 10 classes have no sample" in risks
    for fmt in FORMATS:
        shown = cli(*args, "--format", fmt).stdout
        assert "-0.0" not in shown and "-0%" not in shown, fmt
    text = cli(*args).stdout
    healthy = text.split("Least healthy classes")[1].split("\n\n")[0]
    assert "airplane" in healthy and "automobile" not in healthy  # no empty class listed
    assert "every class 1 (equal counts)" in text
    assert "dog and 4 more." in text and "...." not in text


def test_a_balanced_scan_names_no_rarest_class(cli: CliRun) -> None:
    text = cli("scan", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet")).stdout
    assert "every class 1 (equal counts)" in text and "rarest class" not in text


def test_the_ignore_cols_hint_can_be_pasted(cli: CliRun, tmp_path: Path) -> None:
    preds = pl.read_parquet(CIFAR / "preds.parquet")
    folds = {f"fold_{i}": np.zeros(preds.height) for i in range(12)}
    preds.with_columns(**folds).write_parquet(tmp_path / "p.parquet")
    failed = cli("scan", str(CIFAR / "labels.csv"), "--preds", "p.parquet")
    assert failed.exit_code == 2 and "and 2 more" in failed.stderr
    hint = shlex.split(failed.stderr.split("--ignore-cols ")[1].rstrip().rstrip("."))[0]
    assert hint.split(",") == list(folds)
    passed = cli("scan", str(CIFAR / "labels.csv"), "--preds", "p.parquet", "--ignore-cols", hint)
    assert passed.exit_code == 0, passed.output


def test_one_class_column_left_means_the_others_are_classes(cli: CliRun, tmp_path: Path) -> None:
    _one_class(tmp_path)
    failed = cli("scan", "labels.csv", "--preds", "preds.parquet")
    assert failed.exit_code == 2 and "--classes FILE" in failed.stderr
    assert "--ignore-cols" not in failed.stderr  # never advise dropping the real classes


@pytest.mark.parametrize(
    ("name", "write", "says"),
    [
        ("labels.csv", lambda p: pl.DataFrame({"id": [1], "label": ["a"]}).write_parquet(p),
         "is named as csv but is a Parquet file"),
        ("labels.jsonl", lambda p: pl.DataFrame({"id": [1], "label": ["a"]}).write_ipc(p),
         "is named as ndjson but is an Arrow IPC (Feather) file"),
        ("labels.csv", lambda p: p.write_bytes(b"PK\x03\x04" + bytes(60)), "is a zip archive"),
        ("labels.parquet", lambda p: p.write_bytes(b"\x93NUMPY" + bytes(60)), "a NumPy .npy array"),
    ],
)  # fmt: skip
def test_a_file_is_named_for_what_its_first_bytes_say(
    cli: CliRun, tmp_path: Path, name: str, write, says: str
) -> None:
    write(tmp_path / name)
    result = cli("scan", name)
    assert result.exit_code == 2 and says in result.stderr, result.output
    assert "\\x" not in result.stderr and len(result.stderr) < 400  # no bytes printed


def test_gzip_behind_a_csv_name_still_reads(cli: CliRun, tmp_path: Path) -> None:
    import gzip

    (tmp_path / "labels.csv").write_bytes(gzip.compress((CIFAR / "labels.csv").read_bytes()))
    assert cli("scan", "labels.csv").exit_code == 0


def test_the_python_wording_names_the_list_argument() -> None:
    labels = pl.DataFrame({"id": [0, 1, 2], "label": ["a", "a", "b"]})
    preds = pl.DataFrame({"id": [0, 1, 2], "a": [0.5] * 3, "b": [0.2] * 3, "c": [0.3] * 3})
    with pytest.raises(InputError) as caught:
        labelaudit.scan(labels, preds=preds)
    assert "classes=[...]" in str(caught.value) and "classes=FILE" not in str(caught.value)


def test_an_arrow_stream_is_read(cli: CliRun, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"id": [0, 1, 2], "label": ["a", "b", "a"]})
    with (
        pa.OSFile(str(tmp_path / "labels.arrow"), "wb") as sink,
        pa.ipc.new_stream(sink, table.schema) as writer,
    ):
        writer.write_table(table)
    result = cli("scan", "labels.arrow", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dataset"]["n_samples"] == 3


def test_a_workbook_is_told_to_be_exported(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "labels.xlsx").write_bytes(b"PK\x03\x04" + bytes(60))
    result = cli("scan", "labels.xlsx")
    assert result.exit_code == 2 and "Export the sheet as CSV" in result.stderr


def test_python_wording_of_lists_and_quoted_values() -> None:
    from labelaudit.errors import python_wording

    assert python_wording("pass --ignore-cols fold,index.") == "pass ignore_cols=['fold', 'index']."
    quoted = "pass --ignore-cols 'Unnamed: 0,it'\"'\"'s'."
    assert python_wording(quoted) == "pass ignore_cols=['Unnamed: 0', \"it's\"]."
    assert python_wording("e.g. --label-sep '|'.") == 'e.g. label_sep="|".'


def test_classes_may_be_a_path_in_python(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    labels = pl.DataFrame({"id": [0, 1, 2], "label": ["a", "a", "b"]})
    preds = pl.DataFrame({"id": [0, 1, 2], "a": [0.5] * 3, "b": [0.2] * 3, "c": [0.3] * 3})
    report = labelaudit.scan(labels, preds=preds, classes=str(tmp_path / "classes.txt"))
    assert report.dataset.classes == ["a", "b", "c"]


def test_a_column_whose_name_holds_a_comma_can_be_ignored(cli: CliRun, tmp_path: Path) -> None:
    preds = pl.read_parquet(CIFAR / "preds.parquet").with_columns(pl.lit(0.0).alias("fold,x"))
    preds.write_parquet(tmp_path / "p.parquet")
    failed = cli("scan", str(CIFAR / "labels.csv"), "--preds", "p.parquet")
    assert failed.exit_code == 2 and 'ignore_cols = ["fold,x"]' in failed.stderr
    (tmp_path / "labelaudit.toml").write_text('ignore_cols = ["fold,x"]\n')
    passed = cli("scan", str(CIFAR / "labels.csv"), "--preds", "p.parquet")
    assert passed.exit_code == 0, passed.output
    labelaudit.scan(CIFAR / "labels.csv", preds=tmp_path / "p.parquet", ignore_cols=["fold,x"])
