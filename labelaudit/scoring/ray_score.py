"""`score --engine ray`: the local scorer run by a pool of Ray actors, one shard of the rows at a
time, each shard written as its own parquet file.

Ray Data schedules the shards (`from_items`, `map_batches` with an actor class): each actor loads
the model once (on its GPU when it has one) and scores the shards it is given with the local
`score` (the rows of shard i of n by the stable id hash of `--shard`), so the numbers are the
local engine's. The shards are written into a fresh folder beside the output, renamed into place
when every shard is done: an interrupted or failed run leaves nothing behind.
"""

from __future__ import annotations

import gc
import os
import pickle
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from labelaudit.engines.ray_engine import ray_session
from labelaudit.errors import InputError, LabelAuditError

SHARDS_PER_WORKER = 4  # shards a worker scores on average: balances uneven shards


class _ShardScorer:
    """A Ray actor: the model loaded once; each call scores one shard and writes its file."""

    def __init__(self, data: str, model: str, weights: str | None, data_options: Any,
                 run_options: Any, folder: str, n_shards: int, cwd: str) -> None:  # fmt: skip
        from labelaudit.scoring import run
        from labelaudit.scoring.devices import resolve_device

        if os.path.isdir(cwd):  # relative paths mean the driver's folder
            os.chdir(cwd)
        self.run = run
        self.args = (data, model, weights, data_options, run_options, folder, n_shards)
        self.error: BaseException | None = None
        try:
            device = resolve_device(run_options.device)
            self.module = run.load_scoring_model(model, weights, device, run_options.compile)
        except LabelAuditError as exc:  # reported with the first shard, on the driver
            self.error = exc

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from labelaudit.io.writers import write_frame

        data, model, weights, data_options, run_options, folder, n_shards = self.args
        shard = int(batch["shard"][0])
        out: Any = self.error
        if out is None:
            try:
                options = replace(run_options, shard=f"{shard}/{n_shards}", skip_empty=True)
                result = self.run.score(
                    data, model, weights=weights, data_options=data_options,
                    run_options=options, module=self.module,
                )  # fmt: skip
                if result.predictions.height:
                    path = Path(folder) / f"part-{shard:05d}.parquet"
                    write_frame(path, result.predictions)
                out = (result.summary, result.warnings)
            except LabelAuditError as exc:
                out = exc
        return {"out": np.array([pickle.dumps(out)], dtype=object)}


def score_on_ray(
    data: str,
    model: str,
    weights: str | None,
    data_options: Any,
    run_options: Any,
    output: str,
    address: str | None,
    workers: int | None,
    gpus_per_worker: float | None,
) -> dict[str, Any]:
    """Score DATA into the folder OUTPUT (part-NNNNN.parquet files); returns the summary."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1 with --engine ray; found {workers}.")
    target = Path(output)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(
            f"-o '{output}': with --engine ray the predictions are a folder of parquet shards, "
            "and this path is a file or a folder that is not empty. Name a new folder."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)
    started = time.perf_counter()
    try:
        with ray_session(address) as ray:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            gpus = gpus_per_worker if gpus_per_worker is not None else _default_gpus(ray)
            _require_gpus(ray, gpus)
            pool = workers or (max(int(ray.cluster_resources().get("GPU", 0)), 1) if gpus else cpus)
            n_shards = max(pool * SHARDS_PER_WORKER, 1)
            items = [{"shard": i} for i in range(n_shards)]
            options = replace(run_options, quiet=True, workers=0)
            scored = ray.data.from_items(items, override_num_blocks=n_shards).map_batches(
                _ShardScorer,
                batch_size=1,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=pool),
                num_gpus=gpus or None,
                num_cpus=1 if not gpus else None,
                fn_constructor_kwargs={
                    "data": data, "model": model, "weights": weights,
                    "data_options": data_options, "run_options": options,
                    "folder": staging, "n_shards": n_shards, "cwd": os.getcwd(),
                },
            )  # fmt: skip
            failure: BaseException | None = None
            try:
                summaries, warnings = _collect(scored)
            except LabelAuditError as exc:  # raised after Ray is shut down (see below)
                failure = exc.with_traceback(None)
            del scored
            gc.collect()  # Ray Data's iterator, freed later, would start a new Ray and hang
        if failure is not None:
            raise failure
        if not any(s.get("rows") for s in summaries):
            raise InputError(f"'{data}' holds no rows to score.")
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started  # Ray's start included: what the user waits
    rows = sum(s.get("rows", 0) for s in summaries)
    first = next((s for s in summaries if s.get("rows")), {})
    return {
        **first,
        "rows": rows,
        "skipped": sum(s.get("skipped", 0) for s in summaries),
        "shard": None,
        "ray": f"Ray: {pool} worker{'s' if pool != 1 else ''} over {n_shards} shards",
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / max(seconds, 1e-9), 1),
        "warnings": warnings,
    }


def _require_gpus(ray: Any, per_worker: float) -> None:
    """A worker asking for more GPUs than the cluster has would wait for them for ever."""
    have = ray.cluster_resources().get("GPU", 0)
    if per_worker and per_worker > have:
        raise InputError(
            f"--num-gpus-per-worker {per_worker:g}: the Ray cluster has {have:g} GPUs, so no "
            "worker could start. Give --num-gpus-per-worker 0 to score on CPUs, or a cluster "
            "with GPUs (--ray-address)."
        )


def _default_gpus(ray: Any) -> float:
    """One GPU a worker when the cluster has GPUs, else none (CPU workers)."""
    return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def _collect(scored: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Every shard's summary and warnings; the first error a shard met, raised here."""
    summaries, warnings = [], []
    rows = iter(scored.iter_rows())
    while True:
        try:
            row = next(rows, None)
        except Exception as exc:  # a worker that died: a clear message, never Ray's trace
            raise LabelAuditError(f"a Ray worker failed while scoring: {exc}") from None
        if row is None:
            return summaries, warnings
        out = pickle.loads(row["out"])
        if isinstance(out, BaseException):
            raise out
        summary, shard_warnings = out
        summaries.append(summary)
        warnings += [w for w in shard_warnings if w not in warnings]
