"""Passes over a Dataset's score chunks: validate, turn scores into probabilities, accumulate.

This is the one place that decides whether scores are probabilities or logits, so every command
reads them the same way. Errors name the file, the count of bad rows and the first ids.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from labelaudit.core.multilabel import MultilabelMetrics, multilabel_metrics
from labelaudit.core.noise import SampleEvidence, run_in_parallel
from labelaudit.core.scores import (
    MulticlassScoreSums,
    ScoreCheck,
    check_scores,
    looks_like_logits,
    sigmoid,
    softmax,
)
from labelaudit.errors import InputError
from labelaudit.io.dataset import Dataset
from labelaudit.io.labels import describe_ids


@dataclass(frozen=True)
class MulticlassEvaluation:
    """Score sums for a multi-class dataset, detection's pass-1 evidence, and the score mode."""

    sums: MulticlassScoreSums
    evidence: SampleEvidence | None
    score_mode: str


@dataclass(frozen=True)
class MultilabelEvaluation:
    """Multi-label metrics, the probabilities (label order, scored rows) and the score mode."""

    metrics: MultilabelMetrics
    probabilities: np.ndarray
    scored: np.ndarray
    score_mode: str


def evaluate_multiclass(
    dataset: Dataset,
    mode: str,
    chunk_rows: int,
    with_entropy: bool = False,
    with_evidence: bool = True,
    thresholds: np.ndarray | None = None,
) -> MulticlassEvaluation:
    """One pass (two at most, in auto mode when late chunks reveal logits) over the scores,
    shared by the metrics and the first pass of label-error detection."""
    args = (chunk_rows, with_entropy, with_evidence, thresholds)
    first_try = _multiclass_pass(dataset, mode, *args)
    if first_try is not None:
        return first_try
    again = _multiclass_pass(dataset, "logits", *args)
    assert again is not None  # logits mode is never contradicted
    return again


def _multiclass_pass(
    dataset: Dataset,
    mode: str,
    chunk_rows: int,
    with_entropy: bool,
    with_evidence: bool,
    thresholds: np.ndarray | None,
) -> MulticlassEvaluation | None:
    """One pass; None when, in auto mode, a later chunk contradicts the first chunk's reading.

    The first chunk decides between probabilities and logits (in auto mode); the other chunks
    are processed on a few threads, each into its own sums, merged under a lock.
    """
    chosen = None if mode == "auto" else mode
    sums = MulticlassScoreSums(dataset.n_classes, thresholds=thresholds)
    evidence = (
        SampleEvidence(dataset.n_samples, dataset.n_classes, with_entropy)
        if with_evidence
        else None
    )
    lock = threading.Lock()
    contradicted = threading.Event()

    def process(raw: np.ndarray, rows: np.ndarray) -> None:
        nonlocal chosen
        if contradicted.is_set():
            return
        check = check_scores(raw, expect_row_sum=True)
        _reject_non_finite(dataset, check, rows, chunk_rows)
        logits = looks_like_logits(check, multi_label=False)
        if chosen is None:
            chosen = "logits" if logits else "probs"
        elif chosen == "probs" and logits:
            if mode == "probs":
                _reject_not_probabilities(dataset, chunk_rows)
            contradicted.set()
            return
        probabilities = softmax(raw) if chosen == "logits" else raw
        labels = dataset.labels[rows]
        part = MulticlassScoreSums(dataset.n_classes, thresholds=thresholds)
        part.add(probabilities, labels)
        if evidence is not None:
            evidence.add(probabilities, labels, rows)
        with lock:
            sums.merge(part)

    chunks = iter(dataset.score_chunks(chunk_rows))
    first = next(chunks, None)
    if first is not None:
        process(*first)  # alone: it decides the score mode for the rest
        run_in_parallel(chunks, process)
    if contradicted.is_set():
        return None
    return MulticlassEvaluation(sums, evidence, chosen or "probs")


def multiclass_score_mode(dataset: Dataset, mode: str, chunk_rows: int) -> str:
    """How the scores read (probs or logits), with the metrics pass's validation and decision,
    for commands that need the probabilities but not the metrics: logits when any chunk looks
    like logits (auto), an error when `--scores probs` is contradicted or a score is not finite."""
    if mode == "logits":
        return mode
    for raw, rows in dataset.score_chunks(chunk_rows):
        check = check_scores(raw, expect_row_sum=True)
        _reject_non_finite(dataset, check, rows, chunk_rows)
        if looks_like_logits(check, multi_label=False):
            if mode == "probs":
                _reject_not_probabilities(dataset, chunk_rows)
            return "logits"
    return "probs"


