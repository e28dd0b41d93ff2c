"""`gate()`: scan the labels, diff against a baseline, apply the configured rules, decide."""

from __future__ import annotations

import os
from typing import Any

import polars as pl

from labelaudit.config import ScanConfig
from labelaudit.errors import InputError
from labelaudit.io.labels import describe_ids
from labelaudit.io.tables import read_table
from labelaudit.pipelines.diff import run_diff
from labelaudit.pipelines.gate_rules import GateInputs, RuleSetting, evaluate, failing
from labelaudit.pipelines.scan import run_scan
from labelaudit.report.schema import (
    AcceptedSuspects,
    GateReport,
    GateRuleSetting,
    GateSummary,
)


def run_gate(
    labels: Any,
    preds: Any = None,
    *,
    rules: list[RuleSetting],
    config: ScanConfig,
    baseline: Any = None,
    accept: str | os.PathLike[str] | None = None,
    fail_on: str = "error",
) -> GateReport:
    """Run the rules on `labels` (with `preds` and a `baseline` version when given)."""
    report = run_scan(labels, preds, config)
    compared = run_diff(baseline, labels, None, config) if baseline is not None else None
    accepted = _apply_accept(accept, report) if accept is not None else None
    inputs = GateInputs(
        scan=report.to_dict(),
        diff=compared.to_dict() if compared is not None else None,
        new_suspects=accepted.new_suspects if accepted else None,
    )
    results = evaluate(rules, inputs)
    bad = failing(results, fail_on)
    summary = GateSummary(
        verdict="fail" if bad else "pass",
        fail_on=fail_on,
        passed=sum(r.status == "pass" for r in results),
        failed=sum(r.status == "fail" for r in results),
        errors=sum(r.status == "error" for r in results),
        skipped=sum(r.status == "skipped" for r in results),
        failing_rules=[r.rule for r in bad],
    )
    return GateReport(
        summary=summary,
        rules=[GateRuleSetting(s.name, s.value, s.severity, s.optional) for s in rules],
        findings=results,
        accepted=accepted,
        scan=report,
        diff=compared,
        config=config.to_dict(),
        warnings=list(report.warnings)
        + ([describe_stale(accepted)] if accepted and accepted.no_longer_apply else []),
    )


def _suspect_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """(id, given_label) as strings: the identity of a known suspect across runs and files."""
    return frame.select(pl.col("id").cast(pl.String), pl.col("given_label").cast(pl.String))


def current_suspects(report: Any) -> pl.DataFrame:
    """Today's suspects: the rows a baseline file records."""
    table = report.issues
    if table is None:
        raise InputError(
            "--write-baseline and --accept need --preds: suspects are found from scores."
        )
    return table.filter(pl.col("is_suspect")).select(
        "id", "given_label", "suggested_label", "label_quality"
    )


def _apply_accept(path: str | os.PathLike[str], report: Any) -> AcceptedSuspects:
    accepted = read_table(path, "accepted suspects", ids=("id", "given_label"))
    missing = {"id", "given_label"} - set(accepted.columns)
    if missing:
        raise InputError(
            f"The accepted-suspects file '{path}' lacks the columns {sorted(missing)}; columns "
            f"found: {', '.join(accepted.columns)}. Write it with --write-baseline."
        )
    known = _suspect_keys(accepted).unique()
    today = _suspect_keys(current_suspects(report))
    still = today.join(known, on=["id", "given_label"], how="semi")
    stale = known.join(today, on=["id", "given_label"], how="anti")
    return AcceptedSuspects(
        file=str(path),
        accepted=known.height,
        still_suspected=still.height,
        new_suspects=today.height - still.height,
        no_longer_apply=stale.height,
        no_longer_apply_examples=stale["id"].head(5).to_list(),
    )


def describe_stale(accepted: AcceptedSuspects) -> str:
    """A warning line for accepted entries that no longer match a suspect."""
    ids = describe_ids(pl.Series(accepted.no_longer_apply_examples))
    return (
        f"{accepted.no_longer_apply} accepted suspects no longer apply (fixed, relabeled or "
        f"removed; e.g. ids {ids}); refresh the file with --write-baseline."
    )
