"""Defaults chosen to generalize: leave-one-family-out over every development family.

    python benchmarks/generalize.py [--seeds 2] [--trained] [--data ../shared/data]

Also the count of label errors: each candidate's mean absolute relative error per family, how
often the reported interval holds the true count, and the percentiles behind that interval.

A family is one source of label sets: the CIFAR-10N human labels (five models, each with its
8/15/25% subsamples), synthetic noise on each reviewed real test set (CIFAR-10, MNIST,
20 Newsgroups, IMDB: one family each), CIFAR-10N's real workers as given labels (their majority
and each worker's column), the simulated scenarios, and with --trained the models
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
    crowd = crowd_label_sets(data)
    if isinstance(crowd, str):
        print(crowd)
    else:
        out["cifar10n-crowd"] = crowd
    out["scenario"] = scenarios(seeds)[0]
    if trained:
        from detection_trained import CACHE, build_sets

        for s in build_sets(CACHE, quick=False):
            for i in range(len(s.learners)):
                out["trained"].append(s.single(i))
    return dict(out)


def crowd_label_sets(data: Path) -> list[FullSet] | str:
    """CIFAR-10N's real workers (real-crowd/cifar10n-half1) as given labels: the majority of
    the three (about 9% wrong, like CIFAR-10N's aggregate labels) and each worker's own column
    (about 17%), scored by the two models of that folder (cross-validated on other labels)."""
    folder = data / "real-crowd" / "cifar10n-half1"
    if not (folder / "annotations.csv").exists():
        return f"{folder} is absent: the CIFAR-10N crowd-label family is skipped."
    import polars as pl

    classes = (folder / "classes.txt").read_text().split()
    table = pl.read_csv(folder / "annotations.csv")
    truth = np.load(folder / "true_labels.npy").astype(np.int64)
    n, k = truth.size, len(classes)
    code = {c: i for i, c in enumerate(classes)}
    order = np.argsort(table["id"].to_numpy(), kind="stable")
    votes = np.array([code[c] for c in table["label"].to_list()])[order].reshape(n, 3)
    counts = np.zeros((n, k))
    np.add.at(counts, (np.repeat(np.arange(n), 3), votes.ravel()), 1)
    columns = {"majority": counts.argmax(axis=1)} | {f"worker{w}": votes[:, w] for w in range(3)}
    out = []
    for model in ("resnet18", "swin"):
        probs = np.load(folder / f"pred_probs_{model}.npy")
        for name, given in columns.items():
            out.append(FullSet(f"crowd-{name}/{model}", "human", [probs], given, truth))
    return out


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


# Suspect rules of core.noise; the count rules pick their rows in adaptive-margin order
# whatever the ranking's score, so the score is not a candidate here.
FLAG_RULES = (
    "argmax",
    "weighted_count",
    "balanced_count",
    "estimated_count",
    "prune_by_noise_rate",
    "confident_joint",
)


def flagged_sets(p: np.ndarray, given: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for rule in FLAG_RULES:
        out[rule] = detect(in_memory_chunks(p.copy()), given, p.shape[1], rule=rule).flagged
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


def paired_noise(delta: np.ndarray) -> float:
    """A family's run-to-run noise: the standard error of the paired per-set differences."""
    return float(delta.std(ddof=1) / np.sqrt(delta.size)) if delta.size > 1 else 0.0


def passes(figures: dict[str, dict[str, np.ndarray]], candidate: str, baseline: str) -> bool:
    """Not worse than the baseline on any family by more than its noise; better on the mean."""
    gains = []
    for per in figures.values():
        delta = per[candidate] - per[baseline]
        if delta.mean() < -paired_noise(delta):
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


def report(title: str, figures: dict[str, dict[str, np.ndarray]], baseline: str) -> str:
    """The per-family table, the leave-one-family-out table and the choice (returned).
    Candidates named 'ref: ...' are shown for reference and never chosen."""
    fams = list(figures)
    eligible = {f: {n: v for n, v in per.items() if not n.startswith("ref:")}
                for f, per in figures.items()}  # fmt: skip
    names = list(next(iter(figures.values())))
    print(f"### {title}\n")
    print("| candidate | " + " | ".join(f"{f} ({figures[f][baseline].size})" for f in fams)
          + " | mean of families | passes the rule |")  # fmt: skip
    print("| --- |" + " ---: |" * (len(fams) + 2))
    for name in sorted(names, key=lambda n: -np.mean([figures[f][n].mean() for f in fams])):
        cells = []
        for f in fams:
            delta = figures[f][name] - figures[f][baseline]
            worse = name != baseline and delta.mean() < -paired_noise(delta)
            cells.append(f"{figures[f][name].mean():.3f}{' (worse)' if worse else ''}")
        mean = np.mean([figures[f][name].mean() for f in fams])
        if name == baseline:
            verdict = "baseline"
        elif name.startswith("ref:"):
            verdict = "reference"
        else:
            verdict = "yes" if passes(eligible, name, baseline) else "no"
        print(f"| {name} | " + " | ".join(cells) + f" | {mean:.3f} | {verdict} |")
    print("\nLeave one family out (chosen on the others, measured on the one left out):\n")
    print("| left out | chosen | its mean there | baseline there | difference | noise |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for f in fams:
        rest = {g: eligible[g] for g in fams if g != f}
        chosen = choose(rest, baseline) if rest else baseline
        got, base = figures[f][chosen].mean(), figures[f][baseline].mean()
        noise = paired_noise(figures[f][chosen] - figures[f][baseline])
        print(f"| {f} | {chosen} | {got:.3f} | {base:.3f} | {got - base:+.3f} | {noise:.3f} |")
    chosen = choose(eligible, baseline)
    print(f"\nChosen on every family: **{chosen}**\n")
    return chosen


def count_candidates(p: np.ndarray, given: np.ndarray) -> dict[str, float]:
    """Candidate estimates of the number of label errors."""
    d = detect(in_memory_chunks(p.copy()), given, p.shape[1])
    e = d.errors
    return {
        "flagged set (weighted_count; the estimate)": e.count,
        "confident joint C (the estimate before issue 26)": e.confident_joint,
        "disagreements A (argmax != given)": e.disagreements,
        "sqrt(C A)": float(np.sqrt(e.confident_joint * e.disagreements)),
        "low": e.low,
        "high": e.high,
    }


def report_counts(sets: dict[str, list[FullSet]]) -> None:
    """Mean absolute relative error of each count per family, and how often the interval
    holds the true count."""
    per: dict[str, dict[str, list[float]]] = {}
    covered: dict[str, list[bool]] = defaultdict(list)
    log_ratio: dict[str, list[float]] = defaultdict(list)
    for family, members in sets.items():
        per[family] = defaultdict(list)
        for s in members:
            true = int(s.is_error.sum())
            got = count_candidates(s.probs[0], s.given)
            for name, value in got.items():
                if name not in ("low", "high"):
                    per[family][name].append(abs(value - true) / max(true, 1))
            covered[family].append(got["low"] <= true <= got["high"])
            estimate = got["flagged set (weighted_count; the estimate)"]
            log_ratio[family].append(float(np.log(max(true, 1) / max(estimate, 1))))
    fams = list(per)
    names = list(next(iter(per.values())))
    print("### How many are wrong: mean absolute relative error\n")
    print("| count | " + " | ".join(fams) + " | mean of families |")
    print("| --- |" + " ---: |" * (len(fams) + 1))
    for name in names:
        cells = [np.mean(per[f][name]) for f in fams]
        print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {np.mean(cells):.3f} |")
    print("| interval holds the true count | "
          + " | ".join(f"{np.mean(covered[f]):.2f}" for f in fams) + " | |")  # fmt: skip
    # the interval's ratios: 5th and 95th percentiles of true / estimate, families weighted alike
    values = np.concatenate([log_ratio[f] for f in fams])
    weights = np.concatenate([np.full(len(log_ratio[f]), 1 / len(log_ratio[f])) for f in fams])
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    lo, hi = (float(np.exp(values[order][np.searchsorted(cumulative, q)])) for q in (0.05, 0.95))
    print(f"\ntrue / estimate, 5th and 95th percentiles over families: {lo:.2f}, {hi:.2f}\n")


def report_pairs(sets: dict[str, list[FullSet]]) -> None:
    """Confused pairs against the true flips (given a, truly b) on the sets with full truth
    from real human labels: the ten largest true cells, their count by the confident joint and
    by the report (the joint scaled to the estimate), and how many of them the report lists."""
    print("### Confused pairs against the true flips (ten largest true cells)\n")
    print("| set | true flips | joint's count MARE | report's count MARE | listed (of 10) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for family in ("cifar10n", "cifar10n-crowd"):
        for s in sets.get(family, []):
            if "@" in s.name:  # subsamples: the flips are the full set's, thinned
                continue
            p, k = s.probs[0], s.probs[0].shape[1]
            d = detect(in_memory_chunks(p.copy()), s.given, k)
            true = np.zeros((k, k))
            np.add.at(true, (s.given, s.truth), 1)
            np.fill_diagonal(true, 0)
            joint = np.zeros((k, k))
            cells = d.noise.calibrated_joint
            joint[cells.rows, cells.columns] = cells.values
            np.fill_diagonal(joint, 0)
            scaled = joint * d.errors.count / max(d.noise.estimated_errors, 1)
            top = np.argsort(-true.ravel())[:10]
            truth_top = true.ravel()[top]

            def mare(table: np.ndarray, top=top, truth_top=truth_top) -> float:
                return float(np.mean(np.abs(table.ravel()[top] - truth_top) / truth_top))

            listed = {(q.source, q.target) for q in d.pairs}
            shown = sum(
                (int(i // k), int(i % k)) in listed or (int(i % k), int(i // k)) in listed
                for i in top
            )
            print(f"| {s.name} | {int(truth_top.sum()):,} | {mare(joint):.2f} | "
                  f"{mare(scaled):.2f} | {shown} |")  # fmt: skip
    print()


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
    report_counts(sets)
    report_pairs(sets)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
