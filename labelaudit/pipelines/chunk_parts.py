"""Pass 1 split where the data is: each chunk's results computed on its own (a Ray worker), then
replayed in file order on the driver by the local pass's rules.

A worker cannot know how the whole file reads (the first chunk decides between probabilities
and logits; logits anywhere make every chunk logits; a mix is an error), so it reads its chunk as
the chunk itself reads (`speculative_reading`) and ships that with its sums. The driver replays
the local decisions over the chunks in order: when every chunk's reading is the file's, the
shipped sums are the local pass's exactly; otherwise it asks for the pass again in the file's
reading, as the local pass does, or stops with the local pass's error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelaudit.core.accumulators import ClassSums
from labelaudit.core.evidence import SampleEvidence
from labelaudit.core.multilabel_stream import (
    MultilabelPassOne,
    MultilabelPassTwo,
    streamed_detection,
    streamed_metrics,
)
from labelaudit.core.scores import MulticlassScoreSums, ScoreCheck, check_scores, reading
from labelaudit.core.scores import to_probabilities as probabilities_of
from labelaudit.core.sparse_rows import SparseRows
from labelaudit.io.dataset import Dataset
from labelaudit.pipelines.passes import (
    MulticlassEvaluation,
    MultilabelEvaluation,
    ReadingLog,
    _distribution_rows,
    _multiclass_reading,
    _reject_if_mixed,
    _reject_mixed,
    _reject_non_finite,
    float64,
    logits_if_contradicted,
    multilabel_decision,
    multilabel_mode,
)


@dataclass
class ChunkPart:
    """One chunk's pass-1 results: its dataset rows, score check, reading, rows that read as
    distributions, metric sums and detection's evidence (None when a score is not finite)."""

    rows: np.ndarray
    check: ScoreCheck | None  # None: top-k rows (probabilities by construction)
    how: str
    distribution_rows: int
    sums: MulticlassScoreSums | None
    evidence: dict[str, object] | None
    row_sums: np.ndarray | None = None  # top-k rows: their sums before renormalizing


def speculative_reading(check: ScoreCheck, mode: str) -> str:
    """How a chunk reads under `mode`, errors left to the driver (which knows the file): an
    ambiguous chunk is read as logits, as the local pass reads it when it is not an error."""
    if mode != "auto":
        return mode
    how = reading(check, multi_label=False)
    return "logits" if how == "ambiguous" else how


def pass_one_chunk(
    raw: np.ndarray,
    rows: np.ndarray,
    labels: np.ndarray,
    mode: str,
    thresholds: np.ndarray | None,
    with_entropy: bool,
    with_evidence: bool,
    seen: ClassSums | None = None,
) -> ChunkPart:
    """One chunk's pass 1, read as the chunk reads (no shared state: runs anywhere). `seen`:
    the per-class sums of the chunks before it in the same task (updated here), which only
    sharpen the note's bounds."""
    if isinstance(raw, SparseRows):  # top-k lists: probabilities, as the local pass reads them
        sums = MulticlassScoreSums(raw.n_classes, thresholds=thresholds)
        sums.update(raw, labels)
        evidence = None
        if with_evidence:
            local = SampleEvidence(rows.size, raw.n_classes, with_entropy)
            local.add(local.update(raw, labels, np.arange(rows.size)))
            evidence = local.export()
        return ChunkPart(rows, None, "probs", 0, sums, evidence, raw.row_sums)
    check = check_scores(raw, expect_row_sum=True)
    if check.non_finite_rows.size:
        return ChunkPart(rows, check, "", 0, None, None)
    how = speculative_reading(check, mode)
    distribution = _distribution_rows(raw, check)
    n_classes = raw.shape[1]
    probabilities = probabilities_of(raw, how, check=check if how == "probs" else None)
    sums = MulticlassScoreSums(n_classes, thresholds=thresholds)
    sums.update(probabilities, labels)
    evidence = None
    if with_evidence:
        local = SampleEvidence(rows.size, n_classes, with_entropy, with_candidates=True)
        if seen is not None:
            local.add(seen)  # for the bounds only: the chunk ships its own sums
        own = local.update(probabilities, labels, np.arange(rows.size))
        evidence = local.export() | {"counts": own.counts, "sums": own.sums}
        if seen is not None:
            seen.merge(own)
    return ChunkPart(rows, check, how, distribution, sums, evidence)


def replay_pass_one(
    dataset: Dataset,
    mode: str,
    chunk_rows: int,
    with_entropy: bool,
    with_evidence: bool,
    thresholds: np.ndarray | None,
    parts: Callable[[str], Iterable[ChunkPart]],
) -> MulticlassEvaluation:
    """`passes.evaluate_multiclass` from chunk parts (`parts(mode)` yields them in file order):
    the same decisions, warnings, errors and sums."""
    mode = dataset.score_mode or mode
    args = (chunk_rows, with_entropy, with_evidence, thresholds, parts)
    return logits_if_contradicted(
        mode, lambda read_as, from_auto: _replay(dataset, read_as, *args, from_auto)
    )


