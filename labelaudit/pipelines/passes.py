"""Passes over a Dataset's score chunks: validate, turn scores into probabilities, accumulate.

This is the one place that decides whether scores are probabilities or logits (by the rule of
`core.scores.reading`, documented in docs/inputs.md), so every command reads them the same way.
Errors name the file, the count of bad rows and the first ids.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from labelaudit._text import agree, count
from labelaudit.core.ensemble import ModelAgreement
from labelaudit.core.evidence import SampleEvidence
from labelaudit.core.metrics_multilabel import MultilabelMetrics, multilabel_metrics
from labelaudit.core.multilabel_stream import (
    MultilabelPassOne,
    MultilabelPassTwo,
    streamed_detection,
    streamed_metrics,
)
from labelaudit.core.noise import run_in_parallel
from labelaudit.core.noise_multilabel import MultilabelDetection
from labelaudit.core.scores import (
    NEAR_PROBABILITIES,
    PERCENT,
    RANGE_SLACK,
    SUM_TOLERANCE,
    MulticlassScoreSums,
    ScoreCheck,
    check_scores,
    distribution_row_count,
    reading,
    to_probabilities,
)
from labelaudit.core.sparse_rows import SparseRows
from labelaudit.errors import InputError
from labelaudit.io.dataset import Dataset
from labelaudit.io.labels import describe_ids
from labelaudit.io.models import ModelScores


@dataclass
class ReadingLog:
    """What reading scores as probabilities changed (renormalized rows, clipped values), summed
    over chunks from several threads, for the report's warnings."""

    multi_label: bool = False
    percent: bool = False
    logits_near_probabilities: bool = True
    renormalized: int = 0
    lowest_sum: float = math.inf
    highest_sum: float = -math.inf
    lowest_value: float = math.inf
    highest_value: float = -math.inf
    decimals: set[int] = field(default_factory=set)
    lists: bool = False  # top-k lists (probabilities by construction)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def note(self, check: ScoreCheck, how: str) -> None:
        """Record one chunk and how it is read (probs, percent or logits)."""
        visibly_off = np.empty(0)
        if how != "logits" and check.row_sums is not None and not self.multi_label:
            scale = PERCENT if how == "percent" else 1.0
            sums = check.row_sums[np.isfinite(check.row_sums)] / scale
            visibly_off = sums[np.abs(sums - 1.0) > SUM_TOLERANCE]
        near = check.low >= -NEAR_PROBABILITIES and check.high <= 1 + NEAR_PROBABILITIES
        with self._lock:
            self.percent |= how == "percent"
            self.logits_near_probabilities &= how != "logits" or near
            self.lowest_value = min(self.lowest_value, check.low)
            self.highest_value = max(self.highest_value, check.high)
            self._tally(visibly_off)
            if visibly_off.size and check.decimals is not None:
                self.decimals.add(check.decimals)

    def note_sums(self, row_sums: np.ndarray | None) -> None:
        """Record rows read as probabilities from their sums alone (top-k lists)."""
        self.lists = True
        if row_sums is not None:
            with self._lock:
                self._tally(row_sums[np.abs(row_sums - 1.0) > SUM_TOLERANCE])

    def _tally(self, visibly_off: np.ndarray) -> None:
        """Count the rows whose sums were visibly off 1 (under the lock)."""
        if visibly_off.size:
            self.renormalized += int(visibly_off.size)
            self.lowest_sum = min(self.lowest_sum, float(visibly_off.min()))
            self.highest_sum = max(self.highest_sum, float(visibly_off.max()))

    def warnings(self, source: str, mode: str) -> list[str]:
        """Say what was done to the scores read as `mode`, and how to read them otherwise."""
        out = []
        if mode == "logits":
            if self.logits_near_probabilities and math.isfinite(self.lowest_value):
                inside = self.lowest_value >= 0 and self.highest_value <= 1
                where = "within" if inside else "just outside"
                out.append(
                    f"The predictions '{source}' were read as logits, but their values lie "
                    f"{where} [0, 1] (from {self.lowest_value:.6g} to "
                    f"{self.highest_value:.6g}): if they are probabilities, pass --scores probs."
                )
            return out
        if mode == "percent":
            out.append(
                f"The predictions '{source}' were read as percentages (values up to "
                f"{self.highest_value:.6g}{'' if self.multi_label else ', rows summing to 100'}):"
                " divided by 100. If they are logits, pass --scores logits."
            )
        if self.renormalized:
            unit = " of a percent" if self.percent else ""
            rounded = (
                f" (rounded to {count(max(self.decimals), 'decimal')}{unit})"
                if len(self.decimals) == 1
                else ""
            )
            low, high = f"{self.lowest_sum:.6g}", f"{self.highest_sum:.6g}"
            sums = f"about {low}" if low == high else f"between {low} and {high}"
            if self.lists:
                out.append(
                    f"{count(self.renormalized, 'row')} of the top-k lists in '{source}' sum to "
                    f"{sums}, not at most 1: their probabilities were divided by their sum."
                )
            else:
                out.append(
                    f"{count(self.renormalized, 'row')} of the predictions '{source}' sum to "
                    f"{sums}, not 1: read as probabilities{rounded} and renormalized (each row "
                    "divided by its sum). If they are logits, pass --scores logits."
                )
        top = PERCENT if mode == "percent" else 1.0
        if self.lowest_value < 0 or (self.multi_label and self.highest_value > top):
            out.append(
                f"Some probabilities in '{source}' lie slightly outside [0, 1] (from "
                f"{self.lowest_value:.6g} to {self.highest_value:.6g}); they were clipped into "
                "[0, 1]. If they are logits, pass --scores logits."
            )
        return out


