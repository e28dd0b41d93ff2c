"""The `labelaudit` executable: interrupts are quiet from the first instant, before the CLI (and
polars, numpy) are imported; the CLI then installs its own handlers, which clean up, and ends
the process itself (`labelaudit.cli.main`), so these are never restored."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from labelaudit.errors import ExitCode

EXIT_FOR = {signal.SIGINT: ExitCode.SIGINT, signal.SIGTERM: ExitCode.SIGTERM}


def _leave(signal_number: int, _frame: Any) -> None:
    """Nothing is planned or written yet: leave at once, with the signal's exit code, the
    interrupt's message and no traceback. os._exit, not sys.exit: an exception raised in a
    handler can be swallowed (by an import's `except`, or as "ignored" in an atexit callback)."""
    for number in EXIT_FOR:
        signal.signal(number, signal.SIG_IGN)
    try:
        sys.stderr.write("Interrupted; no output was left half-written.\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # no stderr to tell: the exit code says it
        pass
    os._exit(EXIT_FOR[signal_number])


def main() -> None:
    for number in EXIT_FOR:
        signal.signal(number, _leave)
    from labelaudit.cli import main as cli_main

    cli_main()
