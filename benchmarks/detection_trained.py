"""Detection with models trained on the noisy labels (cross-validated), full truth, offline data.

    python benchmarks/detection_trained.py [--quick] [--skip-cleanlab] [--explore]
        [--cache /tmp/labelaudit-detection-trained] [--threads 1] [--per-set]

Out-of-sample probabilities of real models trained, K-fold, on the NOISY labels, as real users'
scores are made. A model trained on noisy labels partly learns the noise: its probabilities on a
mislabeled row are less peaked and pulled towards the given label, which the simulated scenarios
(tests/noise_scenarios.py) and the synthetic-noise sets of benchmarks/detection_real.py (scores of
models trained on clean labels, noise mixed in afterwards) only imitate.

Data (bundled or generated, nothing is downloaded):
- digits: scikit-learn's 8x8 digit images (1,797 x 64, 10 classes): a small set, strong models.
- mix12: a generated mixture, 10,000 x 24, 12 classes in 4 groups of look-alikes (class centres
  near their group's centre, two sub-clusters per class, per-sample scale, a fixed nonlinear view
  of the features); models of medium strength (about 93-95% accurate on clean labels).
- mix10-imbalanced: the same kind, 10,000 x 20, 10 classes in 3 groups, skewed class sizes
  (Dirichlet(1) priors); about 85-89%.
- mix15: the same kind, 12,000 x 30, 15 classes in 5 tight groups: weak models (about 75-84%;
  the classes overlap, so part of the truth cannot be recovered from the features).

Noise, at 5%, 10%, 20% and 35% of the rows (exactly that many wrong labels):
- uniform: the wrong label drawn uniformly from the other classes.
- pair: every class flips to one fixed other class (a random cycle through the classes).
- confusion: class-conditional, the wrong label drawn from a clean model's confusions of the true
  class (its summed out-of-sample probabilities on clean labels, off the diagonal).
- instance: rows drawn half in proportion to a clean model's doubt (1 - p(true)), half uniformly;
  each gets a class it resembles (drawn from the clean model's other classes).
- human: rows drawn in proportion to the clean model's doubt only, each given the class the clean
  model ranks second, as people mislabel ambiguous items as their look-alike.
The clean model is the mlp below, cross-validated on the true labels.

Learners (4-fold stratified cross-validation on the noisy labels, seeded): logreg (a linear
softmax, L-BFGS), mlp (two hidden layers of 128, Adam, overconfident), mlp_ls (the same with label
smoothing 0.1), knn (k = 20, neighbour fractions), trees (extra trees, 40, at least 2 samples per
leaf). Each noisy label set is scored by a pair of learners (rotating over the sets): each model
is one single-model set, the pair one two-model (ensemble) set. 80 label sets, 160 single-model
sets, 80 pairs.

Printed: F1 (and precision, recall) of the flagged set and average precision (AP) of the ranking
for every suspect rule x quality score of labelaudit, argmax and cleanlab 2.9's defaults; mean
and worst per group: all trained-on-noise sets, and the held-out-like subset (argmax beats
cleanlab by >= 0.05 F1, the regime the issue reports on held-out real noise); a few methods per
noise kind, learner and data set; the counts behind the flagged sets (true errors T,
disagreements A, the confident joint's estimate C, the flagged counts); the ensembles. --explore
adds what was tried and not kept, and an oracle (the true error count) for scale. The
probabilities are cached under --cache (never in the repository): a run with an empty cache takes
about 4 minutes on 2 cores (--explore --per-set included), a cached one about 1.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detection_real import (
    FullSet,
    _clipped,
    _summary,
    _table,
    average_precision,
    prf,
)

from labelaudit.core.ensemble import combine_probabilities, detect_ensemble, in_memory_model_chunks
from labelaudit.core.noise import detect, in_memory_chunks
from labelaudit.core.quality_scores import QUALITY_SCORES
from labelaudit.core.suspect_rules import SUSPECT_RULES, lowest_quality

CACHE = Path("/tmp/labelaudit-detection-trained")
VERSION = "2"  # bump when data, noise or learners change: the cache key includes it
KINDS = ("uniform", "pair", "confusion", "instance", "human")
RATES = (0.05, 0.10, 0.20, 0.35)
LEARNERS = ("logreg", "mlp", "mlp_ls", "knn", "trees")
PAIRS = (("mlp", "knn"), ("logreg", "trees"), ("mlp_ls", "trees"), ("logreg", "knn"))
FOLDS = 4
DEFAULT = ("adaptive_margin", "weighted_count")  # proposed in round 2
ROUND1 = ("half_margin", "balanced_count")  # proposed in round 1
TODAY = ("normalized_margin", "prune_by_noise_rate")  # the defaults before issue 11


# ---------------------------------------------------------------- data


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def mixture(
    n: int, k: int, d: int, groups: int, spread: float, seed: int, imbalance: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Classes in groups of look-alikes: class centres near their group's centre (`spread`), two
    sub-clusters per class, per-sample scale, then a fixed nonlinear view of the features."""
    rng = np.random.default_rng(seed)
    group_centres = rng.normal(0.0, 1.5, (groups, d))
    centres = group_centres[np.arange(k) % groups] + rng.normal(0.0, spread, (k, d))
    sub_centres = centres[:, None, :] + rng.normal(0.0, spread, (k, 2, d))
    priors = rng.dirichlet(np.full(k, imbalance)) if imbalance else np.full(k, 1.0 / k)
    y = rng.choice(k, n, p=priors)
    z = sub_centres[y, rng.integers(0, 2, n)]
    z = z + rng.normal(0.0, 1.0, (n, d)) * rng.uniform(0.6, 1.4, (n, 1))
    x = np.tanh(z @ rng.normal(0.0, d**-0.5, (d, d))) + 0.3 * z @ rng.normal(0.0, d**-0.5, (d, d))
    return ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32), y.astype(np.int64)


