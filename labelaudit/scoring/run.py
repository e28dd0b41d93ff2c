"""`score()` and `cross_validate()`: read the data, run the model or the probes, build the table.

Both return a ScoreResult whose `predictions` frame (id + one column per class) is what
`labelaudit scan --preds` reads.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from labelaudit._deps import import_optional
from labelaudit._text import human_line
from labelaudit.errors import InputError
from labelaudit.io.features import FeatureSet, load_features
from labelaudit.io.images import IMAGENET_MEAN, IMAGENET_STD, list_image_folder
from labelaudit.io.labels import describe_ids
from labelaudit.io.predictions import read_class_file
from labelaudit.io.topk import topk_lists

torch = import_optional("torch")

from labelaudit.scoring import batches as batching  # noqa: E402  (after the torch check)
from labelaudit.scoring.devices import resolve_device, resolve_precision  # noqa: E402
from labelaudit.scoring.inference import run_inference  # noqa: E402
from labelaudit.scoring.models import load_model  # noqa: E402
from labelaudit.scoring.probes import ProbeSettings, cross_val_predict  # noqa: E402
from labelaudit.scoring.progress import Progress, wanted  # noqa: E402
from labelaudit.scoring.quiet import torch_silenced  # noqa: E402
from labelaudit.scoring.shards import parse_shard, shard_mask  # noqa: E402

AUTO_BATCH = {"cpu": 256}
AUTO_BATCH_ACCELERATOR = 1024


@dataclass(frozen=True)
class DataOptions:
    """How DATA is read: a features table / .npy, or an image folder."""

    id_col: str = "id"
    label_col: str = "label"
    features_col: str | None = None
    input_shape: tuple[int, ...] | None = None
    input_format: str | None = None
    classes_file: str | None = None
    image_size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    strict: bool = False


@dataclass(frozen=True)
class RunOptions:
    """Where and how the model runs."""

    device: str = "auto"
    precision: str = "auto"
    batch_size: int | None = None
    workers: int | None = None
    compile: bool = False
    shard: str | None = None
    multi_label: bool = False
    logits: bool = False
    quiet: bool = False
    top_k: int | None = None  # write each row's k most probable classes (io/topk.py)
    skip_empty: bool = False  # an empty shard gives an empty table, not an error (Ray tasks)


@dataclass
class ScoreResult:
    """The predictions table, the labels that came with the data (if any), and a summary."""

    predictions: pl.DataFrame
    labels: pl.DataFrame | None
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Printed to stderr one a line: a file or class name in one cannot break the line.
        self.warnings = [human_line(w) for w in self.warnings]


def score(
    data: str | os.PathLike[str],
    model: str,
    *,
    weights: str | None = None,
    data_options: DataOptions | None = None,
    run_options: RunOptions | None = None,
    module: Any = None,
) -> ScoreResult:
    """Score DATA (features or an image folder) with MODEL; see docs/score.md. `module`: MODEL
    already loaded on its device (a Ray actor loads it once for all its shards)."""
    data_options = data_options or DataOptions()
    run = run_options or RunOptions()
    shard, n_shards = parse_shard(run.shard) if run.shard else (0, 1)
    device = resolve_device(run.device)
    autocast = resolve_precision(run.precision, device)
    _check_sizes(run)
    names = read_class_file(data_options.classes_file) if data_options.classes_file else None
    if module is None:
        module = load_scoring_model(model, weights, device, run.compile)
    pin = device.type == "cuda"
    batch_size = run.batch_size or AUTO_BATCH.get(device.type, AUTO_BATCH_ACCELERATOR)
    warnings: list[str] = []
    if Path(data).is_dir():
        folder = list_image_folder(data)
        rows = np.flatnonzero(shard_mask(folder.ids, shard, n_shards))
        ids, labels = folder.ids.gather(rows), folder.labels.gather(rows)
        names = names if names is not None else folder.classes
        dataset = batching.ImageRows(
            folder, rows, data_options.image_size, data_options.mean, data_options.std
        )
        workers = run.workers if run.workers is not None else min(8, os.cpu_count() or 1)
        source = batching.image_batches(dataset, batch_size, workers, pin)
        kind = "image folder"
    else:
        features = _read_features(data, data_options)
        keep = shard_mask(features.ids, shard, n_shards)
        ids = features.ids.filter(pl.Series(keep))
        labels = features.labels.filter(pl.Series(keep)) if features.labels is not None else None
        source = batching.feature_batches(features.features[keep], batch_size, pin)
        kind = "features"
    if ids.len() == 0 and run.skip_empty:
        empty = ScoreResult(pl.DataFrame(), None, {"rows": 0, "skipped": 0, "seconds": 0.0}, [])
        return empty
    if ids.len() == 0:
        raise InputError(f"Shard {shard}/{n_shards} of '{data}' holds no rows; use fewer shards.")
    progress = Progress(ids.len(), "labelaudit score", wanted(run.quiet))

    def stop_on_error(message: str) -> None:
        if data_options.strict:
            raise InputError(
                f"An image could not be decoded ({message}). Fix or remove it, or drop --strict "
                "to skip undecodable images (they are counted in the summary)."
            )

    started = time.perf_counter()
    with torch_silenced():
        result = run_inference(
            module,
            source,
            n_rows=ids.len(),
            device=device,
            autocast_dtype=autocast,
            activation="logits" if run.logits else ("sigmoid" if run.multi_label else "softmax"),
            batch_size=batch_size,
            halve_on_oom=run.batch_size is None,
            expected_width=None if names is None else len(names),
            progress=progress,
            on_error=stop_on_error,
        )
    seconds = time.perf_counter() - started
    width = result.outputs.shape[1]
    names = names if names is not None else [str(j) for j in range(width)]
    if run.top_k is not None:  # never the wide table: N x k lists straight from the outputs
        every = bool(result.ok.all())
        scores = result.outputs if every else result.outputs[result.ok]
        kept = ids if every else ids.filter(pl.Series(result.ok))
        predictions = topk_lists(kept, scores, names, run.top_k)
    else:
        predictions = _frame(ids, result.outputs, names, result.ok)
    if not result.ok.all():
        failed = int((~result.ok).sum())
        warnings.append(
            f"{failed:,} image(s) could not be decoded and were skipped (first: "
            f"{result.errors[0]}). Pass --strict to stop at the first one instead."
        )
    label_frame = None
    if labels is not None:
        label_frame = pl.DataFrame({"id": ids, "label": labels}).filter(pl.Series(result.ok))
    summary = {
        "mode": "model",
        "data": kind,
        "rows": predictions.height,
        "skipped": int((~result.ok).sum()),
        "classes": width,
        "shard": f"{shard}/{n_shards}",
        "device": str(device),
        "precision": _precision_name(autocast),
        "batch_size": result.batch_size,
        "seconds": round(seconds, 3),
        "rows_per_second": round(ids.len() / max(seconds, 1e-9), 1),
        "output": "logits" if run.logits else ("sigmoid" if run.multi_label else "softmax"),
    }
    return ScoreResult(predictions, label_frame, summary, warnings)


def load_scoring_model(model: str, weights: str | None, device: Any, compile: bool) -> Any:
    """MODEL (and its weights) on `device`, compiled when asked, torch's chatter silenced."""
    with torch_silenced():  # torch's logs and warnings: labelaudit says what matters itself
        module = load_model(model, weights).to(device)
        if compile:
            module = torch.compile(module)
    return module


