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
elif step == "weights":  # the issues file is written in full, then the weights are stopped
    import labelaudit.io.writers
    real_pieces = labelaudit.io.writers.write_pieces
    def write_pieces(path, pieces):
        if str(path).endswith("weights.csv"):
            stop_now()
        return real_pieces(path, pieces)
    labelaudit.io.writers.write_pieces = write_pieces
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


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupt_between_outputs_says_which_were_written(
    name: str, code: int, tmp_path: Path
) -> None:
    for output in ("issues.csv", "weights.csv"):
        (tmp_path / output).write_text("previous output\n")
    args = [
        "scan", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet"),
        "-o", "report.json", "--format", "json", "--issues-out", "issues.csv",
        "--weights-out", "weights.csv",
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "weights", name, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "issues.csv").read_text().startswith("id,")  # replaced in full
    assert (tmp_path / "weights.csv").read_text() == "previous output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["issues.csv", "weights.csv"]
    message = done.stderr.strip().splitlines()[-1]
    assert message == (
        "Interrupted; no output was left half-written. Written in full before the interrupt: "
        "--issues-out 'issues.csv'. Not written (any earlier file there is unchanged): "
        "-o 'report.json', --weights-out 'weights.csv'. The outputs now come from two runs: "
        "rerun before using them together."
    )


def test_the_interrupt_message_lists_the_outputs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import labelaudit.cli as cli_module
    from labelaudit.io.writers import forget_outputs, plan_outputs, write_text

    monkeypatch.chdir(tmp_path)
    try:
        plan_outputs({"-o": "report.json", "--issues-out": None, "--plots-dir": "plots"})
        assert cli_module._interrupt_message() == (
            "Interrupted; no output was left half-written. Not written (any earlier file there "
            "is unchanged): -o 'report.json', --plots-dir 'plots'."
        )
        (tmp_path / "plots").mkdir()
        write_text("plots/support.png", "one figure of several")
        assert cli_module._interrupt_message() == (
            "Interrupted; no output was left half-written. Partly written (some of its files "
            "replaced, the others not): --plots-dir 'plots'. Not written (any earlier file "
            "there is unchanged): -o 'report.json'. The outputs now come from two runs: rerun "
            "before using them together."
        )
        write_text("report.json", "{}")
        assert "Written in full before the interrupt: -o 'report.json'." in (
            cli_module._interrupt_message()
        )
        plan_outputs({"-o": "-"})  # stdout only: nothing to list
        assert cli_module._interrupt_message() == "Interrupted; no output was left half-written."
    finally:
        forget_outputs()


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