@dataclass(frozen=True)
class ScoreReading:
    """How the scores were read (probs or logits) and what that changed, for the warnings."""

    mode: str
    warnings: list[str]


@dataclass(frozen=True)
class MulticlassEvaluation:
    """Score sums for a multi-class dataset, detection's pass-1 evidence, and the score mode."""

    sums: MulticlassScoreSums
    evidence: SampleEvidence | None
    score_mode: str
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MultilabelEvaluation:
    """Multi-label metrics, the probabilities (label order, scored rows) and the score mode;
    for streamed scores no probabilities but detection's results and each row's disagreement
    with the model."""

    metrics: MultilabelMetrics
    probabilities: np.ndarray | None
    scored: np.ndarray
    score_mode: str
    warnings: list[str] = field(default_factory=list)
    detection: MultilabelDetection | None = None
    disagrees: np.ndarray | None = None


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
    if dataset.engine is not None:  # the passes run elsewhere (--engine ray)
        return dataset.engine.evaluate_multiclass(mode, with_entropy, with_evidence, thresholds)
    mode = dataset.score_mode or mode
    args = (chunk_rows, with_entropy, with_evidence, thresholds)
    return logits_if_contradicted(
        mode, lambda read_as, from_auto: _multiclass_pass(dataset, read_as, *args, from_auto)
    )


def logits_if_contradicted(
    mode: str, run: Callable[[str, bool], MulticlassEvaluation | None]
) -> MulticlassEvaluation:
    """`run(mode, False)`, or, when a later chunk showed logits (it returned None, auto mode),
    `run("logits", True)`: the pass again with every chunk read as logits."""
    first_try = run(mode, False)
    if first_try is not None:
        return first_try
    again = run("logits", True)
    assert again is not None  # logits mode is never contradicted
    return again


