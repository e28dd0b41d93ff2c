"""Time `labelaudit scan` end to end beside the floor of only reading its inputs, interleaved.

    python benchmarks/scan_speed.py [--rows 1000000] [--classes 100] [--rounds 5]

Makes a seeded input (labels parquet; wide float32 predictions parquet) under bench-data/, then
runs each job in a fresh process, alternating, so both see the same machine state. Each child
reports its own wall time and peak resident memory. Prints a markdown table for
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"


def make_input(rows: int, classes: int, seed: int = 0) -> tuple[Path, Path]:
    """Seeded labels and predictions (predictions in shuffled row order, joined on id)."""
    labels_path = DATA / f"labels-{rows}x{classes}.parquet"
    preds_path = DATA / f"preds-{rows}x{classes}.parquet"
    if labels_path.exists() and preds_path.exists():
        return labels_path, preds_path
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    priors = rng.dirichlet(np.full(classes, 0.7))
    truth = rng.choice(classes, size=rows, p=priors)
    given = np.where(rng.random(rows) < 0.05, rng.integers(0, classes, rows), truth)
    logits = rng.standard_normal((rows, classes), dtype=np.float32)
    logits[np.arange(rows), truth] += 4.0
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    ids = np.arange(rows, dtype=np.int64)
    pl.DataFrame({"id": ids, "label": given}).write_parquet(labels_path)
    frame = pl.DataFrame({"id": ids, **{str(c): logits[:, c] for c in range(classes)}})
    frame.write_parquet(preds_path)
    return labels_path, preds_path


def child_scan(labels: str, preds: str) -> None:
    from labelaudit.cli import cli

    try:
        cli.main(["scan", labels, "--preds", preds, "--format", "json", "-o", "/dev/null"])
    except SystemExit as done:
        if done.code:
            raise


def child_floor(labels: str, preds: str) -> None:
    """What any tool must do: read both files and build the (N, K) probability matrix."""
    label_frame = pl.read_parquet(labels)
    pred_frame = pl.read_parquet(preds)
    matrix = pred_frame.drop("id").to_numpy()
    assert matrix.shape[0] == label_frame.height


def run_child(job: str, labels: Path, preds: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", job, str(labels), str(preds)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("JOB", "LABELS", "PREDS"))
    args = parser.parse_args()
    if args.child:
        job, labels, preds = args.child
        start = time.perf_counter()
        {"scan": child_scan, "floor": child_floor}[job](labels, preds)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
        print(json.dumps({"seconds": seconds, "peak_mib": peak}))
        return
    labels, preds = make_input(args.rows, args.classes)
    matrix_mib = args.rows * args.classes * 4 / 2**20
    results: dict[str, list[dict[str, float]]] = {"floor": [], "scan": []}
    for _ in range(args.rounds):
        for job in ("floor", "scan"):
            results[job].append(run_child(job, labels, preds))
    floor_s = statistics.median(r["seconds"] for r in results["floor"])
    scan_s = statistics.median(r["seconds"] for r in results["scan"])
    floor_mib = statistics.median(r["peak_mib"] for r in results["floor"])
    scan_mib = statistics.median(r["peak_mib"] for r in results["scan"])
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(
        f"input: {args.rows:,} rows x {args.classes} classes, float32 probability matrix "
        f"{matrix_mib:.0f} MiB; median of {args.rounds} interleaved rounds (wall time of the "
        "child process after interpreter start, imports included)"
    )
    print()
    floor_min = min(r["seconds"] for r in results["floor"])
    scan_min = min(r["seconds"] for r in results["scan"])
    print("| job | median s | min s | peak RSS MiB |")
    print("| --- | ---: | ---: | ---: |")
    rows = [
        ("read-only floor (polars read + matrix)", floor_s, floor_min, floor_mib),
        ("labelaudit scan (end to end, JSON)", scan_s, scan_min, scan_mib),
    ]
    for name, median_s, min_s, mib in rows:
        print(f"| {name} | {median_s:.2f} | {min_s:.2f} | {mib:.0f} |")
    print()
    print(
        f"scan / floor time: {scan_s / floor_s:.2f}x; scan peak RSS / matrix: "
        f"{scan_mib / matrix_mib:.2f}x (floor: {floor_mib / matrix_mib:.2f}x)"
    )


if __name__ == "__main__":
    main()
