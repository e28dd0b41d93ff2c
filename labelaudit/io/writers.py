"""Atomic output: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl

from labelaudit.errors import InputError


def write_atomically(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)`, then rename onto `path`; an interruption leaves no half file."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"Cannot write '{target}': the folder '{folder}' does not exist.")
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(handle)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write a text report atomically (UTF-8)."""

    def _write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    write_atomically(path, _write)


TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def check_table_path(path: str | os.PathLike[str]) -> None:
    """Fail before any work when a table output cannot be written (bad extension or folder)."""
    target = Path(path)
    if target.suffix.lower() not in TABLE_SUFFIXES:
        raise InputError(
            f"Cannot write '{path}': the extension '{target.suffix}' is not supported for tables. "
            "Use .csv or .parquet."
        )
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"Cannot write '{target}': the folder '{folder}' does not exist.")


def write_frame(path: str | os.PathLike[str], frame: pl.DataFrame) -> None:
    """Write a table atomically as CSV or Parquet, chosen by the extension."""
    check_table_path(path)
    if Path(path).suffix.lower() == ".csv":
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