def _multiclass_pass(
    dataset: Dataset,
    mode: str,
    chunk_rows: int,
    with_entropy: bool,
    with_evidence: bool,
    thresholds: np.ndarray | None,
    from_auto: bool = False,
) -> MulticlassEvaluation | None:
    """One pass; None when, in auto mode, a later chunk shows the scores are logits.

    The first chunk decides between probabilities and logits (in auto mode); the other chunks
    are processed on a few threads, each into its own sums, merged under a lock. `from_auto`:
    logits chosen because some chunk reads so; then MIXED_ROWS rows in chunks that read as
    distributions make the file mixed (exit 2).
    """
    chosen = None if mode == "auto" else mode
    sums = MulticlassScoreSums(dataset.n_classes, thresholds=thresholds)
    evidence = (
        SampleEvidence(
            dataset.n_samples, dataset.n_classes, with_entropy, with_candidates=dataset.streams
        )
        if with_evidence
        else None
    )
    log = ReadingLog()
    lock = threading.Lock()
    contradicted = threading.Event()
    distribution_rows = [0]

    Part = tuple[MulticlassScoreSums, Any]

    def process(raw: np.ndarray | SparseRows, rows: np.ndarray) -> Part | None:
        nonlocal chosen
        if contradicted.is_set():
            return None
        if isinstance(raw, SparseRows):  # top-k lists: probabilities (io.load refuses others)
            chosen = "probs"
            log.note_sums(raw.row_sums)
            return accumulate(raw, rows)
        check = check_scores(raw, expect_row_sum=True)
        _reject_non_finite(dataset, check, chunk_rows)
        how = _multiclass_reading(dataset, check, mode, chunk_rows)
        if mode == "auto" or from_auto:
            looking = _distribution_rows(raw, check)
            with lock:
                distribution_rows[0] += looking
        if chosen is None:
            chosen = how
        elif how != chosen:
            if how == "logits" or chosen == "logits":
                contradicted.set()  # logits anywhere: the whole file is read as logits
                return None
            _reject_mixed(dataset)
        log.note(check, how)
        probabilities = to_probabilities(raw, chosen, check=check if chosen == "probs" else None)
        return accumulate(probabilities, rows)

    def accumulate(probabilities: np.ndarray | SparseRows, rows: np.ndarray) -> Part:
        labels = dataset.labels[rows]
        part = MulticlassScoreSums(dataset.n_classes, thresholds=thresholds)
        part.update(probabilities, labels)
        class_part = evidence.update(probabilities, labels, rows) if evidence is not None else None
        return part, class_part

    def combine(result: Part | None) -> None:
        """On this thread, in chunk order: the same sums on every run."""
        if result is None:
            return
        sums.merge(result[0])
        if evidence is not None:
            evidence.add(result[1])

    chunks = iter(dataset.score_chunks(chunk_rows, sparse=True))
    first = next(chunks, None)
    if first is not None:
        combine(process(*first))  # alone: it decides the score mode for the rest
        run_in_parallel(chunks, process, combine=combine)
    if contradicted.is_set():
        return None
    if chosen == "logits" and (mode == "auto" or from_auto):
        _reject_if_mixed(dataset, distribution_rows[0])
    chosen = chosen or "probs"
    return MulticlassEvaluation(sums, evidence, chosen, log.warnings(dataset.scores.source, chosen))


def _multiclass_reading(dataset: Dataset, check: ScoreCheck, mode: str, chunk_rows: int) -> str:
    """How one chunk reads under `mode`: "logits", "probs" or "percent"; an error when
    `--scores probs` is contradicted or (auto) the chunk is neither probabilities nor logits."""
    how = reading(check, multi_label=False)
    if mode in ("logits", "percent"):
        return mode
    if mode == "probs":
        if how == "logits":
            _reject_not_probabilities(dataset, chunk_rows)
        _reject_zero_rows(dataset, check, chunk_rows)
        return "probs"
    if how == "ambiguous":
        return _logits_or_reject_ambiguous(dataset, chunk_rows)
    return how


def multiclass_score_mode(dataset: Dataset, mode: str, chunk_rows: int) -> ScoreReading:
    """How the scores read (probs or logits) and the warnings that reading brings, with the
    metrics pass's validation and decision, for commands that need the probabilities but not
    the metrics: logits when any chunk reads as logits (auto), an error when `--scores probs`
    is contradicted, a chunk is ambiguous, or a score is not finite."""
    mode = dataset.score_mode or mode
    if mode == "logits":
        return ScoreReading(mode, [])
    log = ReadingLog()
    chosen = None
    logits = False
    distribution_rows = 0
    for raw, _rows in dataset.score_chunks(chunk_rows):
        check = check_scores(raw, expect_row_sum=True)
        _reject_non_finite(dataset, check, chunk_rows)
        how = _multiclass_reading(dataset, check, mode, chunk_rows)
        distribution_rows += _distribution_rows(raw, check)
        if how == "logits":  # logits anywhere: all are, unless the file is mixed
            logits = True
            continue
        if chosen is not None and how != chosen:
            _reject_mixed(dataset)
        chosen = how
        log.note(check, how)
    if logits:
        _reject_if_mixed(dataset, distribution_rows)
        return ScoreReading("logits", [])
    chosen = chosen or "probs"
    return ScoreReading(chosen, log.warnings(dataset.scores.source, chosen))


