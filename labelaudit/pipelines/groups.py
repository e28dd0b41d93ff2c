"""`--group-col`: the scan broken down by the values of a labels column (a split, a source, an
annotator): per group its support, metrics, suspects and where its confusions concentrate, and
which groups stand out (a one-sided two-proportion test with Holm's correction).
docs/groups.md documents every rule."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from labelaudit.config import ScanConfig
from labelaudit.core.grouping import group_positions
from labelaudit.core.metrics_multilabel import multilabel_metrics
from labelaudit.core.scores import MulticlassScoreSums
from labelaudit.io.dataset import Dataset
from labelaudit.pipelines.metrics_sections import (
    multiclass_metrics_section,
    multilabel_metrics_section,
)
from labelaudit.pipelines.passes import probability_chunks
from labelaudit.report.schema import Finding, GroupPair, GroupStats

MIN_GROUP_ROWS = 30  # smaller groups are pooled into one, named SMALL_GROUPS
SMALL_GROUPS = "(groups under 30 rows)"
FAMILY_ALPHA = 0.05  # Holm's correction over every group of every column
Z_95 = 1.959963984540054  # the Wilson interval's z


def group_sections(
    dataset: Dataset,
    config: ScanConfig,
    score_mode: str | None,
    thresholds: np.ndarray | None,
    issues: pl.DataFrame | None,
    estimated_errors: int | None,
    warnings: list[str],
) -> dict[str, list[GroupStats]]:
    """Per --group-col column, its groups (standing-out ones first); warnings are appended to
    `warnings`. `issues` holds each scored dataset row's is_suspect and suggested label
    (`dataset_row` gives its row)."""
    if dataset.groups is None:
        return {}
    found: dict[str, list[dict[str, Any]]] = {}
    for column in dataset.groups.columns:
        values = _pooled(dataset.groups[column])
        warnings.extend(_id_like(values, column))
        found[column] = _column_groups(
            dataset, values, config, score_mode, thresholds, issues, estimated_errors
        )
    _test(found)
    return {
        column: [GroupStats(**g) for g in sorted(groups, key=_order)]
        for column, groups in found.items()
    }


def _pooled(values: pl.Series) -> pl.Series:
    """Groups under MIN_GROUP_ROWS rows pooled into one (too few rows for their own rates)."""
    sizes = values.value_counts().filter(pl.col("count") < MIN_GROUP_ROWS)
    small = values.is_in(sizes[values.name].implode())
    return pl.Series(values.name, np.where(small.to_numpy(), SMALL_GROUPS, values.to_numpy()))


def _id_like(values: pl.Series, column: str) -> list[str]:
    """A warning when most rows sit in groups too small to report: the column looks like an id."""
    pooled = int((values == SMALL_GROUPS).sum())
    if pooled <= values.len() / 2:
        return []
    return [
        f"--group-col {column}: {pooled:,} of {values.len():,} rows are in groups under "
        f"{MIN_GROUP_ROWS} rows (pooled into one): the column has nearly a value a row, like an "
        "id. Group by something coarser (a source, a batch, a split)."
    ]


def _column_groups(
    dataset: Dataset,
    values: pl.Series,
    config: ScanConfig,
    score_mode: str | None,
    thresholds: np.ndarray | None,
    issues: pl.DataFrame | None,
    estimated_errors: int | None,
) -> list[dict[str, Any]]:
    names, codes = np.unique(values.to_numpy().astype(str), return_inverse=True)
    n_groups = names.size
    sizes = np.bincount(codes, minlength=n_groups)
    metrics = _metrics(dataset, codes, n_groups, config, score_mode, thresholds)
    suspects = np.zeros(n_groups, dtype=np.int64)
    scored = np.zeros(n_groups, dtype=np.int64)
    pairs: list[list[GroupPair]] = [[] for _ in range(n_groups)]
    if issues is not None:
        rows = issues["dataset_row"].to_numpy()
        flagged = issues["is_suspect"].to_numpy()
        scored = np.bincount(codes[rows], minlength=n_groups)
        suspects = np.bincount(codes[rows], weights=flagged, minlength=n_groups).astype(np.int64)
        pairs = _concentrated_pairs(issues, codes[rows], n_groups)
    total_suspects = int(suspects.sum())
    per_error = (estimated_errors or 0) / total_suspects if total_suspects else 0.0
    groups = []
    for g in range(n_groups):
        rate = suspects[g] / scored[g] if scored[g] else None
        low, high = _wilson(int(suspects[g]), int(scored[g])) if scored[g] else (None, None)
        groups.append(
            {
                "group": str(names[g]),
                "n": int(sizes[g]),
                "n_scored": int(scored[g]),
                "metrics": metrics[g] if metrics is not None else None,
                "n_suspects": int(suspects[g]) if issues is not None else None,
                "suspect_rate": rate,
                "suspect_rate_interval": [low, high] if rate is not None else None,
                "noise_rate": suspects[g] * per_error / scored[g] if scored[g] else None,
                "top_pairs": pairs[g],
                "p_value": None,
                "flagged": False,
                "pooled": bool(names[g] == SMALL_GROUPS),
            }
        )
    return groups


def _metrics(
    dataset: Dataset,
    codes: np.ndarray,
    n_groups: int,
    config: ScanConfig,
    score_mode: str | None,
    thresholds: np.ndarray | None,
) -> list[Any] | None:
    """Each group's metrics, the scan's own sections on its rows, from one more pass over the
    scores. Multi-label groups gather their rows' probabilities (average precision needs every
    score of a class): (N, K) in memory."""
    if dataset.scores is None or score_mode is None:
        return None
    if dataset.multi_label:
        return _multilabel_metrics(dataset, codes, n_groups, config, score_mode, thresholds)
    sums = [MulticlassScoreSums(dataset.n_classes, thresholds=thresholds) for _ in range(n_groups)]
    for probs, rows in probability_chunks(dataset, score_mode, config.chunk_rows)():
        for g, chosen in _by_group(codes[rows], n_groups):
            sums[g].update(probs[chosen], dataset.labels[rows[chosen]])
    decision = "argmax" if thresholds is None else "per-class thresholds"
    return [
        multiclass_metrics_section(dataset.classes, s, score_mode, decision) if s.rows else None
        for s in sums
    ]


def _multilabel_metrics(
    dataset: Dataset,
    codes: np.ndarray,
    n_groups: int,
    config: ScanConfig,
    score_mode: str,
    thresholds: np.ndarray | None,
) -> list[Any]:
    probs: list[list[np.ndarray]] = [[] for _ in range(n_groups)]
    rows_of: list[list[np.ndarray]] = [[] for _ in range(n_groups)]
    for chunk, rows in probability_chunks(dataset, score_mode, config.chunk_rows)():
        for g, chosen in _by_group(codes[rows], n_groups):
            probs[g].append(chunk[chosen])
            rows_of[g].append(rows[chosen])
    threshold = config.threshold if thresholds is None else thresholds
    decision = f"p >= {config.threshold:g}" if thresholds is None else "per-class thresholds"
    out: list[Any] = []
    for g in range(n_groups):
        if not rows_of[g]:
            out.append(None)
            continue
        rows = np.concatenate(rows_of[g])
        figures = multilabel_metrics(dataset.indicators[rows], np.concatenate(probs[g]), threshold)
        out.append(
            multilabel_metrics_section(dataset.classes, figures, score_mode, decision, rows.size)
        )
    return out


def _by_group(group_of: np.ndarray, n_groups: int) -> list[tuple[int, np.ndarray]]:
    """A chunk's positions grouped by group (a loop over the groups present, not rows)."""
    order, bounds = group_positions(group_of, n_groups)
    return [(int(g), order[bounds[g] : bounds[g + 1]]) for g in np.flatnonzero(np.diff(bounds))]


