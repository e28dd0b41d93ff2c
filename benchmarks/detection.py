"""Detection quality and speed: every quality score and suspect rule, beside cleanlab, one run.

    python benchmarks/detection.py [--seeds 3] [--skip-cleanlab]

Prints markdown tables for docs/detection.md: per scenario (seeded, known truth) precision,
recall and F1 of the flagged set and average precision of the ranking; on the CIFAR-10 review,
how many of the 54 validated errors are among the top 100 / 275 / 500 and the ranking's average
precision among the 275 reviewed items.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from noise_scenarios import KINDS, make_scenario

from labelaudit.core.noise import detect, in_memory_chunks
from labelaudit.core.quality_scores import QUALITY_SCORES
from labelaudit.core.suspect_rules import SUSPECT_RULES

ROOT = Path(__file__).resolve().parent.parent


def average_precision(is_positive: np.ndarray, suspicion: np.ndarray) -> float:
    order = np.argsort(-suspicion, kind="stable")
    hits = is_positive[order]
    if hits.sum() == 0:
        return float("nan")
    precision_at = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float((precision_at * hits).sum() / hits.sum())


def prf(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = int((flagged & truth).sum())
    p = tp / flagged.sum() if flagged.sum() else 0.0
    r = tp / truth.sum() if truth.sum() else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def cifar() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    folder = ROOT / "fixtures" / "cifar10-test"
    classes = (folder / "classes.txt").read_text().split()
    labels = (
        pl.read_csv(folder / "labels.csv")["label"].replace_strict(classes, range(10)).to_numpy()
    )
    probs = pl.read_parquet(folder / "preds.parquet").select(classes).to_numpy()
    review = pl.read_csv(folder / "review.csv")
    return (
        probs,
        labels.astype(np.int64),
        review["id"].to_numpy(),
        review["is_label_error"].to_numpy(),
    )


def run_cleanlab(probs, labels):
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    start = time.perf_counter()
    flagged = find_label_issues(labels, probs)
    quality = get_label_quality_scores(labels, probs)
    return flagged, quality, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--skip-cleanlab", action="store_true")
    args = parser.parse_args()
    rows = []
    for kind in KINDS:
        for seed in range(args.seeds):
            sc = make_scenario(kind, seed)
            truth = sc.is_error
            for q in QUALITY_SCORES:
                for rule in SUSPECT_RULES:
                    d = detect(in_memory_chunks(sc.probabilities.copy()), sc.given, 10, q, rule)
                    p, r, f = prf(d.flagged, truth)
                    ap = average_precision(truth, -d.quality)
                    rows.append(("labelaudit", kind, seed, q, rule, p, r, f, ap))
            if not args.skip_cleanlab:
                flagged, quality, _ = run_cleanlab(sc.probabilities, sc.given)
                p, r, f = prf(flagged, truth)
                ap = average_precision(truth, -quality)
                rows.append(
                    ("cleanlab", kind, seed, "self_confidence", "prune_by_noise_rate", p, r, f, ap)
                )
    table = pl.DataFrame(
        rows,
        schema=["tool", "scenario", "seed", "quality", "rule", "precision", "recall", "f1", "ap"],
        orient="row",
    )
    by_rule = (
        table.group_by("tool", "rule", "scenario")
        .agg(pl.col("precision", "recall", "f1").mean())
        .group_by("tool", "rule")
        .agg(
            pl.col("f1").mean().alias("mean_f1"),
            pl.col("f1").min().alias("worst_f1"),
            pl.col("precision").mean().alias("mean_precision"),
            pl.col("recall").mean().alias("mean_recall"),
        )
        .sort("mean_f1", descending=True)
    )
    by_quality = (
        table.filter(pl.col("tool") == "labelaudit", pl.col("rule") == "confident_joint")
        .group_by("quality", "scenario")
        .agg(pl.col("ap").mean())
        .pivot(on="scenario", index="quality", values="ap")
    )
    per_scenario = (
        table.group_by("tool", "rule", "scenario")
        .agg(pl.col("precision", "recall", "f1").mean())
        .filter(
            pl.col("rule").is_in(
                ["confident_joint", "prune_by_noise_rate", "argmax", "estimated_count", "both"]
            )
        )
        .sort("scenario", "tool", "rule")
    )
    pl.Config.set_tbl_formatting("MARKDOWN")
    pl.Config.set_tbl_rows(100)
    pl.Config.set_float_precision(3)
    pl.Config.set_tbl_hide_dataframe_shape(True)
    pl.Config.set_tbl_hide_column_data_types(True)
    seeds = args.seeds
    print(f"## Flagged-set rules (F1: mean over {seeds} seeds per scenario, then scenarios)\n")
    print(by_rule)
    print("\n## Ranking quality: average precision of each label-quality score (rule irrelevant)\n")
    print(by_quality)
    print("\n## Per scenario\n")
    print(per_scenario)
    probs, labels, ids, is_error = cifar()
    print("\n## CIFAR-10 test set: 54 human-validated errors among 275 reviewed\n")
    header = ["tool", "quality score", "rule", "flagged", "validated in flagged"]
    header += ["top 100", "top 275", "top 500", "AP among reviewed"]
    print("| " + " | ".join(header) + " |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for q in QUALITY_SCORES:
        for rule in ("confident_joint", "prune_by_noise_rate", "estimated_count"):
            d = detect(in_memory_chunks(probs.copy()), labels, 10, q, rule)
            top = [int(((d.ranks()[ids] <= k) & is_error).sum()) for k in (100, 275, 500)]
            ap = average_precision(is_error, -d.quality[ids])
            validated = int((d.flagged[ids] & is_error).sum())
            print(
                f"| labelaudit | {q} | {rule} | {int(d.flagged.sum())} | {validated} | "
                f"{top[0]} | {top[1]} | {top[2]} | {ap:.3f} |"
            )
    if not args.skip_cleanlab:
        flagged, quality, _ = run_cleanlab(probs, labels)
        ranks = np.empty(labels.size, dtype=np.int64)
        ranks[np.argsort(quality, kind="stable")] = np.arange(1, labels.size + 1)
        top = [int(((ranks[ids] <= k) & is_error).sum()) for k in (100, 275, 500)]
        ap = average_precision(is_error, -quality[ids])
        print(
            f"| cleanlab 2.9 | self_confidence | prune_by_noise_rate | {int(flagged.sum())} | "
            f"{int((flagged[ids] & is_error).sum())} | {top[0]} | {top[1]} | {top[2]} | {ap:.3f} |"
        )


if __name__ == "__main__":
    main()
