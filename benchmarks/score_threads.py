"""Wall time of `labelaudit score --cv 5` on digits: labelaudit's thread rule beside torch's.

    python benchmarks/score_threads.py [--rounds 20] [--busy 0] [--probe linear]

scikit-learn's digits (1,797 rows x 64 features, 10 classes; shipped with scikit-learn) are
written to bench-data/digits.parquet. Each round runs the command twice in fresh processes,
alternating: as it is (labelaudit's rule, scoring/threads.py) and with OMP_NUM_THREADS set to
the available CPUs, which labelaudit obeys, i.e. torch's default of a thread a core (the
behaviour before the rule). --busy N keeps N other processes spinning meanwhile, as a
shared machine does. Prints min / median / max seconds of each as a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def digits() -> Path:
    """scikit-learn's digits as id, label and 64 pixel columns (no download)."""
    from sklearn.datasets import load_digits

    DATA.mkdir(exist_ok=True)
    path = DATA / "digits.parquet"
    if not path.exists():
        bunch = load_digits()
        columns = {"id": np.arange(bunch.target.size), "label": bunch.target}
        columns |= {f"p{j}": bunch.data[:, j] for j in range(bunch.data.shape[1])}
        pl.DataFrame(columns).write_parquet(path)
    return path


def timed(command: list[str], env: dict[str, str]) -> float:
    """Seconds of one run of `command` in a fresh process, as `time` would report them."""
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--busy", type=int, default=0, help="Other processes spinning meanwhile.")
    parser.add_argument("--probe", default="linear", choices=["linear", "mlp"])
    args = parser.parse_args()
    data, out = digits(), DATA / "digits-oof.parquet"
    command = [sys.executable, "-m", "labelaudit", "score", "--cv", "5", "--data", str(data)]
    command += ["--probe", args.probe, "-o", str(out), "--quiet"]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    plain = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    envs = {
        "labelaudit's rule": plain,
        f"torch's default (OMP_NUM_THREADS={cpus})": plain | {"OMP_NUM_THREADS": str(cpus)},
    }
    spin = [sys.executable, "-c", "while True: pass"]
    busy = [subprocess.Popen(spin) for _ in range(args.busy)]
    seconds: dict[str, list[float]] = {name: [] for name in envs}
    try:
        for _ in range(args.rounds):
            for name, env in envs.items():
                seconds[name].append(timed(command, env))
    finally:
        for process in busy:
            process.kill()
            process.wait()
    print(
        f"`labelaudit score --cv 5 --probe {args.probe}` on digits, {cpus} CPUs, "
        f"{args.busy} other busy process(es), {args.rounds} runs each, alternating\n"
    )
    print("| threads | min s | median s | max s |")
    print("| --- | ---: | ---: | ---: |")
    for name, times in seconds.items():
        print(f"| {name} | {min(times):.1f} | {statistics.median(times):.1f} | {max(times):.1f} |")


if __name__ == "__main__":
    main()
