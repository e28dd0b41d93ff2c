"""`labelaudit scan` on top-k predictions (two list columns), in a fresh process.

    python benchmarks/topk_scan.py [--rows 100000] [--classes 5000] [--k 10]

Writes seeded labels and top-k lists under bench-data/ (a model whose true class is in the top
k most of the time, 5% of labels flipped), runs `scan --issues-out` in a fresh process and
prints its wall time and peak resident memory as a markdown row for docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _processes import report_child, run_child, run_cli

DATA = Path(__file__).resolve().parent.parent / "bench-data"


def make_input(rows: int, classes: int, k: int) -> tuple[Path, Path]:
    labels_path = DATA / f"topk-labels-{rows}x{classes}.parquet"
    preds_path = DATA / f"topk-preds-{rows}x{classes}-k{k}.parquet"
    if labels_path.exists() and preds_path.exists():
        return labels_path, preds_path
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    truth = rng.integers(0, classes, rows)
    given = np.where(rng.random(rows) < 0.05, rng.integers(0, classes, rows), truth)
    # Each row: the true class (most of the time) and k - 1 others, with decreasing scores.
    others = rng.integers(0, classes, (rows, k))
    hit = rng.random(rows) < 0.85
    others[hit, 0] = truth[hit]
    for j in range(1, k):  # no class twice in a row
        clash = (others[:, j : j + 1] == others[:, :j]).any(axis=1)
        while clash.any():
            others[clash, j] = rng.integers(0, classes, int(clash.sum()))
            clash = (others[:, j : j + 1] == others[:, :j]).any(axis=1)
    weights = np.sort(rng.dirichlet(np.full(k + 1, 0.6), rows), axis=1)[:, ::-1]
    probs = weights[:, :k] * 0.98  # the last share is the mass outside the top k
    pl.DataFrame({"id": np.arange(rows), "label": given}).write_parquet(labels_path)
    pl.DataFrame(
        {
            "id": np.arange(rows),
            "topk_classes": pl.Series(others.tolist(), dtype=pl.List(pl.Int64)),
            "topk_probs": pl.Series(probs.astype(np.float32).tolist(), dtype=pl.List(pl.Float32)),
        }
    ).write_parquet(preds_path)
    return labels_path, preds_path


def classes_file(preds: str) -> Path:
    """The class list beside a predictions file."""
    return Path(preds).with_suffix(".classes.txt")


def child(labels: str, preds: str) -> None:
    issues = str(DATA / "topk-issues.parquet")
    args = ["scan", labels, "--preds", preds, "--issues-out", issues, "-o", "/dev/null",
            "--classes", str(classes_file(preds))]  # fmt: skip
    report_child(lambda: run_cli([*args, "--format", "json"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=5_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--child", nargs=2, metavar=("LABELS", "PREDS"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    labels, preds = make_input(args.rows, args.classes, args.k)
    # Every class in the vocabulary: with few rows a class may have no label (then the lists
    # would name a class the labels lack, which needs --classes).
    names = "\n".join(str(c) for c in range(args.classes)) + "\n"
    classes_file(str(preds)).write_text(names)
    result = run_child(__file__, str(labels), str(preds))
    print("| rows | classes | k | scan --issues-out s | peak RSS MiB |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.rows:,} | {args.classes:,} | {args.k} | {result['seconds']:.1f} | "
        f"{result['peak_mib']:.0f} |"
    )


if __name__ == "__main__":
    main()