def probability_chunks(
    dataset: Dataset, score_mode: str, chunk_rows: int, sparse: bool = False
) -> Callable[[np.ndarray | None], Iterator[tuple[np.ndarray | SparseRows, np.ndarray]]]:
    """Chunks of probabilities (scores read as `score_mode`; multi-label ones class by class),
    for later passes over the data; with `sparse`, top-k scores come as SparseRows (already
    probabilities)."""

    def chunks(
        needed: np.ndarray | None = None,
    ) -> Iterator[tuple[np.ndarray | SparseRows, np.ndarray]]:
        for raw, rows in dataset.score_chunks(chunk_rows, needed, sparse=sparse):
            if not isinstance(raw, SparseRows):  # multi-label: each class on its own (sigmoid)
                raw = to_probabilities(raw, score_mode, multi_label=dataset.multi_label)
            yield raw, rows

    return chunks


def evaluate_multilabel(
    dataset: Dataset,
    mode: str,
    chunk_rows: int,
    threshold: float | np.ndarray,
    against_threshold: float | None = None,
) -> MultilabelEvaluation:
    """Multi-label metrics. Scores streamed from disk take two passes that never hold the
    (N, K) probabilities (`core.multilabel_stream`), detection included; scores in memory are
    gathered in label order (detection then runs on them). `against_threshold` (the threshold
    by default) decides, per row, whether the model disagrees with its tags."""
    if dataset.engine is not None:  # the passes run elsewhere (--engine ray)
        return dataset.engine.evaluate_multilabel(mode, threshold, against_threshold)
    if dataset.streams:
        return _streamed_multilabel(dataset, mode, chunk_rows, threshold, against_threshold)
    probabilities, scored, score_mode, warnings = gather_multilabel(dataset, mode, chunk_rows)
    metrics = multilabel_metrics(dataset.indicators[scored], probabilities[scored], threshold)
    return MultilabelEvaluation(metrics, probabilities, scored, score_mode, warnings)


def gather_multilabel(
    dataset: Dataset, mode: str, chunk_rows: int
) -> tuple[np.ndarray, np.ndarray, str, list[str]]:
    """(N, K) probabilities in label order, the mask of scored rows, the score mode and the
    warnings of reading them (for `thresholds` and scores held in memory)."""
    mode = dataset.score_mode or mode
    probabilities = np.zeros((dataset.n_samples, dataset.n_classes), dtype=np.float64)
    scored = np.zeros(dataset.n_samples, dtype=bool)
    readings: set[str] = set()
    log = ReadingLog(multi_label=True)
    for raw, rows in dataset.score_chunks(chunk_rows):
        readings.add(_multilabel_reading(dataset, raw, mode, chunk_rows, log))
        probabilities[rows] = raw
        scored[rows] = True
    score_mode = multilabel_mode(mode, readings)
    probabilities = to_probabilities(probabilities, score_mode, multi_label=True)
    return probabilities, scored, score_mode, log.warnings(dataset.scores.source, score_mode)


def _multilabel_reading(
    dataset: Dataset, raw: np.ndarray, mode: str, chunk_rows: int, log: ReadingLog
) -> str:
    """How one chunk of multi-label scores reads; an error when `--scores probs` is
    contradicted or a score is not finite."""
    return multilabel_decision(
        dataset, check_scores(raw, expect_row_sum=False), mode, chunk_rows, log
    )


