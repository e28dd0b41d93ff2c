"""The whole configuration is validated whichever command runs: bad settings are exit 2 with the
file named, never an internal error (exit 3) and never silently ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import CliRun

BAD_PYPROJECTS = {
    "gate is a number": ("[tool.labelaudit]\ngate = 5\n", "must be a table of rules"),
    "gate rule NaN": (
        "[tool.labelaudit.gate]\nmax_suspect_rate = nan\n",
        "finite number",
    ),
    "gate rule inf": (
        "[tool.labelaudit.gate]\nmin_accuracy = inf\n",
        "finite number",
    ),
    "unknown gate rule": (
        "[tool.labelaudit.gate]\nmax_suspects = 3\n",
        "Unknown gate rule",
    ),
    "wrong type": ('[tool.labelaudit]\nmin_support = "ten"\n', "pyproject.toml"),
    "threshold NaN": ("[tool.labelaudit]\nthreshold = nan\n", "finite number"),
    "max_weight NaN": ("[tool.labelaudit]\nmax_weight = nan\n", "max_weight"),
    "ignore_cols not names": ("[tool.labelaudit]\nignore_cols = [1, 2]\n", "column names"),
    "labelaudit not a table": ("[tool]\nlabelaudit = 3\n", "must be a table"),
}


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text("id,label\n1,cat\n2,dog\n3,cat\n")
    return path


@pytest.mark.parametrize("command", ["scan", "diff", "gate"])
@pytest.mark.parametrize("case", list(BAD_PYPROJECTS))
def test_a_bad_setting_is_exit_2_for_every_command(
    case: str, command: str, labels: Path, tmp_path: Path, cli: CliRun
) -> None:
    text, expected = BAD_PYPROJECTS[case]
    (tmp_path / "pyproject.toml").write_text(text)
    args = [command, "labels.csv"] + (["labels.csv"] if command == "diff" else [])
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Internal error" not in result.stderr


def test_a_wrong_type_names_the_file_not_the_command_line(
    labels: Path, tmp_path: Path, cli: CliRun
) -> None:
    (tmp_path / "labelaudit.toml").write_text('top = "many"\n')
    result = cli("scan", "labels.csv")
    assert result.exit_code == 2
    assert "labelaudit.toml" in result.stderr
    assert "the command line" not in result.stderr


def test_a_pyproject_that_is_not_utf8(labels: Path, tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.labelaudit]\n# caf\xe9\nmin_support = 2\n")
    result = cli("scan", "labels.csv")
    assert result.exit_code == 2
    assert "is not UTF-8" in result.stderr


def test_a_config_option_pointing_at_a_folder(labels: Path, tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "conf").mkdir()
    result = cli("scan", "labels.csv", "--config", "conf")
    assert result.exit_code == 2
    assert "is a folder" in result.stderr


def test_a_tool_key_that_is_not_a_table_is_not_a_crash(
    labels: Path, tmp_path: Path, cli: CliRun
) -> None:
    (tmp_path / "pyproject.toml").write_text("tool = 5\n")
    assert cli("scan", "labels.csv").exit_code == 0


@pytest.mark.parametrize("kind", ["folder", "not utf-8"])
def test_an_unreadable_classes_file(kind: str, labels: Path, tmp_path: Path, cli: CliRun) -> None:
    classes = tmp_path / "classes.txt"
    if kind == "folder":
        classes.mkdir()
    else:
        classes.write_bytes(b"cat\nd\xf6g\n")
    result = cli("scan", "labels.csv", "--classes", "classes.txt")
    assert result.exit_code == 2
    assert "classes file" in result.stderr


def test_a_cli_flag_of_the_wrong_value_names_the_command_line(labels: Path, cli: CliRun) -> None:
    result = cli("scan", "labels.csv", "--threshold", "nan")
    assert result.exit_code == 2
    assert "the command line" in result.stderr
