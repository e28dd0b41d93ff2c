"""Settings: defaults < [tool.labelaudit] (or labelaudit.toml) < command-line flags, frozen."""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from labelaudit.core import CHUNK_ROWS
from labelaudit.core.quality_scores import QUALITY_SCORES
from labelaudit.core.remedies import WEIGHTING_METHODS
from labelaudit.core.suspect_rules import SUSPECT_RULES
from labelaudit.errors import ConfigError

SCORE_MODES = ("auto", "probs", "logits", "percent")
ON_MISSING = ("error", "drop")
ENGINES = ("local", "ray")
DISTANCES = ("cosine", "l2")  # how engines.vector_search compares embeddings
KNN_INDEXES = ("auto", "exact", "ivf")  # and how it searches
INPUT_FORMATS = ("csv", "tsv", "parquet", "ndjson", "ipc", "npy")
SUSPECT_CHOICES = (*SUSPECT_RULES, "none")
# Tables that belong to other commands; validated by those commands.
SECTIONS = ("gate",)


def setting(
    default: Any,
    help: str,
    *,
    kind: type | None = None,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    key: str | None = None,
) -> Any:
    """A ScanConfig field with everything said about it once: its help text, its type, its
    choices and bounds (checked for files, flags and Python options alike), and its external
    `key` (the TOML key, the JSON echo and the keyword) when that differs from the field name."""
    return field(
        default=default,
        metadata={
            "help": help,
            "kind": kind or type(default),
            "choices": choices,
            "minimum": minimum,
            "maximum": maximum,
            "positive": positive,
            "key": key,
        },
    )