def multilabel_decision(
    dataset: Dataset, check: ScoreCheck, mode: str, chunk_rows: int, log: ReadingLog
) -> str:
    """`_multilabel_reading` from a chunk's check (where the chunk was read elsewhere)."""
    _reject_non_finite(dataset, check, chunk_rows)
    how = reading(check, multi_label=True)
    if mode == "probs" and how != "probs":
        _reject_not_probabilities(dataset, chunk_rows)
    log.note(check, how)
    return how


def multilabel_mode(mode: str, readings: set[str]) -> str:
    """The file's reading: logits anywhere, all are logits; else percentages anywhere, all are
    (a chunk of small percentages looks like probabilities)."""
    if mode != "auto":
        return mode
    return "logits" if "logits" in readings else "percent" if "percent" in readings else "probs"


def _multilabel_pass_one(
    dataset: Dataset,
    mode: str,
    used: str | None,
    chunk_rows: int,
    threshold: float | np.ndarray,
    against_threshold: float | None,
) -> tuple[MultilabelPassOne, np.ndarray, ReadingLog, str, str]:
    """Pass 1 with the scores read as `used` (None: as `mode` says, in auto mode as the first
    chunk reads): the sums, the scored rows, the reading log, the reading used and the file's."""
    used = used or (None if mode == "auto" else mode)
    one = MultilabelPassOne(dataset.n_samples, dataset.n_classes, threshold, against_threshold)
    scored = np.zeros(dataset.n_samples, dtype=bool)
    readings: set[str] = set()
    log = ReadingLog(multi_label=True)
    lock = threading.Lock()

    def first_pass(raw: np.ndarray, rows: np.ndarray) -> tuple:
        nonlocal used
        how = _multilabel_reading(dataset, raw, mode, chunk_rows, log)
        with lock:
            readings.add(how)
            used = used or how
        truth = dataset.indicators[rows].astype(bool)
        probabilities = to_probabilities(float64(raw), used, multi_label=True)
        scored[rows] = True
        return one.update(truth, probabilities, rows)

    chunks = iter(dataset.score_chunks(chunk_rows))
    first = next(chunks, None)
    if first is not None:
        one.add(first_pass(*first))  # alone: it decides the reading for the rest
        run_in_parallel(chunks, first_pass, combine=one.add)
    final = multilabel_mode(mode, readings)
    return one, scored, log, used or final, final


def float64(raw: np.ndarray) -> np.ndarray:
    """A chunk as float64, as a whole read gathers it (figures then agree to the last bit)."""
    return raw.astype(np.float64, copy=False)


def _streamed_multilabel(
    dataset: Dataset,
    mode: str,
    chunk_rows: int,
    threshold: float | np.ndarray,
    against_threshold: float | None,
) -> MultilabelEvaluation:
    """Two passes over streamed scores (a third in auto mode when a late chunk reads otherwise
    than the first: pass 1 again, in the file's reading)."""
    mode = dataset.score_mode or mode
    one, scored, log, used, final = _multilabel_pass_one(
        dataset, mode, None, chunk_rows, threshold, against_threshold
    )
    if used != final:
        one, scored, log, used, final = _multilabel_pass_one(
            dataset, mode, final, chunk_rows, threshold, against_threshold
        )
    positive_mean, negative_mean = one.thresholds()
    two = MultilabelPassTwo(one.positive_scores(), positive_mean, negative_mean, dataset.n_samples)

    def second_pass(raw: np.ndarray, rows: np.ndarray) -> None:
        truth = dataset.indicators[rows].astype(bool)
        two.update(truth, to_probabilities(float64(raw), final, multi_label=True), rows)

    run_in_parallel(dataset.score_chunks(chunk_rows), second_pass)
    return MultilabelEvaluation(
        metrics=streamed_metrics(one, two),
        probabilities=None,
        scored=scored,
        score_mode=final,
        warnings=log.warnings(dataset.scores.source, final),
        detection=streamed_detection(one, two, np.flatnonzero(scored)),
        disagrees=one.disagrees,
    )


