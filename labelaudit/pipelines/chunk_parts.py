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

import numpy as np

from labelaudit.core.accumulators import ClassSums
from labelaudit.core.noise import SampleEvidence
from labelaudit.core.scores import MulticlassScoreSums, ScoreCheck, check_scores, reading
from labelaudit.core.scores import to_probabilities as probabilities_of
from labelaudit.io.dataset import Dataset
from labelaudit.pipelines.passes import (
    MulticlassEvaluation,
    ReadingLog,
    _distribution_rows,
    _multiclass_reading,
    _reject_if_mixed,
    _reject_mixed,
    _reject_non_finite,
)


@dataclass
class ChunkPart:
    """One chunk's pass-1 results: its dataset rows, score check, reading, rows that read as
    distributions, metric sums and detection's evidence (None when a score is not finite)."""

    rows: np.ndarray
    check: ScoreCheck
    how: str
    distribution_rows: int
    sums: MulticlassScoreSums | None
    evidence: dict[str, object] | None


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
    first_try = _replay(dataset, mode, chunk_rows, with_entropy, with_evidence, thresholds, parts)
    if first_try is not None:
        return first_try
    again = _replay(
        dataset, "logits", chunk_rows, with_entropy, with_evidence, thresholds, parts, True
    )
    assert again is not None  # logits mode is never contradicted
    return again


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
    evidence = (
        SampleEvidence(dataset.n_samples, dataset.n_classes, with_entropy, with_candidates=True)
        if with_evidence
        else None
    )
    log = ReadingLog()
    distribution_rows = 0
    for part in parts(mode):
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
