"""Time `scan --issues-out` on the Ray engine beside the local engine on this machine, in fresh
processes, interleaved: the engine's overhead on one machine, as a ratio.

    python benchmarks/ray_scan.py [--rows 1000000] [--classes 100] [--rounds 2]

Uses scan_speed.py's seeded input under bench-data/ (made on first use). The Ray run starts and
stops a local Ray instance with this machine's cores, as a user's first run does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _processes import report_child, run_child, run_cli
from scan_speed import DATA, make_input


def child(engine: str, labels: str, preds: str) -> None:
    issues = str(DATA / f"issues-{engine}.parquet")
    args = ["scan", labels, "--preds", preds, "--format", "json", "-o", "/dev/null"]
    report_child(lambda: run_cli([*args, "--engine", engine, "--issues-out", issues]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    labels, preds = make_input(args.rows, args.classes)
    runs: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
    for _ in range(args.rounds):
        for engine in runs:
            runs[engine].append(run_child(__file__, engine, str(labels), str(preds)))
    local = statistics.median(r["seconds"] for r in runs["local"])
    print(f"input: {args.rows:,} x {args.classes}; medians of {args.rounds} interleaved rounds\n")
    print(
        "| engine | median s | peak RSS MiB (driver) | time / local |\n| --- | ---: | ---: | ---: |"
    )
    for engine, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        peak = max(r["peak_mib"] for r in results)
        print(f"| {engine} | {seconds:.2f} | {peak:,.0f} | {seconds / local:.2f}x |")


if __name__ == "__main__":
    main()