def _reject_non_finite(dataset: Dataset, check: ScoreCheck, chunk_rows: int) -> None:
    if check.non_finite_rows.size == 0:
        return
    bad = _rows_where(dataset, chunk_rows, lambda c: c.non_finite_rows)
    raise InputError(
        f"The predictions '{dataset.scores.source}' hold NaN or infinite scores in "
        f"{count(int(bad.sum()), 'row')} (ids {describe_ids(dataset.ids, bad)}). Scores must be "
        "finite numbers; fix or drop those rows."
    )


def _reject_not_probabilities(dataset: Dataset, chunk_rows: int) -> None:
    negative = _rows_where(
        dataset,
        chunk_rows,
        lambda c, raw: np.flatnonzero((raw < -RANGE_SLACK).any(axis=1)),
        with_raw=True,
    )
    if negative.any():
        raise InputError(
            f"--scores probs was given, but the predictions '{dataset.scores.source}' hold "
            f"negative values in {count(int(negative.sum()), 'row')} (ids "
            f"{describe_ids(dataset.ids, negative)}). Probabilities lie in [0, 1]; pass "
            "--scores logits (or auto) if these are logits."
        )
    above = _rows_where(
        dataset,
        chunk_rows,
        lambda c, raw: np.flatnonzero((raw > 1 + RANGE_SLACK).any(axis=1)),
        with_raw=True,
    )
    raise InputError(
        f"--scores probs was given, but the predictions '{dataset.scores.source}' hold values "
        f"above 1 in {count(int(above.sum()), 'row')} (ids {describe_ids(dataset.ids, above)}). "
        "Probabilities lie in [0, 1]; pass --scores logits (or auto) if these are logits."
    )


# A file read as logits is mixed when at least this many rows, and this share of them, each read
# as a distribution: a few logit rows of a weak binary model can sum to about 1 within [0, 1],
# probabilities pasted among logits (or percentages among probabilities) are many.
MIXED_ROWS = 1_000
MIXED_SHARE = 0.10


def _distribution_rows(raw: np.ndarray, check: ScoreCheck) -> int:
    """Rows of the chunk that read as distributions (all of them when the chunk does)."""
    if reading(check, multi_label=False) in ("probs", "percent"):
        return int(raw.shape[0])
    return distribution_row_count(raw, check.row_sums)


def _reject_if_mixed(dataset: Dataset, rows: int) -> None:
    """Scores chosen as logits that also hold many rows of distributions: exit 2."""
    if rows < MIXED_ROWS or rows < MIXED_SHARE * dataset.n_scored:
        return
    raise InputError(
        f"The predictions '{dataset.scores.source}' hold {count(rows, 'row')} that read as "
        "distributions (probabilities summing to 1, or percentages summing to 100) among rows "
        "that read as logits (values outside [0, 1]), so labelaudit will not guess how to read "
        "them. Make every row one or the other, or pass --scores probs or --scores logits."
    )


def _reject_mixed(dataset: Dataset) -> None:
    raise InputError(
        f"The predictions '{dataset.scores.source}' hold rows of probabilities (summing to 1) "
        "and rows of percentages (summing to 100) in one file, so labelaudit will not guess how "
        "to read them. Make every row one or the other, or pass --scores probs to divide each "
        "row by its sum."
    )


def _reject_zero_rows(dataset: Dataset, check: ScoreCheck, chunk_rows: int) -> None:
    if check.row_sums is None or (check.row_sums > 0).all():
        return
    zero = _rows_where(dataset, chunk_rows, lambda c: np.flatnonzero(c.row_sums <= 0))
    raise InputError(
        f"{count(int(zero.sum()), 'row')} of the predictions '{dataset.scores.source}' "
        f"{agree(int(zero.sum()), 'has', 'have')} no "
        f"probability on any class (every score 0; ids {describe_ids(dataset.ids, zero)}), so "
        "they cannot be read as probabilities. Fix or drop those rows."
    )