@dataclass(frozen=True)
class ScanConfig:
    """The effective settings of one scan; echoed in the JSON report."""

    id_col: str = setting("id", "Id column; without one, the row number is the id.")
    label_col: str = setting("label", "Label column.")
    label_sep: str | None = setting(
        None, "Multi-label: split string labels on SEP (e.g. '|').", kind=str
    )
    probs_col: str | None = setting(
        None, "Predictions hold one list column of scores; order from --classes.", kind=str
    )
    topk_classes_col: str = setting(
        "topk_classes", "Top-k predictions: the list column of each row's k classes (read "
        "with --topk-probs-col when both exist).",
    )  # fmt: skip
    topk_probs_col: str = setting(
        "topk_probs", "Top-k predictions: the list column of the k classes' probabilities."
    )
    classes: str | None = setting(
        None, "Class vocabulary and order: one class name a line.", kind=str
    )
    scores: str = setting(
        "auto", "Whether scores are probabilities or logits (auto: by the documented rule).",
        choices=SCORE_MODES,
    )  # fmt: skip
    on_missing: str = setting(
        "error", "Ids in only one of labels / predictions: an error, or drop them.",
        choices=ON_MISSING,
    )  # fmt: skip
    min_support: int = setting(10, "Classes with fewer samples are reported as rare.", minimum=0)
    threshold: float = setting(
        0.5, "Multi-label: a class is predicted when its probability is >= this.",
        minimum=0.0, maximum=1.0,
    )  # fmt: skip
    quality_score: str = setting(
        "self_confidence", "Per-sample label quality used to rank suspects.",
        choices=QUALITY_SCORES,
    )  # fmt: skip
    suspect_rule: str = setting(
        "weighted_count",
        "Rule that decides the flagged set of suspected label errors (none: skip detection, "
        "metrics only); see docs/detection.md.",
        choices=SUSPECT_CHOICES,
        key="suspects",
    )
    top: int = setting(20, "How many suspects the report lists, most suspect first.", minimum=0)
    weighting: str | None = setting(
        None, "Class weighting behind --weights-out (default: the recommended one).",
        kind=str, choices=WEIGHTING_METHODS,
    )  # fmt: skip
    max_weight: float | None = setting(
        None, "Cap every class and sample weight at this value (default: uncapped).",
        kind=float, positive=True,
    )  # fmt: skip
    thresholds: str | None = setting(
        None, "Apply the per-class thresholds of FILE (from `labelaudit thresholds`).", kind=str
    )
    input_format: str | None = setting(
        None, "Read inputs as this format whatever their extension.", kind=str,
        choices=INPUT_FORMATS,
    )  # fmt: skip
    ignore_cols: tuple[str, ...] = setting(
        (), "Prediction columns (comma-separated; a list in a configuration file) that are "
        "neither the id nor a class's scores, e.g. a fold or an index: dropped before the class "
        "columns are matched.",
    )  # fmt: skip
    chunk_rows: int = setting(
        CHUNK_ROWS, "Rows per chunk of scores: memory is bounded by a few chunks.", minimum=1
    )
    stream_above_mib: int = setting(
        512, "Wide predictions whose scores would take more than this many MiB in memory "
        "(parquet), or whose files are larger (CSV, TSV, NDJSON), are streamed from disk in "
        "batches (0: always).", minimum=0,
    )  # fmt: skip

    engine: str = setting(
        "local", "Where scan, gate and diff compute: this process (local), or Ray tasks over row "
        "ranges of parquet predictions (ray: needs labelaudit[ray]); see docs/scale.md.",
        choices=ENGINES,
    )  # fmt: skip
    ray_address: str | None = setting(
        None, "The Ray cluster for --engine ray (default: RAY_ADDRESS, else a local Ray with "
        "this machine's cores, shut down after).", kind=str,
    )  # fmt: skip
    annotator_col: str = setting(
        "annotator", "`labelaudit annotators`: the column naming who gave each label."
    )
    group_cols: tuple[str, ...] = setting(
        (), "Labels columns that group the rows (e.g. split, source, annotator; repeat or "
        "comma-separate): the scan is broken down by each, and the groups that stand out are "
        "named (docs/groups.md); near-duplicate sets across their values are leakage (with "
        "--embeddings, a 'split' column serves without this).", key="group_col",
    )  # fmt: skip
    embeddings: str | None = setting(
        None, "Embeddings of the rows: a table with the id and one list column (or "
        "--embeddings-col, or numeric columns), or a row-aligned .npy. Finds near-duplicates, "
        "outliers and what each row's nearest neighbours' labels say; without --preds the "
        "neighbours' labels are the scores (docs/embeddings.md; needs labelaudit[embeddings]).",
        kind=str,
    )  # fmt: skip
    embeddings_col: str | None = setting(
        None, "The embeddings table's list column (default: its one list column, else every "
        "numeric column but the id and the label).", kind=str,
    )  # fmt: skip
    knn: int = setting(10, "Neighbours each row is compared with (k).", minimum=1, maximum=1000)
    distance: str = setting(
        "cosine", "How embeddings are compared: cosine (direction) or l2 (straight line).",
        choices=DISTANCES,
    )  # fmt: skip
    knn_index: str = setting(
        "auto", "Nearest-neighbour search: exact, ivf (approximate; its recall is measured "
        "and reported), or auto (exact up to 50,000 rows, ivf above).", choices=KNN_INDEXES,
    )  # fmt: skip
    duplicate_threshold: float = setting(
        0.15, "Two rows are near-duplicates when their distance is at most this times the "
        "median distance of a row to its nearest neighbour (exact copies aside; scale-free). 0: "
        "exact copies only.", minimum=0.0, maximum=1.0,
    )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {external_key(f.name): getattr(self, f.name) for f in fields(self)} | {
            "ignore_cols": list(self.ignore_cols),
            "group_col": list(self.group_cols),
        }


SETTINGS = {f.name: f for f in fields(ScanConfig)}
KEYS = {f.metadata["key"] or f.name: f.name for f in fields(ScanConfig)}  # external -> field


def external_key(name: str) -> str:
    """The name a setting has in files, the JSON echo and keyword options."""
    return SETTINGS[name].metadata["key"] or name


def choices_of(name: str) -> tuple[str, ...]:
    """The declared choices of a setting (for click.Choice and messages)."""
    return SETTINGS[name].metadata["choices"]


def help_of(name: str) -> str:
    """A setting's help text with its default, for the command line (stated once, here)."""
    default = SETTINGS[name].default
    text = SETTINGS[name].metadata["help"]
    if default in (None, ()):
        return text
    return f"{text.removesuffix('.')} (default: {default})."