def _replay(
    dataset: Dataset,
    mode: str,
    chunk_rows: int,
    with_entropy: bool,
    with_evidence: bool,
    thresholds: np.ndarray | None,
    parts: Callable[[str], Iterable[ChunkPart]],
    from_auto: bool = False,
) -> MulticlassEvaluation | None:
    """One pass's decisions over the parts; None when a later chunk shows logits (auto)."""
    chosen: str | None = None if mode == "auto" else mode
    sums = MulticlassScoreSums(dataset.n_classes, thresholds=thresholds)
    topk = getattr(dataset.scores, "topk", None) is not None
    evidence = (
        SampleEvidence(dataset.n_samples, dataset.n_classes, with_entropy, with_candidates=not topk)
        if with_evidence
        else None
    )
    log = ReadingLog()
    distribution_rows = 0
    for part in parts(mode):
        if part.check is None:  # top-k rows: read as probabilities, their sums noted
            chosen = "probs"
            log.note_sums(part.row_sums)
            sums.merge(part.sums)
            if evidence is not None:
                evidence.absorb(part.evidence, part.rows)
            continue
        if part.sums is None:
            _reject_non_finite(dataset, part.check, chunk_rows)
        how = _multiclass_reading(dataset, part.check, mode, chunk_rows)
        if mode == "auto" or from_auto:
            distribution_rows += part.distribution_rows
        if chosen is None:
            chosen = how
        elif how != chosen:
            if how == "logits" or chosen == "logits":
                return None  # logits anywhere: the whole file is read as logits
            _reject_mixed(dataset)
        if how != part.how:  # the worker's reading is the chunk's own; they agree here
            raise AssertionError(f"a chunk read as {part.how} where the file reads {how}")
        log.note(part.check, how)
        sums.merge(part.sums)
        if evidence is not None:
            evidence.absorb(part.evidence, part.rows)
    if chosen == "logits" and (mode == "auto" or from_auto):
        _reject_if_mixed(dataset, distribution_rows)
    chosen = chosen or "probs"
    return MulticlassEvaluation(sums, evidence, chosen, log.warnings(dataset.scores.source, chosen))


@dataclass
class MultilabelChunkPart:
    """One multi-label chunk's pass 1: rows, check, reading, the sums (None when a score is not
    finite) and the per-row worst tags, read as the chunk itself reads."""

    rows: np.ndarray
    check: ScoreCheck
    how: str
    sums: tuple | None
    per_row: dict[str, np.ndarray] | None


def multilabel_pass_one_chunk(
    raw: np.ndarray,
    rows: np.ndarray,
    truth: np.ndarray,
    mode: str,
    threshold: float | np.ndarray,
    against: float | None,
) -> MultilabelChunkPart:
    """One multi-label chunk's pass 1 (no shared state: runs anywhere)."""
    check = check_scores(raw, expect_row_sum=False)
    if check.non_finite_rows.size:
        return MultilabelChunkPart(rows, check, "", None, None)
    how = mode if mode != "auto" else reading(check, multi_label=True)
    local = MultilabelPassOne(rows.size, raw.shape[1], threshold, against)
    probabilities = probabilities_of(float64(raw), how, multi_label=True)
    sums = local.update(truth, probabilities, np.arange(rows.size))
    per_row = {name: getattr(local, name) for name in _PER_ROW}
    return MultilabelChunkPart(rows, check, how, sums, per_row)


_PER_ROW = ("quality", "worst_class", "worst_probability", "worst_is_missing", "disagrees")


def multilabel_pass_two_chunk(
    raw: np.ndarray,
    rows: np.ndarray,
    truth: np.ndarray,
    mode: str,
    positives: list[tuple[np.ndarray, np.ndarray]],
    means: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, dict[str, Any]]:
    """One multi-label chunk's pass 2: its rows and its counts (plain arrays, to ship)."""
    local = MultilabelPassTwo(positives, *means, rows.size)
    probabilities = probabilities_of(float64(raw), mode, multi_label=True)
    local.update(truth, probabilities, np.arange(rows.size))
    return rows, {name: getattr(local, name) for name in _PASS_TWO}


_PASS_TWO = ("flagged", "missing_per_class", "extra_per_class", "negatives_above")


def replay_multilabel(
    dataset: Dataset,
    mode: str,
    chunk_rows: int,
    threshold: float | np.ndarray,
    against: float | None,
    first_parts: Callable[[str], Iterable[MultilabelChunkPart]],
    second_parts: Callable[[str, list, tuple], Iterable[tuple[np.ndarray, dict[str, Any]]]],
) -> MultilabelEvaluation:
    """`passes._streamed_multilabel` from chunk parts: the file's reading decided as there (pass
    1 again in it when a chunk read otherwise), then pass 2's counts merged."""
    mode = dataset.score_mode or mode
    read_as = mode
    while True:
        one = MultilabelPassOne(dataset.n_samples, dataset.n_classes, threshold, against)
        scored = np.zeros(dataset.n_samples, dtype=bool)
        log = ReadingLog(multi_label=True)
        readings: set[str] = set()
        hows = set()
        for part in first_parts(read_as):
            if part.sums is None:
                _reject_non_finite(dataset, part.check, chunk_rows)
            readings.add(multilabel_decision(dataset, part.check, mode, chunk_rows, log))
            hows.add(part.how)
            for name, values in part.per_row.items():
                getattr(one, name)[part.rows] = values
            one.add(part.sums)
            scored[part.rows] = True
        final = multilabel_mode(mode, readings)
        if hows <= {final}:
            break
        read_as = final  # some chunk read otherwise than the file: pass 1 again in its reading
    positive_mean, negative_mean = one.thresholds()
    positives = one.positive_scores()
    two = MultilabelPassTwo(positives, positive_mean, negative_mean, dataset.n_samples)
    for rows, counts in second_parts(final, positives, (positive_mean, negative_mean)):
        two.flagged[rows] = counts["flagged"]
        two.missing_per_class += counts["missing_per_class"]
        two.extra_per_class += counts["extra_per_class"]
        for total, part in zip(two.negatives_above, counts["negatives_above"], strict=True):
            total += part
    return MultilabelEvaluation(
        metrics=streamed_metrics(one, two),
        probabilities=None,
        scored=scored,
        score_mode=final,
        warnings=log.warnings(dataset.scores.source, final),
        detection=streamed_detection(one, two, np.flatnonzero(scored)),
        disagrees=one.disagrees,
    )
