"""`labelaudit annotators` on simulated crowds: consensus accuracy against the majority vote,
annotator-quality ranking, and speed, beside crowd-kit's DawidSkene where it is installed (the
accuracy comparisons on real crowds are benchmarks/crowd_real.py's).

    python benchmarks/annotators.py [--items 20000] [--annotations 1000000]

The simulation (the issue's): 8 classes, 30 annotators with accuracies 0.45 to 0.95, each
sending its errors mostly (70%) to one other class per true class, 3 annotators an item.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from labelaudit.core import annotators as ann
from labelaudit.core import consensus as cons


def own_class_confusion(rng: np.random.Generator, accuracy: np.ndarray, k: int) -> np.ndarray:
    """(m, K, K) confusions: each annotator's accuracy on the diagonal, 70% of its errors on one
    other class per true class (drawn: its own), the rest spread evenly."""
    m = accuracy.size
    confusion = np.empty((m, k, k))
    for a in range(m):  # annotators x classes: a small simulation's loop, not a row loop
        for c in range(k):
            row = np.full(k, (1 - accuracy[a]) * 0.3 / (k - 1))
            row[(c + 1 + rng.integers(0, k - 1)) % k] += (1 - accuracy[a]) * 0.7
            row[c] = accuracy[a]
            confusion[a, c] = row / row.sum()
    return confusion


def simulate(n: int, k: int = 8, m: int = 30, per: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    accuracy = np.linspace(0.45, 0.95, m)
    confusion = own_class_confusion(rng, accuracy, k)
    item = np.repeat(np.arange(n), per)
    annotator = np.argsort(rng.random((n, m)), axis=1)[:, :per].ravel()
    cdf = confusion[annotator, truth[item]].cumsum(axis=1)
    label = (rng.random(item.size)[:, None] > cdf).sum(axis=1)
    return ann.Annotations(item, annotator, label, n, m, k), truth, accuracy


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))[0, 1])


def crowdkit(a: ann.Annotations) -> tuple[np.ndarray, float] | None:
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError:
        return None
    frame = pd.DataFrame({"task": a.item, "worker": a.annotator, "label": a.label})
    started = time.perf_counter()
    labels = DawidSkene(n_iter=100, tol=1e-5).fit(frame).labels_.sort_index()
    return labels.to_numpy(), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--annotations", type=int, default=1_000_000)
    args = parser.parse_args()
    print("| input | majority vote | consensus | rounds | Spearman (quality) | time |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for n in (args.items, args.annotations // 3):
        a, truth, accuracy = simulate(n)
        started = time.perf_counter()
        majority = ann.majority_vote(a)
        consensus = cons.fit(a)
        quality = cons.annotator_quality(a, consensus)
        seconds = time.perf_counter() - started
        rank = spearman(quality.quality, accuracy)
        print(f"| {n:,} items, {a.item.size:,} annotations | {np.mean(majority == truth):.4f} | "
              f"{np.mean(consensus.label == truth):.4f} | {consensus.rounds} | {rank:.4f} | "
              f"{seconds:.2f} s |")  # fmt: skip
        theirs = crowdkit(a)
        if theirs is not None:
            labels, their_seconds = theirs
            print(f"| crowd-kit DawidSkene, same input | | {np.mean(labels == truth):.4f} | | "
                  f"agrees with ours on {np.mean(labels == consensus.label):.4f} | "
                  f"{their_seconds:.2f} s ({their_seconds / seconds:.1f}x) |")  # fmt: skip


if __name__ == "__main__":
    main()
