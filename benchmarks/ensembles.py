"""Several models: how to combine their probabilities, chosen leave-one-family-out.

    python benchmarks/ensembles.py [--seeds 2] [--no-trained] [--data ../shared/data]
        [--cleanlab-python /tmp/cleanlab-venv/bin/python]

Families (absent data is skipped with the reason printed):
- cifar10n: the CIFAR-10N "worst" human labels with five cross-validated models; every 2-, 3-, 4-
  and 5-model subset, each also on the 8/15/25% subsamples (every clean row, a random part of
  the wrong ones).
- crowd: the real crowd half of CIFAR-10N (3 workers an image), given labels = the majority
  vote (ties to the lowest class) and each worker column alone, scored by ResNet-18 + Swin.
- trained: the pairs of learners trained on the noisy labels (benchmarks/detection_trained.py,
  probabilities cached under /tmp).
- scenario: the simulated scenarios' pairs of models (tests/noise_scenarios.py).

Each candidate combines the models' probabilities into one matrix. Ranking: the average precision
(AP) of its self-confidence p_combined(given), lower = more suspect (self-confidence of an
accuracy-weighted mean is cleanlab's default ensemble score, exactly, since it is linear).
Flagged set: the F1 of `detect(combined, "adaptive_margin", "weighted_count")`. The rule of
benchmarks/generalize.py picks a default: a candidate replaces the simplest baseline (the plain
mean) only when on no family it is worse by more than that family's noise (the standard error of
the paired per-set differences) and it is better on the mean of families; leave one family out
shows what that choice does on a family it never saw. One combination serves both the ranking
and the flagged set, so the default is chosen on both at once (`choose_joint`): among the
combinations that pass against the plain mean on both, the shipped weights stay unless another
passes the same rule against them. Reference rows (the plain rule, cleanlab's score,
detect_ensemble's own quality score) are shown, never chosen.

--cleanlab-python: a Python with cleanlab installed (never a dependency of labelaudit) checks
once that the direct computation of cleanlab's ensemble score equals
cleanlab.rank.get_label_quality_ensemble_scores.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detection_real import DATA, FullSet, average_precision, prf, scenarios, subsample
from generalize import paired_noise, passes, report

from labelaudit.core.ensemble import ModelAgreement, detect_ensemble, in_memory_model_chunks
from labelaudit.core.noise import detect, in_memory_chunks

MODELS = ("resnet18", "swin", "efficientnet_b1", "resnet50d", "twins_pcpvt_base")
RATES = (0.08, 0.15, 0.25)
FLAG = ("adaptive_margin", "weighted_count")  # today's flagged rule
BASELINE = "plain mean"

# ---------------------------------------------------------------- families


def families(data: Path, seeds: int, trained: bool) -> dict[str, list[FullSet]]:
    out: dict[str, list[FullSet]] = {}
    folder = data / "real-noise" / "cifar10n-worst"
    if (folder / "true_labels.npy").exists():
        given = np.load(folder / "labels.npy").astype(np.int64)
        truth = np.load(folder / "true_labels.npy").astype(np.int64)
        probs = {m: np.load(folder / f"pred_probs_{m}.npy").astype(np.float64) for m in MODELS}
        sets = []
        for size in range(2, len(MODELS) + 1):
            for names in itertools.combinations(MODELS, size):
                full = FullSet("+".join(names), "cifar10n", [probs[m] for m in names], given, truth)
                sets += [full, *(subsample(full, r, 0) for r in RATES)]
        out["cifar10n"] = sets
    else:
        print(f"{folder} is absent: the CIFAR-10N family is skipped.")
    crowd = crowd_sets(data / "real-crowd" / "cifar10n-half1")
    if isinstance(crowd, str):
        print(f"crowd skipped: {crowd}.")
    else:
        out["crowd"] = crowd
    if trained:
        from detection_trained import CACHE, build_sets

        out["trained"] = [s.pair() for s in build_sets(CACHE, quick=False)]
    out["scenario"] = scenarios(seeds)[1]
    return out


def crowd_sets(folder: Path) -> list[FullSet] | str:
    """Majority vote of the 3 workers (ties to the lowest class) and each worker column."""
    if not (folder / "annotations.csv").exists():
        return f"{folder} is absent"
    classes = (folder / "classes.txt").read_text().split()
    table = np.loadtxt(folder / "annotations.csv", dtype=str, delimiter=",", skiprows=1)
    ids = table[:, 0].astype(np.int64)
    order = np.argsort(ids, kind="stable")
    lookup = {c: i for i, c in enumerate(classes)}
    labels = np.array([lookup[c] for c in table[order, 2]], dtype=np.int64)
    n = int(ids.max()) + 1
    if np.bincount(ids, minlength=n).min() != 3 or ids.size != 3 * n:
        return "not exactly 3 annotations per image"
    columns = labels.reshape(n, 3)
    k = len(classes)
    votes = np.zeros((n, k), dtype=np.int64)
    for j in range(3):  # three columns
        votes[np.arange(n), columns[:, j]] += 1
    truth = np.load(folder / "true_labels.npy").astype(np.int64)
    probs = [np.load(folder / f"pred_probs_{m}.npy").astype(np.float64) for m in MODELS[:2]]
    given = {"majority": votes.argmax(axis=1)}
    given |= {f"worker {j + 1}": columns[:, j] for j in range(3)}
    return [FullSet(f"crowd/{g}", "crowd", probs, y, truth) for g, y in given.items()]


# ---------------------------------------------------------------- combinations


def _disagrees(p: np.ndarray, given: np.ndarray) -> np.ndarray:
    return p[np.arange(given.size), given] < p.max(axis=1)


def _mean(probs: list[np.ndarray], w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64) / np.sum(w)
    return sum(wi * p for wi, p in zip(w, probs, strict=True))


def accuracy_weights(probs: list[np.ndarray], given: np.ndarray) -> np.ndarray:
    """cleanlab's: each model's accuracy on the given labels (argmax, ties to the lower class)."""
    acc = np.array([(p.argmax(axis=1) == given).mean() for p in probs])
    return acc / acc.sum()


def inverse_consensus_error(probs: list[np.ndarray], given: np.ndarray) -> np.ndarray:
    agreement = ModelAgreement(given.size, len(probs))
    agreement.update(probs, given, np.arange(given.size))
    return agreement.weights()


def inverse_loo_error(probs: list[np.ndarray], given: np.ndarray) -> np.ndarray:
    """1 / e, e = the model's disagreements on the rows where the OTHER models' plain mean
    agrees with the label (its own vote left out of the consensus), smoothed by half a mistake."""
    e = []
    for m, p in enumerate(probs):
        others = _mean([q for j, q in enumerate(probs) if j != m], np.ones(len(probs) - 1))
        consensus = ~_disagrees(others, given)
        e.append(((_disagrees(p, given) & consensus).sum() + 0.5) / (consensus.sum() + 1.0))
    inverse = 1.0 / np.array(e)
    return inverse / inverse.sum()


def agreement_with_others(probs: list[np.ndarray], given: np.ndarray) -> np.ndarray:
    """Each model's agreement (argmax equal) with the argmax of the other models' plain mean."""
    agree = []
    for m, p in enumerate(probs):
        others = _mean([q for j, q in enumerate(probs) if j != m], np.ones(len(probs) - 1))
        agree.append((p.argmax(axis=1) == others.argmax(axis=1)).mean())
    a = np.array(agree)
    return a / a.sum()


def log_mean(probs: list[np.ndarray]) -> np.ndarray:
    """The geometric mean of the models' probabilities, renormalized per row."""
    logs = sum(np.log(np.clip(p, 1e-12, None)) for p in probs) / len(probs)
    q = np.exp(logs - logs.max(axis=1, keepdims=True))
    return q / q.sum(axis=1, keepdims=True)