def _concentrated_pairs(
    issues: pl.DataFrame, group_of: np.ndarray, n_groups: int, limit: int = 3
) -> list[list[GroupPair]]:
    """Per group, its most frequent suspect pairs (given -> suggested) with their lift: the
    pair's share of the group's suspects over its share of all suspects."""
    suspects = issues.with_columns(pl.Series("group", group_of)).filter(pl.col("is_suspect"))
    if suspects.height == 0:
        return [[] for _ in range(n_groups)]
    overall = suspects.group_by("given_label", "suggested_label").agg(pl.len().alias("all"))
    per_group = suspects.group_by("group", "given_label", "suggested_label").agg(
        pl.len().alias("count")
    )
    totals = suspects.group_by("group").agg(pl.len().alias("group_suspects"))
    table = (
        per_group.join(overall, on=["given_label", "suggested_label"])
        .join(totals, on="group")
        .with_columns(
            lift=(pl.col("count") / pl.col("group_suspects")) / (pl.col("all") / suspects.height)
        )
        .sort(
            ["group", "count", "lift", "given_label", "suggested_label"],
            descending=[False, True, True, False, False],
        )
    )
    out: list[list[GroupPair]] = [[] for _ in range(n_groups)]
    for row in table.iter_rows(named=True):  # at most `limit` a group are kept: few rows
        if len(out[row["group"]]) < limit:
            out[row["group"]].append(
                GroupPair(row["given_label"], row["suggested_label"], row["count"], row["lift"])
            )
    return out


