"""Interrupts: a real process stopped by SIGINT or SIGTERM while it writes (or computes) exits
130 / 143, leaves no temporary file, and keeps the previous outputs intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
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
elif step == "atexit":  # every output written, the exit code 0 decided: in an atexit callback
    import atexit
    atexit.register(stop_now)
elif step == "ranks":  # from the ranks' thread, while the main thread waits for it
    import labelaudit.pipelines.label_issues as label_issues
    label_issues.BACKGROUND_RANK_ROWS = 0
    real_ranks = label_issues.quality_ranks
    def quality_ranks(quality):
        os.kill(os.getpid(), getattr(signal, name))
        time.sleep(10)
        return real_ranks(quality)
    label_issues.quality_ranks = quality_ranks
elif step == "handover":  # while labelaudit/_console.py imports the CLI
    import builtins
    real_import = builtins.__import__
    def hooked_import(module, *args, **kwargs):
        if module == "labelaudit.cli":
            stop_now()
        return real_import(module, *args, **kwargs)
    builtins.__import__ = hooked_import
else:
    real = labelaudit.pipelines.scan.build_report
    def build_report(*args, **kwargs):
        stop_now()
        return real(*args, **kwargs)
    labelaudit.pipelines.scan.build_report = build_report

sys.argv = ["labelaudit", *sys.argv[3:]]
if step == "handover":
    from labelaudit._console import main
else:
    from labelaudit.cli import main
main()
"""


def run_script(step: str, name: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, step, name, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


INTERRUPTED = "Interrupted; no output was left half-written."
ALL_WRITTEN = (
    f"{INTERRUPTED} Written in full before the interrupt: -o 'report.json', --issues-out "
    "'issues.csv', --weights-out 'weights.csv'."
)
SCAN_ALL = [
    "scan", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet"),
    "-o", "report.json", "--format", "json", "--issues-out", "issues.csv",
    "--weights-out", "weights.csv",
]  # fmt: skip


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


def interrupt_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Interrupted")]


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_in_an_atexit_callback_still_exits_as_the_signal(
    name: str, code: int, tmp_path: Path
) -> None:
    # Every output is written and the exit code 0 decided: the signal still decides it, with
    # the message (an exception raised in an atexit callback would be ignored: exit 0).
    done = run_script("atexit", name, SCAN_ALL, tmp_path)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr
    assert interrupt_lines(done.stderr) == [ALL_WRITTEN]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "issues.csv",
        "report.json",
        "weights.csv",
    ]


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_while_the_executable_imports_the_cli(
    name: str, code: int, tmp_path: Path
) -> None:
    done = run_script("handover", name, SCAN_ALL, tmp_path)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == INTERRUPTED
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_sent_from_a_thread_of_the_scan(name: str, code: int, tmp_path: Path) -> None:
    (tmp_path / "issues.csv").write_text("previous output\n")
    done = run_script("ranks", name, SCAN_ALL, tmp_path)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert interrupt_lines(done.stderr) == [
        f"{INTERRUPTED} Not written (any earlier file there is unchanged): -o 'report.json', "
        "--issues-out 'issues.csv', --weights-out 'weights.csv'."
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["issues.csv"]
    assert (tmp_path / "issues.csv").read_text() == "previous output\n"


def deliver(number: int) -> None:
    """The signal's handler called here, as the interpreter would call it at this instant."""
    signal.getsignal(number)(number, None)


def after_the_report(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    import labelaudit.cli as cli_module

    real = cli_module.emit

    def emit(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)
        deliver(number)

    monkeypatch.setattr(cli_module, "emit", emit)


def in_clicks_teardown(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    import click.core

    real = click.core.pop_context
    sent: list[bool] = []

    def pop_context() -> None:  # click leaves a context (parsing too: wait for the report)
        if not sent and Path("report.json").exists():
            sent.append(True)
            deliver(number)
        real()

    monkeypatch.setattr(click.core, "pop_context", pop_context)


def as_the_run_ends(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    # The outcome is reported, the handlers about to be restored: the signal is only recorded.
    import labelaudit.cli as cli_module

    real = cli_module._restore_signal_handlers

    def restore(previous: dict[int, object]) -> None:
        deliver(number)
        real(previous)

    monkeypatch.setattr(cli_module, "_restore_signal_handlers", restore)


@pytest.mark.parametrize(("number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("when", [after_the_report, in_clicks_teardown, as_the_run_ends])
def test_a_signal_after_every_output_is_written_exits_as_the_signal(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, number: int, code: int, when: Callable
) -> None:
    when(monkeypatch, number)
    result = cli(*SCAN_ALL)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert interrupt_lines(result.output) == [ALL_WRITTEN]  # one message, no "two runs"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "issues.csv",
        "report.json",
        "weights.csv",
    ]


@pytest.mark.parametrize(("number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_an_error_is_reported_is_the_interrupt(
    cli, monkeypatch: pytest.MonkeyPatch, number: int, code: int
) -> None:
    import labelaudit.cli as cli_module

    real = cli_module._failed

    def failed(message: str, exit_code: int) -> int:
        deliver(number)  # raises inside the handling of the error
        return real(message, exit_code)

    monkeypatch.setattr(cli_module, "_failed", failed)
    result = cli("scan", "missing.csv")
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert interrupt_lines(result.output) == [INTERRUPTED]


def test_a_signal_just_after_the_rename_counts_the_output_written(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = os.replace

    def replace(source: str, target: str) -> None:
        real(source, target)
        if str(target).endswith("report.json"):
            deliver(signal.SIGINT)  # before the rename is recorded

    monkeypatch.setattr(os, "replace", replace)
    result = cli(*SCAN_ALL)
    assert result.exit_code == 130, result.output
    assert interrupt_lines(result.output) == [ALL_WRITTEN]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_two_runs_are_named_only_where_an_earlier_file_is_left(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import labelaudit.cli as cli_module
    from labelaudit.io.writers import forget_outputs, plan_outputs, write_text

    monkeypatch.chdir(tmp_path)
    try:
        plan_outputs({"--issues-out": "issues.csv", "-o": "report.json"})
        write_text("issues.csv", "new")
        first = (
            f"{INTERRUPTED} Written in full before the interrupt: --issues-out 'issues.csv'. Not "
            "written (any earlier file there is unchanged): -o 'report.json'."
        )
        assert cli_module._interrupt_message() == first  # no earlier report.json: one run
        (tmp_path / "report.json").write_text("{}")  # an earlier run's report
        assert cli_module._interrupt_message() == (
            f"{first} The outputs now come from two runs: rerun before using them together."
        )
        plan_outputs({"-o": "report.json", "--plots-dir": "plots"})
        write_text("report.json", "{}")
        (tmp_path / "plots").mkdir()
        assert "two runs" not in cli_module._interrupt_message()  # an empty folder
        (tmp_path / "plots" / "support.png").write_bytes(b"an earlier figure")
        assert "two runs" in cli_module._interrupt_message()
    finally:
        forget_outputs()