WEIGHTS: dict[str, Callable[[list[np.ndarray], np.ndarray], np.ndarray]] = {
    BASELINE: lambda probs, given: np.ones(len(probs)),
    "accuracy weights (cleanlab's)": accuracy_weights,
    "inverse consensus error (default)": inverse_consensus_error,
    "inverse error on the others' consensus": inverse_loo_error,
    "agreement with the others": agreement_with_others,
}


WEIGHTS_AND_MEANS = (*WEIGHTS, "log-mean (geometric)", "log-mean, accuracy weights")
INCUMBENT = "inverse consensus error (default)"


def combinations(probs: list[np.ndarray], given: np.ndarray) -> dict[str, np.ndarray]:
    out = {name: _mean(probs, weights(probs, given)) for name, weights in WEIGHTS.items()}
    out["log-mean (geometric)"] = log_mean(probs)
    acc = accuracy_weights(probs, given)
    logs = sum(w * np.log(np.clip(p, 1e-12, None)) for w, p in zip(acc, probs, strict=True))
    q = np.exp(logs - logs.max(axis=1, keepdims=True))
    out["log-mean, accuracy weights"] = q / q.sum(axis=1, keepdims=True)
    return out


def _order_quality(*keys: np.ndarray) -> np.ndarray:
    """A quality array (lower = more suspect) ranking by keys, the LAST the primary (lexsort)."""
    quality = np.empty(keys[0].size)
    quality[np.lexsort(keys)] = np.arange(keys[0].size)
    return quality