DATASETS = {
    "digits": digits,
    "mix12": lambda: mixture(10_000, 12, 24, 4, 0.6, seed=3),
    "mix10-imbalanced": lambda: mixture(10_000, 10, 20, 3, 0.45, seed=2, imbalance=1.0),
    "mix15": lambda: mixture(12_000, 15, 30, 5, 0.4, seed=1),
}


# ---------------------------------------------------------------- learners


def _torch_model(x, y, x_test, k, hidden, epochs, smoothing, seed):
    import torch

    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    d = x.shape[1]
    loss_fn = torch.nn.functional.cross_entropy
    if hidden == 0:
        net = torch.nn.Linear(d, k)
        opt = torch.optim.LBFGS(
            net.parameters(), max_iter=40, history_size=10, line_search_fn="strong_wolfe"
        )

        def closure():
            opt.zero_grad()
            loss = loss_fn(net(xt), yt) + 1e-4 * (net.weight**2).sum()
            loss.backward()
            return loss

        opt.step(closure)
    else:
        net = torch.nn.Sequential(
            torch.nn.Linear(d, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, k),
        )
        opt = torch.optim.Adam(net.parameters(), 2e-3, weight_decay=1e-4)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=generator)
            for start in range(0, len(xt), 256):
                batch = order[start : start + 256]
                opt.zero_grad()
                loss_fn(net(xt[batch]), yt[batch], label_smoothing=smoothing).backward()
                opt.step()
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(x_test)), dim=1).numpy().astype(np.float64)


def fit_predict(learner: str, x, y, x_test, k: int, seed: int) -> np.ndarray:
    """One fold: train on (x, y), return (len(x_test), k) probabilities."""
    if learner == "logreg":
        return _torch_model(x, y, x_test, k, 0, 0, 0.0, seed)
    if learner in ("mlp", "mlp_ls"):
        epochs = 40 if x.shape[0] < 3000 else 12
        return _torch_model(x, y, x_test, k, 128, epochs, 0.1 if learner == "mlp_ls" else 0.0, seed)
    if learner == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        model = KNeighborsClassifier(20).fit(x, y)
    elif learner == "trees":
        from sklearn.ensemble import ExtraTreesClassifier

        model = ExtraTreesClassifier(40, min_samples_leaf=2, n_jobs=1, random_state=seed)
        model.fit(x, y)
    else:
        raise ValueError(learner)
    out = np.zeros((x_test.shape[0], k))
    out[:, model.classes_] = model.predict_proba(x_test)
    return out


