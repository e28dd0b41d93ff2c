"""Read a data file (or a glob of shards) into a polars DataFrame, by extension or by format."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from labelaudit.errors import InputError

FORMATS_BY_EXTENSION = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".arrow": "ipc",
    ".ipc": "ipc",
    ".feather": "ipc",
    ".npy": "npy",
}
TABLE_FORMATS = ("csv", "tsv", "parquet", "ndjson", "ipc")
GLOB_CHARACTERS = set("*?[")


def _readers() -> dict[str, Callable[[str], pl.DataFrame]]:
    return {
        "csv": lambda path: pl.read_csv(path, infer_schema_length=10_000),
        "tsv": lambda path: pl.read_csv(path, separator="\t", infer_schema_length=10_000),
        "parquet": pl.read_parquet,
        "ndjson": pl.read_ndjson,
        "ipc": pl.read_ipc,
    }


def expand_paths(path: str | os.PathLike[str], role: str) -> list[str]:
    """The files a path names: itself, or the sorted matches of a glob. Errors when none exist."""
    text = str(path)
    if GLOB_CHARACTERS & set(text):
        matches = sorted(glob.glob(text))
        if not matches:
            raise InputError(
                f"The {role} pattern '{text}' matches no file. Check the pattern and quote it so "
                "the shell does not expand it."
            )
        return matches
    if not Path(text).exists():
        raise InputError(f"The {role} file '{text}' does not exist. Check the path.")
    if Path(text).is_dir():
        raise InputError(f"The {role} path '{text}' is a folder; give a file (or a quoted glob).")
    return [text]


def detect_format(path: str, override: str | None, role: str) -> str:
    """The format named by `override`, else the one the file's extension implies."""
    if override:
        return override
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS_BY_EXTENSION:
        known = ", ".join(sorted(FORMATS_BY_EXTENSION))
        raise InputError(
            f"The {role} file '{path}' has an extension labelaudit does not know ('{suffix}'). "
            f"Known extensions: {known}. Rename the file or pass --input-format."
        )
    return FORMATS_BY_EXTENSION[suffix]


def read_table(
    path: str | os.PathLike[str], role: str, override: str | None = None
) -> pl.DataFrame:
    """Read one table, or several shards as one (stacked in sorted file-name order)."""
    paths = expand_paths(path, role)
    frames = []
    for one in paths:
        fmt = detect_format(one, override, role)
        if fmt == "npy":
            raise InputError(
                f"The {role} file '{one}' is a .npy array, but a table is needed here "
                "(csv, tsv, parquet, ndjson, arrow)."
            )
        frames.append(_read_one(one, fmt, role))
    if len(frames) == 1:
        return frames[0]
    try:
        return pl.concat(frames, how="vertical_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"The {role} files matching '{path}' do not share one set of columns and types, so "
            f"they cannot be read as one table ({_first_line(exc)}). Make the shards consistent."
        ) from exc


def _read_one(path: str, fmt: str, role: str) -> pl.DataFrame:
    if os.path.getsize(path) == 0:
        raise InputError(f"The {role} file '{path}' is empty (0 bytes). Give a file with rows.")
    try:
        frame = _readers()[fmt](path)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise InputError(
            f"The {role} file '{path}' could not be read as {fmt}: {_first_line(exc)}. Check that "
            "the file is complete and of the format its extension says (or pass --input-format)."
        ) from exc
    return frame


def read_npy(path: str | os.PathLike[str], role: str) -> np.ndarray:
    """Memory-map a 2-D .npy score matrix, so a large file costs no memory up front."""
    (one,) = expand_paths(path, role)[:1]
    try:
        array = np.load(one, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"The {role} file '{one}' could not be read as a .npy array: {_first_line(exc)}."
        ) from exc
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise InputError(
            f"The {role} file '{one}' holds an array of shape {array.shape} and type "
            f"{array.dtype}; expected a 2-D numeric array of shape (samples, classes)."
        )
    return array


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