def cross_validate(
    data: str | os.PathLike[str],
    folds: int,
    *,
    settings: ProbeSettings | None = None,
    data_options: DataOptions | None = None,
    device: str = "auto",
    quiet: bool = True,
    report: Any = None,
    top_k: int | None = None,
) -> ScoreResult:
    """Out-of-fold probabilities of probes trained on the labeled features in DATA (`top_k`:
    each row's k most probable classes as lists instead of one column per class)."""
    settings = settings or ProbeSettings()
    data_options = data_options or DataOptions()
    if folds < 2:
        raise InputError(f"--cv needs at least 2 folds; found {folds}.")
    if Path(data).is_dir():
        raise InputError(
            f"--cv trains probes on features, but '{data}' is a folder. Give a features table "
            "with an id, a label and the feature columns (e.g. embeddings)."
        )
    _check_probe_settings(settings)
    where = resolve_device(device)
    features = _read_features(data, data_options, shaped=False)
    if folds > features.n_rows:
        raise InputError(
            f"--cv {folds} asks for more folds than '{data}' has rows ({features.n_rows:,}); "
            "each fold needs rows to predict. Use fewer folds (5 or 10 is usual)."
        )
    names, codes = _encode_labels(features, data_options)
    warnings = _small_class_warnings(names, codes, folds)
    flat = features.features.reshape(features.n_rows, -1)

    def tell(fold: int, epochs: int) -> None:
        if report is not None and not quiet:
            report(f"fold {fold + 1}/{folds}: best epoch {epochs}")

    started = time.perf_counter()
    with torch_silenced():
        result = cross_val_predict(flat, codes, len(names), folds, settings, where, tell)
    seconds = time.perf_counter() - started
    if top_k is not None:
        predictions = topk_lists(features.ids, result.probabilities, names, top_k)
    else:
        predictions = _frame(features.ids, result.probabilities, names, None)
    summary = {
        "mode": "cv",
        "probe": settings.kind,
        "folds": folds,
        "rows": features.n_rows,
        "features": flat.shape[1],
        "classes": len(names),
        "device": str(where),
        "out_of_fold_accuracy": round(result.accuracy(codes), 6),
        "out_of_fold_log_loss": round(result.log_loss(codes), 6),
        "best_epochs": result.epochs,
        "seconds": round(seconds, 3),
    }
    labels = pl.DataFrame({"id": features.ids, "label": features.labels})
    return ScoreResult(predictions, labels, summary, warnings)