def cleanlab_ensemble_score(probs: list[np.ndarray], given: np.ndarray) -> np.ndarray:
    """cleanlab's default ensemble score, computed directly: the accuracy-weighted mean of each
    model's self-confidence."""
    at = np.arange(given.size)
    w = accuracy_weights(probs, given)
    return sum(wi * p[at, given] for wi, p in zip(w, probs, strict=True))


# ---------------------------------------------------------------- measuring


def measure(sets: dict[str, list[FullSet]]):
    """{family: {candidate: per-set figures}}: AP of the ranking, F1 of the flagged set, F1 of
    the plain rule (argmax != given) on each combination; and per family the models per set."""
    ap: dict[str, dict[str, np.ndarray]] = {}
    f1: dict[str, dict[str, np.ndarray]] = {}
    plain: dict[str, dict[str, np.ndarray]] = {}
    sizes: dict[str, np.ndarray] = {}
    for family, members in sets.items():
        a, f, r = defaultdict(list), defaultdict(list), defaultdict(list)
        for s in members:
            wrong, given, k = s.is_error, s.given, s.probs[0].shape[1]
            at = np.arange(given.size)
            count = np.sum([_disagrees(p, given) for p in s.probs], axis=0)
            for name, p in combinations(s.probs, given).items():
                sc = p[at, given]
                a[name].append(average_precision(wrong, sc))
                d = detect(in_memory_chunks(p.copy()), given, k, *FLAG)
                f[name].append(prf(d.flagged, wrong)[2])
                r[name].append(prf(_disagrees(p, given), wrong)[2])
                if name == BASELINE:
                    mean_sc, mean_d, mean_disagrees = sc, d, _disagrees(p, given)
            f["ref: argmax of the plain mean (the plain rule)"].append(r[BASELINE][-1])
            a["plain mean, ties to more models disagreeing"].append(
                average_precision(wrong, _order_quality(-count, mean_sc))
            )
            a["models disagreeing first, then the plain mean"].append(
                average_precision(wrong, _order_quality(mean_sc, -count))
            )
            n = int(mean_d.flagged.sum())
            order = _order_quality(mean_d.quality, -count)
            f["plain mean, weighted_count n by models disagreeing"].append(
                prf(_lowest(np.where(mean_disagrees, order, np.inf), n), wrong)[2]
            )
            a["ref: cleanlab's ensemble score (direct)"].append(
                average_precision(wrong, cleanlab_ensemble_score(s.probs, given))
            )
            e = detect_ensemble(
                in_memory_model_chunks([p.copy() for p in s.probs]), given, len(s.probs), k
            )
            a["ref: detect_ensemble (adaptive_margin quality)"].append(
                average_precision(wrong, e.detection.quality)
            )
            f["ref: detect_ensemble"].append(prf(e.detection.flagged, wrong)[2])
        ap[family] = {n: np.array(v) for n, v in a.items()}
        f1[family] = {n: np.array(v) for n, v in f.items()}
        plain[family] = {n: np.array(v) for n, v in r.items()}
        sizes[family] = np.array([len(s.probs) for s in members])
    return ap, f1, plain, sizes


