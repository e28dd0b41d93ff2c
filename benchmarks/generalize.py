"""Defaults chosen to generalize: leave-one-family-out over every development family.

    python benchmarks/generalize.py [--seeds 2] [--trained] [--data ../shared/data]

A family is one source of label sets: the CIFAR-10N human labels (five models, each with its
8/15/25% subsamples), synthetic noise on each reviewed real test set (CIFAR-10, MNIST,
20 Newsgroups, IMDB: one family each), the simulated scenarios, and with --trained the models
trained on noisy labels (benchmarks/detection_trained.py, cached under /tmp). Absent data is
skipped with the reason printed.

The rule (docs/detection.md, "Defaults that generalize"): a candidate replaces the simplest
baseline (self-confidence for the ranking, `argmax` for the flagged set) only when, on every
family, its mean is not below the baseline's by more than that family's run-to-run noise (the
standard error of the paired per-set differences), and its mean over families is higher. Leave
one family out: choose by that rule on the other families, then show what the choice does on
the family left out, the figure a held-out set would see.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detection_real import (
    DATA,
    PARTIAL,
    FullSet,
    average_precision,
    load_partial,
    prf,
    scenarios,
    subsample,
    synthetic_noise,
)

from labelaudit.core.noise import detect, in_memory_chunks

MODELS = ("resnet18", "swin", "efficientnet_b1", "resnet50d", "twins_pcpvt_base")
RATES = (0.08, 0.15, 0.25)

# ---------------------------------------------------------------- families


def families(data: Path, seeds: int, trained: bool) -> dict[str, list[FullSet]]:
    out: dict[str, list[FullSet]] = defaultdict(list)
    folder = data / "real-noise" / "cifar10n-worst"
    if (folder / "true_labels.npy").exists():
        given = np.load(folder / "labels.npy").astype(np.int64)
        truth = np.load(folder / "true_labels.npy").astype(np.int64)
        for model in MODELS:
            path = folder / f"pred_probs_{model}.npy"
            if not path.exists():
                continue
            full = FullSet(f"cifar10n/{model}", "human", [np.load(path)], given, truth)
            out["cifar10n"] += [full, *(subsample(full, r, 0) for r in RATES)]
    else:
        print(f"{folder} is absent: the CIFAR-10N family is skipped.")
    for name in PARTIAL:
        base = load_partial(data, name, None)
        if isinstance(base, str):
            print(f"{name} skipped: {base}.")
            continue
        family = f"synthetic-{name.removesuffix('-test')}"
        for kind, absorbed in (("confusion", 0.5), ("confusion", 1.0), ("instance", 0.0),
                               ("instance", 0.5)):  # fmt: skip
            for rate in (0.10, 0.25):
                for seed in range(seeds):
                    out[family].append(synthetic_noise(base, rate, kind, absorbed, seed))
        for rate in (0.10, 0.25):
            for absorbed in (0.0, 0.5):
                for seed in range(seeds):
                    out["random-matrix"].append(random_matrix_noise(base, rate, absorbed, seed))
    out["scenario"] = scenarios(seeds)[0]
    if trained:
        from detection_trained import CACHE, build_sets

        for s in build_sets(CACHE, quick=False):
            for i in range(len(s.learners)):
                out["trained"].append(s.single(i))
    return dict(out)


def random_matrix_noise(base, rate: float, absorbed: float, seed: int) -> FullSet:
    """Class-conditional noise from a random noise matrix (each class's flips spread over the
    other classes by a flat Dirichlet draw), independent of the sample, as in cleanlab's
    benchmarks; the scores then mix in, with weight `absorbed`, what a model trained on those
    labels learns at that row (the noise matrix applied to the clean scores)."""
    rng = np.random.default_rng(10_000 + seed)
    p, truth = base.probs, base.given
    n, k = p.shape
    spread = rng.dirichlet(np.ones(k - 1), size=k)
    matrix = np.zeros((k, k))
    for i in range(k):  # K rows: a loop over classes
        matrix[i, np.arange(k) != i] = rate * spread[i]
        matrix[i, i] = 1 - rate
    cumulative = matrix[truth].cumsum(axis=1)
    given = (rng.random(n)[:, None] > cumulative).sum(axis=1).clip(0, k - 1)
    probs = (1 - absorbed) * p + absorbed * (p @ matrix)
    name = f"{base.name}+random{rate:.0%}/a={absorbed:g}#{seed}"
    return FullSet(name, "synthetic", [probs], given, truth)


# ---------------------------------------------------------------- candidates


def _evidence(p: np.ndarray, given: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    at = np.arange(given.size)
    given_p = p[at, given]
    others = p.copy()
    others[at, given] = -np.inf
    return given_p, others.max(axis=1)


def _temperature(p: np.ndarray, given: np.ndarray) -> np.ndarray:
    """p re-scaled by the temperature that maximizes the likelihood of the given labels on the
    rows where the model agrees with them (golden-section search on log T)."""
    log_p = np.log(np.clip(p, 1e-12, None))
    agree = p.argmax(axis=1) == given
    rows, labels = log_p[agree], given[agree]

    def nll(log_t: float) -> float:
        z = rows / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(labels.size), labels] - np.log(np.exp(z).sum(axis=1))).mean())

    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    z = log_p / np.exp((lo + hi) / 2)
    z -= z.max(axis=1, keepdims=True)
    q = np.exp(z)
    return q / q.sum(axis=1, keepdims=True)


def _ranks(values: np.ndarray) -> np.ndarray:
    r = np.empty(values.size)
    r[np.argsort(values, kind="stable")] = np.arange(values.size)
    return r


def rankings(p: np.ndarray, given: np.ndarray) -> dict[str, np.ndarray]:
    """Every candidate quality score (lower = more suspect)."""
    k = p.shape[1]
    given_p, other = _evidence(p, given)
    count = np.bincount(given, minlength=k)
    t = np.bincount(given, weights=given_p, minlength=k) / np.maximum(count, 1)
    out = {
        "self_confidence": given_p,
        "normalized_margin": given_p - other,
        "class_adjusted (p - t(given))": given_p - t[given],
        "calibrated self_confidence": _temperature(p, given)[np.arange(given.size), given],
        "rank mean (self_confidence, margin)": _ranks(given_p) + _ranks(given_p - other),
    }
    for score in ("adaptive_margin", "half_margin"):
        d = detect(in_memory_chunks(p.copy()), given, k, score, "argmax")
        out[score] = d.quality
    return out


FlagRule = tuple[str, str]  # (quality score, suspect rule) of core.noise
FLAG_RULES: tuple[FlagRule, ...] = (
    ("self_confidence", "argmax"),
    ("adaptive_margin", "weighted_count"),
    ("self_confidence", "weighted_count"),
    ("self_confidence", "balanced_count"),
    ("self_confidence", "estimated_count"),
    ("self_confidence", "prune_by_noise_rate"),
    ("self_confidence", "confident_joint"),
)


def flagged_sets(p: np.ndarray, given: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for score, rule in FLAG_RULES:
        d = detect(in_memory_chunks(p.copy()), given, p.shape[1], score, rule)
        out["argmax" if rule == "argmax" else f"{rule}, {score}"] = d.flagged
    return out


# ---------------------------------------------------------------- the rule


def measure(
    sets: dict[str, list[FullSet]], candidates: Callable[[np.ndarray, np.ndarray], dict], metric
) -> dict[str, dict[str, np.ndarray]]:
    """{family: {candidate: per-set figures}}."""
    out: dict[str, dict[str, list[float]]] = {}
    for family, members in sets.items():
        per: dict[str, list[float]] = defaultdict(list)
        for s in members:
            for name, value in candidates(s.probs[0], s.given).items():
                per[name].append(metric(s.is_error, value))
        out[family] = {n: np.array(v) for n, v in per.items()}
    return out


def passes(figures: dict[str, dict[str, np.ndarray]], candidate: str, baseline: str) -> bool:
    """Not worse than the baseline on any family by more than its noise; better on the mean."""
    gains = []
    for per in figures.values():
        delta = per[candidate] - per[baseline]
        noise = delta.std(ddof=1) / np.sqrt(delta.size) if delta.size > 1 else 0.0
        if delta.mean() < -noise:
            return False
        gains.append(delta.mean())
    return bool(np.mean(gains) > 0)


def choose(figures: dict[str, dict[str, np.ndarray]], baseline: str) -> str:
    """The passing candidate with the best mean over families, else the baseline."""
    names = [n for n in next(iter(figures.values())) if n != baseline]
    passing = [n for n in names if passes(figures, n, baseline)]
    if not passing:
        return baseline
    return max(passing, key=lambda n: np.mean([per[n].mean() for per in figures.values()]))


def report(title: str, figures: dict[str, dict[str, np.ndarray]], baseline: str) -> None:
    fams = list(figures)
    names = list(next(iter(figures.values())))
    print(f"### {title}\n")
    print("| candidate | " + " | ".join(f"{f} ({figures[f][baseline].size})" for f in fams)
          + " | mean of families | passes the rule |")  # fmt: skip
    print("| --- |" + " ---: |" * (len(fams) + 2))
    for name in sorted(names, key=lambda n: -np.mean([figures[f][n].mean() for f in fams])):
        cells = []
        for f in fams:
            delta = figures[f][name] - figures[f][baseline]
            noise = delta.std(ddof=1) / np.sqrt(delta.size) if delta.size > 1 else 0.0
            mark = "" if name == baseline or delta.mean() >= -noise else " (worse)"
            cells.append(f"{figures[f][name].mean():.3f}{mark}")
        mean = np.mean([figures[f][name].mean() for f in fams])
        verdict = "baseline" if name == baseline else ("yes" if passes(figures, name, baseline)
                                                       else "no")  # fmt: skip
        print(f"| {name} | " + " | ".join(cells) + f" | {mean:.3f} | {verdict} |")
    print("\nLeave one family out (chosen on the others, measured on the one left out):\n")
    print("| left out | chosen | its mean there | baseline there | difference |")
    print("| --- | --- | ---: | ---: | ---: |")
    for f in fams:
        rest = {g: figures[g] for g in fams if g != f}
        chosen = choose(rest, baseline) if rest else baseline
        got, base = figures[f][chosen].mean(), figures[f][baseline].mean()
        print(f"| {f} | {chosen} | {got:.3f} | {base:.3f} | {got - base:+.3f} |")
    print(f"\nChosen on every family: **{choose(figures, baseline)}**\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--trained", action="store_true", help="add the trained-model family")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    sets = families(args.data, args.seeds, args.trained)
    print("Families: " + ", ".join(f"{f} ({len(m)} sets)" for f, m in sets.items()) + "\n")
    ranking = measure(sets, rankings, average_precision)
    report("One model, ranking: average precision", ranking, "self_confidence")
    flagging = measure(sets, flagged_sets, lambda truth, flagged: prf(flagged, truth)[2])
    report("One model, flagged set: F1", flagging, "argmax")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
