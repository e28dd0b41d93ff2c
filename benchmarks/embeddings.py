"""`scan --embeddings` on seeded embeddings: quality on planted problems, and time and memory
beside cleanlab's Datalab (near_duplicate, outlier) on the same input.

    python benchmarks/embeddings.py quality [--rows 100000] [--dim 128]
    python benchmarks/embeddings.py speed --rows 200000 --dim 256 [--datalab]
    python benchmarks/embeddings.py blend [--rows 100000] [--dim 128]

The input: Gaussian classes (20 classes; each row its class centre plus noise), 1% of rows
planted as near-duplicates of another row (a small perturbation), 0.5% as outliers (a class
centre plus three times the noise), and 5% of the labels flipped to another class. `quality`
runs `scan LABELS --embeddings EMB --issues-out` (no --preds: the neighbours' labels are the
scores) and prints duplicate-pair recall and the share of flagged rows outside planted pairs,
outlier average precision, and the kNN suspects' precision, recall and F1. `speed` times the
same scan in a fresh process (wall time, peak RSS); with --datalab, Datalab's find_issues on
the same vectors and labels beside it, and how far the two agree. `blend` asks whether the
neighbours' labels would rank label errors better beside a model's scores: a simulated model
(its own view of the rows, noisier) alone, the neighbours alone, and the mean of the two, each
ranked by labelaudit's default quality score (average precision of the flipped labels).
Inputs go under bench-data/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _processes import report_child, run_child, run_cli

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
CLASSES = 20
DUPLICATE_SHARE, OUTLIER_SHARE, FLIP_SHARE = 0.01, 0.005, 0.05


def make_input(rows: int, dim: int, seed: int = 0, noise: float = 0.9) -> Path:
    """Seeded labels, embeddings and the planted truth under bench-data/emb-ROWSxDIM/ (a
    noise other than 0.9: classes that overlap more, in their own folder)."""
    folder = DATA / (f"emb-{rows}x{dim}" + (f"-noise{noise:g}" if noise != 0.9 else ""))
    if (folder / "truth.npz").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLASSES, dim)).astype(np.float32)
    truth = rng.integers(0, CLASSES, rows)
    vectors = centres[truth] + rng.normal(scale=noise, size=(rows, dim)).astype(np.float32)
    shuffled = rng.permutation(rows)
    n_pairs = int(rows * DUPLICATE_SHARE / 2)
    copies, originals = shuffled[:n_pairs], shuffled[n_pairs : 2 * n_pairs]
    jitter = rng.normal(scale=0.02 * noise, size=(n_pairs, dim)).astype(np.float32)
    vectors[copies] = vectors[originals] + jitter
    truth[copies] = truth[originals]
    n_out = int(rows * OUTLIER_SHARE)
    outliers = shuffled[2 * n_pairs : 2 * n_pairs + n_out]
    far = rng.normal(scale=3 * noise, size=(n_out, dim)).astype(np.float32)
    vectors[outliers] = centres[truth[outliers]] + far
    given = truth.copy()
    flipped = rng.random(rows) < FLIP_SHARE
    given[flipped] = (truth[flipped] + rng.integers(1, CLASSES, int(flipped.sum()))) % CLASSES
    names = np.array([f"class_{c:02d}" for c in range(CLASSES)])
    pl.DataFrame({"id": np.arange(rows), "label": names[given]}).write_parquet(
        folder / "labels.parquet"
    )
    pl.DataFrame({"id": np.arange(rows), "embedding": vectors}).write_parquet(
        folder / "embeddings.parquet"
    )
    np.savez(folder / "truth.npz", copies=copies, originals=originals, outliers=outliers,
             flipped=flipped, given=given)  # fmt: skip
    return folder


def scan(folder: Path, out: Path) -> None:
    run_cli(["scan", str(folder / "labels.parquet"), "--embeddings",
             str(folder / "embeddings.parquet"), "--issues-out", str(out / "issues.parquet"),
             "--format", "json", "-o", str(out / "report.json")])  # fmt: skip


def average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    order = np.argsort(-score, kind="stable")
    hits = positive[order]
    precision = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(precision[hits].sum() / max(hits.sum(), 1))


def quality(rows: int, dim: int) -> None:
    folder = make_input(rows, dim)
    out = folder / "out"
    out.mkdir(exist_ok=True)
    started = time.perf_counter()
    scan(folder, out)
    seconds = time.perf_counter() - started
    truth = np.load(folder / "truth.npz")
    issues = pl.read_parquet(out / "issues.parquet").sort("id")
    sets = issues["near_duplicate_set"].fill_null(-1).to_numpy()
    copies, originals = truth["copies"], truth["originals"]
    found = (sets[copies] >= 0) & (sets[copies] == sets[originals])
    planted = np.zeros(rows, dtype=bool)
    planted[copies] = planted[originals] = True
    in_sets = sets >= 0
    outside = float((in_sets & ~planted).sum() / max(in_sets.sum(), 1))
    is_outlier = np.zeros(rows, dtype=bool)
    is_outlier[truth["outliers"]] = True
    outlier_ap = average_precision(is_outlier, issues["outlier_score"].to_numpy())
    suspects, flipped = issues["is_suspect"].to_numpy(), truth["flipped"]
    tp = float((suspects & flipped).sum())
    precision, recall = tp / max(suspects.sum(), 1), tp / max(flipped.sum(), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    report = json.loads((out / "report.json").read_text())
    print(f"| input | {rows:,} x {dim}, {CLASSES} classes |")
    print("| --- | --- |")
    print(f"| scan --embeddings --issues-out | {seconds:.1f} s "
          f"({report['neighbours']['search']}, recall "
          f"{report['neighbours']['measured_recall']}) |")  # fmt: skip
    print(f"| near-duplicate pairs found | {found.mean():.4f} of {copies.size:,} |")
    print(f"| flagged rows outside planted pairs | {outside:.4f} of {int(in_sets.sum()):,} |")
    print(f"| outlier average precision | {outlier_ap:.4f} ({is_outlier.sum():,} planted, "
          f"{report['outliers']['flagged']:,} flagged) |")  # fmt: skip
    print(f"| kNN suspects P / R / F1 | {precision:.4f} / {recall:.4f} / {f1:.4f} "
          f"({int(suspects.sum()):,} flagged, {int(flipped.sum()):,} flipped) |")  # fmt: skip


def datalab(folder: Path) -> dict[str, float]:
    """Datalab's near_duplicate and outlier checks on the same vectors (its defaults)."""
    from cleanlab import Datalab

    labels = pl.read_parquet(folder / "labels.parquet")["label"].to_numpy()
    vectors = np.stack(pl.read_parquet(folder / "embeddings.parquet")["embedding"].to_numpy())
    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    lab.find_issues(features=vectors, issue_types={"near_duplicate": {}, "outlier": {}})
    duplicates = lab.get_issues("near_duplicate")["is_near_duplicate_issue"].to_numpy()
    outliers = lab.get_issues("outlier")["is_outlier_issue"].to_numpy()
    np.savez(folder / "datalab.npz", duplicates=duplicates, outliers=outliers)
    return {}


