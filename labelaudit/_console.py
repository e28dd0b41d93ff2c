"""The `labelaudit` executable: interrupts are quiet from the first instant, before the CLI (and
polars, numpy) are imported; the CLI then installs its own handlers, which clean up."""

from __future__ import annotations

import signal
import sys
from typing import Any

from labelaudit.errors import ExitCode

EXIT_FOR = {signal.SIGINT: ExitCode.SIGINT, signal.SIGTERM: ExitCode.SIGTERM}


def _leave(signal_number: int, _frame: Any) -> None:
    """Nothing is written yet: leave at once, with the signal's exit code and no traceback."""
    sys.stderr.write("Interrupted.\n")
    sys.exit(EXIT_FOR[signal_number])


def main() -> None:
    for number in EXIT_FOR:
        signal.signal(number, _leave)
    from labelaudit.cli import main as cli_main

    cli_main()
