"""Read a thresholds.json written by `labelaudit thresholds`, and refuse anything else.

The file decides which class each row is predicted as, so a value that is not what the command
wrote (a string, a boolean, NaN, 1.5, a class the data lacks, thresholds tuned for the other
task or by a newer labelaudit) is an error naming the file, the entry and what to do: applied
anyway, it would give wrong metrics with exit 0.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from labelaudit.errors import InputError
from labelaudit.report.schema import SCHEMA_VERSION

REMAKE = "Make the file with `labelaudit thresholds LABELS --preds PREDS -o FILE`."


def read_thresholds(path: str | os.PathLike[str], classes: list[str], task: str) -> np.ndarray:
    """Thresholds from a thresholds.json, in the vocabulary's order; errors name what is wrong."""
    data = _load_object(Path(path))
    _check_header(data, path, task)
    table = _threshold_table(data, path)
    _check_classes(table, classes, path)
    return np.array([table[c] for c in classes], dtype=np.float64)


def _load_object(path: Path) -> dict[str, Any]:
    """The file's JSON object: clear errors for a folder, bytes that are not UTF-8 or not JSON,
    a key given twice, or JSON that is not an object."""
    if path.is_dir():
        raise InputError(f"The thresholds file '{path}' is a folder, not a file. {REMAKE}")
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"The thresholds file '{path}' does not exist. {REMAKE}") from exc
    except OSError as exc:
        raise InputError(f"The thresholds file '{path}' could not be read: {exc}.") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"The thresholds file '{path}' is not UTF-8 text (byte {exc.start} is not valid "
            f"UTF-8), so it is not a thresholds.json. {REMAKE}"
        ) from exc
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"The thresholds file '{path}' is not valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}). {REMAKE}"
        ) from exc
    except _DuplicateKey as exc:
        raise InputError(
            f"The thresholds file '{path}' gives the key '{exc.key}' twice; which one applies "
            f"would be a guess. {REMAKE}"
        ) from exc
    if not isinstance(data, dict):
        raise InputError(
            f"The thresholds file '{path}' holds a JSON {_json_type(data)}, not the object "
            f"`labelaudit thresholds` writes. {REMAKE}"
        )
    return data


class _DuplicateKey(ValueError):
    """A JSON object names a key twice (json keeps the last one silently)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        raise _DuplicateKey(next(k for k in keys if keys.count(k) > 1))
    return dict(pairs)


def _check_header(data: dict[str, Any], path: str | os.PathLike[str], task: str) -> None:
    """The file says it is thresholds (`command`), of a schema this labelaudit reads, tuned for
    the task of the data (multi-class and multi-label thresholds decide differently)."""
    if data.get("command") != "thresholds" or "thresholds" not in data:
        what = f"its 'command' is {data['command']!r}" if "command" in data else "no 'command'"
        raise InputError(
            f"The thresholds file '{path}' is not a thresholds.json ({what}; expected "
            f'"command": "thresholds" and a "thresholds" table). {REMAKE}'
        )
    _check_version(data.get("schema_version"), path)
    if not isinstance(data.get("task"), str):
        raise InputError(
            f"The thresholds file '{path}' does not record the task it was tuned for (found "
            f"'task': {json.dumps(data.get('task'))}; expected \"{task}\"). {REMAKE}"
        )
    if data["task"] != task:
        raise InputError(
            f"The thresholds file '{path}' was tuned for a {data.get('task')!r} task, but these "
            f"labels are {task}: the thresholds would decide something else. Tune them on this "
            "data with `labelaudit thresholds`."
        )


def _check_version(version: Any, path: str | os.PathLike[str]) -> None:
    """Same major version, and not newer than this labelaudit's (a newer one may mean more)."""
    found, ours = _version(version), _version(SCHEMA_VERSION) or (0, 0)
    if found is None:
        raise InputError(
            f"The thresholds file '{path}' has no readable 'schema_version' (found {version!r}; "
            f'this labelaudit writes "{SCHEMA_VERSION}"). {REMAKE}'
        )
    if found > ours or found[0] < ours[0]:
        newer = found > ours
        raise InputError(
            f"The thresholds file '{path}' has schema version {version}, "
            f"{'newer' if newer else 'older'} than the version {SCHEMA_VERSION} this labelaudit "
            f"reads. {'Upgrade labelaudit, or tune' if newer else 'Tune'} the thresholds again "
            "with this version."
        )


def _version(value: Any) -> tuple[int, int] | None:
    """'1.0' -> (1, 0); None for anything else."""
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def _threshold_table(data: dict[str, Any], path: str | os.PathLike[str]) -> dict[str, float]:
    """class -> threshold, every one a number in [0, 1] (not a string, a boolean, null or NaN)."""
    table = data["thresholds"]
    if not isinstance(table, dict):
        raise InputError(
            f"The thresholds file '{path}' has 'thresholds' as a JSON {_json_type(table)}; "
            f"expected an object of class -> threshold. {REMAKE}"
        )
    bad = [f"'{name}': {_show(value)}" for name, value in table.items() if not _is_threshold(value)]
    if bad:
        raise InputError(
            f"The thresholds file '{path}' has {len(bad)} threshold(s) that are not numbers in "
            f"[0, 1]: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}. A threshold is a "
            "number from 0 to 1 (1.0 switches a class off). Fix them or tune again."
        )
    return {name: float(value) for name, value in table.items()}


def _is_threshold(value: Any) -> bool:
    # bool is an int in Python; JSON's true is not a threshold.
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and 0 <= value <= 1


def _check_classes(
    table: dict[str, float], classes: list[str], path: str | os.PathLike[str]
) -> None:
    """The file's classes are exactly the data's: none unknown, none missing."""
    unknown = [c for c in table if c not in set(classes)]
    missing = [c for c in classes if c not in table]
    if not unknown and not missing:
        return
    parts = []
    if unknown:
        parts.append(f"thresholds for {len(unknown)} class(es) not in the data: {_list(unknown)}")
    if missing:
        parts.append(f"no threshold for {len(missing)} classes: {_list(missing)}")
    raise InputError(
        f"The thresholds file '{path}' has {'; and '.join(parts)}. The thresholds must be tuned "
        "on the same classes (check --classes and --label-col), e.g. with `labelaudit thresholds`."
    )


def _list(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (
        f" (+{len(names) - limit:,} more)" if len(names) > limit else ""
    )


def _show(value: Any) -> str:
    """A JSON value as the file spells it, with its type when that is the problem."""
    if isinstance(value, str):
        return f'"{value}" (a string)'
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return json.dumps(value)


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
