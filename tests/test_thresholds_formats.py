"""`labelaudit thresholds` through the one emit path: every --format, -o, the deprecated --html."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import FIXTURES, CliRun

CIFAR = FIXTURES / "cifar10-test"
ARGS = ("thresholds", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet"))


def test_json_is_the_default_and_the_file_scan_applies(tmp_path: Path, cli: CliRun) -> None:
    assert cli(*ARGS, "-o", "t.json").exit_code == 0
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["command"] == "thresholds" and "curves" not in data
    applied = cli("scan", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet"),
                  "--thresholds", "t.json", "--format", "json")  # fmt: skip
    assert applied.exit_code == 0, applied.stderr
    assert json.loads(applied.stdout)["metrics"]["decision"].startswith("per-class thresholds")


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("text", "Thresholds\n"), ("markdown", "| class | threshold |"), ("html", "<!DOCTYPE html>")],
)
def test_every_format(fmt: str, expected: str, cli: CliRun) -> None:
    result = cli(*ARGS, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert expected in result.stdout
    assert "macro F1" in result.stderr  # the summary line stays on stderr


def test_the_deprecated_html_option_still_writes_the_page(tmp_path: Path, cli: CliRun) -> None:
    result = cli(*ARGS, "-o", "t.json", "--html", "t.html")
    assert result.exit_code == 0
    assert "--html is deprecated" in result.stderr
    assert (tmp_path / "t.html").read_text().startswith("<!DOCTYPE html>")
    assert json.loads((tmp_path / "t.json").read_text())["command"] == "thresholds"
