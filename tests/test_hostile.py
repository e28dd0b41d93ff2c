"""Cases found by a hostile run from a fresh clone: each must be right, or exit 2 with a clear
message, never a silent wrong figure, a lost input or a traceback."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from labelaudit.api import scan

from .conftest import FIXTURES, CliRun, labels_frame, preds_frame

CIFAR = FIXTURES / "cifar10-test"
SYNTH = FIXTURES / "synthetic-multiclass"
MULTI = FIXTURES / "synthetic-multilabel"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    for name in ("labels.csv", "preds.parquet", "classes.txt"):
        shutil.copy(CIFAR / name, tmp_path / name)
    return tmp_path


SCAN = ("scan", "labels.csv", "--preds", "preds.parquet")


# --- outputs ----------------------------------------------------------------------------------


def test_dev_null_is_written_in_place_not_replaced(data: Path, cli: CliRun) -> None:
    before = os.stat("/dev/null")
    result = cli(*SCAN, "-o", "/dev/null")
    assert result.exit_code == 0, result.stderr
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_a_symlinked_output_is_written_through(data: Path, cli: CliRun) -> None:
    (data / "real.txt").write_text("old")
    (data / "link.txt").symlink_to(data / "real.txt")
    assert cli(*SCAN, "-o", "link.txt").exit_code == 0
    assert (data / "link.txt").is_symlink()
    assert (data / "real.txt").read_text().startswith("labelaudit scan")


def test_a_replaced_output_keeps_its_permissions(data: Path, cli: CliRun) -> None:
    (data / "private.json").write_text("{}")
    os.chmod(data / "private.json", 0o600)
    assert cli(*SCAN, "--format", "json", "-o", "private.json").exit_code == 0
    assert stat.S_IMODE((data / "private.json").stat().st_mode) == 0o600


def test_a_read_only_output_is_refused_whoever_runs(data: Path, cli: CliRun) -> None:
    (data / "kept.json").write_text("{}")
    os.chmod(data / "kept.json", 0o444)
    result = cli(*SCAN, "-o", "kept.json")
    assert result.exit_code == 2 and "read-only" in result.stderr
    assert (data / "kept.json").read_text() == "{}"


def test_dash_is_stdout(data: Path, cli: CliRun) -> None:
    result = cli(*SCAN, "-o", "-")
    assert result.exit_code == 0 and result.stdout.startswith("labelaudit scan")
    assert not (data / "-").exists()


def test_figures_and_media_are_checked_as_outputs_and_inputs(data: Path, cli: CliRun) -> None:
    (data / "media").mkdir()
    (data / "media" / "support.png").write_bytes(b"\x89PNG a picture")
    labels = pl.read_csv(data / "labels.csv").with_columns(path=pl.lit("media/support.png"))
    labels.write_csv(data / "labels.csv")
    media = ("--media-col", "path")
    onto_media = cli(*SCAN, *media, "--plots-dir", "media")
    assert onto_media.exit_code == 2 and "support.png" in onto_media.stderr
    report_onto_media = cli(*SCAN, *media, "--format", "html", "-o", "media/support.png")
    assert report_onto_media.exit_code == 2
    assert (data / "media" / "support.png").read_bytes() == b"\x89PNG a picture"
    (data / "plots").mkdir()
    collision = cli(*SCAN, "--plots-dir", "plots", "-o", "plots/support.png")
    assert (
        collision.exit_code == 2 and "each output of a run needs its own path" in collision.stderr
    )
    folder_is_output = cli(*SCAN, "-o", "out", "--plots-dir", "out")
    assert folder_is_output.exit_code == 2
    assert not list((data / "plots").iterdir()) and not (data / "out").exists()


def test_the_github_step_summary_is_an_output(data: Path, cli: CliRun) -> None:
    before = (data / "labels.csv").read_bytes()
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(data / "labels.csv")}
    result = cli("gate", "labels.csv", env=env)
    assert result.exit_code == 2 and "one of this run's inputs" in result.stderr
    assert (data / "labels.csv").read_bytes() == before
    missing = cli("gate", "labels.csv", env={**env, "GITHUB_STEP_SUMMARY": "no/such/file.md"})
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def _labelaudit(*args: str, cwd: Path, stdout) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labelaudit", *args], cwd=cwd, stdout=stdout,
        stderr=subprocess.PIPE, text=True, timeout=120,
    )  # fmt: skip


def test_a_full_or_closed_stdout_is_exit_2(data: Path) -> None:
    with open("/dev/full", "w") as full:
        done = _labelaudit(*SCAN, cwd=data, stdout=full)
    assert done.returncode == 2 and "No space left" in done.stderr
    closed = subprocess.run(
        f"{sys.executable} -m labelaudit scan labels.csv >&-", shell=True, cwd=data,
        capture_output=False, stderr=subprocess.PIPE, text=True, timeout=120,
    )  # fmt: skip
    assert closed.returncode == 2 and "stdout is closed" in closed.stderr


def test_an_interrupt_at_start_is_quiet(data: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "labelaudit", *SCAN], cwd=data, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode in (130, 0)  # 0 only if the scan beat the signal
    assert "Traceback" not in stderr


# --- figures ----------------------------------------------------------------------------------


def test_no_overlap_between_labels_and_predictions_is_exit_2(tmp_path: Path, cli: CliRun) -> None:
    labels_frame(np.array(["a", "b"]), np.array([1, 2])).write_csv(tmp_path / "l.csv")
    preds_frame(np.full((2, 2), 0.5), ["a", "b"], np.array([7, 8])).write_csv(tmp_path / "p.csv")
    result = cli("gate", "l.csv", "--preds", "p.csv", "--on-missing", "drop")
    assert result.exit_code == 2 and "the ids do not overlap" in result.stderr


def test_csv_text_ids_and_labels_keep_their_text(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("id,label\n1,7\n01,007\n2,7\n")
    result = cli("scan", "l.csv", "--format", "json")
    report = json.loads(result.stdout)
    assert report["dataset"]["classes"] == ["007", "7"]
    assert report["duplicates"]["duplicate_ids"] == 0  # "01" and "1" are two ids


def test_multilabel_shares_are_of_samples() -> None:
    report = scan(MULTI / "labels.parquet").to_dict()
    shares = sum(c["share"] for c in report["support"]["per_class"])
    assert shares == pytest.approx(report["multilabel"]["cardinality"])


def test_diff_keeps_rows_without_scores(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "old.csv").write_text("id,label\n1,a\n2,b\n3,a\n")
    (tmp_path / "new.csv").write_text("id,label\n1,b\n2,b\n3,a\n4,d\n")
    (tmp_path / "p.csv").write_text("id,a,b,d\n1,0.2,0.7,0.1\n2,0.1,0.8,0.1\n3,0.8,0.1,0.1\n")
    plain = json.loads(cli("diff", "old.csv", "new.csv", "--format", "json").stdout)
    dropped = cli("diff", "old.csv", "new.csv", "--preds", "p.csv", "--on-missing", "drop",
                  "--format", "json")  # fmt: skip
    with_scores = json.loads(dropped.stdout)
    assert with_scores["summary"] == plain["summary"]
    assert with_scores["new_classes"] == plain["new_classes"] == ["d"]
    assert with_scores["relabels_vs_model"]["checked"] == 1


@pytest.mark.parametrize("fraction", ["0.0001", "0.9999"])
def test_a_holdout_with_an_empty_side_is_exit_2(fraction: str, cli: CliRun) -> None:
    result = cli("thresholds", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet"),
                 "--holdout", fraction)  # fmt: skip
    assert result.exit_code == 2 and "no row" in result.stderr


def test_a_class_best_predicted_at_probability_one_stays_on() -> None:
    from labelaudit.core.thresholds import OFF, Objective, best_threshold

    scores = np.array([1.0, 1.0, 0.3, 0.2])
    chosen = best_threshold(scores, np.array([1, 1, 0, 0]), Objective("f1", None))
    assert chosen < OFF and (scores >= chosen).tolist() == [True, True, False, False]


def test_json_lines_labels_mixing_lists_are_exit_2(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.jsonl").write_text('{"id": 1, "label": "a"}\n{"id": 2, "label": ["a", "b"]}\n')
    result = cli("scan", "l.jsonl")
    assert result.exit_code == 2 and "mixes single labels with lists" in result.stderr


def test_separators_in_labels_get_a_hint(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("label\na|b\nb|c\na\n")
    assert "pass --label-sep '|'" in cli("scan", "l.csv").stderr


def test_names_compare_in_nfc(tmp_path: Path, cli: CliRun) -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    (tmp_path / "l.csv").write_text(f"id,label\n1,{composed}\n2,tea\n", encoding="utf-8")
    (tmp_path / "p.csv").write_text(f"id,{decomposed},tea\n1,0.9,0.1\n2,0.2,0.8\n")
    result = cli("scan", "l.csv", "--preds", "p.csv", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["accuracy"] == 1.0


def test_byte_order_marks_are_not_part_of_names(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("label\na\nb\n")
    (tmp_path / "classes.txt").write_bytes("\ufeffa\nb\n".encode())
    (tmp_path / "pyproject.toml").write_bytes("\ufeff[tool.labelaudit]\nmin_support = 1\n".encode())
    result = cli("scan", "l.csv", "--classes", "classes.txt", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["dataset"]["classes"] == ["a", "b"]


def test_a_file_that_is_not_npy(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("label\n0\n1\n")
    (tmp_path / "p.npy").write_bytes(b"not numpy at all")
    result = cli("scan", "l.csv", "--preds", "p.npy")
    assert result.exit_code == 2 and "lacks the .npy header" in result.stderr
    assert "allow_pickle" not in result.stderr


def test_an_unclosed_quote_is_located(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text('id,label\n1,cat\n2,"dog\n3,cat\n')
    result = cli("scan", "l.csv")
    assert result.exit_code == 2
    assert "record starting on line 3 (a quote opened there is never closed)" in result.stderr


def test_gzip_and_pipes(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "l.csv.gz", "wt") as handle:
        handle.write("label\na\nb\n")
    piped = subprocess.run(
        f"cat l.csv.gz | gunzip | {sys.executable} -m labelaudit scan /dev/stdin "
        "--input-format csv --format json", shell=True, cwd=tmp_path, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["dataset"]["n_samples"] == 2


def test_bidirectional_controls_are_escaped() -> None:
    from labelaudit._text import printable

    assert printable("a\u202eb") == "a\\u202eb"


def test_id_and_label_in_one_column_is_exit_2(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("label\na\n")
    result = cli("scan", "l.csv", "--id-col", "label")
    assert result.exit_code == 2 and "the id and the label are two columns" in result.stderr


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("[tool.labelaudit.gate]\n", "is empty"),
        ("[tool.labelaudit.gate]\nmin_accuracy = 1.5\n", "must be in [0, 1]"),
        ("[tool.labelaudit.gate]\nmax_suspect_rate = -1\n", "must be in [0, 1]"),
        ("[tool.labelaudit.gate]\nmax_null_labels = -3\n", "must be >= 0"),
    ],
)
def test_gate_limits_no_figure_can_reach(table: str, expected: str, tmp_path: Path, cli) -> None:
    (tmp_path / "l.csv").write_text("label\na\n")
    (tmp_path / "pyproject.toml").write_text(table)
    result = cli("gate", "l.csv")
    assert result.exit_code == 2 and expected in result.stderr


def test_a_labelaudit_toml_with_both_forms_is_exit_2(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("label\na\n")
    (tmp_path / "labelaudit.toml").write_text("top = 3\n[tool.labelaudit]\ntop = 5\n")
    result = cli("scan", "l.csv")
    assert result.exit_code == 2 and "both at the top level and under" in result.stderr


def test_flag_errors_name_the_flag(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("label\na\n")
    result = cli("scan", "l.csv", "--top", "-1")
    assert result.exit_code == 2 and "--top must be >= 0; found -1 on the command line" in (
        result.stderr
    )


def test_errors_read_from_python_name_parameters(tmp_path: Path) -> None:
    from labelaudit.errors import SchemaError

    (tmp_path / "l.csv").write_text("id,category\n1,a\n")
    with pytest.raises(SchemaError) as raised:
        scan(tmp_path / "l.csv")
    assert "label_col" in str(raised.value) and "--label-col" not in str(raised.value)
    assert "--label-col" in raised.value.message  # the command line's wording