@dataclass(frozen=True)
class LoadedConfig:
    """A configuration file's settings, the file they came from, and its other tables."""

    values: dict[str, Any]
    path: str | None
    sections: dict[str, Any]


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
    nested = "tool" in data and "labelaudit" in _tool_tables(data)
    if file.name != "pyproject.toml" and nested and len(data) > 1:
        raise ConfigError(
            f"'{file}' holds settings both at the top level and under [tool.labelaudit]; which "
            "one applies would be a guess. Keep one: in labelaudit.toml, the top level."
        )
    if file.name == "pyproject.toml" or nested:
        data, where = _tool_tables(data).get("labelaudit", {}), f"[tool.labelaudit] of '{file}'"
    else:
        where = f"'{file}'"
    if not isinstance(data, dict):
        raise ConfigError(f"The settings in {where} must be a table; found {data!r}.")
    sections = {name: data[name] for name in SECTIONS if name in data}
    values = {k: v for k, v in data.items() if k not in SECTIONS}
    check_keys(values, set(KEYS), where)
    for key, value in values.items():
        _check_value(KEYS[key], value, where)
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
    """Merge defaults < file < options (options given as None are not set) and check each value.

    Keys are the external names (`suspects`) or the field names (`suspect_rule`). File values
    were checked (naming their file) when the file was read; `source` names where the options
    came from in messages."""
    changes: dict[str, Any] = {}
    for values, where in ((file_values, "the configuration file"), (cli_values, source)):
        for key, value in values.items():
            if value is None:
                continue
            name = KEYS.get(key, key)
            if name not in SETTINGS:
                close = difflib.get_close_matches(key, sorted(KEYS), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(f"Unknown setting '{key}' in {where}.{hint}")
            changes[name] = _check_value(name, value, where)
    return replace(ScanConfig(), **changes)


def _check_value(name: str, value: Any, source: str) -> Any:
    """`value` for setting `name` as its declaration says (type, choices, bounds), or a
    ConfigError naming the setting, the value and where it came from."""
    meta = SETTINGS[name].metadata
    kind = meta["kind"]
    # Named as the person wrote it: a flag on the command line, a key in a file.
    key = external_key(name)
    cli = source == "the command line"
    key = f"--{key.replace('_', '-')}" if cli else f"Setting '{key}'"
    where = "on the command line" if cli else f"in {source}"
    if value is None and SETTINGS[name].default is None:
        return None
    if kind is tuple:  # a list of names: a TOML array, or comma-separated text
        names = value.split(",") if isinstance(value, str) else value
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{key} must be a list of column names; found {value!r} {where}.")
        # Repeated flags each hold comma-separated names; a list's items (a file's, Python's)
        # are whole names, so a column whose name holds a comma can be named there.
        split = [part.strip() for n in names for part in n.split(",")] if cli else names
        return tuple(dict.fromkeys(n for n in split if n))
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string; found {value!r} {where}.")
        if meta["choices"] is not None and value not in meta["choices"]:
            raise ConfigError(
                f"{key} is '{value}' {where}; expected one of: {', '.join(meta['choices'])}."
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        noun = "an integer" if kind is int else "a number"
        raise ConfigError(f"{key} must be {noun}; found {value!r} {where}.")
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer; found {value!r} {where}.")
    if not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number; found {value} {where}.")
    if meta["positive"] and value <= 0:
        raise ConfigError(f"{key} must be > 0; found {value} {where}.")
    low, high = meta["minimum"], meta["maximum"]
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"{key} must be {bounds}; found {value} {where}.")
    return float(value) if kind is float else value


def _tool_tables(data: dict[str, Any]) -> dict[str, Any]:
    """The [tool] table of a pyproject.toml, or empty when it is absent or not a table."""
    tool = data.get("tool", {})
    return tool if isinstance(tool, dict) else {}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        # A byte-order mark (some Windows editors write one) is not part of the TOML.
        return tomllib.loads(path.read_bytes().decode("utf-8-sig"))
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
