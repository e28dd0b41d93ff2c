"""A one-line progress bar on stderr with rows per second; silent when stderr is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Call update(n) after each batch and close() at the end; redraws at most 5 times a second."""

    def __init__(self, total: int, label: str, enabled: bool, stream: TextIO | None = None):
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.started = self.drawn = time.perf_counter()

    def update(self, rows: int) -> None:
        self.done += rows
        now = time.perf_counter()
        if self.enabled and (now - self.drawn >= 0.2 or self.done >= self.total):
            self.drawn = now
            self._draw(now)

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()

    @property
    def rate(self) -> float:
        return self.done / max(time.perf_counter() - self.started, 1e-9)

    def _draw(self, now: float) -> None:
        share = self.done / self.total if self.total else 1.0
        filled = int(share * 24)
        rate = self.done / max(now - self.started, 1e-9)
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (24 - filled)}] {self.done:,}/{self.total:,}"
            f" rows {rate:,.0f} rows/s"
        )
        self.stream.flush()


def wanted(quiet: bool, stream: TextIO | None = None) -> bool:
    """Draw a bar unless --quiet, and only on a terminal (not in CI logs or pipes)."""
    stream = stream if stream is not None else sys.stderr
    return not quiet and hasattr(stream, "isatty") and stream.isatty()
