"""Speed of `labelaudit score`: model inference beside a plain torch loop, and --cv probes.

    python benchmarks/score_speed.py inference [--device auto] [--rows 2048] [--image-size 224]
    python benchmarks/score_speed.py cv [--rows 100000] [--features 512] [--classes 100]

inference: a ResNet-18-sized network built here (no downloads), images as a seeded .npy file.
labelaudit's `score()` (the code behind the CLI, reading the file) runs beside a hand-written
loop (build the model, np.load, inference_mode, autocast, .to(device), softmax, .cpu()) with the
same model, precision and batch size, alternating, in one run; median rows/s and their ratio.

cv: `score --cv 5 --probe linear` on seeded Gaussian class clusters, timed, beside scikit-learn's
cross_val_predict(StandardScaler + LogisticRegression) on a subsample both run (--compare-rows).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "bench-data"
sys.path.insert(0, str(HERE))


class BasicBlock(torch.nn.Module):
    """Two 3x3 convolutions with a shortcut, as in ResNet-18."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(outputs)
        self.conv2 = torch.nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(outputs)
        self.shortcut = torch.nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = torch.nn.Sequential(
                torch.nn.Conv2d(inputs, outputs, 1, stride, bias=False),
                torch.nn.BatchNorm2d(outputs),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def build_model(classes: int = 1000) -> torch.nn.Module:
    """ResNet-18's layout (11.7M parameters at 1000 classes), seeded weights."""
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = [
        torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        torch.nn.BatchNorm2d(64),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(3, 2, 1),
    ]
    width = 64
    for stage, out in enumerate((64, 128, 256, 512)):
        for block in range(2):
            layers.append(BasicBlock(width, out, 2 if stage and not block else 1))
            width = out
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(512, classes)]
    return torch.nn.Sequential(*layers).eval()


def plain_loop(path: Path, device, dtype, batch: int) -> np.ndarray:
    """What a user would write by hand: build the model, load the array, loop, softmax."""
    model = build_model().to(device)
    images = np.load(path)
    out = []
    with (
        torch.inference_mode(),
        torch.autocast(device.type, dtype=dtype, enabled=dtype is not None),
    ):
        for start in range(0, len(images), batch):
            x = torch.from_numpy(images[start : start + batch]).to(device)
            out.append(torch.softmax(model(x).float(), dim=1).cpu())
    return torch.cat(out).numpy()


def inference(args: argparse.Namespace) -> None:
    from labelaudit.scoring.devices import resolve_device
    from labelaudit.scoring.run import DataOptions, RunOptions, score

    device = resolve_device(args.device)
    DATA.mkdir(exist_ok=True)
    path = DATA / f"images_{args.rows}_{args.image_size}.npy"
    if not path.exists():
        rng = np.random.default_rng(0)
        shape = (args.rows, 3, args.image_size, args.image_size)
        np.save(path, rng.standard_normal(shape, dtype=np.float32))
    precisions = {"fp32": None}
    if device.type == "cuda" or args.bf16_on_cpu:
        precisions["bf16"] = torch.bfloat16
    print(f"{args.rows:,} images 3x{args.image_size}x{args.image_size}, ResNet-18-sized model, "
          f"{device}, batch {args.batch_size}, {args.rounds} rounds (median rows/s)\n")  # fmt: skip
    print("| precision | plain loop rows/s | labelaudit score rows/s | labelaudit / plain |")
    print("| --- | ---: | ---: | ---: |")
    rates: dict[str, float] = {}
    for name, dtype in precisions.items():
        plain_loop(path, device, dtype, args.batch_size)  # warm up kernels and caches
        runs = RunOptions(
            device=args.device, precision=name, batch_size=args.batch_size, quiet=True
        )
        plain, ours = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            expected = plain_loop(path, device, dtype, args.batch_size)
            plain.append(args.rows / (time.perf_counter() - start))
            start = time.perf_counter()
            result = score(path, "score_speed:build_model", data_options=DataOptions(),
                           run_options=runs)  # fmt: skip
            ours.append(args.rows / (time.perf_counter() - start))
        got = result.predictions.drop("id").to_numpy()
        assert np.abs(got - expected).max() < (1e-4 if dtype is None else 2e-2)
        rates[name] = statistics.median(ours)
        ratio = statistics.median(ours) / statistics.median(plain)
        print(f"| {name} | {statistics.median(plain):,.0f} | {rates[name]:,.0f} | {ratio:.2f} |")
    if "bf16" in rates:
        print(f"\nlabelaudit bf16 / fp32: {rates['bf16'] / rates['fp32']:.2f}x")


