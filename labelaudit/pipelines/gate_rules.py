"""The CI gate's policy: rules from configuration, applied to scan (and diff) reports.

A rule is `name = value` (severity error) or `name = { value = ..., severity = "warning",
optional = true }`. A rule that cannot be computed (it needs predictions or a baseline that was
not given, or its figure is undefined) is an error finding unless it says `optional = true`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labelaudit.config import check_keys
from labelaudit.errors import ConfigError
from labelaudit.pipelines.alignment import AT_CHANCE_FINDINGS
from labelaudit.report.schema import GateFinding

SEVERITIES = ("warning", "error")
PREDS = "predictions"
BASELINE = "baseline"
EMBEDDINGS = "embeddings"
GROUPS = "groups"


@dataclass(frozen=True)
class Rule:
    """One check: what it measures, what it needs, and which way it compares."""

    name: str
    kind: str  # "max": measured <= limit; "min": measured >= limit; "set"/"flag": see measure
    needs: frozenset[str]
    description: str
    measure: Callable[[GateInputs], Any]
    where: Callable[[GateInputs], str | None] | None = None  # what the figure belongs to


@dataclass(frozen=True)
class GateInputs:
    """The reports the rules read (as their JSON dicts) and the accepted-suspects result."""

    scan: dict[str, Any]
    diff: dict[str, Any] | None
    new_suspects: int | None


@dataclass(frozen=True)
class RuleSetting:
    """A configured rule: its limit, severity and whether it may be skipped."""

    name: str
    value: Any
    severity: str = "error"
    optional: bool = False


def _issues(inputs: GateInputs) -> dict[str, Any] | None:
    return inputs.scan.get("label_issues")


def _suspect_rate(inputs: GateInputs) -> float | None:
    issues = _issues(inputs)
    if issues is None:
        return None
    if inputs.new_suspects is not None:  # with --accept: only suspects not accepted before
        return inputs.new_suspects / issues["n_scored"] if issues["n_scored"] else 0.0
    return issues["suspect_rate"]


def _max_noise(inputs: GateInputs) -> float | None:
    issues = _issues(inputs)
    if issues is None or not issues["per_class"]:
        return None
    return max(h["estimated_noise_rate"] for h in issues["per_class"])


def _lookup(root: Callable[[GateInputs], Any], *keys: str) -> Callable[[GateInputs], Any]:
    """A figure at `keys` under `root(inputs)`; None where any step is missing."""

    def measure(inputs: GateInputs) -> Any:
        value: Any = root(inputs)
        for key in keys:
            value = None if value is None else value.get(key)
        return value

    return measure


def _diff_value(*keys: str) -> Callable[[GateInputs], Any]:
    return _lookup(lambda inputs: inputs.diff, *keys)


def _metric(key: str, multilabel_key: str) -> Callable[[GateInputs], Any]:
    def measure(inputs: GateInputs) -> Any:
        metrics = inputs.scan.get("metrics")
        if metrics is None:
            return None
        if key == "macro_f1":
            return metrics["macro"]["f1"]
        return metrics.get(key, metrics.get(multilabel_key))

    return measure


def _neighbourhood(section: str, *keys: str) -> Callable[[GateInputs], Any]:
    return _lookup(lambda inputs: inputs.scan.get(section), *keys)


def _worst_group(key: str, worst: Callable[..., Any]) -> Callable[[GateInputs], Any]:
    """The worst value of a per-group figure over every --group-col column's groups; None
    without groups or when no group has the figure."""

    def measure(inputs: GateInputs) -> Any:
        found = _worst_of(inputs, key, worst)
        return None if found is None else found[0]

    return measure


def _worst_where(key: str, worst: Callable[..., Any]) -> Callable[[GateInputs], str | None]:
    """Which group holds that worst value: 'COLUMN = GROUP'."""

    def where(inputs: GateInputs) -> str | None:
        found = _worst_of(inputs, key, worst)
        return None if found is None else found[1]

    return where


def _worst_of(inputs: GateInputs, key: str, worst: Callable[..., Any]) -> tuple[Any, str] | None:
    values = [
        (value, f"{column} = {g['group']}")
        for column, groups in (inputs.scan.get("groups") or {}).items()
        for g in groups
        if (value := _group_value(g, key)) is not None
    ]
    return worst(values, key=lambda pair: pair[0]) if values else None


def _group_value(group: dict[str, Any], key: str) -> Any:
    if key == "macro_f1":
        return (group.get("metrics") or {}).get("macro", {}).get("f1")
    return group.get(key)


def _leaking_sets(inputs: GateInputs) -> int | None:
    """None (uncomputable) without a group column: no leak can be seen, which is not a pass."""
    near = inputs.scan.get("near_duplicates")
    return None if near is None or not near["leakage"] else near["leaking_sets"]


def _present_classes(inputs: GateInputs) -> list[str]:
    return [c["class"] for c in inputs.scan["support"]["per_class"] if c["count"] > 0]


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule("min_support", "min", frozenset(), "every class has at least this many samples",
             lambda i: min((c["count"] for c in i.scan["support"]["per_class"]), default=None)),
        Rule("max_imbalance_ratio", "max", frozenset(), "largest / smallest non-empty class",
             lambda i: i.scan["imbalance"]["ratio"]),
        Rule("max_null_labels", "max", frozenset(), "rows with a null or empty label",
             lambda i: i.scan["dataset"]["null_labels"]),
        Rule("max_duplicate_ids", "max", frozenset(), "ids on more than one row",
             lambda i: i.scan["duplicates"]["duplicate_ids"]),
        Rule("max_conflicting_duplicates", "max", frozenset(),
             "ids whose rows carry different labels",
             lambda i: i.scan["duplicates"]["conflicting_ids"]),
        Rule("allowed_classes", "set", frozenset(), "classes with samples outside this list",
             _present_classes),
        Rule("max_suspect_rate", "max", frozenset({PREDS}),
             "share of scored samples suspected mislabeled (new ones only, with --accept)",
             _suspect_rate),
        Rule("max_class_noise_rate", "max", frozenset({PREDS}),
             "largest per-class estimated noise rate", _max_noise),
        Rule("min_accuracy", "min", frozenset({PREDS}),
             "accuracy (subset accuracy for multi-label)", _metric("accuracy", "subset_accuracy")),
        Rule("min_macro_f1", "min", frozenset({PREDS}), "macro-averaged F1",
             _metric("macro_f1", "macro_f1")),
        Rule("max_group_suspect_rate", "max", frozenset({PREDS, GROUPS}),
             "the largest suspect rate of a --group-col group", _worst_group("suspect_rate", max),
             _worst_where("suspect_rate", max)),
        Rule("min_group_macro_f1", "min", frozenset({PREDS, GROUPS}),
             "the smallest macro F1 of a --group-col group", _worst_group("macro_f1", min),
             _worst_where("macro_f1", min)),
        Rule("max_flagged_groups", "max", frozenset({PREDS, GROUPS}),
             "groups whose suspect rate stands out (Holm-corrected test)",
             lambda i: sum(g["flagged"] for gs in (i.scan.get("groups") or {}).values()
                           for g in gs)),
        Rule("max_duplicate_sets", "max", frozenset({EMBEDDINGS}),
             "sets of near-duplicate rows (embeddings)", _neighbourhood("near_duplicates", "sets")),
        Rule("max_conflicting_duplicate_sets", "max", frozenset({EMBEDDINGS}),
             "near-duplicate sets whose labels differ",
             _neighbourhood("near_duplicates", "conflicting_sets")),
        Rule("max_leaking_duplicate_sets", "max", frozenset({EMBEDDINGS}),
             "near-duplicate sets across the values of a group column (e.g. train and test)",
             _leaking_sets),
        Rule("max_outlier_share", "max", frozenset({EMBEDDINGS}),
             "share of embedded rows flagged as outliers", _neighbourhood("outliers", "share")),
        Rule("forbid_new_classes", "flag", frozenset({BASELINE}),
             "classes with samples now and none in the baseline", _diff_value("new_classes")),
        Rule("max_relabel_rate", "max", frozenset({BASELINE}),
             "share of rows in both versions whose label changed",
             _diff_value("summary", "relabel_rate")),
        Rule("max_removed_rate", "max", frozenset({BASELINE}),
             "rows removed / baseline rows", _diff_value("summary", "removed_rate")),
        Rule("max_added_rate", "max", frozenset({BASELINE}),
             "rows added / baseline rows", _diff_value("summary", "added_rate")),
        Rule("max_shift_tvd", "max", frozenset({BASELINE}),
             "total variation distance between class distributions", _diff_value("shift", "tvd")),
        Rule("max_class_share_change", "max", frozenset({BASELINE}),
             "largest absolute change of a class's share",
             _diff_value("shift", "max_share_change")),
    )
}  # fmt: skip

# With no configuration: checks that need neither predictions nor a baseline.
DEFAULT_RULES: dict[str, Any] = {
    "max_conflicting_duplicates": 0,
    "max_null_labels": {"value": 0, "severity": "warning"},
    "max_duplicate_ids": {"value": 0, "severity": "warning"},
    "min_support": {"value": 1, "severity": "warning"},
}


def parse_rules(table: Any, source: str) -> list[RuleSetting]:
    """Validate the [gate] table; the defaults when there is none. Unknown names are errors."""
    if table is None:
        table, source = DEFAULT_RULES, "the default rules"
    if not isinstance(table, dict):
        raise ConfigError(
            f"{source} must be a table of rules (e.g. [tool.labelaudit.gate] with "
            f"max_suspect_rate = 0.05); found {table!r}."
        )
    if not table:
        raise ConfigError(
            f"{source} is empty, so the gate would check nothing and always pass. Add rules, or "
            "remove the table to use the default rules (docs/gate.md)."
        )
    check_keys(table, set(RULES), source, noun="gate rule")
    return [_parse_setting(RULES[name], raw, source) for name, raw in table.items()]


def _parse_setting(rule: Rule, raw: Any, source: str) -> RuleSetting:
    where = f"gate rule '{rule.name}' in {source}"
    if isinstance(raw, dict):
        unknown = set(raw) - {"value", "severity", "optional"}
        if unknown:
            raise ConfigError(
                f"The {where} has unknown keys {sorted(unknown)}; use value, severity, optional."
            )
        if "value" not in raw:
            raise ConfigError(f"The {where} needs a value (e.g. {{ value = 0.05 }}).")
        severity = raw.get("severity", "error")
        if severity not in SEVERITIES:
            raise ConfigError(f"The {where} has severity '{severity}'; use warning or error.")
        optional = raw.get("optional", False)
        if not isinstance(optional, bool):
            raise ConfigError(f"The {where} has optional = {optional!r}; use true or false.")
        value = raw["value"]
    else:
        value, severity, optional = raw, "error", False
    _check_value(rule, value, where)
    return RuleSetting(rule.name, value, severity, optional)


def _check_value(rule: Rule, value: Any, where: str) -> None:
    if rule.kind == "set":
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            raise ConfigError(f'The {where} must be a list of class names, e.g. ["cat", "dog"].')
    elif rule.kind == "flag":
        if not isinstance(value, bool):
            raise ConfigError(f"The {where} must be true or false; found {value!r}.")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"The {where} must be a number; found {value!r}.")
    elif not math.isfinite(value):
        raise ConfigError(f"The {where} must be a finite number; found {value!r}.")
    elif rule.name in LIMITS:
        low, high = LIMITS[rule.name]
        if value < low or (high is not None and value > high):
            domain = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise ConfigError(
                f"The {where} must be {domain}; found {value!r} (a limit no figure can reach "
                "would pass or fail every run)."
            )


# The range each numeric limit can take: shares and rates in [0, 1], counts and ratios >= 0.
_SHARE = (0, 1)
_COUNT: tuple[float, float | None] = (0, None)
LIMITS: dict[str, tuple[float, float | None]] = {
    "min_support": _COUNT,
    "max_imbalance_ratio": (1, None),
    "max_null_labels": _COUNT,
    "max_duplicate_ids": _COUNT,
    "max_conflicting_duplicates": _COUNT,
    "max_suspect_rate": _SHARE,
    "max_class_noise_rate": _SHARE,
    "max_group_suspect_rate": _SHARE,
    "min_group_macro_f1": _SHARE,
    "max_flagged_groups": _COUNT,
    "max_duplicate_sets": _COUNT,
    "max_conflicting_duplicate_sets": _COUNT,
    "max_leaking_duplicate_sets": _COUNT,
    "max_outlier_share": _SHARE,
    "min_accuracy": _SHARE,
    "min_macro_f1": _SHARE,
    "max_relabel_rate": _SHARE,
    "max_removed_rate": _SHARE,
    "max_added_rate": _COUNT,
    "max_shift_tvd": _SHARE,
    "max_class_share_change": _SHARE,
}


def evaluate(settings: list[RuleSetting], inputs: GateInputs) -> list[GateFinding]:
    """Apply each configured rule; the order of the configuration is kept."""
    available = {PREDS} if inputs.scan.get("metrics") is not None else set()
    if inputs.diff is not None:
        available.add(BASELINE)
    if inputs.scan.get("neighbours") is not None:
        available.add(EMBEDDINGS)
    if inputs.scan.get("groups"):
        available.add(GROUPS)
    return [_evaluate_one(RULES[s.name], s, inputs, available) for s in settings]


def _evaluate_one(
    rule: Rule, setting: RuleSetting, inputs: GateInputs, available: set[str]
) -> GateFinding:
    missing = sorted(rule.needs - available)
    unreliable = (
        _unreliable_scores(inputs, rule.name) if PREDS in rule.needs and not missing else None
    )
    measured = None if missing or unreliable else rule.measure(inputs)
    if missing or measured is None:
        flags = {PREDS: "--preds", BASELINE: "--baseline", EMBEDDINGS: "--embeddings",
                 GROUPS: "--group-col"}  # fmt: skip
        why = (
            f"needs {' and '.join(missing)} (pass {' and '.join(flags[m] for m in missing)})"
            if missing
            else unreliable or "its figure is undefined for this data"
        )
        status = "skipped" if setting.optional else "error"
        # Uncomputable is an error finding whatever the rule's own severity.
        return GateFinding(
            rule.name, status, "error", None, setting.value,
            f"{rule.name} could not be computed: {why}"
            + ("; optional, so skipped." if setting.optional else "; uncomputable is not a pass."),
        )  # fmt: skip
    passed, shown = _compare(rule, setting.value, measured)
    place = rule.where(inputs) if rule.where is not None else None
    if place:
        shown += f" ({place})"
    verb = "passes" if passed else "fails"
    message = (
        f"{rule.name} {verb}: {rule.description}: measured {shown}, limit {_show(setting.value)}"
    )
    return GateFinding(
        rule.name, "pass" if passed else "fail", setting.severity, measured, setting.value, message
    )


# Rules that read the estimate of how many labels are wrong (or the suspects drawn from it).
ESTIMATE_RULES = frozenset(
    {"max_suspect_rate", "max_class_noise_rate", "max_group_suspect_rate", "max_flagged_groups"}
)


def _unreliable_scores(inputs: GateInputs, rule: str) -> str | None:
    """Why a rule that reads the scores has no figure worth comparing: the scan found they fit
    the labels no better than a random row order (misaligned rows, or a model at chance), or,
    for the rules that read the error estimate, that the model disagrees with most labels."""
    codes = [f["code"] for f in inputs.scan.get("findings") or []]
    found = next((c for c in AT_CHANCE_FINDINGS if c in codes), None)
    if found is not None:
        return (
            f"the scores fit the labels no better than chance (finding {found}), so its figure "
            "is no evidence"
        )
    if rule in ESTIMATE_RULES and "weak_evidence" in codes:
        return (
            "the model disagrees with most labels (finding weak_evidence), so the estimate "
            "of label errors it reads is no evidence"
        )
    return None


def _compare(rule: Rule, limit: Any, measured: Any) -> tuple[bool, str]:
    if rule.kind == "max":
        return measured <= limit, _show(measured)
    if rule.kind == "min":
        return measured >= limit, _show(measured)
    if rule.kind == "set":
        outside = [c for c in measured if c not in {str(v) for v in limit}]
        return not outside, ", ".join(outside) if outside else "none outside"
    new = list(measured)
    return (not limit) or not new, ", ".join(new) if new else "no new class"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def failing(results: list[GateFinding], fail_on: str) -> list[GateFinding]:
    """Findings that fail the gate: errors always; warnings too with --fail-on warning."""
    counted = {"error"} if fail_on == "error" else {"error", "warning"}
    return [r for r in results if r.status in ("fail", "error") and r.severity in counted]
