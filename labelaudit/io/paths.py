"""Output paths checked before any work: never an input, never two outputs on one path, and
always somewhere labelaudit can write. One check, called by every command before it reads data.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from labelaudit.errors import InputError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


@dataclass(frozen=True)
class _Resolved:
    """A path as given, its canonical form (symlinks and `..` resolved) and its file identity."""

    given: str
    real: str
    identity: tuple[int, int] | None


def _resolve(path: str) -> _Resolved:
    real = os.path.realpath(path)
    try:
        stat = os.stat(real)
        identity = (stat.st_dev, stat.st_ino)
    except OSError:
        identity = None
    return _Resolved(path, real, identity)


def _input_files(inputs: Iterable[object]) -> list[_Resolved]:
    """Every file an input names: globs expanded; in-memory objects and absent paths skipped."""
    files = []
    for item in inputs:
        if not isinstance(item, str | os.PathLike):
            continue
        text = os.fspath(item)
        names = glob.glob(text) if set("*?[") & set(text) else [text]
        files += [_resolve(name) for name in names if os.path.exists(name)]
    return files


def _input_patterns(inputs: Iterable[object]) -> list[str]:
    """The inputs given as globs, as absolute patterns."""
    return [
        os.path.abspath(os.fspath(item))
        for item in inputs
        if isinstance(item, str | os.PathLike) and set("*?[") & set(os.fspath(item))
    ]


def _same(a: _Resolved, b: _Resolved) -> bool:
    return a.real == b.real or (a.identity is not None and a.identity == b.identity)


def _writable_folder(path: Path) -> Path:
    """The folder a new file (or folder) at `path` would be created in: its nearest existing
    ancestor, since labelaudit creates a missing --plots-dir with its parents."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_outputs(
    outputs: Mapping[str, str | os.PathLike[str] | None],
    inputs: Iterable[object] = (),
    tables: Iterable[str] = (),
    folders: Mapping[str, tuple[str | os.PathLike[str] | None, Iterable[str]]] | None = None,
) -> None:
    """Fail (exit 2) before any work when an output could destroy an input or cannot be written.

    `outputs` maps each option (e.g. `--issues-out`) to its file (`-` for `-o` is stdout);
    options in `tables` must have a table extension; `folders` maps folder options
    (`--plots-dir`) to their folder and the names of the files the run may write there. Checked:
    no output is an input (by any spelling: relative, `./`, symlink, hard link) or another
    output of the run (a planned file in a folder included); no file output is a folder; its
    folder exists and is writable; an existing read-only file is refused rather than replaced
    (by its permission bits, so also for root). Targets that are not regular files (/dev/null,
    a pipe) are written in place.
    """
    inputs = list(inputs)
    sources = _input_files(inputs)
    patterns = _input_patterns(inputs)
    table_options = set(tables)
    claimed: dict[str, str] = {}
    planned: list[tuple[str, str]] = [
        (option, os.fspath(value)) for option, value in outputs.items() if _is_file(value)
    ]
    for option, (folder, names) in (folders or {}).items():
        if folder is None:
            continue
        _check_folder_target(option, os.fspath(folder))
        planned += [(option, os.path.join(os.fspath(folder), name)) for name in names]
    for option, value in planned:  # first what could destroy something, then the rest
        target = _resolve(value)
        for source in sources:
            if _same(target, source):
                raise InputError(
                    f"{option} '{target.given}' is one of this run's inputs ('{source.given}'). "
                    "labelaudit never writes over an input; choose another output path."
                )
        for pattern in patterns:
            if fnmatch.fnmatchcase(os.path.abspath(value), pattern):
                raise InputError(
                    f"{option} '{value}' matches the input pattern '{pattern}': the next run "
                    "would read it as one of the inputs. Choose a path outside the pattern."
                )
        if target.real in claimed and claimed[target.real] != option:
            raise InputError(
                f"{option} and {claimed[target.real]} both name '{target.given}': each output of "
                "a run needs its own path."
            )
        claimed[target.real] = option
    for option, value in planned:
        if option in table_options:
            _check_table_suffix(option, value)
        if option not in (folders or {}):
            _check_file_target(option, value)
    for option, (folder, _names) in (folders or {}).items():
        if folder is not None and os.path.realpath(folder) in claimed:
            raise InputError(
                f"{option} '{folder}' is also the file of {claimed[os.path.realpath(folder)]}: "
                "each output of a run needs its own path."
            )


def _is_file(value: object) -> bool:
    return value is not None and os.fspath(value) != "-"  # type: ignore[arg-type]


def _check_table_suffix(option: str, path: str) -> None:
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(
            f"{option} '{path}': the extension '{suffix}' is not a table format labelaudit "
            "writes. Use .csv or .parquet."
        )


def _check_file_target(option: str, path: str) -> None:
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{option} '{path}' is a folder; give a file name inside it.")
    if target.exists() and not target.is_file():
        return  # a device or a pipe: written in place
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(
            f"{option} '{path}': the folder '{folder}' does not exist. Create it first."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{option} '{path}': the folder '{folder}' is not writable.")
    if target.exists() and (
        not os.access(target, os.W_OK) or not target.stat().st_mode & WRITE_BITS
    ):
        raise InputError(
            f"{option} '{path}' exists and is read-only; labelaudit does not replace read-only "
            "files. Make it writable or choose another path."
        )


def _check_folder_target(option: str, path: str) -> None:
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{option} '{path}' is a file; give a folder (it is created if absent).")
    parent = folder if folder.is_dir() else _writable_folder(folder)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{option} '{path}': the folder '{parent}' is not writable.")
