"""Atomic output: write to a temporary file beside the target, then rename over it.

Every temporary file is registered while it exists, so an interrupted run (Ctrl-C, SIGTERM)
removes it: `remove_pending()` is called by the CLI on an interrupt and at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

import polars as pl

from labelaudit.errors import InputError
from labelaudit.io.paths import TABLE_SUFFIXES, check_outputs

_PENDING: set[str] = set()


def remove_pending() -> None:
    """Delete every temporary file still being written (after an interrupt)."""
    for tmp in list(_PENDING):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _PENDING.discard(tmp)


atexit.register(remove_pending)


def write_atomically(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)`, then rename onto `path`; an interruption leaves no half file."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"Cannot write '{target}': the folder '{folder}' does not exist.")
    # The name is registered before the file exists, so no interrupt can orphan it.
    tmp = str(folder / f".{target.name}.{secrets.token_hex(6)}.tmp")
    _PENDING.add(tmp)
    try:
        handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        os.close(handle)
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise InputError(f"Cannot write '{target}': {exc.strerror or exc}.") from exc
    finally:
        with contextlib.suppress(OSError):
            if os.path.exists(tmp):
                os.unlink(tmp)
        _PENDING.discard(tmp)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a text report atomically (UTF-8)."""

    def _write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    write_atomically(path, _write)


def check_table_path(path: str | os.PathLike[str], option: str = "The output") -> None:
    """Fail before any work when a table output cannot be written (bad extension or folder)."""
    check_outputs({option: path}, tables=[option])


def write_frame(path: str | os.PathLike[str], frame: pl.DataFrame) -> None:
    """Write a table atomically as CSV or Parquet, chosen by the extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        check_table_path(path)
    if suffix == ".csv":
        write_atomically(path, frame.write_csv)
    else:
        write_atomically(path, frame.write_parquet)


def write_pngs(folder: str | os.PathLike[str], images: dict[str, bytes]) -> list[Path]:
    """Write each image as folder/<name>.png (atomically), creating the folder."""
    target = Path(folder)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--plots-dir: cannot create the folder '{folder}' ({exc}).") from exc
    written = []
    for name, data in images.items():
        path = target / f"{name}.png"
        write_atomically(path, lambda tmp, data=data: Path(tmp).write_bytes(data))
        written.append(path)
    return written
