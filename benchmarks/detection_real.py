"""Detection on real label noise: labelaudit's rules and scores beside argmax and cleanlab, one run.

    python benchmarks/detection_real.py [--seeds 2] [--skip-cleanlab] [--explore]
        [--data ../shared/data] [--imdb-index PATH]

Reads the development data from ../shared/data (never from the repository; see its READMEs) and
skips, with the reason printed, whatever is absent. Sets, grouped:

- human: CIFAR-10N "worst" human labels (40% wrong, full truth), each of its two models
  (ResNet-18, Swin), and subsamples at 8%, 15% and 25% noise (all clean rows, a random part of
  the wrong ones), so that nothing is chosen for 40% noise only.
- synthetic: synthetic noise on real models' scores: the test sets of CIFAR-10, MNIST,
  20 Newsgroups and IMDB (given labels taken as truth), flipped at 10% and 25% either
  class-conditionally along the model's own class confusions, or on ambiguous rows towards the
  class they resemble (instance-dependent); the scores then mix in what a model trained on the
  noisy labels would learn (`a` = the share absorbed).
- scenario: the simulated scenarios of tests/noise_scenarios.py (weak, medium, strong models).
- partial: the human-reviewed test sets (CIFAR-10, MNIST, IMDB, 20 Newsgroups): only reviewed
  candidates have a verdict, so the figures are the average precision among the reviewed rows
  and the recall of validated errors among the top-k suspects (k = the number reviewed). The
  candidates were chosen with a margin-like ranking, which favours margins in that recall.
- ensemble: two models per set: CIFAR-10N (ResNet-18 + Swin) with its subsamples, and the
  simulated scenarios with pairs of models.

Metrics with full truth: precision, recall and F1 of the flagged set, and the average precision
(AP, the area under the precision-recall curve) of the ranking, lower quality = more suspect.
IMDB's review names files; its index-to-file map (imdb_test_set_index_to_filename.json of the
cleanlab/label-errors repository) is read from --imdb-index or
<data>/real-noise/imdb-test/index_to_filename.json when present.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from noise_scenarios import KINDS, MODELS, make_scenario

from labelaudit.core.ensemble import combine_probabilities, detect_ensemble, in_memory_model_chunks
from labelaudit.core.noise import detect, in_memory_chunks
from labelaudit.core.quality_scores import QUALITY_SCORES
from labelaudit.core.suspect_rules import SUSPECT_RULES

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DEFAULT = ("adaptive_margin", "weighted_count")  # the proposed defaults (round 2)
ROUND1 = ("half_margin", "balanced_count")  # proposed in round 1
TODAY = ("normalized_margin", "prune_by_noise_rate")  # the defaults before issue 11
RATES = (0.08, 0.15, 0.25)
ENSEMBLE_PAIRS = (
    ("weak", "strong"),
    ("medium", "medium"),
    ("weak", "medium"),
    ("medium", "strong"),
)
PARTIAL = ("cifar10-test", "mnist-test", "imdb-test", "20news-test")


@dataclass
class FullSet:
    name: str
    group: str
    probs: list[np.ndarray]  # one (N, K) matrix per model
    given: np.ndarray
    truth: np.ndarray

    @property
    def is_error(self) -> np.ndarray:
        return self.given != self.truth


@dataclass
class PartialSet:
    name: str
    probs: np.ndarray
    given: np.ndarray
    reviewed: np.ndarray  # row indices
    validated: np.ndarray  # per reviewed row: fewer than 3 of 5 workers kept the given label


# ---------------------------------------------------------------- data


def load_partial(data: Path, name: str, imdb_index: Path | None) -> PartialSet | str:
    """A reviewed test set, or the reason it cannot be read."""
    folder = data / "cifar10-test" if name == "cifar10-test" else data / "real-noise" / name
    if not (folder / "pred_probs.npy").exists():
        return f"{folder} is absent"
    given = np.load(folder / "labels.npy").astype(np.int64)
    probs = np.load(folder / "pred_probs.npy")
    review = json.loads((folder / "mturk.json").read_text())
    if name == "imdb-test":
        index = imdb_index or folder / "index_to_filename.json"
        if not index.exists():
            return "its review names files and no index-to-file map was given (--imdb-index)"
        position = {f: i for i, f in enumerate(json.loads(index.read_text()))}
        rows = np.array([position[r["id"].removeprefix("test/") + ".txt"] for r in review])
    else:
        rows = np.array([int(r["id"]) for r in review])
    validated = np.array([r["mturk"]["given"] < 3 for r in review])
    return PartialSet(name, probs, given, rows, validated)


def subsample(full: FullSet, rate: float, seed: int) -> FullSet:
    """All clean rows and a random part of the wrong ones, for a noise rate of `rate`."""
    rng = np.random.default_rng(seed)
    clean = np.flatnonzero(~full.is_error)
    wrong = np.flatnonzero(full.is_error)
    keep_wrong = min(round(rate / (1 - rate) * clean.size), wrong.size)
    keep = np.sort(np.r_[clean, rng.choice(wrong, keep_wrong, replace=False)])
    return FullSet(
        f"{full.name}@{rate:.0%}",
        full.group,
        [p[keep] for p in full.probs],
        full.given[keep],
        full.truth[keep],
    )


def cifar10n(data: Path, seed: int) -> tuple[list[FullSet], list[FullSet]] | str:
    folder = data / "real-noise" / "cifar10n-worst"
    if not (folder / "true_labels.npy").exists():
        return f"{folder} is absent"
    given = np.load(folder / "labels.npy").astype(np.int64)
    truth = np.load(folder / "true_labels.npy").astype(np.int64)
    models = {m: np.load(folder / f"pred_probs_{m}.npy") for m in ("resnet18", "swin")}
    single = []
    for name, probs in models.items():
        full = FullSet(f"cifar10n-worst/{name}", "human", [probs], given, truth)
        single += [full, *(subsample(full, r, seed) for r in RATES)]
    both = FullSet("cifar10n-worst/resnet18+swin", "ensemble", list(models.values()), given, truth)
    return single, [both, *(subsample(both, r, seed) for r in RATES)]


def synthetic_noise(
    base: PartialSet, rate: float, kind: str, absorbed: float, seed: int
) -> FullSet:
    """Noise on a nearly clean real set (its given labels taken as truth).

    confusion: class-conditional, flips drawn from the model's class confusions (its summed
    probabilities per true class, off the diagonal). instance: half the flips on rows in
    proportion to the model's doubt, half uniformly; each flipped row gets the class it
    resembles (drawn from the model's other classes). Then the scores mix in, with weight
    `absorbed`, what a model trained on the noisy labels learns at that row.
    """
    rng = np.random.default_rng(seed)
    p, truth = base.probs, base.given
    n, k = p.shape
    other = p.copy()
    other[np.arange(n), truth] = 0.0
    if kind == "confusion":
        confusion = np.stack([p[truth == i].sum(axis=0) for i in range(k)])
        np.fill_diagonal(confusion, 0.0)
        confusion /= confusion.sum(axis=1, keepdims=True)
        flip = rng.random(n) < rate
        target = _draw(rng, confusion[truth])
        noisy = p @ ((1 - rate) * np.eye(k) + rate * confusion)
    else:
        doubt = other.sum(axis=1)
        chance = 0.5 * doubt / doubt.sum() + 0.5 / n
        rows = rng.choice(n, round(rate * n), replace=False, p=chance)
        flip = np.zeros(n, dtype=bool)
        flip[rows] = True
        resembles = other / np.clip(other.sum(axis=1, keepdims=True), 1e-12, None)
        target = _draw(rng, resembles)
        flip_chance = np.clip(chance * rows.size, 0.0, 0.5)[:, None]
        noisy = (1 - flip_chance) * p + flip_chance * resembles
    given = np.where(flip, target, truth)
    probs = (1 - absorbed) * p + absorbed * noisy
    name = f"{base.name}+{kind}{rate:.0%}/a={absorbed:g}"
    return FullSet(name, "synthetic", [probs], given, truth)


def _draw(rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
    cumulative = rows.cumsum(axis=1)
    u = rng.random(rows.shape[0])[:, None] * cumulative[:, -1:]
    return (u > cumulative).sum(axis=1).clip(0, rows.shape[1] - 1)


def scenarios(seeds: int) -> tuple[list[FullSet], list[FullSet]]:
    single, pairs = [], []
    for seed in range(seeds):
        for kind in KINDS:
            for model in MODELS:
                s = make_scenario(kind, seed, model=model)
                name = f"{s.name}#{seed}"
                single.append(FullSet(name, "scenario", [s.probabilities], s.given, s.truth))
            for models in ENSEMBLE_PAIRS:
                s = make_scenario(kind, seed, models=models)
                name = f"{s.name}#{seed}"
                pairs.append(FullSet(name, "ensemble-scenario", list(s.models), s.given, s.truth))
    return single, pairs


# ---------------------------------------------------------------- methods

Method = Callable[[list[np.ndarray], np.ndarray], tuple[np.ndarray | None, np.ndarray | None]]


def prf(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = int((flagged & truth).sum())
    p = tp / flagged.sum() if flagged.sum() else 0.0
    r = tp / truth.sum() if truth.sum() else 0.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def average_precision(is_positive: np.ndarray, quality: np.ndarray) -> float:
    """AP of the ranking by quality, lowest first (ties by row order)."""
    hits = is_positive[np.argsort(quality, kind="stable")]
    if hits.sum() == 0:
        return float("nan")
    precision_at = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float((precision_at * hits).sum() / hits.sum())


def _labelaudit(quality: str, rule: str, with_quality: bool = False) -> Method:
    def run(probs, given):
        d = detect(in_memory_chunks(probs[0].copy()), given, probs[0].shape[1], quality, rule)
        return d.flagged, d.quality if with_quality else None

    return run


def _argmax(probs, given):
    p = probs[0]
    given_p = p[np.arange(given.size), given]
    return given_p < p.max(axis=1), None


def _clipped(p: np.ndarray) -> np.ndarray:
    return np.clip(p, 0.0, 1.0)  # quantized inputs may step outside [0, 1] by 1e-7


def _cleanlab(probs, given):
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    p = _clipped(probs[0])
    return find_label_issues(given, p, n_jobs=1), get_label_quality_scores(given, p)


def _explore_scores(probs, given):
    """Rankings tried and not kept (quality arrays, lower = more suspect)."""
    p = probs[0]
    n, k = p.shape
    at = np.arange(n)
    given_p = p[at, given]
    others = p.copy()
    others[at, given] = -1
    best_other = others.max(axis=1)
    count = np.bincount(given, minlength=k)
    t = np.bincount(given, weights=given_p, minlength=k) / np.maximum(count, 1)
    tiny = 1e-12
    return {
        "self_confidence - t(given)": given_p - t[given],
        "self_confidence / t(given)": given_p / t[given],
        "log p(given) / p(best other)": np.log(given_p + tiny) - np.log(best_other + tiny),
    }


def single_methods(with_cleanlab: bool) -> dict[str, Method]:
    methods: dict[str, Method] = {
        "labelaudit today (prune_by_noise_rate, normalized_margin)": _labelaudit(*TODAY),
        "labelaudit round 1 (balanced_count, half_margin)": _labelaudit(*ROUND1),
    }
    for rule in SUSPECT_RULES:
        methods[f"labelaudit {rule}"] = _labelaudit(DEFAULT[0], rule)
    methods["estimated_count, normalized_margin"] = _labelaudit(
        "normalized_margin", "estimated_count"
    )
    methods["argmax != given"] = _argmax
    if with_cleanlab:
        methods["cleanlab 2.9"] = _cleanlab
    return methods


def _ensemble(weights: str, defaults: tuple[str, str] = DEFAULT) -> Method:
    def run(probs, given):
        w = None
        if weights == "equal":
            w = np.ones(len(probs))
        elif weights == "accuracy":
            w = np.array([(p.argmax(axis=1) == given).mean() for p in probs])
        e = detect_ensemble(
            in_memory_model_chunks(probs), given, len(probs), probs[0].shape[1], *defaults, w
        )
        return e.detection.flagged, e.detection.quality

    return run


def _ensemble_argmax(probs, given):
    return _argmax([combine_probabilities(probs)], given)


def _per_model_scores(probs, given):
    """Average of the models' own qualities (weights from the agreement pass)."""
    e = detect_ensemble(
        in_memory_model_chunks(probs), given, len(probs), probs[0].shape[1], *DEFAULT
    )
    quality = sum(
        w * detect(in_memory_chunks(p.copy()), given, p.shape[1], *DEFAULT).quality
        for w, p in zip(e.weights, probs, strict=True)
    )
    return None, quality


def _all_disagree(probs, given):
    at = np.arange(given.size)
    return np.all([p[at, given] < p.max(axis=1) for p in probs], axis=0), None


def _cleanlab_ensemble(probs, given):
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_ensemble_scores

    clipped = [_clipped(p) for p in probs]
    flagged = find_label_issues(given, combine_probabilities(clipped), n_jobs=1)
    return flagged, get_label_quality_ensemble_scores(given, clipped, verbose=False)


def _model(i: int, quality: str, rule: str) -> Method:
    def run(probs, given):
        return _labelaudit(quality, rule, with_quality=True)([probs[i]], given)

    return run


def ensemble_methods(with_cleanlab: bool) -> dict[str, Method]:
    methods: dict[str, Method] = {
        "labelaudit, weights from agreement (proposed)": _ensemble("agreement"),
        "labelaudit round 1 (agreement, balanced_count, half_margin)": _ensemble(
            "agreement", ROUND1
        ),
        "labelaudit, equal weights": _ensemble("equal"),
        "labelaudit, accuracy weights": _ensemble("accuracy"),
        "average of per-model qualities": _per_model_scores,
        "every model disagrees": _all_disagree,
        "argmax of the mean": _ensemble_argmax,
        "model 1 alone (proposed)": _model(0, *DEFAULT),
        "model 2 alone (proposed)": _model(1, *DEFAULT),
    }
    if with_cleanlab:
        methods["cleanlab 2.9 (ensemble scores, mean probs)"] = _cleanlab_ensemble
    return methods


# ---------------------------------------------------------------- evaluation


def evaluate_full(sets: list[FullSet], methods: dict[str, Method], explore: bool):
    """{set: {method: (precision, recall, f1)}}, {set: {method or score: AP}}"""
    flags: dict[str, dict[str, tuple[float, float, float]]] = defaultdict(dict)
    aps: dict[str, dict[str, float]] = defaultdict(dict)
    for s in sets:
        truth = s.is_error
        for name, method in methods.items():
            flagged, quality = method(s.probs, s.given)
            if flagged is not None:
                flags[s.name][name] = prf(flagged, truth)
            if quality is not None:
                aps[s.name][name] = average_precision(truth, quality)
        if len(s.probs) == 1:
            p = s.probs[0]
            for q in QUALITY_SCORES:
                d = detect(in_memory_chunks(p.copy()), s.given, p.shape[1], q, "argmax")
                aps[s.name][q] = average_precision(truth, d.quality)
            if explore:
                for name, quality in _explore_scores(s.probs, s.given).items():
                    aps[s.name][name] = average_precision(truth, quality)
    return flags, aps


def evaluate_partial(p: PartialSet, with_cleanlab: bool) -> list[tuple]:
    k = p.reviewed.size
    rows = []
    runs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for q in QUALITY_SCORES:
        d = detect(in_memory_chunks(p.probs.copy()), p.given, p.probs.shape[1], q, DEFAULT[1])
        runs[f"labelaudit {q}, {DEFAULT[1]}"] = (d.flagged, d.quality)
    d = detect(in_memory_chunks(p.probs.copy()), p.given, p.probs.shape[1], *TODAY)
    runs["labelaudit today"] = (d.flagged, d.quality)
    d = detect(in_memory_chunks(p.probs.copy()), p.given, p.probs.shape[1], *ROUND1)
    runs["labelaudit round 1 (balanced_count, half_margin)"] = (d.flagged, d.quality)
    runs["argmax != given (rank by self_confidence)"] = (
        _argmax([p.probs], p.given)[0],
        p.probs[np.arange(p.given.size), p.given],
    )
    if with_cleanlab:
        runs["cleanlab 2.9"] = _cleanlab([p.probs], p.given)
    for name, (flagged, quality) in runs.items():
        ranks = np.empty(quality.size, dtype=np.int64)
        ranks[np.argsort(quality, kind="stable")] = np.arange(1, quality.size + 1)
        in_top = (ranks[p.reviewed] <= k) & p.validated
        rows.append(
            (
                p.name,
                name,
                int(flagged.sum()),
                int((flagged[p.reviewed] & p.validated).sum()),
                f"{int(in_top.sum())}/{int(p.validated.sum())}",
                average_precision(p.validated, quality[p.reviewed]),
            )
        )
    return rows


# ---------------------------------------------------------------- printing


def _table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join(["---"] + ["---:"] * (len(header) - 1)) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def _summary(title: str, per_set: dict[str, dict], groups: dict[str, list[str]], pick) -> None:
    """Mean and worst of a metric per group, methods sorted by the first group's mean."""
    print(f"### {title}\n")
    names = list(dict.fromkeys(m for s in per_set.values() for m in s))
    header = ["method"]
    for g, members in groups.items():
        header += [f"{g} mean ({len(members)})", f"{g} worst"]
    rows = []
    for m in names:
        row, key = [m], None
        for members in groups.values():
            values = [pick(per_set[s][m]) for s in members if m in per_set[s]]
            values = [v for v in values if v == v]  # drop NaN
            if not values:
                row += ["", ""]
                continue
            row += [f"{np.mean(values):.3f}", f"{np.min(values):.3f}"]
            key = -np.mean(values) if key is None else key
        rows.append((key if key is not None else 0.0, row))
    _table(header, [r for _, r in sorted(rows, key=lambda x: x[0])])


def _per_set(title: str, per_set: dict[str, dict], names: list[str], pick) -> None:
    print(f"### {title}\n")
    rows = []
    for s, values in per_set.items():
        rows.append([s] + [f"{pick(values[m]):.3f}" if m in values else "" for m in names])
    _table(["set", *names], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds of the simulated scenarios")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--imdb-index", type=Path, default=None)
    parser.add_argument("--skip-cleanlab", action="store_true")
    parser.add_argument("--explore", action="store_true", help="also rankings not kept")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    with_cleanlab = not args.skip_cleanlab
    if with_cleanlab:
        try:
            import cleanlab  # noqa: F401
        except ImportError:
            print("cleanlab is not installed: its columns are skipped.\n")
            with_cleanlab = False
    single: list[FullSet] = []
    pairs: list[FullSet] = []
    partial: list[PartialSet] = []
    if not args.data.exists():
        print(f"{args.data} is absent: only the simulated scenarios are run.\n")
    else:
        found = cifar10n(args.data, seed=0)
        if isinstance(found, str):
            print(f"CIFAR-10N skipped: {found}.\n")
        else:
            single += found[0]
            pairs += found[1]
        for name in PARTIAL:
            loaded = load_partial(args.data, name, args.imdb_index)
            if isinstance(loaded, str):
                print(f"{name} skipped: {loaded}.\n")
                continue
            partial.append(loaded)
            for kind, absorbed in (("confusion", 0.5), ("confusion", 1.0), ("instance", 0.0)):
                for rate in (0.10, 0.25):
                    single.append(synthetic_noise(loaded, rate, kind, absorbed, seed=0))
            for rate in (0.10, 0.25):
                single.append(synthetic_noise(loaded, rate, "instance", 0.5, seed=0))
    sim_single, sim_pairs = scenarios(args.seeds)
    single += sim_single
    pairs += sim_pairs

    flags, aps = evaluate_full(single, single_methods(with_cleanlab), args.explore)
    groups = defaultdict(list)
    for s in single:
        groups[s.group].append(s.name)
    real = {g: groups[g] for g in ("human", "synthetic") if groups[g]}
    if real:
        real["all real"] = [s for members in real.values() for s in members]
    real["scenario"] = groups["scenario"]
    print("## One model\n")
    _summary("Flagged-set F1", flags, real, lambda v: v[2])
    _summary("Flagged-set precision", flags, real, lambda v: v[0])
    _summary("Flagged-set recall", flags, real, lambda v: v[1])
    _summary("Ranking: average precision (AP)", aps, real, lambda v: v)
    f1_names = [
        "labelaudit today (prune_by_noise_rate, normalized_margin)",
        "argmax != given",
        "cleanlab 2.9",
        "labelaudit estimated_count",
        "labelaudit round 1 (balanced_count, half_margin)",
        "labelaudit weighted_count",
    ]
    f1_names = [n for n in f1_names if any(n in v for v in flags.values())]
    real_sets = [s.name for s in single if s.group != "scenario"]
    _per_set(
        "F1 per set (real models' scores)",
        {s: flags[s] for s in real_sets},
        f1_names,
        lambda v: v[2],
    )
    ap_names = ["normalized_margin", "self_confidence", "half_margin", "adaptive_margin"]
    ap_names += ["cleanlab 2.9"] if with_cleanlab else []
    _per_set(
        "AP per set (real models' scores)", {s: aps[s] for s in real_sets}, ap_names, lambda v: v
    )
    scenario_sets = groups["scenario"]
    _per_set("F1 per scenario", {s: flags[s] for s in scenario_sets}, f1_names, lambda v: v[2])

    if partial:
        print("## Reviewed test sets (partial truth)\n")
        header = [
            "set",
            "method",
            "flagged",
            "validated flagged",
            "validated in top-k",
            "AP reviewed",
        ]
        rows = [
            [*map(str, r[:5]), f"{r[5]:.3f}"]
            for p in partial
            for r in evaluate_partial(p, with_cleanlab)
        ]
        _table(header, rows)

    flags2, aps2 = evaluate_full(pairs, ensemble_methods(with_cleanlab), False)
    egroups = defaultdict(list)
    for s in pairs:
        egroups[s.group].append(s.name)
    print("## Two models (ensemble)\n")
    _summary("Flagged-set F1", flags2, egroups, lambda v: v[2])
    _summary("Ranking: average precision (AP)", aps2, egroups, lambda v: v)
    shown = [
        "labelaudit, weights from agreement (proposed)",
        "labelaudit round 1 (agreement, balanced_count, half_margin)",
        "labelaudit, equal weights",
        "model 1 alone (proposed)",
        "model 2 alone (proposed)",
    ]
    shown += ["cleanlab 2.9 (ensemble scores, mean probs)"] if with_cleanlab else []
    human_pairs = {s: flags2[s] for s in egroups["ensemble"]}
    _per_set("F1 per set: CIFAR-10N, two models", human_pairs, shown, lambda v: v[2])
    human_aps = {s: aps2[s] for s in egroups["ensemble"]}
    _per_set("AP per set: CIFAR-10N, two models", human_aps, shown, lambda v: v)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
