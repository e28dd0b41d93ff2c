"""Interrupts: a real process stopped by SIGINT or SIGTERM while it writes (or computes) exits
130 / 143, leaves no temporary file, and keeps the previous outputs intact."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FIXTURES

CIFAR = FIXTURES / "cifar10-test"

# Runs the real CLI in a fresh interpreter; the named step signals the process itself halfway,
# deterministically (a timed kill from outside would race the interpreter's start).
SCRIPT = """
import os, signal, sys, time
import polars as pl
import labelaudit.pipelines.scan

step, name = sys.argv[1], sys.argv[2]

def stop_now():
    os.kill(os.getpid(), getattr(signal, name))
    time.sleep(10)  # the handler raises at the next bytecode; never reached in full

if step == "write":
    def write_csv(self, file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            with open(file, "w") as handle:
                handle.write("half of a table")
        else:  # an open file, written piece by piece
            file.write(b"half of a table")
            file.flush()
        stop_now()
    pl.DataFrame.write_csv = write_csv
else:
    real = labelaudit.pipelines.scan.build_report
    def build_report(*args, **kwargs):
        stop_now()
        return real(*args, **kwargs)
    labelaudit.pipelines.scan.build_report = build_report

from labelaudit.cli import main
sys.argv = ["labelaudit", *sys.argv[3:]]
main()
"""


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
@pytest.mark.parametrize("step", ["write", "compute"])
def test_an_interrupted_run_exits_128_plus_the_signal_and_leaves_nothing(
    name: str, code: int, step: str, tmp_path: Path
) -> None:
    (tmp_path / "issues.csv").write_text("previous output\n")
    args = [
        "scan", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet"),
        "--issues-out", "issues.csv", "-o", "report.txt",
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, step, name, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert "Interrupted" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["issues.csv"]
    assert (tmp_path / "issues.csv").read_text() == "previous output\n"


def test_signal_handlers_are_restored_after_a_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from labelaudit.cli import cli

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    (tmp_path / "l.csv").write_text("label\na\n")
    CliRunner().invoke(cli, ["scan", str(tmp_path / "l.csv")])
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


class FakePanic(BaseException):
    """Like pyo3's PanicException: a BaseException a Rust library raises around a failure."""


@pytest.mark.parametrize(("signalled", "code"), [(True, 143), (False, 3)])
def test_a_signal_wrapped_by_a_library_panic_still_exits_as_the_signal(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, signalled: bool, code: int
) -> None:
    import labelaudit.cli as cli_module

    def build_report(*args: object, **kwargs: object) -> None:
        if signalled:
            cli_module._RECEIVED_SIGNAL.append(signal.SIGTERM)  # as the handler records it
        raise FakePanic("the signal's exception, wrapped")

    monkeypatch.setattr("labelaudit.pipelines.scan.build_report", build_report)
    (tmp_path / "l.csv").write_text("label\na\n")
    result = cli("scan", "l.csv")
    assert result.exit_code == code, result.output
    assert ("Interrupted" in result.output) == signalled