def speed(rows: int, dim: int, rounds: int, with_datalab: bool) -> None:
    folder = make_input(rows, dim)
    (folder / "out").mkdir(exist_ok=True)
    script = str(Path(__file__).resolve())
    runs = [run_child(script, "ours", str(rows), str(dim)) for _ in range(rounds)]
    best = min(runs, key=lambda r: r["seconds"])
    print(f"| {rows:,} x {dim} | labelaudit scan --embeddings --issues-out | "
          f"{best['seconds']:.1f} s | {best['peak_mib']:,.0f} MiB |")  # fmt: skip
    if not with_datalab:
        return
    theirs = run_child(script, "datalab", str(rows), str(dim))
    ratio = theirs["seconds"] / best["seconds"]
    print(
        f"| {rows:,} x {dim} | cleanlab Datalab near_duplicate + outlier | "
        f"{theirs['seconds']:.1f} s ({ratio:.1f}x ours) | {theirs['peak_mib']:,.0f} MiB |"
    )
    ours = pl.read_parquet(folder / "out" / "issues.parquet").sort("id")
    found = np.load(folder / "datalab.npz")
    for name, mine, their in (
        ("near-duplicate rows", (ours["near_duplicate_set"].fill_null(-1) >= 0).to_numpy(),
         found["duplicates"]),
        ("outliers", ours["is_outlier"].to_numpy(), found["outliers"]),
    ):  # fmt: skip
        both = int((mine & their).sum())
        print(f"|  | agreement on {name} | ours {int(mine.sum()):,}, Datalab "
              f"{int(their.sum()):,}, both {both:,} | |")  # fmt: skip


