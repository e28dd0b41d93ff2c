"""Time a multi-label `scan --issues-out` with its scores streamed (two passes, no (N, K)
probabilities) beside the same scan reading them whole, in fresh processes, interleaved.

    python benchmarks/multilabel_scan.py [--rows 1000000] [--classes 100] [--rounds 3]

Makes seeded inputs under bench-data/ (labels as 'a|b' tag sets; float32 scores in parquet),
then prints a markdown table for docs/performance.md. Time a second run: on the first, the
children's peaks include the parent's while it made the inputs (Linux keeps the high-water mark
across fork and exec).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _processes import report_child, run_child, run_cli

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"


def make_input(rows: int, classes: int) -> tuple[Path, Path]:
    """Seeded tags (about 3 a row, 5% of bits flipped) and a model's scores of them."""
    labels = DATA / f"ml-labels-{rows}x{classes}.parquet"
    preds = DATA / f"ml-preds-{rows}x{classes}.parquet"
    if labels.exists() and preds.exists():
        return labels, preds
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    truth = rng.random((rows, classes), dtype=np.float32) < 3 / classes
    given = truth ^ (rng.random((rows, classes), dtype=np.float32) < 0.05 / classes * 3)
    given[:, 0] |= ~given.any(axis=1)
    scores = np.clip(truth * 0.6 + rng.normal(0.2, 0.15, (rows, classes)).astype(np.float32), 0, 1)
    names = [f"c{j}" for j in range(classes)]
    tags = pl.DataFrame(given, schema=names).select(
        pl.concat_list([pl.when(pl.col(c)).then(pl.lit(c)) for c in names]).list.drop_nulls()
    )
    pl.DataFrame({"id": np.arange(rows), "label": tags.to_series()}).write_parquet(labels)
    frame = pl.DataFrame({"id": np.arange(rows)}).hstack(
        pl.DataFrame(scores.astype(np.float32), schema=names)
    )
    frame.write_parquet(preds)
    return labels, preds


def child(job: str, labels: str, preds: str) -> None:
    stream = "0" if job == "streamed" else "1000000"
    issues = str(DATA / "ml-issues.parquet")
    args = ["scan", labels, "--preds", preds, "--format", "json", "-o", "/dev/null"]
    report_child(lambda: run_cli([*args, "--stream-above-mib", stream, "--issues-out", issues]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    labels, preds = make_input(args.rows, args.classes)
    runs: dict[str, list[dict[str, float]]] = {"streamed": [], "whole": []}
    for _ in range(args.rounds):
        for job in runs:
            runs[job].append(run_child(__file__, job, str(labels), str(preds)))
    rounds = f"medians of {args.rounds} interleaved rounds"
    print(f"input: {args.rows:,} rows x {args.classes} classes, multi-label; {rounds}\n")
    print("| job | median s | peak RSS MiB |\n| --- | ---: | ---: |")
    for job, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        peak = max(r["peak_mib"] for r in results)
        print(f"| scan --issues-out, scores {job} | {seconds:.2f} | {peak:,.0f} |")


if __name__ == "__main__":
    main()