def probability_chunks(
    dataset: Dataset, score_mode: str, chunk_rows: int
) -> Callable[[np.ndarray | None], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """Chunks of probabilities (scores read as `score_mode`), for later passes over the data."""

    def chunks(needed: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for raw, rows in dataset.score_chunks(chunk_rows, needed):
            yield (softmax(raw) if score_mode == "logits" else raw), rows

    return chunks


def evaluate_multilabel(
    dataset: Dataset, mode: str, chunk_rows: int, threshold: float | np.ndarray
) -> MultilabelEvaluation:
    """Gather (N, K) probabilities in label order, then compute the multi-label metrics."""
    probabilities = np.zeros((dataset.n_samples, dataset.n_classes), dtype=np.float64)
    scored = np.zeros(dataset.n_samples, dtype=bool)
    any_logits = False
    for raw, rows in dataset.score_chunks(chunk_rows):
        check = check_scores(raw, expect_row_sum=False)
        _reject_non_finite(dataset, check, rows, chunk_rows)
        logits = looks_like_logits(check, multi_label=True)
        if mode == "probs" and logits:
            _reject_not_probabilities(dataset, chunk_rows)
        any_logits |= logits
        probabilities[rows] = raw
        scored[rows] = True
    as_logits = mode == "logits" or (mode == "auto" and any_logits)
    if as_logits:
        probabilities = sigmoid(probabilities)
    metrics = multilabel_metrics(dataset.indicators[scored], probabilities[scored], threshold)
    return MultilabelEvaluation(metrics, probabilities, scored, "logits" if as_logits else "probs")


def _reject_non_finite(
    dataset: Dataset, check: ScoreCheck, rows: np.ndarray, chunk_rows: int
) -> None:
    if check.non_finite_rows.size == 0:
        return
    bad = _rows_where(dataset, chunk_rows, lambda c: c.non_finite_rows)
    raise InputError(
        f"The predictions '{dataset.scores.source}' hold NaN or infinite scores in {bad.sum()} "
        f"rows (ids {describe_ids(dataset.ids, bad)}). Scores must be finite numbers; fix or "
        "drop those rows."
    )


def _reject_not_probabilities(dataset: Dataset, chunk_rows: int) -> None:
    negative = _rows_where(
        dataset, chunk_rows, lambda c, raw: np.flatnonzero((raw < 0).any(axis=1)), with_raw=True
    )
    if negative.any():
        raise InputError(
            f"--scores probs was given, but the predictions '{dataset.scores.source}' hold "
            f"negative values in {negative.sum()} rows (ids {describe_ids(dataset.ids, negative)})."
            " Probabilities lie in [0, 1]; pass --scores logits (or auto) if these are logits."
        )
    if dataset.multi_label:
        above = _rows_where(
            dataset, chunk_rows, lambda c, raw: np.flatnonzero((raw > 1).any(axis=1)), True
        )
        raise InputError(
            f"--scores probs was given, but the predictions '{dataset.scores.source}' hold values "
            f"above 1 in {above.sum()} rows (ids {describe_ids(dataset.ids, above)}). Pass "
            "--scores logits (or auto) if these are logits."
        )
    off = _rows_where(dataset, chunk_rows, lambda c: c.off_sum_rows)
    raise InputError(
        f"--scores probs was given, but {off.sum()} rows of the predictions "
        f"'{dataset.scores.source}' do not sum to 1 (ids {describe_ids(dataset.ids, off)}). "
        "Normalize each row, or pass --scores logits (or auto) if these are logits."
    )


def _rows_where(dataset: Dataset, chunk_rows: int, pick, with_raw: bool = False) -> np.ndarray:
    """A mask over dataset rows of the rows `pick` flags: a full pass, on the error path only."""
    mask = np.zeros(dataset.n_samples, dtype=bool)
    for raw, rows in dataset.score_chunks(chunk_rows):
        check = check_scores(raw, expect_row_sum=not dataset.multi_label)
        flagged = pick(check, raw) if with_raw else pick(check)
        mask[rows[flagged]] = True
    return mask