def blend(rows: int, dim: int) -> None:
    import labelaudit
    from labelaudit.core import neighbourhood as nb
    from labelaudit.engines.vector_search import nearest_neighbours

    folder = make_input(rows, dim, noise=2.5)  # classes that overlap: neighbours err too
    truth = np.load(folder / "truth.npz")
    labels = pl.read_parquet(folder / "labels.parquet")
    vectors = np.stack(pl.read_parquet(folder / "embeddings.parquet")["embedding"].to_numpy())
    given = truth["given"]
    found = nearest_neighbours(vectors, 10, "cosine")
    weights = nb.closeness(found.distances)
    votes = nb.neighbour_votes(found.indices, given, CLASSES, weights)
    knn = nb.knn_probabilities(votes, weights.sum(axis=1), np.bincount(given) / rows, False)
    rng = np.random.default_rng(1)
    centres = np.stack([vectors[given == c].mean(axis=0) for c in range(CLASSES)])
    names = [f"class_{c:02d}" for c in range(CLASSES)]
    knn_accuracy = float((knn.argmax(axis=1) == given).mean())
    print(f"neighbours' accuracy on the given labels: {knn_accuracy:.3f}")
    print("| model noise | model accuracy | AP model | AP neighbours | AP mean of both | "
          "AP both as two models |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    for extra in (0.0, 2.0, 4.0):  # the model sees the rows through more noise: weaker
        view = vectors + rng.normal(scale=extra, size=vectors.shape).astype(np.float32)
        logits = -((view[:, None, :] - centres[None]) ** 2).sum(axis=2) / (2 * dim)
        model = np.exp(logits - logits.max(axis=1, keepdims=True))
        model /= model.sum(axis=1, keepdims=True)
        figures = []

        def frame(probs: np.ndarray) -> pl.DataFrame:
            return pl.DataFrame({"id": np.arange(rows), **dict(zip(names, probs.T, strict=True))})

        mean = frame((model + knn) / 2)
        for preds in (frame(model), frame(knn), mean, [frame(model), frame(knn)]):
            report = labelaudit.scan(labels, preds)
            quality = report.issues.sort("id")["label_quality"].to_numpy()
            figures.append(average_precision(truth["flipped"], -quality))
        accuracy = float((model.argmax(axis=1) == given).mean())
        print(f"| {extra:g} | {accuracy:.3f} | " + " | ".join(f"{f:.4f}" for f in figures) + " |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        which, rows, dim = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        folder = DATA / f"emb-{rows}x{dim}"
        job = (lambda: scan(folder, folder / "out")) if which == "ours" else (
            lambda: datalab(folder))  # fmt: skip
        report_child(job)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("quality", "speed", "blend"))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--datalab", action="store_true")
    args = parser.parse_args()
    if args.what == "quality":
        quality(args.rows, args.dim)
    elif args.what == "blend":
        blend(args.rows, args.dim)
    else:
        speed(args.rows, args.dim, args.rounds, args.datalab)


if __name__ == "__main__":
    main()
