"""Outputs never destroy an input: every output path is checked before any work (exit 2)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from .conftest import FIXTURES, CliRun

CIFAR = FIXTURES / "cifar10-test"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A copy of the CIFAR-10 fixture (labels, preds, classes) in tmp_path."""
    for name in ("labels.csv", "preds.parquet", "classes.txt"):
        shutil.copy(CIFAR / name, tmp_path / name)
    return tmp_path


def scan_args(*extra: str) -> list[str]:
    return ["scan", "labels.csv", "--preds", "preds.parquet", *extra]


# (command line, the input it must not overwrite); outputs named by any option of any command.
ONTO_AN_INPUT = {
    "scan -o labels": (scan_args("-o", "labels.csv"), "labels.csv"),
    "scan -o preds": (scan_args("-o", "preds.parquet"), "preds.parquet"),
    "scan --issues-out labels": (scan_args("--issues-out", "labels.csv"), "labels.csv"),
    "scan --weights-out preds": (scan_args("--weights-out", "preds.parquet"), "preds.parquet"),
    "scan -o classes": (scan_args("--classes", "classes.txt", "-o", "classes.txt"), "classes.txt"),
    "scan -o absolute": (scan_args("-o", "{tmp}/labels.csv"), "labels.csv"),
    "scan -o dot-slash": (scan_args("-o", "./labels.csv"), "labels.csv"),
    "scan -o dot-dot": (scan_args("-o", "../{name}/labels.csv"), "labels.csv"),
    "scan -o symlink": (scan_args("-o", "link.csv"), "labels.csv"),
    "scan -o hard link": (scan_args("-o", "hard.csv"), "labels.csv"),
    "scan -o the config": (scan_args("-o", "pyproject.toml"), "pyproject.toml"),
    "diff -o old": (["diff", "labels.csv", "labels.csv", "-o", "labels.csv"], "labels.csv"),
    "gate --junit labels": (["gate", "labels.csv", "--junit", "labels.csv"], "labels.csv"),
    "gate --write-baseline preds": (
        ["gate", "labels.csv", "--preds", "preds.parquet", "--write-baseline", "preds.parquet"],
        "preds.parquet",
    ),
    "gate -o baseline": (
        ["gate", "labels.csv", "--baseline", "old.csv", "-o", "old.csv"],
        "old.csv",
    ),
    "thresholds -o labels": (
        ["thresholds", "labels.csv", "--preds", "preds.parquet", "-o", "labels.csv"],
        "labels.csv",
    ),
    "thresholds --html preds": (
        ["thresholds", "labels.csv", "--preds", "preds.parquet", "--html", "preds.parquet"],
        "preds.parquet",
    ),
    "scan --plots-dir holding a png input": (
        ["scan", "support.png", "--input-format", "csv", "--plots-dir", "."],
        "support.png",
    ),
}


@pytest.mark.parametrize("case", list(ONTO_AN_INPUT))
def test_an_output_onto_an_input_is_refused_before_any_work(
    case: str, data: Path, cli: CliRun
) -> None:
    args, victim = ONTO_AN_INPUT[case]
    (data / "link.csv").symlink_to(data / "labels.csv")
    os.link(data / "labels.csv", data / "hard.csv")
    (data / "pyproject.toml").write_text("[tool.labelaudit]\nmin_support = 5\n")
    shutil.copy(data / "labels.csv", data / "old.csv")
    shutil.copy(data / "labels.csv", data / "support.png")
    args = [a.format(tmp=data, name=data.name) for a in args]
    before = {p.name: digest(p) for p in data.iterdir() if p.is_file()}
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert f"'{victim}'" in result.stderr or victim in result.stderr
    after = {p.name: digest(p) for p in data.iterdir() if p.is_file()}
    assert after == before
    assert not [p for p in data.iterdir() if p.name.endswith(".tmp")]


def test_score_output_onto_its_data_is_refused(tmp_path: Path, cli: CliRun) -> None:
    features = tmp_path / "features.parquet"
    pl.DataFrame({"id": [0, 1], "x": [0.1, 0.2], "label": ["a", "b"]}).write_parquet(features)
    before = digest(features)
    result = cli("score", "--data", "features.parquet", "--cv", "2", "-o", "features.parquet")
    assert result.exit_code == 2
    assert "one of this run's inputs" in result.stderr
    assert digest(features) == before