def _logits_or_reject_ambiguous(dataset: Dataset, chunk_rows: int) -> str:
    """Scores in [0, 1] whose rows do not sum to 1: "logits" when other chunks show values
    outside [0, 1]; otherwise they are per-class scores (one-vs-rest, sigmoid) or truncated
    distributions, and reading them either way would change every figure, so ask."""
    for raw, _rows in dataset.score_chunks(chunk_rows):
        if reading(check_scores(raw, expect_row_sum=True), multi_label=False) == "logits":
            return "logits"
    off = _rows_where(dataset, chunk_rows, lambda c: c.off_sum_rows)
    sums = _row_sum_range(dataset, chunk_rows, off)
    raise InputError(
        f"The predictions '{dataset.scores.source}' hold values in [0, 1], but "
        f"{count(int(off.sum()), 'row')} {'does' if off.sum() == 1 else 'do'} not sum to 1 "
        f"(sums from {sums[0]:.6g} to {sums[1]:.6g}; ids {describe_ids(dataset.ids, off)}). "
        "They are neither a probability distribution over the classes nor plausible logits, so "
        "labelaudit will not guess. Pass "
        "--scores probs to divide each row by its sum, or --scores logits to apply a softmax; "
        "if each row may hold several classes, read the labels as multi-label (a list column "
        "or --label-sep)."
    )


def _row_sum_range(dataset: Dataset, chunk_rows: int, mask: np.ndarray) -> tuple[float, float]:
    low, high = math.inf, -math.inf
    for raw, rows in dataset.score_chunks(chunk_rows, mask):
        picked = mask[rows]
        if picked.any():
            sums = raw[picked].sum(axis=1, dtype=np.float64)
            low, high = min(low, float(sums.min())), max(high, float(sums.max()))
    return low, high


def _rows_where(dataset: Dataset, chunk_rows: int, pick, with_raw: bool = False) -> np.ndarray:
    """A mask over dataset rows of the rows `pick` flags: a full pass, on the error path only."""
    mask = np.zeros(dataset.n_samples, dtype=bool)
    for raw, rows in dataset.score_chunks(chunk_rows):
        check = check_scores(raw, expect_row_sum=not dataset.multi_label)
        flagged = pick(check, raw) if with_raw else pick(check)
        mask[rows[flagged]] = True
    return mask


@dataclass(frozen=True)
class EnsembleEvaluation:
    """Pass 0 over several models' aligned scores: how each reads, its metrics sums (multi-class),
    the weights of the combination, and per sample how many models disagree with the label."""

    models: list[ModelScores]
    weights: np.ndarray
    error_rates: np.ndarray | None
    sums: list[MulticlassScoreSums] | None
    models_disagreeing: np.ndarray
    warnings: list[str]


def evaluate_models(
    datasets: list[Dataset],
    models: list[ModelScores],
    mode: str,
    chunk_rows: int,
    threshold: float = 0.5,
) -> EnsembleEvaluation:
    """Pass 0 over the models' aligned chunks: how each model's scores read (the single-model
    rule and validation, decided on its first chunk), its metric sums, and the agreement behind
    the weights (multi-class: inverse error rates on consensus rows, see core/ensemble.py;
    multi-label: equal weights, a model disagrees when its tag set at `threshold` differs from the
    given set, the same decision as one model's)."""
    if datasets[0].multi_label:
        return _multilabel_models(datasets, models, mode, chunk_rows, threshold)
    forced: dict[int, str] = {}
    while True:  # at most once more per model whose later chunks show logits
        outcome = _multiclass_models_pass(datasets, models, mode, chunk_rows, forced)
        if isinstance(outcome, EnsembleEvaluation):
            return outcome
        forced |= dict.fromkeys(outcome, "logits")