def _wilson(successes: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    p = successes / n
    z2 = Z_95 * Z_95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _test(found: dict[str, list[dict[str, Any]]]) -> None:
    """Each group's suspect rate against the rest of its column's rows (one-sided, pooled
    two-proportion z-test); p-values Holm-adjusted over all groups; flagged below FAMILY_ALPHA."""
    tests = []
    for groups in found.values():
        if any(g["n_suspects"] is None for g in groups):
            continue  # no detection, nothing to test
        total_suspects = sum(g["n_suspects"] for g in groups)
        total_scored = sum(g["n_scored"] for g in groups)
        for g in groups:
            rest_n = total_scored - g["n_scored"]
            if g["n_scored"] == 0 or rest_n == 0:
                continue
            rest_rate = (total_suspects - g["n_suspects"]) / rest_n
            pooled = total_suspects / total_scored
            spread = math.sqrt(pooled * (1 - pooled) * (1 / g["n_scored"] + 1 / rest_n))
            if spread == 0:
                continue
            z = (g["suspect_rate"] - rest_rate) / spread
            g["p_value"] = 0.5 * math.erfc(z / math.sqrt(2))
            tests.append(g)
    tests.sort(key=lambda g: g["p_value"])
    running = 0.0
    for i, g in enumerate(tests):  # Holm's step-down adjustment, kept monotone
        running = max(running, min(1.0, g["p_value"] * (len(tests) - i)))
        g["p_value"] = running
        g["flagged"] = running < FAMILY_ALPHA


def _order(group: GroupStats | dict[str, Any]) -> tuple:
    g = group if isinstance(group, dict) else group.__dict__
    return (not g["flagged"], -(g["suspect_rate"] or 0.0), g["group"])


def group_findings(groups: dict[str, list[GroupStats]]) -> list[Finding]:
    """A warning per group whose suspect rate stands out from the rest of its column."""
    found = []
    for column, stats in groups.items():
        for g in stats:
            if g.flagged and g.suspect_rate is not None and g.p_value is not None:
                found.append(
                    Finding(
                        "group_stands_out",
                        "warning",
                        f"{column} = {g.group}: {100 * g.suspect_rate:.1f}% of its "
                        f"{g.n_scored:,} scored rows are suspects, far above the rest of "
                        f"{column} (one-sided test, Holm-corrected p = {g.p_value:.2g}).",
                        g.n_suspects,
                    )
                )
    return found
