"""labelaudit's consensus and annotator quality beside majority vote, crowd-kit (Dawid-Skene,
One-coin Dawid-Skene, GLAD, MACE) and cleanlab's CROWDLAB, on families of real and simulated
crowds (benchmarks/crowd_families.py), in one run; prints markdown tables.

    python benchmarks/crowd_real.py [--seeds 3] [--anchors-venv /tmp/crowdkit-venv] [--lofo]

The anchors run in their own virtual environment (made when absent:
`python3 -m venv /tmp/crowdkit-venv && /tmp/crowdkit-venv/bin/pip install crowd-kit cleanlab`),
through benchmarks/crowd_anchors.py, and are cached under /tmp/crowd-anchor-cache (they are
slow: pandas). The real crowds are read from ../shared/data/real-crowd; families whose data is
absent are skipped, with a line saying so.

Measures, per family and seed: consensus accuracy against the true labels; the Spearman
correlation of each annotator's estimated quality with its true accuracy (annotators whose
quality is estimated); and the average precision of the consensus quality at finding the wrong
consensus labels. `--lofo` chooses the consensus settings leave-one-family-out (docs/annotators.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import crowd_families as cf  # noqa: E402

from labelaudit.core.annotators import Annotations, majority_vote  # noqa: E402

CACHE = Path("/tmp/crowd-anchor-cache")
NO_MODEL_ANCHORS = ("ds", "onecoin", "glad", "mace")
MODEL_ANCHORS = ("crowdlab",)


def ensure_venv(venv: Path) -> Path | None:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"making the anchors' venv {venv} (crowd-kit, cleanlab) ...", file=sys.stderr)
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
        if not made or subprocess.run([str(python), "-m", "pip", "install", "-q", "crowd-kit",
                                       "cleanlab"]).returncode:  # fmt: skip
            print("no anchors: the venv could not be made", file=sys.stderr)
            return None
    return python


def anchors(python: Path | None, crowd: cf.Crowd, key: str, with_model: bool) -> dict:
    """The anchors' labels and skills for this crowd (cached by family and seed)."""
    if python is None:
        return {}
    CACHE.mkdir(exist_ok=True)
    target = CACHE / f"{key}.npz"
    if not target.exists():
        methods = MODEL_ANCHORS if with_model else NO_MODEL_ANCHORS
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "in.npz"
            extra = {"pred_probs": crowd.probs} if with_model else {}
            np.savez(source, item=crowd.item, annotator=crowd.annotator, label=crowd.label,
                     n_items=crowd.n_items, n_annotators=crowd.n_annotators,
                     n_classes=crowd.n_classes, **extra)  # fmt: skip
            done = subprocess.run([str(python), str(HERE / "crowd_anchors.py"), str(source),
                                   str(target), *methods])  # fmt: skip
            if done.returncode:
                print(f"anchors failed on {key}", file=sys.stderr)
                return {}
    with np.load(target) as data:
        return {k: data[k] for k in data.files}


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 3:
        return float("nan")
    rx = _ranks(x[ok])
    ry = _ranks(y[ok])
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share theirs)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(x.size)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, ranks)
    return sums[inverse] / counts[inverse]


def average_precision(wrong: np.ndarray, score: np.ndarray) -> float:
    """AP of `score` (higher = more likely wrong) at finding the `wrong` items."""
    if not wrong.any():
        return float("nan")
    order = np.argsort(-score, kind="stable")
    hits = wrong[order].astype(float)
    precision = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float((precision * hits).sum() / hits.sum())


def to_annotations(crowd: cf.Crowd) -> Annotations:
    return Annotations(crowd.item, crowd.annotator, crowd.label, crowd.n_items,
                       crowd.n_annotators, crowd.n_classes)  # fmt: skip


def measure(crowd: cf.Crowd, labels: np.ndarray, skill: np.ndarray | None,
            quality: np.ndarray | None) -> dict[str, float]:  # fmt: skip
    right = labels == crowd.truth
    out = {"acc": float(right.mean())}
    if skill is not None:
        out["rho"] = spearman(skill, crowd.worker_accuracy)
    if quality is not None:
        out["ap"] = average_precision(~right, -quality)
    return out