def test_two_outputs_on_one_path_are_refused(data: Path, cli: CliRun) -> None:
    result = cli(*scan_args("--issues-out", "out.csv", "--weights-out", "./out.csv"))
    assert result.exit_code == 2
    assert "--issues-out" in result.stderr and "--weights-out" in result.stderr
    assert "both name './out.csv'" in result.stderr
    assert not (data / "out.csv").exists()


def test_an_output_that_is_a_folder_is_refused(data: Path, cli: CliRun) -> None:
    (data / "reports").mkdir()
    result = cli(*scan_args("-o", "reports"))
    assert result.exit_code == 2
    assert "-o 'reports' is a folder" in result.stderr


def test_an_output_in_a_missing_folder_is_refused_before_the_scan(data: Path, cli: CliRun) -> None:
    result = cli(*scan_args("--issues-out", "nowhere/issues.csv"))
    assert result.exit_code == 2
    assert "the folder 'nowhere' does not exist" in result.stderr


def test_plots_dir_that_is_a_file_is_refused(data: Path, cli: CliRun) -> None:
    (data / "plots").write_text("x")
    result = cli(*scan_args("--plots-dir", "plots"))
    assert result.exit_code == 2
    assert "is a file" in result.stderr


@pytest.mark.skipif(IS_ROOT, reason="root may write anywhere: permissions cannot be tested")
def test_a_read_only_folder_and_a_read_only_file_are_refused(data: Path, cli: CliRun) -> None:
    locked = data / "locked"
    locked.mkdir()
    (data / "kept.json").write_text("{}")
    os.chmod(data / "kept.json", 0o444)
    os.chmod(locked, 0o555)
    try:
        in_folder = cli(*scan_args("-o", "locked/report.txt"))
        read_only = cli(*scan_args("-o", "kept.json"))
    finally:
        os.chmod(locked, 0o755)
    assert in_folder.exit_code == 2 and "is not writable" in in_folder.stderr
    assert read_only.exit_code == 2 and "read-only" in read_only.stderr
    assert (data / "kept.json").read_text() == "{}"


def test_a_read_only_existing_output_is_refused_even_for_root(
    data: Path, cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check asks os.access; pretend the file is read-only where the test runs as root."""
    (data / "kept.json").write_text("{}")
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: False if str(path).endswith("kept.json") else real_access(path, mode),
    )
    result = cli(*scan_args("-o", "kept.json"))
    assert result.exit_code == 2
    assert "exists and is read-only" in result.stderr
    assert (data / "kept.json").read_text() == "{}"


def test_issues_out_with_suspects_none_is_refused_before_the_analysis(
    data: Path, cli: CliRun
) -> None:
    result = cli(*scan_args("--suspects", "none", "--issues-out", "issues.csv"))
    assert result.exit_code == 2
    assert "--suspects none turns off" in result.stderr
    assert "needs --preds" not in result.stderr


def test_issues_out_without_preds_names_the_missing_option(data: Path, cli: CliRun) -> None:
    result = cli("scan", "labels.csv", "--issues-out", "issues.csv")
    assert result.exit_code == 2
    assert "--issues-out needs --preds" in result.stderr


def test_outputs_next_to_inputs_are_fine(data: Path, cli: CliRun) -> None:
    result = cli(*scan_args("-o", "report.json", "--format", "json", "--issues-out", "i.csv"))
    assert result.exit_code == 0, result.stderr
    assert (data / "report.json").exists() and (data / "i.csv").exists()
    assert sorted(p.name for p in data.iterdir()) == [
        "classes.txt",
        "i.csv",
        "labels.csv",
        "preds.parquet",
        "report.json",
    ]


def test_a_replaced_report_keeps_the_usual_permissions(data: Path, cli: CliRun) -> None:
    assert cli(*scan_args("-o", "r.txt")).exit_code == 0
    mode = (data / "r.txt").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert np.isfinite(mode)
