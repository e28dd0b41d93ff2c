"""Speed of label-error detection beside cleanlab, in one run, interleaved.

    python benchmarks/detection_speed.py [--rows 1000000] [--classes 100] [--rounds 3]
        [--quality-score Q] [--suspects RULE]  (defaults: the scan defaults) [--in-memory-only]

1. In memory: labelaudit's whole detection (thresholds, joint, scores, suspects, pairs) on an
   (N, K) float32 matrix, against cleanlab's find_label_issues + get_label_quality_scores. Time,
   and extra memory (a second call under tracemalloc, which sees NumPy's allocations but slows
   them) as a share of the matrix.
2. End to end, fresh processes: `labelaudit scan --preds ... --issues-out ...` against the script
   a user would write instead (polars read, scikit-learn classification report, cleanlab, write
   the issues).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scan_speed import make_input

from labelaudit.config import ScanConfig
from labelaudit.core.noise import detect, in_memory_chunks
from labelaudit.core.quality_scores import QUALITY_SCORES
from labelaudit.core.suspect_rules import SUSPECT_RULES

DEFAULTS = ScanConfig()
OUT = Path(__file__).resolve().parent.parent / "bench-data"


def measure(call) -> tuple[float, float]:
    """Seconds of one plain call, then the extra memory of a second call under tracemalloc
    (which sees NumPy's allocations but slows them: never timed together)."""
    start = time.perf_counter()
    call()
    seconds = time.perf_counter() - start
    tracemalloc.start()
    call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20


def in_memory(
    labels_path: Path,
    preds_path: Path,
    rounds: int,
    quality_score: str = DEFAULTS.quality_score,
    rule: str = DEFAULTS.suspect_rule,
) -> None:
    labels = pl.read_parquet(labels_path)["label"].to_numpy().astype(np.int64)
    frame = pl.read_parquet(preds_path)
    probs = np.ascontiguousarray(frame.drop("id").to_numpy())
    del frame
    k = probs.shape[1]
    matrix_mib = probs.nbytes / 2**20

    def ours() -> None:
        detect(in_memory_chunks(probs), labels, k, quality_score, rule)

    def theirs() -> None:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        find_label_issues(labels, probs)
        get_label_quality_scores(labels, probs)

    times: dict[str, list[tuple[float, float]]] = {"labelaudit": [], "cleanlab": []}
    for _ in range(rounds):
        times["labelaudit"].append(measure(ours))
        times["cleanlab"].append(measure(theirs))
    print(
        f"### Detection in memory: {probs.shape[0]:,} x {k} float32 ({matrix_mib:.0f} MiB), "
        f"{quality_score} + {rule}\n"
    )
    print("| tool | median s | min s | extra memory (peak, MiB) | extra / matrix |")
    print("| --- | ---: | ---: | ---: | ---: |")
    medians = {}
    for tool, runs in times.items():
        seconds = [s for s, _ in runs]
        peak = max(m for _, m in runs)
        medians[tool] = statistics.median(seconds)
        print(
            f"| {tool} | {medians[tool]:.3f} | {min(seconds):.3f} | {peak:.0f} | "
            f"{peak / matrix_mib:.2f}x |"
        )
    print(f"\ncleanlab / labelaudit time: {medians['cleanlab'] / medians['labelaudit']:.1f}x\n")


USER_SCRIPT = """
import sys, numpy as np, polars as pl
from sklearn.metrics import classification_report
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
labels_path, preds_path, out = sys.argv[1:4]
labels = pl.read_parquet(labels_path)
preds = pl.read_parquet(preds_path)
joined = labels.join(preds, on="id")
y = joined["label"].to_numpy()
p = joined.drop("id", "label").to_numpy()
classification_report(y, p.argmax(axis=1), zero_division=0)
issues = find_label_issues(y, p)
quality = get_label_quality_scores(y, p)
pl.DataFrame({"id": joined["id"], "label_quality": quality, "is_issue": issues}).write_parquet(out)
"""


def end_to_end(labels_path: Path, preds_path: Path, rounds: int) -> None:
    jobs = {
        "labelaudit scan --issues-out": [
            sys.executable, "-m", "labelaudit", "scan", str(labels_path), "--preds",
            str(preds_path), "--format", "json", "-o", "/dev/null",
            "--issues-out", str(OUT / "issues-labelaudit.parquet"),
        ],
        "polars + scikit-learn + cleanlab": [
            sys.executable, "-c", USER_SCRIPT, str(labels_path), str(preds_path),
            str(OUT / "issues-script.parquet"),
        ],
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(rounds):
        for name, command in jobs.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    print("### End to end (fresh processes, interpreter start included)\n")
    print("| job | median s | min s |")
    print("| --- | ---: | ---: |")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"| {name} | {medians[name]:.2f} | {min(t):.2f} |")
    names = list(jobs)
    print(f"\nscript / labelaudit time: {medians[names[1]] / medians[names[0]]:.1f}x")
    print(json.dumps({"medians": medians}), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quality-score", choices=QUALITY_SCORES, default=DEFAULTS.quality_score)
    parser.add_argument("--suspects", choices=SUSPECT_RULES, default=DEFAULTS.suspect_rule)
    parser.add_argument("--in-memory-only", action="store_true")
    args = parser.parse_args()
    labels_path, preds_path = make_input(args.rows, args.classes)
    in_memory(labels_path, preds_path, args.rounds, args.quality_score, args.suspects)
    if not args.in_memory_only:
        end_to_end(labels_path, preds_path, args.rounds)


if __name__ == "__main__":
    main()