def candidates() -> dict[str, object]:
    """The consensus rules the leave-one-family-out choice is made among."""
    from labelaudit.core.consensus import Settings

    inf = float("inf")
    return {
        "dawid_skene (before)": Settings(
            method="dawid_skene", cap=False, warm=False, leave_one_out="none"
        ),
        "dawid_skene, cap": Settings(method="dawid_skene", warm=False),
        "one_coin": Settings(method="one_coin", row_strength=inf),
        "pooled s=inf": Settings(row_strength=inf),
        "pooled s=32": Settings(row_strength=32.0),
        "pooled s=128": Settings(row_strength=128.0),
        "pooled s=EB": Settings(),
        "pooled s=EB, no leave-one-out": Settings(leave_one_out="none"),
        "pooled s=EB, leave-one-out everywhere": Settings(leave_one_out="all"),
        "pooled s=EB, one weight": Settings(per_count=False),
    }


def ours(crowd: cf.Crowd, settings: object, model_as_annotator: bool = False) -> dict:
    """labelaudit's consensus (the model as each item's prior, or, as before this change, as one
    more annotator), its annotator quality and its consensus quality."""
    from labelaudit.core import consensus as cons

    a = to_annotations(crowd)
    started = time.perf_counter()
    models = None if crowd.probs is None else [crowd.probs]
    if model_as_annotator and models:
        a = Annotations(np.r_[a.item, np.arange(a.n_items)],
                        np.r_[a.annotator, np.full(a.n_items, a.n_annotators)],
                        np.r_[a.label, crowd.probs.argmax(axis=1)], a.n_items,
                        a.n_annotators + 1, a.n_classes)  # fmt: skip
        models = None
    fit = cons.fit(a, models, settings)
    quality = cons.annotator_quality(a, fit)
    seconds = time.perf_counter() - started
    skill = np.where(quality.known, quality.quality, np.nan)[: crowd.n_annotators]
    return {**measure(crowd, fit.label, skill, fit.quality), "s": seconds}


def majority(crowd: cf.Crowd) -> dict:
    """labelaudit's majority vote (ties to the lowest class index), measured afresh every run:
    never from the cache, so the baseline is always the function the report uses."""
    mv = majority_vote(to_annotations(crowd))
    agree = (crowd.label == mv[crowd.item]).astype(float)
    skill = np.bincount(crowd.annotator, agree, crowd.n_annotators) / crowd.worker_labels
    return measure(crowd, mv, skill, None)


def baselines(python: Path | None, crowd: cf.Crowd, key: str, with_model: bool) -> dict:
    rows = {}
    if with_model:
        model = crowd.probs.argmax(axis=1)
        rows["model"] = measure(crowd, model, None, crowd.probs.max(axis=1))
    found = anchors(python, crowd, key, with_model)
    for method in MODEL_ANCHORS if with_model else NO_MODEL_ANCHORS:
        if f"{method}_labels" in found:
            rows[method] = measure(crowd, found[f"{method}_labels"], found[f"{method}_skill"],
                                   found.get(f"{method}_quality"))  # fmt: skip
    return rows


RESULTS = Path("/tmp/crowd-results.json")


def evaluate(python: Path | None, families: list[cf.Family], seeds: int) -> dict:
    """results[family][method] = one dict of measures per seed. labelaudit's rows are cached
    under a hash of core/consensus.py (a change of the code measures them again)."""
    import hashlib
    import json

    code = (HERE.parent / "labelaudit" / "core" / "consensus.py").read_bytes()
    version = hashlib.sha256(code).hexdigest()[:12]
    cache = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results: dict = {}
    for family in families:
        rows: dict[str, list] = {}
        for seed in range(seeds):
            crowd = family.draw(seed)
            key = f"{family.name}|{seed}"
            if key in cache:
                found = dict(cache[key])
            else:
                found = baselines(python, crowd, key.replace("|", "-"), family.with_model)
                if python is not None:
                    cache[key] = found
            found["mv"] = majority(crowd)
            for name, settings in candidates().items():
                if name.endswith("one weight") and not family.with_model:
                    continue
                mine = f"{key}|{name}|{version}"
                if mine not in cache:
                    cache[mine] = ours(crowd, settings)
                found[name] = cache[mine]
            if family.with_model:
                mine = f"{key}|model as annotator (before)|{version}"
                if mine not in cache:
                    cache[mine] = ours(crowd, candidates()["dawid_skene (before)"], True)
                found["model as annotator (before)"] = cache[mine]
            for name, measured in found.items():
                rows.setdefault(name, []).append(measured)
            RESULTS.write_text(json.dumps(cache))
        results[family.name] = rows
        print(f"measured {family.name}", file=sys.stderr, flush=True)
    return results


