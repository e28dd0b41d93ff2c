"""`labelaudit scan --issues-out` on inputs larger than memory would allow to read whole.

    python benchmarks/large_scan.py [--rows 50000000] [--classes 100] [--shard-rows 10000000]
        [--format parquet|csv] [--floor] [--whole]

Writes seeded labels and wide float32 predictions as parquet (or CSV) shards of --shard-rows rows
under bench-data/large-<rows>x<classes>[-csv]/ (generated shard by shard: memory bounded by one
shard), then runs the scan in a fresh process on the shards as one glob and reports its wall
time and peak resident memory. --floor also runs the read-only floor (polars read of every shard
into one matrix), --whole the scan with streaming switched off (--stream-above-mib 1000000):
both only sensible when the matrix fits in memory. Prints a markdown table for
docs/performance.md. Time a second run: on the first, the children's peaks include the parent's
while it made the shards (Linux keeps the high-water mark across fork and exec).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _processes import report_child, run_child, run_cli

ROOT = Path(__file__).resolve().parent.parent


def make_shards(rows: int, classes: int, shard_rows: int, fmt: str) -> tuple[str, str]:
    """Labels and predictions as parquet or CSV shards (5% of labels flipped, a medium model)."""
    folder = ROOT / "bench-data" / f"large-{rows}x{classes}{'-csv' if fmt == 'csv' else ''}"
    folder.mkdir(parents=True, exist_ok=True)
    priors = np.random.default_rng(0).dirichlet(np.full(classes, 0.7))
    for index, start in enumerate(range(0, rows, shard_rows)):
        labels_path = folder / f"labels-{index:03d}.parquet"
        preds_path = folder / f"preds-{index:03d}.{fmt}"
        if labels_path.exists() and preds_path.exists():
            continue
        n = min(shard_rows, rows - start)
        rng = np.random.default_rng(1000 + index)
        truth = rng.choice(classes, size=n, p=priors)
        given = np.where(rng.random(n) < 0.05, rng.integers(0, classes, n), truth)
        scores = rng.standard_normal((n, classes), dtype=np.float32)
        scores[np.arange(n), truth] += 4.0
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        ids = np.arange(start, start + n, dtype=np.int64)
        pl.DataFrame({"id": ids, "label": given}).write_parquet(labels_path)
        columns = {str(c): scores[:, c] for c in range(classes)}
        table = pl.DataFrame({"id": ids, **columns})
        table.write_csv(preds_path) if fmt == "csv" else table.write_parquet(preds_path)
        del scores, columns, table
    return str(folder / "labels-*.parquet"), str(folder / f"preds-*.{fmt}")


def child(job: str, labels: str, preds: str) -> None:
    def scan() -> None:
        issues = str(Path(preds).parent / "issues.parquet")
        whole = ["--stream-above-mib", "1000000"] if job == "whole" else []
        run_cli(["scan", labels, "--preds", preds, "--issues-out", issues, "-o", "/dev/null",
                 "--format", "json", *whole])  # fmt: skip

    def floor() -> None:
        label_frame = pl.read_parquet(labels)
        read = pl.read_csv if preds.endswith(".csv") else pl.read_parquet
        matrix = read(preds).drop("id").to_numpy()
        assert matrix.shape[0] == label_frame.height

    report_child(floor if job == "floor" else scan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--shard-rows", type=int, default=10_000_000)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--floor", action="store_true")
    parser.add_argument("--whole", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("JOB", "LABELS", "PREDS"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    labels, preds = make_shards(args.rows, args.classes, args.shard_rows, args.format)
    matrix_gib = args.rows * args.classes * 4 / 2**30
    print(f"input: {args.rows:,} rows x {args.classes} classes in {args.format} shards of "
          f"{args.shard_rows:,}")  # fmt: skip
    print(f"(float32 matrix {matrix_gib:.1f} GiB)\n")
    print("| job | wall s | peak RSS MiB | bytes per row |")
    print("| --- | ---: | ---: | ---: |")
    jobs = (["floor"] if args.floor else []) + (["whole"] if args.whole else []) + ["scan"]
    names = {
        "floor": "read-only floor",
        "whole": "labelaudit scan --issues-out, read whole",
        "scan": "labelaudit scan --issues-out",
    }
    for job in jobs:
        result = run_child(__file__, job, labels, preds)
        per_row = result["peak_mib"] * 2**20 / args.rows
        name = names[job]
        print(f"| {name} | {result['seconds']:.1f} | {result['peak_mib']:.0f} | {per_row:.0f} |")


if __name__ == "__main__":
    main()