def _read_features(
    data: str | os.PathLike[str], options: DataOptions, shaped: bool = True
) -> FeatureSet:
    return load_features(
        data,
        id_col=options.id_col,
        label_col=options.label_col,
        features_col=options.features_col,
        input_shape=options.input_shape if shaped else None,
        input_format=options.input_format,
    )


def _encode_labels(features: FeatureSet, options: DataOptions) -> tuple[list[str], np.ndarray]:
    labels = features.labels
    if labels is None:
        raise InputError(
            f"--cv trains on labels, but '{features.source}' has no label column "
            f"'{options.label_col}'. Name it with --label-col."
        )
    if labels.null_count():
        missing = labels.is_null().to_numpy()
        raise InputError(
            f"The label column '{options.label_col}' has {labels.null_count():,} empty values "
            f"(ids {describe_ids(features.ids, missing)}); --cv needs a label on every row."
        )
    if labels.dtype.is_float() or isinstance(labels.dtype, pl.List):
        raise InputError(
            f"The label column '{options.label_col}' holds {labels.dtype}; --cv needs one class "
            "a row (integers or names). Multi-label probes are not supported."
        )
    text = labels.cast(pl.String)
    if options.classes_file:
        names = read_class_file(options.classes_file)
    else:
        uniques = labels.unique().sort()
        names = uniques.cast(pl.String).to_list()
    lookup = {name: code for code, name in enumerate(names)}
    codes = text.replace_strict(lookup, default=-1, return_dtype=pl.Int64).to_numpy()
    if (codes < 0).any():
        unknown = text.filter(pl.Series(codes < 0)).unique().head(5).to_list()
        raise InputError(
            f"Labels {unknown} are not in --classes '{options.classes_file}'. Add them or fix "
            "the labels."
        )
    return names, codes


def _small_class_warnings(names: list[str], codes: np.ndarray, folds: int) -> list[str]:
    counts = np.bincount(codes, minlength=len(names))
    small = [names[j] for j in np.flatnonzero((counts > 0) & (counts < folds))]
    if not small:
        return []
    return [
        f"{len(small)} class(es) have fewer rows than folds ({', '.join(small[:5])}): some folds "
        "train without them, so their rows will look mislabeled. Use fewer folds or more data."
    ]


def _frame(ids: pl.Series, scores: np.ndarray, names: list[str], ok: np.ndarray | None) -> Any:
    if "id" in names:
        raise InputError("A class is named 'id', which clashes with the id column; rename it.")
    frame = pl.from_numpy(scores, schema=names, orient="row").with_columns(ids.alias("id"))
    frame = frame.select("id", *names)
    return frame if ok is None else frame.filter(pl.Series(ok))


def _check_probe_settings(settings: ProbeSettings) -> None:
    """Settings that would train nothing or diverge are bad input, not a bug."""
    checks = [
        (settings.max_epochs >= 1, f"--epochs must be at least 1; found {settings.max_epochs}."),
        (settings.hidden >= 1, f"--hidden must be at least 1; found {settings.hidden}."),
        (settings.patience >= 1, f"--patience must be at least 1; found {settings.patience}."),
        (
            settings.batch_size is None or settings.batch_size >= 0,
            f"--batch-size must be 0 (full batch) or more; found {settings.batch_size}.",
        ),
        (
            math.isfinite(settings.lr) and settings.lr > 0,
            f"--lr must be a finite number above 0; found {settings.lr}.",
        ),
        (
            math.isfinite(settings.weight_decay) and settings.weight_decay >= 0,
            f"--weight-decay must be a finite number, 0 or more; found {settings.weight_decay}.",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)


def _check_sizes(run: RunOptions) -> None:
    if run.batch_size is not None and run.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1; found {run.batch_size}.")
    if run.workers is not None and run.workers < 0:
        raise InputError(f"--workers must be 0 or more; found {run.workers}.")


def _precision_name(dtype: Any) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