def mean(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if key in r and not np.isnan(r[key])]
    return float(np.mean(values)) if values else float("nan")


def noise(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if key in r]
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def choose(results: dict, families: list[str], rules: list[str], key: str = "acc") -> str:
    """The rule that may replace majority vote on these families: not worse than it on any by
    more than that family's run-to-run noise (the larger seed-to-seed standard deviation of the
    two), and better on the mean; the best such on the mean; majority vote when none is."""
    best, found = 0.0, "mv"
    for rule in rules:
        gains, fair = [], True
        for name in families:
            rows = results[name]
            gain = mean(rows[rule], key) - mean(rows["mv"], key)
            fair &= gain >= -max(noise(rows[rule], key), noise(rows["mv"], key))
            gains.append(gain)
        if fair and float(np.mean(gains)) > best:
            best, found = float(np.mean(gains)), rule
    return found


def lofo(results: dict, families: list[str], rules: list[str]) -> list[list[str]]:
    """Leave-one-family-out: for each family, the rule chosen on the others and how it does on
    the family left out."""
    rows = []
    for held in families:
        chosen = choose(results, [f for f in families if f != held], rules)
        r = results[held]
        anchors = [m for m in ("ds", "onecoin", "glad", "mace", "crowdlab") if m in r]
        best = max(anchors, key=lambda m: mean(r[m], "acc")) if anchors else None
        rows.append([held, chosen, f"{mean(r[chosen], 'acc'):.4f}", f"{mean(r['mv'], 'acc'):.4f}",
                     "-" if best is None else f"{best} {mean(r[best], 'acc'):.4f}",
                     f"{noise(r['mv'], 'acc'):.4f}"])  # fmt: skip
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def shown(rows: list[dict], key: str, spread: bool = False) -> str:
    value = mean(rows, key)
    if np.isnan(value):
        return "-"
    return f"{value:.4f}" + (f" ± {noise(rows, key):.4f}" if spread else "")


def report(results: dict, default: str) -> None:
    """Per family: every method's consensus accuracy, quality Spearman and consensus AP."""
    for name, rows in results.items():
        print(f"\n#### {name}\n")
        body = [[method, shown(r, "acc", True), shown(r, "rho"), shown(r, "ap"),
                 f"{mean(r, 's'):.2f}" if "s" in r[0] else "-"]
                for method, r in rows.items()]  # fmt: skip
        body.sort(key=lambda row: row[0] != default)
        print(table(["method", "accuracy (± seeds' sd)", "Spearman", "AP", "s"], body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--anchors-venv", type=Path, default=Path("/tmp/crowdkit-venv"))
    parser.add_argument("--anchors-only", action="store_true")
    parser.add_argument("--no-anchors", action="store_true", help="labelaudit and MV only")
    parser.add_argument("--only", default="", help="families whose name contains this")
    args = parser.parse_args()
    python = None if args.no_anchors else ensure_venv(args.anchors_venv)
    if not cf.CIFAR10N.exists():
        print(f"(no real crowd at {cf.CIFAR10N}: the real families are skipped)")
    families = [f for f in cf.families() if args.only in f.name]
    if args.anchors_only:
        for family in families:
            for seed in range(args.seeds):
                anchors(python, family.draw(seed), f"{family.name}-{seed}", family.with_model)
                print(f"anchors done: {family.name} seed {seed}", flush=True)
        return
    results = evaluate(python, families, args.seeds)
    rules = list(candidates())
    for with_model in (False, True):
        names = [f.name for f in families if f.with_model == with_model]
        if not names:
            continue
        usable = [r for r in rules if not (r.endswith("one weight") and not with_model)]
        default = choose(results, names, usable)
        print(f"\n### {'with' if with_model else 'without'} a model: chosen on all families: "
              f"{default}\n")  # fmt: skip
        print(table(["family left out", "chosen on the others", "its accuracy", "majority vote",
                     "best anchor", "noise (sd)"], lofo(results, names, usable)))  # fmt: skip
        report({n: results[n] for n in names}, default)


if __name__ == "__main__":
    main()