def _multiclass_models_pass(
    datasets: list[Dataset],
    models: list[ModelScores],
    mode: str,
    chunk_rows: int,
    forced: dict[int, str],
) -> EnsembleEvaluation | set[int]:
    """One pass 0; the models to re-read as logits when a later chunk contradicts the first."""
    base = datasets[0]
    n, k, m = base.n_samples, base.n_classes, len(models)
    chosen: list[str | None] = [forced.get(i, None if mode == "auto" else mode) for i in range(m)]
    logs = [ReadingLog() for _ in range(m)]
    agreement = ModelAgreement(n, m)
    sums = [MulticlassScoreSums(k, top_k=k) for _ in range(m)]  # accuracy, F1, log loss only
    lock = threading.Lock()
    contradicted: set[int] = set()
    distribution_rows = [0] * m

    def add(rows: slice) -> list[MulticlassScoreSums] | None:
        blocks = []
        for i, model in enumerate(models):
            raw = model.raw(rows)
            check = check_scores(raw, expect_row_sum=True)
            _reject_non_finite(datasets[i], check, chunk_rows)
            if mode == "auto" or i in forced:
                looking = _distribution_rows(raw, check)
                with lock:  # rows that read as distributions: a mixed file if logits?
                    distribution_rows[i] += looking
            if chosen[i] == "logits":
                how = "logits"
            else:
                how = _multiclass_reading(datasets[i], check, mode, chunk_rows)
            if chosen[i] is None:
                chosen[i] = how
            elif how != chosen[i]:
                if how != "logits":
                    _reject_mixed(datasets[i])
                contradicted.add(i)
                return None
            logs[i].note(check, how)
            probs = chosen[i] == "probs"
            blocks.append(to_probabilities(raw, chosen[i], check=check if probs else None))
        labels = base.labels[rows]
        parts = [MulticlassScoreSums(k, top_k=k) for _ in range(m)]
        at = np.arange(labels.size)
        disagreements = []
        for part, block in zip(parts, blocks, strict=True):
            predicted = part.update(block, labels)
            # Ties go to the given label, as everywhere: a disagreement is a strictly higher class.
            disagreements.append(block[at, labels] < block[at, predicted])
        agreement.update(blocks, labels, rows, disagreements)
        return parts

    def combine(parts: list[MulticlassScoreSums] | None) -> None:
        """On this thread, in chunk order: the same sums on every run."""
        for total, part in zip(sums, parts or [], strict=False):
            total.merge(part)

    chunks = _row_chunks(n, chunk_rows)
    first = next(chunks, None)
    if first is not None:
        combine(add(first[0]))  # alone: it decides how each model's scores read
        run_in_parallel(
            chunks, lambda rows, _: None if contradicted else add(rows), combine=combine
        )
    if contradicted:
        return contradicted
    for i, rows_read in enumerate(distribution_rows):
        if chosen[i] == "logits" and (mode == "auto" or i in forced):
            _reject_if_mixed(datasets[i], rows_read)
    read = [replace(model, mode=chosen[i] or "probs") for i, model in enumerate(models)]
    warnings = [w for i, log in enumerate(logs) for w in log.warnings(read[i].source, read[i].mode)]
    return EnsembleEvaluation(
        read, agreement.weights(), agreement.error_rates(), sums, agreement.models_disagreeing,
        warnings,
    )  # fmt: skip


def _multilabel_models(
    datasets: list[Dataset],
    models: list[ModelScores],
    mode: str,
    chunk_rows: int,
    threshold: float,
) -> EnsembleEvaluation:
    warnings: list[str] = []
    read = []
    for ds, model in zip(datasets, models, strict=True):
        evaluation = evaluate_multilabel(ds, mode, chunk_rows, threshold)
        warnings += evaluation.warnings
        read.append(replace(model, mode=evaluation.score_mode))
    base = datasets[0]
    disagreeing = np.zeros(base.n_samples, dtype=np.int16)

    def tally(rows: slice) -> None:
        given = base.indicators[rows].astype(bool)
        for model in read:
            decided = model.probabilities(rows, True) >= threshold
            disagreeing[rows] += (decided != given).any(axis=1)

    run_in_parallel(_row_chunks(base.n_samples, chunk_rows), lambda rows, _: tally(rows))
    weights = np.full(len(read), 1.0 / len(read))
    return EnsembleEvaluation(read, weights, None, None, disagreeing, warnings)


def _row_chunks(n: int, chunk_rows: int) -> Iterator[tuple[slice, None]]:
    for start in range(0, n, chunk_rows):
        yield slice(start, min(start + chunk_rows, n)), None
