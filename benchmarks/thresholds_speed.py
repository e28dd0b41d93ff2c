"""Speed of the per-class threshold sweep (F1) on an in-memory (N, K) matrix.

    python benchmarks/thresholds_speed.py [--rows 1000000] [--classes 100] [--rounds 3]

Uses the scan benchmark's seeded input. Times `tune_multiclass` (one exact sweep per class)
beside the naive alternative a user might write: a full argsort of every class's scores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan_speed import make_input

from labelaudit.core.thresholds import Objective, tune_multiclass


def naive(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Full argsort per class, then the F1 at every distinct score."""
    out = np.empty(probabilities.shape[1])
    for c in range(probabilities.shape[1]):
        scores = probabilities[:, c]
        order = np.argsort(-scores, kind="stable")
        positive = labels[order] == c
        tp = np.cumsum(positive)
        f1 = 2 * tp / (np.arange(1, scores.size + 1) + positive.sum())
        out[c] = scores[order][int(np.argmax(f1))]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    labels_path, preds_path = make_input(args.rows, args.classes)
    labels = pl.read_parquet(labels_path)["label"].to_numpy().astype(np.int64)
    probabilities = np.ascontiguousarray(pl.read_parquet(preds_path).drop("id").to_numpy())
    timings: dict[str, list[float]] = {"labelaudit tune_multiclass": [], "naive argsort sweep": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        ours = tune_multiclass(probabilities, labels, Objective("f1", None))
        timings["labelaudit tune_multiclass"].append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = naive(probabilities, labels)
        timings["naive argsort sweep"].append(time.perf_counter() - start)
    print(f"{args.rows:,} x {args.classes} float32, F1 thresholds, {args.rounds} rounds\n")
    print("| job | median s | min s |")
    print("| --- | ---: | ---: |")
    for name, t in timings.items():
        print(f"| {name} | {statistics.median(t):.2f} | {min(t):.2f} |")
    same = np.mean(np.isclose(ours, theirs))
    print(f"\nthresholds equal to the naive sweep's: {same:.0%} of classes")


if __name__ == "__main__":
    main()
