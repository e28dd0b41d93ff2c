"""`--engine ray`: scan's passes as Ray tasks, each reading a range of the predictions' rows where
it runs and shipping back its chunks' sums; the driver merges them by the local rules.

Ray Data schedules the tasks (`from_items` over row ranges, `map_batches` one range a task, in
order); each task reads its range with the local reader (`ScoreMatrix.stream`, polars), so values
and types are the local engine's. The driver holds what the local engine holds (labels, the join,
per-row evidence) and writes the report and the issues file. Imported only with --engine ray.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from labelaudit._deps import import_optional
from labelaudit.core.accumulators import ClassSums
from labelaudit.core.scores import to_probabilities
from labelaudit.errors import InputError
from labelaudit.io.dataset import Dataset, rows_of_block
from labelaudit.io.predictions import ScoreMatrix
from labelaudit.pipelines.chunk_parts import (
    ChunkPart,
    MultilabelChunkPart,
    multilabel_pass_one_chunk,
    multilabel_pass_two_chunk,
    pass_one_chunk,
    replay_multilabel,
    replay_pass_one,
)
from labelaudit.pipelines.passes import MulticlassEvaluation, MultilabelEvaluation

CONNECT_SECONDS = 5  # how long a --ray-address gets to answer before exit 2
TASK_CHUNKS = 32  # at most this many chunks of --chunk-rows rows a task reads (its range)
TASKS_PER_CPU = 2  # ranges cut smaller until the cluster's cores have this many tasks each


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Ray connected to `address` (else RAY_ADDRESS, else a local instance with this machine's
    cores, shut down on leaving); an instance already running in this process is reused."""
    ray = import_optional("ray")
    import_optional("ray.data")
    started = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS") or None
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
        handlers = _signal_handlers()
        try:
            if address:
                _reachable(address)
                ray.init(address=address, **quiet)
            else:
                ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
            raise InputError(
                f"--engine ray could not start or reach {where} ({exc}). Check --ray-address "
                "(or RAY_ADDRESS), or run with --engine local."
            ) from exc
        finally:
            _restore(handlers)  # Ray's own SIGTERM handler would skip labelaudit's clean-up
        started = True
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    terminal = sys.stderr.isatty()  # Ray's progress bars on a terminal, quiet otherwise
    context.enable_progress_bars = terminal
    # A task's error comes back as labelaudit's own message: Ray's log of it would repeat it.
    ray_data_log = logging.getLogger("ray.data")
    ray_data_log.setLevel(logging.WARNING if terminal else logging.CRITICAL)
    if not any(isinstance(f, _NoErrors) for f in ray_data_log.filters):
        ray_data_log.addFilter(_NoErrors())
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _signal_handlers() -> dict[int, Any]:
    """SIGINT's and SIGTERM's handlers now (labelaudit's: clean up, exit 130/143)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}


def _restore(handlers: dict[int, Any]) -> None:
    for number, handler in handlers.items():
        if handler is not None:
            signal.signal(number, handler)


def _reachable(address: str) -> None:
    """A HOST:PORT address must answer a TCP connect within a few seconds (Ray would wait for
    minutes); other forms (auto, ray://...) are left to Ray."""
    host, _, port = address.rpartition(":")
    if not host or "/" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except (OSError, ValueError, OverflowError) as exc:
        raise InputError(
            f"--engine ray: nothing answers at the Ray address '{address}' ({exc}). Check "
            "--ray-address (or RAY_ADDRESS) and that the cluster's head node is running "
            "(`ray start --head`), or run with --engine local."
        ) from exc


class _NoErrors(logging.Filter):
    """Drops Ray Data's error records: labelaudit reports a failed task itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def check_supported(dataset: Dataset) -> None:
    """--engine ray reads one model's wide parquet predictions (shards with one schema) or
    top-k lists; say so otherwise."""
    scores = dataset.scores
    reason = None
    if scores is None:
        return
    if dataset.ensemble is not None:
        reason = "several models' predictions (--preds repeated)"
    elif getattr(scores, "topk", None) is not None:
        return  # compact lists, read by the driver and shipped to the tasks once
    elif scores.lazy is None or scores.text:
        reason = (
            "predictions other than wide parquet shards with one schema (Arrow IPC, shards "
            "whose columns or types differ, a list column, CSV, TSV or NDJSON)"
        )
    if reason:
        raise InputError(
            f"--engine ray does not take {reason} yet ('{scores.source}'): run with --engine "
            "local (the default), which does."
        )


@dataclass(frozen=True)
class _Task:
    """What a task needs, sent to the cluster once (the big arrays through the object store)."""

    scores: ScoreMatrix
    positions: np.ndarray
    chunk_rows: int
    thresholds: np.ndarray | None
    with_entropy: bool
    with_evidence: bool


class RayScan:
    """Scan's passes over a dataset's predictions as Ray tasks (one per range of rows)."""

    def __init__(self, dataset: Dataset, chunk_rows: int) -> None:
        self.ray = import_optional("ray")
        self.dataset = dataset
        self.chunk_rows = chunk_rows
        total = dataset.scores.n_rows
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        # At most TASK_CHUNKS chunks a task, and TASKS_PER_CPU tasks a core when rows allow.
        share = -(-total // max(TASKS_PER_CPU * cpus, 1))
        span = max(chunk_rows, min(chunk_rows * TASK_CHUNKS, -(-share // chunk_rows) * chunk_rows))
        self.ranges = [(start, min(start + span, total)) for start in range(0, total, span)]
        light = replace(dataset.scores, ids=None, frame=None)  # the ids stay on the driver
        self.scores_ref = self.ray.put(light)
        self.join_ref = self.ray.put(
            (
                dataset.score_rows,
                dataset.label_rows,
                dataset.labels if dataset.labels is not None else dataset.indicators,
                dataset.class_positions,
            )
        )

    def evaluate_multiclass(
        self,
        mode: str,
        with_entropy: bool,
        with_evidence: bool,
        thresholds: np.ndarray | None,
    ) -> MulticlassEvaluation:
        """Pass 1 (metrics sums and detection's evidence) on the cluster, merged here."""

        def parts(read_as: str) -> Iterator[ChunkPart]:
            for part in self._map(_pass_one_task, read_as, with_entropy, with_evidence, thresholds):
                yield from part

        return replay_pass_one(
            self.dataset, mode, self.chunk_rows, with_entropy, with_evidence, thresholds, parts
        )

    def evaluate_multilabel(
        self, mode: str, threshold: float | np.ndarray, against: float | None
    ) -> MultilabelEvaluation:
        """Both multi-label passes on the cluster, merged here (`chunk_parts.replay_multilabel`)."""

        def first(read_as: str) -> Iterator[MultilabelChunkPart]:
            for part in self._map(_multilabel_one_task, read_as, threshold, against):
                yield from part

        def second(final: str, positives: list, means: tuple) -> Iterator[tuple]:
            for part in self._map(_multilabel_two_task, final, self.ray.put((positives, means))):
                yield from part

        return replay_multilabel(
            self.dataset, mode, self.chunk_rows, threshold, against, first, second
        )

    def probability_chunks(self, score_mode: str) -> Any:
        """`passes.probability_chunks` for detection's pass 2: tasks ship back only the rows
        asked for, as probabilities."""

        def chunks(needed: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
            needed_ref = self.ray.put(needed)
            for part in self._map(_probabilities_task, score_mode, needed_ref):
                yield from part

        return chunks

    def _map(self, work: Any, *args: Any) -> Iterator[list[Any]]:
        """Run `work(task_range, scores, join, *args)` on every range, results in range order."""
        ray = self.ray
        items = [{"start": start, "stop": stop} for start, stop in self.ranges]
        dataset = ray.data.from_items(items, override_num_blocks=max(len(items), 1))
        mapped = dataset.map_batches(
            _run_task,
            batch_size=1,
            batch_format="numpy",
            fn_kwargs={
                "work": work,
                "scores": self.scores_ref,
                "join": self.join_ref,
                "chunk_rows": self.chunk_rows,
                "args": args,
                "cwd": os.getcwd(),
            },
        )
        rows = iter(mapped.iter_rows())
        while True:
            try:
                row = next(rows, None)
            except Exception as exc:  # a worker's failure: a clear message, never Ray's trace
                raise _labelaudit_error(exc) from None
            if row is None:
                return
            result = pickle.loads(row["out"])
            if isinstance(result, InputError):  # bad input met by a task: the local message
                raise result
            yield result


def _run_task(batch: dict[str, np.ndarray], **kwargs: Any) -> dict[str, np.ndarray]:
    """The task body Ray runs: one range, its result pickled (one row out)."""
    ray = sys.modules.get("ray")
    scores, join = kwargs["scores"], kwargs["join"]
    if ray is not None and isinstance(scores, ray.ObjectRef):
        scores, join = ray.get(scores), ray.get(join)
    args = [
        ray.get(a) if ray is not None and isinstance(a, ray.ObjectRef) else a
        for a in kwargs["args"]
    ]
    start, stop = int(batch["start"][0]), int(batch["stop"][0])
    # Relative paths mean the driver's folder (on a cluster, the same path on every machine).
    if os.path.isdir(kwargs["cwd"]):
        os.chdir(kwargs["cwd"])
    try:
        out = kwargs["work"](start, stop, scores, join, kwargs["chunk_rows"], *args)
    except InputError as exc:
        out = exc
    return {"out": np.array([pickle.dumps(out)], dtype=object)}


def _blocks(
    start: int,
    stop: int,
    scores: ScoreMatrix,
    join: tuple,
    chunk_rows: int,
    needed: np.ndarray | None = None,
) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    """(raw block, dataset rows, labels) of a range, rows without a label (and, with `needed`,
    rows not needed) dropped; labels are class indices, or the rows of the (N, K) tags for
    multi-label. Top-k lists come as SparseRows, as the local passes take them."""
    score_rows, label_rows, labels, positions = join
    if scores.topk is not None:
        for first in range(start, stop, chunk_rows):
            last = min(first + chunk_rows, stop)
            rows, picked = rows_of_block(first, last - first, score_rows, label_rows)
            source = np.arange(first, last) if picked is None else first + picked
            if needed is not None:
                keep = needed[rows]
                rows, source = rows[keep], source[keep]
            if rows.size:
                yield scores.topk.sparse(source, positions), rows, labels[rows]
        return
    for first, block in scores.stream(positions, chunk_rows, [(start, stop)]):
        rows, picked = rows_of_block(first, block.shape[0], score_rows, label_rows)
        if needed is not None:
            keep = needed[rows]
            rows = rows[keep]
            picked = np.flatnonzero(keep) if picked is None else picked[keep]
        if picked is not None:
            if picked.size == 0:
                continue
            block = block[picked]
        yield block, rows, labels[rows]


def _pass_one_task(
    start: int,
    stop: int,
    scores: ScoreMatrix,
    join: tuple,
    chunk_rows: int,
    mode: str,
    with_entropy: bool,
    with_evidence: bool,
    thresholds: np.ndarray | None,
) -> list[ChunkPart]:
    """Pass 1 of a range, chunk by chunk (the note's bounds from the range's chunks so far)."""
    seen = ClassSums(len(join[3]))
    return [
        pass_one_chunk(block, rows, labels, mode, thresholds, with_entropy, with_evidence, seen)
        for block, rows, labels in _blocks(start, stop, scores, join, chunk_rows)
    ]


def _multilabel_one_task(
    start: int,
    stop: int,
    scores: ScoreMatrix,
    join: tuple,
    chunk_rows: int,
    mode: str,
    threshold: float | np.ndarray,
    against: float | None,
) -> list[MultilabelChunkPart]:
    """Multi-label pass 1 of a range, chunk by chunk."""
    return [
        multilabel_pass_one_chunk(block, rows, truth.astype(bool), mode, threshold, against)
        for block, rows, truth in _blocks(start, stop, scores, join, chunk_rows)
    ]


def _multilabel_two_task(
    start: int,
    stop: int,
    scores: ScoreMatrix,
    join: tuple,
    chunk_rows: int,
    mode: str,
    known: tuple,
) -> list[tuple]:
    """Multi-label pass 2 of a range: each chunk's rows and counts."""
    positives, means = known
    return [
        multilabel_pass_two_chunk(block, rows, truth.astype(bool), mode, positives, means)
        for block, rows, truth in _blocks(start, stop, scores, join, chunk_rows)
    ]


def _probabilities_task(
    start: int,
    stop: int,
    scores: ScoreMatrix,
    join: tuple,
    chunk_rows: int,
    mode: str,
    needed: np.ndarray | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The probabilities of a range's `needed` rows (all without a mask), with their rows
    (top-k rows as SparseRows, probabilities already)."""
    return [
        (block if scores.topk is not None else to_probabilities(block, mode), rows)
        for block, rows, _ in _blocks(start, stop, scores, join, chunk_rows, needed)
    ]


def _labelaudit_error(exc: Exception) -> Exception:
    """The InputError a worker raised (shipped inside Ray's error), else a clear bug report."""
    cause = getattr(exc, "cause", None)
    while cause is not None and not isinstance(cause, InputError):
        cause = getattr(cause, "cause", None) or getattr(cause, "__cause__", None)
    if isinstance(cause, InputError):
        return cause
    return RuntimeError(f"a Ray task failed: {type(exc).__name__}: {exc}")
