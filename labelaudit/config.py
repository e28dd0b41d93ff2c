"""Settings: defaults < [tool.labelaudit] (or labelaudit.toml) < command-line flags, frozen."""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from labelaudit.core.noise import QUALITY_SCORES, SUSPECT_RULES
from labelaudit.core.remedies import WEIGHTING_METHODS
from labelaudit.errors import ConfigError

SCORE_MODES = ("auto", "probs", "logits")
ON_MISSING = ("error", "drop")
INPUT_FORMATS = ("csv", "tsv", "parquet", "ndjson", "ipc", "npy")
# Tables that belong to other commands; validated by those commands.
SECTIONS = ("gate",)


@dataclass(frozen=True)
class ScanConfig:
    """The effective settings of one scan; echoed in the JSON report."""

    id_col: str = "id"
    label_col: str = "label"
    label_sep: str | None = None
    probs_col: str | None = None
    classes: str | None = None
    scores: str = "auto"
    on_missing: str = "error"
    min_support: int = 10
    threshold: float = 0.5
    quality_score: str = "normalized_margin"
    suspects: str = "prune_by_noise_rate"
    top: int = 20
    weighting: str | None = None
    max_weight: float | None = None
    thresholds: str | None = None
    input_format: str | None = None
    ignore_cols: tuple[str, ...] = ()
    chunk_rows: int = 32_768

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoadedConfig:
    """A configuration file's settings, the file they came from, and its other tables."""

    values: dict[str, Any]
    path: str | None
    sections: dict[str, Any]


_CHOICES = {
    "quality_score": QUALITY_SCORES,
    "suspects": (*SUSPECT_RULES, "none"),
    "weighting": WEIGHTING_METHODS,
    "scores": SCORE_MODES,
    "on_missing": ON_MISSING,
    "input_format": INPUT_FORMATS,
}


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest labelaudit.toml, or pyproject.toml with [tool.labelaudit], from `start` up."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        own = candidate / "labelaudit.toml"
        if own.is_file():
            return own
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and "labelaudit" in _tool_tables(_read_toml(pyproject)):
            return pyproject
    return None


def load_config_file(path: str | Path | None, discover: bool = True) -> LoadedConfig:
    """Read settings from `path`, or from the discovered file; empty when there is none.

    The whole file is validated whichever command runs (the [gate] rules too): a broken setting
    is reported the first time the file is read, not only by the command that uses it.
    """
    if path is None and discover:
        path = find_config_file()
    if path is None:
        return LoadedConfig({}, None, {})
    file = Path(path)
    if not file.is_file():
        what = "is a folder" if file.is_dir() else "does not exist"
        raise ConfigError(f"The configuration file '{file}' {what}. Give a .toml file.")
    data = _read_toml(file)
    table = "[tool.labelaudit]" if file.name == "pyproject.toml" or "tool" in data else "the file"
    if table == "[tool.labelaudit]":
        data = _tool_tables(data).get("labelaudit", {})
    if not isinstance(data, dict):
        raise ConfigError(f"{table} in '{file}' must be a table; found {data!r}.")
    sections = {name: data[name] for name in SECTIONS if name in data}
    values = {k: v for k, v in data.items() if k not in SECTIONS}
    where = f"{table} of '{file}'"
    check_keys(values, {f.name for f in fields(ScanConfig)}, where)
    for key, value in values.items():
        _check_value(key, value, where)
    from labelaudit.pipelines.gate_rules import (
        parse_rules,  # the gate's rules live beside their checks
    )

    if "gate" in sections:
        parse_rules(sections["gate"], f"[gate] of '{file}'")
    return LoadedConfig(values, str(file), sections)


def check_keys(values: dict[str, Any], known: set[str], where: str, noun: str = "setting") -> None:
    """Reject unknown keys, suggesting the nearest known one: a typo must not go unnoticed."""
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"Unknown {noun} '{key}' in {where}.{hint} Known {noun}s: "
                f"{', '.join(sorted(known))}."
            )


def build_scan_config(
    file_values: dict[str, Any], cli_values: dict[str, Any], source: str = "configuration"
) -> ScanConfig:
    """Merge defaults < file < flags (flags given as None are not set) and check each value.

    File values were checked (naming their file) when the file was read; `source` names where
    the flags came from in messages."""
    config = ScanConfig()
    types = {f.name for f in fields(ScanConfig)}
    for key, value in file_values.items():
        config = replace(config, **{key: _check_value(key, value, "the configuration file")})
    for key, value in cli_values.items():
        if value is None:
            continue
        if key not in types:
            raise ConfigError(f"Unknown setting '{key}' in {source}.")
        config = replace(config, **{key: _check_value(key, value, source)})
    return config


def _check_value(key: str, value: Any, source: str) -> Any:
    default = getattr(ScanConfig(), key)
    if isinstance(default, tuple):  # a list of names: TOML array, or comma-separated text
        names = value.split(",") if isinstance(value, str) else value
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ConfigError(
                f"Setting '{key}' must be a list of column names; found {value!r} in {source}."
            )
        return tuple(n.strip() for n in names if n.strip())
    if key in _CHOICES and value is not None and value not in _CHOICES[key]:
        raise ConfigError(
            f"Setting '{key}' is '{value}' in {source}; expected one of: "
            f"{', '.join(_CHOICES[key])}."
        )
    if key == "max_weight":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(
                f"Setting 'max_weight' must be a number; found {value!r} in {source}."
            )
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(
                f"Setting 'max_weight' must be a finite number > 0; found {value} in {source}."
            )
        return None if value is None else float(value)
    if default is None:
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"Setting '{key}' must be a string; found {value!r} in {source}.")
        return value
    if isinstance(default, int) and not (isinstance(value, int) and not isinstance(value, bool)):
        raise ConfigError(f"Setting '{key}' must be an integer; found {value!r} in {source}.")
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"Setting '{key}' must be a number; found {value!r} in {source}.")
        value = float(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"Setting '{key}' must be a string; found {value!r} in {source}.")
    if key in ("min_support", "top") and value < 0:
        raise ConfigError(f"Setting '{key}' must be >= 0; found {value} in {source}.")
    if key == "chunk_rows" and value < 1:
        raise ConfigError(f"Setting 'chunk_rows' must be >= 1; found {value} in {source}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"Setting '{key}' must be a finite number; found {value} in {source}.")
    if key == "threshold" and not 0.0 <= value <= 1.0:
        raise ConfigError(f"Setting 'threshold' must be in [0, 1]; found {value} in {source}.")
    return value


def _tool_tables(data: dict[str, Any]) -> dict[str, Any]:
    """The [tool] table of a pyproject.toml, or empty when it is absent or not a table."""
    tool = data.get("tool", {})
    return tool if isinstance(tool, dict) else {}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"The configuration file '{path}' is not valid TOML: {exc}.") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"The configuration file '{path}' is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}); TOML files must be UTF-8. Re-save it as UTF-8."
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"The configuration file '{path}' could not be read: {exc.strerror or exc}."
        ) from exc
