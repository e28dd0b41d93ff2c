"""Time `labelaudit scan` end to end beside the floor of only reading its inputs, interleaved.

    python benchmarks/scan_speed.py [--rows 1000000] [--classes 100] [--rounds 5] [--models 2]
        [--jobs floor,scan_issues]

With --models 2, two more jobs: `scan` with a second model's predictions (another seeded
model of the same rows, `--preds` twice) and the floor of reading both models' files.

Makes a seeded input (labels parquet; wide float32 predictions parquet) under bench-data/, then
runs each job in a fresh process, alternating, so both see the same machine state. Each child
reports its own wall time and peak resident memory. Prints a markdown table for
docs/performance.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _processes import report_child, run_child, run_cli

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"


def second_model(rows: int, classes: int) -> Path:
    """Another seeded model's predictions for the same rows (the first model's truth)."""
    path = DATA / f"preds2-{rows}x{classes}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(0)  # the same truth as make_input's
    priors = rng.dirichlet(np.full(classes, 0.7))
    truth = rng.choice(classes, size=rows, p=priors)
    other = np.random.default_rng(1)
    logits = other.standard_normal((rows, classes), dtype=np.float32)
    logits[np.arange(rows), truth] += 3.0
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    frame = pl.DataFrame({"id": np.arange(rows), **{str(c): logits[:, c] for c in range(classes)}})
    frame.write_parquet(path)
    return path


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


def _run_scan(labels: str, preds: str, *extra: str) -> None:
    run_cli(["scan", labels, "--preds", preds, "--format", "json", "-o", "/dev/null", *extra])


def child_scan(labels: str, preds: str) -> None:
    """The whole scan: metrics and label-error detection."""
    _run_scan(labels, preds)


def child_scan_issues(labels: str, preds: str) -> None:
    """The whole scan writing the issues file (one row per sample)."""
    _run_scan(labels, preds, "--issues-out", str(DATA / "issues-bench.parquet"))


def child_gate(labels: str, preds: str) -> None:
    """The gate with rules that read the scan's metrics and suspects."""
    config = Path(labels).parent / "gate-bench.toml"
    config.write_text(
        "[gate]\nmax_suspect_rate = 0.5\nmin_accuracy = 0.1\nmax_conflicting_duplicates = 0\n"
    )
    args = ["gate", labels, "--preds", preds, "--config", str(config), "--format", "json"]
    run_cli([*args, "-o", "/dev/null"])


def child_scan2(labels: str, preds: str) -> None:
    """The whole scan with two models' predictions (--preds twice)."""
    _run_scan(labels, preds, "--preds", preds.replace("preds-", "preds2-"))


def child_floor2(labels: str, preds: str) -> None:
    """Reading both models' files into matrices: the floor of any two-model tool."""
    child_floor(labels, preds)
    child_floor(labels, preds.replace("preds-", "preds2-"))


def child_metrics(labels: str, preds: str) -> None:
    """The scan without label-error detection (--suspects none)."""
    _run_scan(labels, preds, "--suspects", "none")


def child_floor(labels: str, preds: str) -> None:
    """What any tool must do: read both files and build the (N, K) probability matrix."""
    label_frame = pl.read_parquet(labels)
    pred_frame = pl.read_parquet(preds)
    matrix = pred_frame.drop("id").to_numpy()
    assert matrix.shape[0] == label_frame.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", type=int, default=1, choices=(1, 2))
    parser.add_argument("--jobs", help="comma-separated jobs to run (default: all)")
    parser.add_argument("--child", nargs=3, metavar=("JOB", "LABELS", "PREDS"))
    args = parser.parse_args()
    if args.child:
        job, labels, preds = args.child
        jobs = {
            "scan": child_scan,
            "scan_issues": child_scan_issues,
            "metrics": child_metrics,
            "gate": child_gate,
            "floor": child_floor,
            "scan2": child_scan2,
            "floor2": child_floor2,
        }
        report_child(lambda: jobs[job](labels, preds))
        return
    labels, preds = make_input(args.rows, args.classes)
    matrix_mib = args.rows * args.classes * 4 / 2**20
    names = {
        "floor": "read-only floor (polars read + matrix)",
        "metrics": "labelaudit scan --suspects none (metrics)",
        "scan": "labelaudit scan (metrics + suspects)",
        "gate": "labelaudit gate --preds (3 rules)",
        "scan_issues": "labelaudit scan --issues-out",
    }
    if args.models == 2:
        second_model(args.rows, args.classes)
        names |= {
            "floor2": "read-only floor, two models' files",
            "scan2": "labelaudit scan, two models (--preds twice)",
        }
    if args.jobs:
        wanted = ["floor", *(j for j in args.jobs.split(",") if j != "floor")]
        names = {j: names[j] for j in wanted}
    results: dict[str, list[dict[str, float]]] = {job: [] for job in names}
    for _ in range(args.rounds):
        for job in names:
            results[job].append(run_child(__file__, job, str(labels), str(preds)))
    median = {j: statistics.median(r["seconds"] for r in results[j]) for j in names}
    fastest = {j: min(r["seconds"] for r in results[j]) for j in names}
    peak = {j: statistics.median(r["peak_mib"] for r in results[j]) for j in names}
    # Each round's job against the floor run beside it: cancels drift in the machine's state.
    paired = {
        j: statistics.median(
            r["seconds"] / f["seconds"] for r, f in zip(results[j], results["floor"], strict=True)
        )
        for j in names
    }
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    print(
        f"input: {args.rows:,} rows x {args.classes} classes, float32 probability matrix "
        f"{matrix_mib:.0f} MiB; median of {args.rounds} interleaved rounds (wall time of the "
        "child process after interpreter start, imports included)"
    )
    print()
    print(
        "| job | median s | min s | peak RSS MiB | time / floor (medians) "
        "| time / floor (paired rounds) | peak RSS / matrix |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for job, name in names.items():
        print(
            f"| {name} | {median[job]:.2f} | {fastest[job]:.2f} | {peak[job]:.0f} | "
            f"{median[job] / median['floor']:.2f}x | {paired[job]:.2f}x | "
            f"{peak[job] / matrix_mib:.2f}x |"
        )


if __name__ == "__main__":
    main()