def _lowest(quality: np.ndarray, count: int) -> np.ndarray:
    mask = np.zeros(quality.size, dtype=bool)
    mask[np.argsort(quality, kind="stable")[:count]] = True
    return mask


# ---------------------------------------------------------------- printing


def by_size(title: str, figures: dict[str, np.ndarray], sizes: np.ndarray) -> None:
    """One family's figures by the number of models per set."""
    counts = sorted(set(sizes.tolist()))
    print(f"{title}\n")
    print(
        "| candidate | " + " | ".join(f"{m} models ({(sizes == m).sum()})" for m in counts) + " |"
    )
    print("| --- |" + " ---: |" * len(counts))
    for name, values in figures.items():
        cells = [f"{values[sizes == m].mean():.3f}" for m in counts]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()


def versus(title: str, figures: dict[str, dict[str, np.ndarray]], against: str) -> None:
    """Each candidate minus `against`, per family: mean paired difference (its noise)."""
    fams = list(figures)
    print(f"{title}\n")
    print("| candidate | " + " | ".join(fams) + " |")
    print("| --- |" + " ---: |" * len(fams))
    for name in next(iter(figures.values())):
        if name == against:
            continue
        cells = []
        for f in fams:
            delta = figures[f][name] - figures[f][against]
            cells.append(f"{delta.mean():+.4f} ({paired_noise(delta):.4f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()


def subset(figures: dict[str, dict[str, np.ndarray]], masks: dict[str, np.ndarray]):
    """The same figures on the sets each family's mask keeps (families with none dropped)."""
    return {
        f: {n: v[masks[f]] for n, v in per.items()} for f, per in figures.items() if masks[f].any()
    }


def choose_joint(ap, f1, incumbent: str) -> str:
    """One combination serves the ranking and the flagged set: the candidates that pass the rule
    against the plain mean on both; among them the shipped default (`incumbent`) stays unless
    another passes the same rule against it on both, else the best mean of families."""
    eligible = [n for n in WEIGHTS_AND_MEANS if n != BASELINE]
    passing = [n for n in eligible if passes(ap, n, BASELINE) and passes(f1, n, BASELINE)]
    if not passing:
        return BASELINE
    if incumbent not in passing:
        return max(passing, key=lambda n: _family_mean(ap, n) + _family_mean(f1, n))
    better = [n for n in passing if n != incumbent and passes(ap, n, incumbent)
              and passes(f1, n, incumbent)]  # fmt: skip
    if not better:
        return incumbent
    return max(better, key=lambda n: _family_mean(ap, n) + _family_mean(f1, n))


def _family_mean(figures: dict[str, dict[str, np.ndarray]], name: str) -> float:
    return float(np.mean([per[name].mean() for per in figures.values()]))


def joint_report(ap, f1, incumbent: str) -> str:
    print("### One combination for both (leave one family out)\n")
    print("| left out | chosen on the others | AP there | plain mean's AP | F1 there | "
          "plain mean's F1 |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for f in ap:
        rest_ap = {g: v for g, v in ap.items() if g != f}
        rest_f1 = {g: v for g, v in f1.items() if g != f}
        c = choose_joint(rest_ap, rest_f1, incumbent)
        print(f"| {f} | {c} | {ap[f][c].mean():.3f} | {ap[f][BASELINE].mean():.3f} | "
              f"{f1[f][c].mean():.3f} | {f1[f][BASELINE].mean():.3f} |")  # fmt: skip
    chosen = choose_joint(ap, f1, incumbent)
    print(f"\nChosen on every family: **{chosen}**\n")
    return chosen


def targets(ap, f1, chosen_ap: str, chosen_f1: str) -> None:
    """The issue's targets per family: F1 >= the plain rule + 0.005, AP >= cleanlab's score."""
    print(f"### Targets for {chosen_ap} (F1 >= plain rule + 0.005; AP >= cleanlab's score)\n")
    print("| family | F1 chosen | plain rule + 0.005 | AP chosen | cleanlab's score |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for f in ap:
        plain = f1[f]["ref: argmax of the plain mean (the plain rule)"].mean() + 0.005
        clean = ap[f]["ref: cleanlab's ensemble score (direct)"].mean()
        print(f"| {f} | {f1[f][chosen_f1].mean():.3f} | {plain:.3f} | "
              f"{ap[f][chosen_ap].mean():.3f} | {clean:.3f} |")  # fmt: skip
    print()


def check_cleanlab(python: str, s: FullSet) -> None:
    """Once: the direct score equals cleanlab.rank.get_label_quality_ensemble_scores."""
    with tempfile.TemporaryDirectory() as tmp:
        arrays = Path(tmp) / "in.npz"
        clipped = {f"p{i}": np.clip(p, 0, 1) for i, p in enumerate(s.probs)}
        np.savez(arrays, given=s.given, **clipped)
        code = (
            "import sys, numpy as np; from cleanlab.rank import get_label_quality_ensemble_scores"
            " as g; z = np.load(sys.argv[1]); ps = [z[f'p{i}'] for i in range(len(z.files) - 1)];"
            " np.save(sys.argv[2], g(z['given'], ps, verbose=False))"
        )
        out = Path(tmp) / "out.npy"
        subprocess.run([python, "-c", code, str(arrays), str(out)], check=True)
        theirs = np.load(out)
    ours = cleanlab_ensemble_score([np.clip(p, 0, 1) for p in s.probs], s.given)
    gap = float(np.abs(theirs - ours).max())
    print(f"cleanlab check on {s.name}: largest difference {gap:.2e} over {ours.size} rows\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--no-trained", action="store_true", help="skip the trained family")
    parser.add_argument("--cleanlab-python", default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    sets = families(args.data, args.seeds, not args.no_trained)
    print("Families: " + ", ".join(f"{f} ({len(m)} sets)" for f, m in sets.items()) + "\n")
    if args.cleanlab_python:
        check_cleanlab(args.cleanlab_python, next(iter(sets.values()))[0])
    ap, f1, plain, sizes = measure(sets)
    report("Several models, ranking: AP of self-confidence", ap, BASELINE)
    report("Several models, flagged set: F1 (weighted_count, adaptive_margin)", f1,
                       BASELINE)  # fmt: skip
    report("Several models, the plain rule (argmax != given) on each combination: F1", plain,
           BASELINE)  # fmt: skip
    chosen = joint_report(ap, f1, INCUMBENT)
    today = INCUMBENT
    print("### Against the default weights (paired difference, its noise)\n")
    versus("Ranking AP:", ap, today)
    versus("Flagged-set F1:", f1, today)
    # The held-out regime of issue 26: the plain rule beats weighted_count on the plain mean.
    held = {
        f: f1[f]["ref: argmax of the plain mean (the plain rule)"] > f1[f][BASELINE] for f in f1
    }
    print("### Held-out-like sets (the plain rule beats weighted_count on the plain mean): "
          + ", ".join(f"{f} {m.sum()} of {m.size}" for f, m in held.items()) + "\n")  # fmt: skip
    for title, figures in (("ranking AP", ap), ("flagged F1", f1), ("plain-rule F1", plain)):
        kept = subset(figures, held)
        if kept:
            versus(f"Held-out-like, {title}, against the plain mean:", kept, BASELINE)
    for f in ap:
        if len(set(sizes[f].tolist())) > 1:
            print(f"### {f} by the number of models\n")
            by_size("Ranking AP:", ap[f], sizes[f])
            by_size("Flagged-set F1:", f1[f], sizes[f])
            by_size("Plain-rule F1 on each combination:", plain[f], sizes[f])
    targets(ap, f1, chosen, chosen)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