def cross_validated(learner: str, x, y, k: int, seed: int, cache: Path, key: str) -> np.ndarray:
    """Out-of-sample probabilities from FOLDS-fold stratified cross-validation on labels y."""
    digest = hashlib.sha1(f"{VERSION}|{key}|{learner}|{seed}".encode()).hexdigest()[:16]
    path = cache / f"{key}-{learner}-{digest}.npy"
    if path.exists():
        return np.load(path).astype(np.float64)
    from sklearn.model_selection import StratifiedKFold

    probs = np.zeros((y.size, k))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    for train, test in folds.split(x, y):
        probs[test] = fit_predict(learner, x[train], y[train], x[test], k, seed)
    probs = np.clip(probs, 0.0, None)
    probs /= probs.sum(axis=1, keepdims=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, probs.astype(np.float32))
    return np.load(path).astype(np.float64)  # what a cached run reads: identical figures


# ---------------------------------------------------------------- noise


def _draw(rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
    cumulative = rows.cumsum(axis=1)
    u = rng.random(rows.shape[0])[:, None] * cumulative[:, -1:]
    return (u > cumulative).sum(axis=1).clip(0, rows.shape[1] - 1)


def add_noise(kind: str, rate: float, truth: np.ndarray, clean: np.ndarray, seed: int):
    """Given labels with round(rate * n) wrong ones. `clean`: a clean model's out-of-sample
    probabilities (confusion and instance noise follow them)."""
    rng = np.random.default_rng(seed)
    n, k = clean.shape
    count = round(rate * n)
    at = np.arange(n)
    others = clean.copy()
    others[at, truth] = 0.0
    others = np.maximum(others, 1e-6)
    others[at, truth] = 0.0
    doubt = 1.0 - clean[at, truth]
    if kind == "instance":
        chance = 0.5 * doubt / doubt.sum() + 0.5 / n
        rows = rng.choice(n, count, replace=False, p=chance)
        target = _draw(rng, others[rows])
    elif kind == "human":
        chance = (doubt + 1e-3) / (doubt + 1e-3).sum()
        rows = rng.choice(n, count, replace=False, p=chance)
        target = others[rows].argmax(axis=1)
    else:
        rows = rng.choice(n, count, replace=False)
        if kind == "uniform":
            target = (truth[rows] + rng.integers(1, k, rows.size)) % k
        elif kind == "pair":
            cycle = rng.permutation(k)
            successor = np.empty(k, dtype=np.int64)
            successor[cycle] = np.roll(cycle, -1)
            target = successor[truth[rows]]
        elif kind == "confusion":
            confusion = np.stack([others[truth == j].sum(axis=0) for j in range(k)])
            confusion /= confusion.sum(axis=1, keepdims=True)
            target = _draw(rng, confusion[truth[rows]])
        else:
            raise ValueError(kind)
    given = truth.copy()
    given[rows] = target
    return given


# ---------------------------------------------------------------- sets


@dataclass
class TrainedSet:
    name: str
    dataset: str
    kind: str
    rate: float
    learners: tuple[str, ...]
    probs: list[np.ndarray]
    given: np.ndarray
    truth: np.ndarray

    def single(self, i: int) -> FullSet:
        return FullSet(
            f"{self.name}/{self.learners[i]}", "trained", [self.probs[i]], self.given, self.truth
        )

    def pair(self) -> FullSet:
        return FullSet(
            f"{self.name}/{'+'.join(self.learners)}", "ensemble", self.probs, self.given, self.truth
        )


def build_sets(cache: Path, quick: bool, seed: int = 0) -> list[TrainedSet]:
    sets = []
    names = list(DATASETS)[:2] if quick else list(DATASETS)
    rates = RATES[1::2] if quick else RATES
    for dataset in names:
        x, truth = DATASETS[dataset]()
        k = int(truth.max()) + 1
        clean = cross_validated("mlp", x, truth, k, seed, cache, f"{dataset}-clean")
        for j, kind in enumerate(KINDS):
            for i, rate in enumerate(rates):
                given = add_noise(kind, rate, truth, clean, seed=1000 * j + i)
                learners = PAIRS[(i + j) % len(PAIRS)]
                key = f"{dataset}-{kind}-{rate:g}"
                probs = [cross_validated(m, x, given, k, seed, cache, key) for m in learners]
                name = f"{dataset}/{kind}{rate:.0%}"
                sets.append(TrainedSet(name, dataset, kind, rate, learners, probs, given, truth))
    return sets


# ---------------------------------------------------------------- methods


def _name(quality: str, rule: str) -> str:
    return f"{rule}, {quality}"


def single_run(p: np.ndarray, given: np.ndarray, truth: np.ndarray, options):
    """{method: flagged} and {score: quality} for one model's probabilities."""
    k = p.shape[1]
    flags, qualities = {}, {}
    for score in QUALITY_SCORES:
        for rule in SUSPECT_RULES:
            d = detect(in_memory_chunks(p.copy()), given, k, score, rule)
            flags[_name(score, rule)] = d.flagged
        qualities[score] = d.quality
    flags["argmax"] = p[np.arange(given.size), given] < p.max(axis=1)
    if options.cleanlab:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        flags["cleanlab 2.9"] = find_label_issues(given, _clipped(p), n_jobs=1)
        qualities["cleanlab 2.9"] = get_label_quality_scores(given, _clipped(p))
    if options.explore:
        more_flags, more_qualities = explored(p, given, truth)
        flags.update(more_flags)
        qualities.update(more_qualities)
    return flags, qualities


def explored(p: np.ndarray, given: np.ndarray, truth: np.ndarray):
    """Rules and rankings tried in round 2 and not kept (and one oracle, for scale)."""
    k = p.shape[1]
    d = detect(in_memory_chunks(p.copy()), given, k, *DEFAULT)
    g, o = d.evidence.given_probability, d.evidence.best_other_probability
    disagrees = o > g
    confident = d.confident.confident_class
    confident_other = disagrees & (confident >= 0) & (confident != given)
    quality = d.quality
    within = np.where(disagrees, quality, np.inf)
    a = int(disagrees.sum())
    dc, du = int(confident_other.sum()), int((disagrees & ~confident_other).sum())
    tiny = 1e-6
    flags = {
        "x: n = A, lowest quality among all rows": lowest_quality(quality, a),
        "x: n = confident disagreements + half the others": lowest_quality(
            within, round(dc + du / 2)
        ),
        "x: n = A (C/A)^(1/4)": lowest_quality(
            within, round(a * (max(d.noise.estimated_errors, 1) / max(a, 1)) ** 0.25)
        ),
        "x: ORACLE n = true error count T, lowest quality": lowest_quality(
            quality, int((given != truth).sum())
        ),
    }
    qualities = {
        "x: log p(given) - log p(best other)": np.log(g + tiny) - np.log(o + tiny),
        "x: sqrt p(given) - sqrt p(best other)": np.sqrt(g) - np.sqrt(o),
        "x: noise-weighted odds (estimated noise matrix)": -_noise_weighted_odds(d, given),
    }
    return flags, qualities


def _noise_weighted_odds(d, given: np.ndarray) -> np.ndarray:
    """Error odds with the model's probabilities as the clean posterior and the estimated noise
    matrix N (given x true): [N(y, b) p(b) + mean N(y, other) (1 - p(y) - p(b))] / N(y, y) p(y)."""
    n_matrix = d.noise.noise_matrix
    k = n_matrix.shape[0]
    g, o = d.evidence.given_probability, d.evidence.best_other_probability
    b = d.evidence.best_other_class
    diagonal = np.clip(np.diag(n_matrix), 1e-6, None)
    rest = (n_matrix.sum(axis=1)[given] - np.diag(n_matrix)[given] - n_matrix[given, b]) / max(
        k - 2, 1
    )
    flip_in = n_matrix[given, b] * o + rest * np.clip(1 - g - o, 0, None)
    return flip_in / (diagonal[given] * np.clip(g, 1e-12, None))


def ensemble_run(probs: list[np.ndarray], given: np.ndarray, truth: np.ndarray, options):
    k = probs[0].shape[1]
    flags, qualities = {}, {}
    for defaults, label in ((DEFAULT, "round 2"), (ROUND1, "round 1")):
        for name, weights in (("agreement weights", None), ("equal weights", [1.0] * len(probs))):
            if label == "round 1" and weights is not None:
                continue
            e = detect_ensemble(
                in_memory_model_chunks([p.copy() for p in probs]), given, len(probs), k,
                *defaults, weights,
            )  # fmt: skip
            flags[f"labelaudit {name} ({defaults[1]}, {defaults[0]})"] = e.detection.flagged
            qualities[f"labelaudit {name} ({defaults[0]})"] = e.detection.quality
    mean = combine_probabilities(probs)
    flags["argmax of the mean"] = mean[np.arange(given.size), given] < mean.max(axis=1)
    for i, p in enumerate(probs):
        d = detect(in_memory_chunks(p.copy()), given, k, *DEFAULT)
        flags[f"model {i + 1} alone ({DEFAULT[1]}, {DEFAULT[0]})"] = d.flagged
        qualities[f"model {i + 1} alone ({DEFAULT[0]})"] = d.quality
    if options.cleanlab:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_ensemble_scores

        clipped = [_clipped(p) for p in probs]
        flags["cleanlab 2.9 (mean probs)"] = find_label_issues(
            given, combine_probabilities(clipped), n_jobs=1
        )
        qualities["cleanlab 2.9 (ensemble scores)"] = get_label_quality_ensemble_scores(
            given, clipped, verbose=False
        )
    return flags, qualities


def counts(p: np.ndarray, given: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """True errors T, disagreements A (and how many are errors), the confident joint's C, the
    flagged counts of the round-1 and round-2 rules, and whether self-confidence ranks better
    than the normalized margin."""
    wrong = given != truth
    d = detect(in_memory_chunks(p.copy()), given, p.shape[1], *DEFAULT)
    r1 = detect(in_memory_chunks(p.copy()), given, p.shape[1], *ROUND1)
    disagree = p[np.arange(given.size), given] < p.max(axis=1)
    g = d.evidence.given_probability
    margin = g - d.evidence.best_other_probability
    return {
        "T": int(wrong.sum()),
        "A": int(disagree.sum()),
        "A errors": int((disagree & wrong).sum()),
        "C": d.noise.estimated_errors,
        "W": int(d.flagged.sum()),
        "B": int(r1.flagged.sum()),
        "accuracy on truth": float((p.argmax(axis=1) == truth).mean()),
        "c": float(_concentration(d)),
        "sc beats margin": average_precision(wrong, g) > average_precision(wrong, margin),
    }


def _concentration(d) -> float:
    from labelaudit.core.quality_scores import flip_concentration

    return flip_concentration(d.noise.calibrated_joint)


# ---------------------------------------------------------------- main


def evaluate(full_sets: list[FullSet], run, options):
    flags: dict[str, dict] = defaultdict(dict)
    aps: dict[str, dict] = defaultdict(dict)
    for s in full_sets:
        wrong = s.is_error
        probs = s.probs[0] if len(s.probs) == 1 else s.probs
        flagged, qualities = run(probs, s.given, s.truth, options)
        for name, f in flagged.items():
            flags[s.name][name] = prf(f, wrong)
        for name, q in qualities.items():
            aps[s.name][name] = average_precision(wrong, q)
    return flags, aps


def held_out_like(flags: dict[str, dict], argmax: str, cleanlab: str) -> list[str]:
    """Sets where argmax beats cleanlab's default by at least 0.05 F1 (the held-out regime)."""
    return [s for s, v in flags.items() if cleanlab in v and v[argmax][2] >= v[cleanlab][2] + 0.05]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--quick", action="store_true", help="2 data sets, 2 noise rates")
    parser.add_argument("--skip-cleanlab", action="store_true")
    parser.add_argument("--explore", action="store_true", help="also what was tried, not kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--per-set", action="store_true", help="also per-set tables")
    args = parser.parse_args()
    args.cleanlab = not args.skip_cleanlab
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.cleanlab:
        try:
            import cleanlab  # noqa: F401
        except ImportError:
            print("cleanlab is not installed: its columns are skipped.\n")
            args.cleanlab = False
    sets = build_sets(args.cache, args.quick)
    print(f"({len(sets)} noisy label sets ready in {time.perf_counter() - start:.0f} s)\n")
    singles = [s.single(i) for s in sets for i in range(len(s.learners))]
    flags, aps = evaluate(singles, single_run, args)

    groups: dict[str, list[str]] = {"trained": [s.name for s in singles]}
    if args.cleanlab:
        groups["held-out-like"] = held_out_like(flags, "argmax", "cleanlab 2.9")
    kinds = {f"{k}": [s.name for s in singles if f"/{k}" in s.name] for k in KINDS}
    learners = {f"{m}": [s.name for s in singles if s.name.endswith(f"/{m}")] for m in LEARNERS}
    datasets = {f"{d}": [s.name for s in singles if s.name.startswith(f"{d}/")] for d in DATASETS}
    print("## One model trained on the noisy labels\n")
    _summary("Flagged-set F1", flags, groups, lambda v: v[2])
    _summary("Flagged-set precision", flags, groups, lambda v: v[0])
    _summary("Flagged-set recall", flags, groups, lambda v: v[1])
    _summary("Ranking: average precision (AP)", aps, groups, lambda v: v)
    shown = ["argmax", _name(*DEFAULT), _name(*ROUND1), _name(*TODAY)]
    shown += ["cleanlab 2.9"] if args.cleanlab else []
    few = {s: {m: v[m] for m in shown} for s, v in flags.items()}
    _summary("F1 by noise kind (a few methods)", few, kinds, lambda v: v[2])
    _summary("F1 by learner (a few methods)", few, learners, lambda v: v[2])
    _summary("F1 by data set (a few methods)", few, datasets, lambda v: v[2])
    scores = ["self_confidence", "normalized_margin", "half_margin", "adaptive_margin"]
    few_aps = {s: {m: v[m] for m in scores} for s, v in aps.items()}
    _summary("AP by noise kind", few_aps, kinds, lambda v: v)

    print("### Counts: true errors T, disagreements A, estimates C (confident joint), flagged\n")
    info = {s.name: counts(s.probs[0], s.given, s.truth) for s in singles}
    rows = []
    for g, members in {**groups, **kinds}.items():
        if not members:
            continue
        c = np.array([[info[m][x] for x in ("T", "A", "A errors", "C", "W", "B")] for m in members])
        t = c[:, 0]
        rows.append(
            [g, str(len(members))]
            + [f"{np.mean(c[:, i] / t):.2f}" for i in (1, 3, 4, 5)]
            + [f"{np.mean(c[:, 2] / t):.2f}", f"{np.mean(c[:, 1] < t):.2f}"]
            + [f"{np.mean([info[m]['c'] for m in members]):.2f}"]
            + [f"{np.mean([info[m]['sc beats margin'] for m in members]):.2f}"]
        )
    _table(
        [
            "group",
            "sets",
            "A / T",
            "C / T",
            f"{DEFAULT[1]} / T",
            f"{ROUND1[1]} / T",
            "recall of argmax",
            "share with A < T",
            "flip concentration",
            "share where self_confidence out-ranks the margin",
        ],
        rows,
    )
    if args.per_set:
        names = [m for m in shown if m in flags[singles[0].name]]
        rows = []
        for s in singles:
            i = info[s.name]
            rows.append(
                [
                    s.name,
                    *(str(i[x]) for x in ("T", "A", "C", "W")),
                    f"{i['accuracy on truth']:.3f}",
                ]
                + [f"{flags[s.name][m][2]:.3f}" for m in names]
                + [f"{aps[s.name][q]:.3f}" for q in scores]
            )
        _table(
            ["set", "T", "A", "C", "flagged", "accuracy"]
            + [f"F1 {m}" for m in names]
            + [f"AP {q}" for q in scores],
            rows,
        )

    pairs = [s.pair() for s in sets]
    flags2, aps2 = evaluate(pairs, ensemble_run, args)
    egroups: dict[str, list[str]] = {"two models": [s.name for s in pairs]}
    if args.cleanlab:
        egroups["held-out-like"] = held_out_like(
            flags2, "argmax of the mean", "cleanlab 2.9 (mean probs)"
        )
    print("## Two models trained on the noisy labels (ensemble)\n")
    _summary("Flagged-set F1", flags2, egroups, lambda v: v[2])
    _summary("Ranking: average precision (AP)", aps2, egroups, lambda v: v)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
