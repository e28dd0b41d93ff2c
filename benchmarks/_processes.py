"""What the end-to-end benchmarks share: the CLI run in this process, and a benchmark script
re-run as a fresh child process that reports its time and peak memory as one JSON line."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable


def run_cli(args: list[str]) -> None:
    """labelaudit's CLI in this process; a non-zero exit is an error of the benchmark."""
    from labelaudit.cli import cli

    try:
        cli.main(args)
    except SystemExit as done:
        if done.code:
            raise


def report_child(job: Callable[[], None]) -> None:
    """Run `job` and print its wall time and this process's peak RSS as the last line."""
    start = time.perf_counter()
    job()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    print(json.dumps({"seconds": seconds, "peak_mib": peak}))


def run_child(script: str, *args: str) -> dict[str, float]:
    """Run `script --child ARGS` in a fresh interpreter and read its report line."""
    out = subprocess.run(
        [sys.executable, script, "--child", *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