def make_clusters(rows: int, features: int, classes: int) -> Path:
    """Seeded Gaussian classes, overlapping enough that a linear probe is far from perfect."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"cv_{rows}_{features}_{classes}.parquet"
    if not path.exists():
        rng = np.random.default_rng(0)
        means = rng.normal(size=(classes, features)).astype(np.float32) * 0.1
        labels = rng.integers(0, classes, size=rows)
        x = means[labels] + rng.standard_normal((rows, features), dtype=np.float32)
        pl.DataFrame({"id": np.arange(rows), "label": labels, "emb": x}).write_parquet(path)
    return path


def cross_validation(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from labelaudit.scoring.run import DataOptions, cross_validate

    options = DataOptions(features_col="emb")
    path = make_clusters(args.rows, args.features, args.classes)
    start = time.perf_counter()
    full = cross_validate(path, 5, data_options=options, device=args.device)
    seconds = time.perf_counter() - start
    print(f"score --cv 5 --probe linear, {args.rows:,} x {args.features} features, "
          f"{args.classes} classes, {full.summary['device']}: {seconds:.1f} s end to end "
          f"(training {full.summary['seconds']:.1f} s), out-of-fold accuracy "
          f"{full.summary['out_of_fold_accuracy']:.4f}, log loss "
          f"{full.summary['out_of_fold_log_loss']:.4f}\n")  # fmt: skip
    small = make_clusters(args.compare_rows, args.features, args.classes)
    frame = pl.read_parquet(small)
    x, y = np.stack(frame["emb"].to_numpy()), frame["label"].to_numpy()
    start = time.perf_counter()
    ours = cross_validate(small, 5, data_options=options, device=args.device)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    theirs = cross_val_predict(pipeline, x, y, cv=folds, method="predict_proba")
    theirs_s = time.perf_counter() - start
    picked = np.clip(theirs[np.arange(y.size), y], 1e-15, 1)
    print(f"On {args.compare_rows:,} rows, both in this run:\n")
    print("| job | seconds | out-of-fold accuracy | log loss |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| labelaudit score --cv 5 (linear) | {ours_s:.1f} | "
          f"{ours.summary['out_of_fold_accuracy']:.4f} | "
          f"{ours.summary['out_of_fold_log_loss']:.4f} |")  # fmt: skip
    print(f"| sklearn cross_val_predict(LogisticRegression) | {theirs_s:.1f} | "
          f"{(theirs.argmax(1) == y).mean():.4f} | {-np.log(picked).mean():.4f} |")  # fmt: skip
    print(f"\nsklearn / labelaudit time: {theirs_s / ours_s:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="job", required=True)
    infer = sub.add_parser("inference")
    infer.add_argument("--device", default="auto")
    infer.add_argument("--rows", type=int, default=2048)
    infer.add_argument("--image-size", type=int, default=224)
    infer.add_argument("--batch-size", type=int, default=256)
    infer.add_argument("--rounds", type=int, default=5)
    infer.add_argument("--bf16-on-cpu", action="store_true", help="Also time bf16 on the CPU.")
    cv = sub.add_parser("cv")
    cv.add_argument("--device", default="auto")
    cv.add_argument("--rows", type=int, default=100_000)
    cv.add_argument("--features", type=int, default=512)
    cv.add_argument("--classes", type=int, default=100)
    cv.add_argument("--compare-rows", type=int, default=20_000)
    args = parser.parse_args()
    inference(args) if args.job == "inference" else cross_validation(args)


if __name__ == "__main__":
    main()
