"""The Ray engine beside the local engine on this machine, in fresh processes, interleaved: the
engine's overhead on one machine, as a ratio.

    python benchmarks/ray_scan.py scan [--rows 1000000] [--classes 100] [--rounds 2]
    python benchmarks/ray_scan.py score [--rows 200000] [--features 256] [--rounds 2]

scan: `scan --issues-out` on scan_speed.py's seeded input under bench-data/ (made on first use).
score: `score --model` with a seeded TorchScript MLP on a seeded features parquet (CPU), into one
file (local) or a folder of shards (ray). Each Ray run starts and stops a local Ray instance with
this machine's cores, as a user's first run does.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _processes import report_child, run_child, run_cli
from scan_speed import DATA, make_input


def make_features(rows: int, features: int) -> tuple[Path, Path]:
    """Seeded features (id, label, f0..) and a scripted 2-layer MLP over them."""
    import torch

    data = DATA / f"ray-features-{rows}x{features}.parquet"
    model = DATA / f"ray-mlp-{features}.pt"
    if not data.exists():
        DATA.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        values = rng.normal(size=(rows, features)).astype(np.float32)
        columns = {f"f{j}": values[:, j] for j in range(features)}
        frame = pl.DataFrame({"id": np.arange(rows), "label": rng.integers(0, 10, rows)})
        frame.hstack(pl.DataFrame(columns)).write_parquet(data)
    if not model.exists():
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Linear(features, 512), torch.nn.ReLU(), torch.nn.Linear(512, 100)
        ).eval()
        torch.jit.script(net).save(str(model))
    return data, model


def child(job: str, engine: str, first: str, second: str) -> None:
    if job == "scan":
        issues = str(DATA / f"issues-{engine}.parquet")
        args = ["scan", first, "--preds", second, "--format", "json", "-o", "/dev/null"]
        report_child(lambda: run_cli([*args, "--engine", engine, "--issues-out", issues]))
        return
    out = DATA / ("ray-scores" if engine == "ray" else "ray-scores.parquet")
    shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
    args = ["score", "--model", second, "--data", first, "-o", str(out), "--quiet"]
    report_child(lambda: run_cli([*args, "--engine", engine]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("job", choices=("scan", "score"))
    parser.add_argument("--rows", type=int)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        child(args.job, *args.child)
        return
    if args.job == "scan":
        rows = args.rows or 1_000_000
        inputs = make_input(rows, args.classes)
        what = f"scan --issues-out, {rows:,} x {args.classes}"
    else:
        rows = args.rows or 200_000
        inputs = make_features(rows, args.features)
        what = f"score, {rows:,} rows x {args.features} features, an MLP to 100 classes (CPU)"
    runs: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
    for _ in range(args.rounds):
        for engine in runs:
            paths = [str(p) for p in inputs]
            runs[engine].append(run_child(__file__, engine, *paths, args.job))
    local = statistics.median(r["seconds"] for r in runs["local"])
    print(f"{what}; medians of {args.rounds} interleaved rounds\n")
    print("| engine | median s | peak RSS MiB (driver) | time / local |")
    print("| --- | ---: | ---: | ---: |")
    for engine, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        peak = max(r["peak_mib"] for r in results)
        print(f"| {engine} | {seconds:.2f} | {peak:,.0f} | {seconds / local:.2f}x |")


if __name__ == "__main__":
    main()
