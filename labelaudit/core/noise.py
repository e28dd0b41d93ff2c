"""Suspected label errors: label-quality scores, confident learning, suspects, pair anomalies.

Confident learning follows Northcutt, Jiang and Chuang, "Confident Learning: Estimating
Uncertainty in Dataset Labels" (JAIR 2021). Everything here is pure numpy. The (N, K) scores are
read in row chunks, in two passes: pass 1 collects per-sample evidence (the given label's
probability, the best other class) and per-class sums (the thresholds); pass 2 assigns each
sample its confident class (the confident joint). Everything after works on length-N arrays and
K x K tables, so memory is bounded by the chunk plus a few numbers per sample.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labelaudit.core import CHUNK_ROWS
from labelaudit.core.accumulators import ClassSums, PairCounts
from labelaudit.core.candidates import CandidateNote, PassOneRows, in_row_blocks
from labelaudit.core.confused_pairs import PairAnomaly, pair_anomalies, pairs_of_the_estimate
from labelaudit.core.error_count import ErrorCount, count_errors
from labelaudit.core.pair_table import PairTable
from labelaudit.core.quality_scores import QUALITY_SCORES, label_quality, rank_by_quality
from labelaudit.core.sparse_rows import ENTROPY_CLIP, SparseRows
from labelaudit.core.suspect_rules import SUSPECT_RULES, Disagreements, flag_suspects

NO_CLASS = -1
# The estimate of how many labels are wrong is this rule's set (core/error_count.py), and the
# count rules choose their rows in this score's order; the ranking's score is the user's.
ESTIMATE_RULE = "weighted_count"
SELECTION_SCORE = "adaptive_margin"
_PIECE_ROWS = 16_384


@dataclass
class SampleEvidence:
    """Pass 1: per-sample evidence and per-class sums, filled chunk by chunk."""

    n_samples: int
    n_classes: int
    with_entropy: bool = False
    # Keep each row's other contenders for its confident class (core.candidates), so that pass
    # 2 need not read streamed scores again.
    with_candidates: bool = False
    given_probability: np.ndarray = field(init=False)
    best_other_probability: np.ndarray = field(init=False)
    best_other_class: np.ndarray = field(init=False)
    normalized_entropy: np.ndarray | None = field(init=False)
    # Top-k rows: whether the given label and the best other class are listed in the row (an
    # unlisted class is never confident).
    given_listed: np.ndarray | None = field(init=False, default=None)
    other_listed: np.ndarray | None = field(init=False, default=None)
    # Per class: samples labeled with it and the sum of their given-label probability.
    class_sums: ClassSums = field(init=False)
    candidates: CandidateNote | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        n = self.n_samples
        self._lock = threading.Lock()
        self.given_probability = np.zeros(n, dtype=np.float64)
        self.best_other_probability = np.zeros(n, dtype=np.float64)
        self.best_other_class = np.zeros(n, dtype=np.int32)
        self.normalized_entropy = np.zeros(n, dtype=np.float64) if self.with_entropy else None
        self.class_sums = ClassSums(self.n_classes)
        if self.with_candidates:
            self.candidates = CandidateNote(n, self.n_classes)

    def update(
        self, probabilities: np.ndarray | SparseRows, labels: np.ndarray, rows: np.ndarray
    ) -> ClassSums:
        """Record one chunk's rows; returns its per-class sums, for `add` (threads hand them to
        one thread, which adds them in chunk order: the thresholds are the same on every run).
        `probabilities` is modified in place, then restored."""
        if isinstance(probabilities, SparseRows):
            given = probabilities.given(labels)
            other, other_probability = probabilities.best(excluded=labels)
            entropy = probabilities.normalized_entropy() if self.with_entropy else None
            part = self._record(labels, rows, given, other, other_probability, entropy)
            with self._lock:
                if self.other_listed is None:
                    self.given_listed = np.ones(self.n_samples, dtype=bool)
                    self.other_listed = np.ones(self.n_samples, dtype=bool)
            self.given_listed[rows] = probabilities.lists(labels)
            self.other_listed[rows] = probabilities.lists(other)
            return part
        m = labels.size
        at = np.arange(m)
        given = probabilities[at, labels].copy()
        # The best other class: hide the given label's column, take the max, then restore it.
        probabilities[at, labels] = -np.inf
        other = probabilities.argmax(axis=1)
        other_probability = probabilities[at, other]
        probabilities[at, labels] = given
        entropy = normalized_entropy(probabilities) if self.with_entropy else None
        if self.candidates is not None:
            with self._lock:
                so_far = ClassSums(self.n_classes)
                so_far.merge(self.class_sums)
            bounds = self.candidates.bounds(so_far, labels, given)
            self.candidates.record(probabilities, labels, other, rows, bounds)
        return self._record(labels, rows, given, other, other_probability, entropy)

    def add(self, part: ClassSums) -> None:
        """Add a chunk's per-class sums (`update`'s result)."""
        with self._lock:
            self.class_sums.merge(part)

    def _record(
        self,
        labels: np.ndarray,
        rows: np.ndarray,
        given: np.ndarray,
        other: np.ndarray,
        other_probability: np.ndarray,
        entropy: np.ndarray | None,
    ) -> ClassSums:
        self.best_other_probability[rows] = other_probability
        self.best_other_class[rows] = other
        self.given_probability[rows] = given
        part = ClassSums(self.n_classes)
        part.update(labels, given)
        if self.normalized_entropy is not None:
            self.normalized_entropy[rows] = entropy
        return part

    def export(self) -> dict[str, object]:
        """This evidence as plain arrays (rows 0..n-1), to ship from a worker to the driver."""
        return {
            "given": self.given_probability,
            "other": self.best_other_probability,
            "other_class": self.best_other_class,
            "entropy": self.normalized_entropy,
            "counts": self.class_sums.counts,
            "sums": self.class_sums.sums,
            "note": self.candidates.export() if self.candidates is not None else None,
            "given_listed": self.given_listed,
            "other_listed": self.other_listed,
        }

    def absorb(self, part: dict[str, object], rows: np.ndarray) -> None:
        """Add a worker's `export()`, whose row i is this evidence's row rows[i] (dense rows)."""
        self.given_probability[rows] = part["given"]
        self.best_other_probability[rows] = part["other"]
        self.best_other_class[rows] = part["other_class"]
        if self.normalized_entropy is not None:
            self.normalized_entropy[rows] = part["entropy"]
        sums = ClassSums(self.n_classes)
        sums.counts, sums.sums = part["counts"], part["sums"]
        self.class_sums.merge(sums)
        if part["given_listed"] is not None:  # top-k rows: whether each was in its list
            if self.given_listed is None:
                self.given_listed = np.ones(self.n_samples, dtype=bool)
                self.other_listed = np.ones(self.n_samples, dtype=bool)
            self.given_listed[rows] = part["given_listed"]
            self.other_listed[rows] = part["other_listed"]
        if self.candidates is not None:
            if part["note"] is None:
                raise ValueError("a worker's evidence without the note this evidence keeps")
            self.candidates.absorb(part["note"], rows)

    @property
    def predicted_class(self) -> np.ndarray:
        """The argmax class; ties between the given label and another go to the given label."""
        return np.where(
            self.best_other_probability > self.given_probability, self.best_other_class, -1
        )

    def thresholds(self) -> np.ndarray:
        """Per-class threshold t_j: the mean probability of class j over samples labeled j.

        A class with fewer than 2 samples (whose mean would be one sample's own score, or none)
        takes the median of the other classes' thresholds: samples the model confidently puts
        there still count in the confident joint (else with one class present every error goes
        unseen and the estimate says 0 beside hundreds flagged). Inf (no sample is confidently
        of that class) only when no class has 2 samples.
        """
        own = self.class_sums.compute(min_count=2)
        defined = np.isfinite(own)
        if defined.any() and not defined.all():
            own[~defined] = np.median(own[defined])
        return own

    def classes_with_pooled_threshold(self) -> np.ndarray:
        """The classes whose threshold is the others' median (fewer than 2 samples)."""
        return np.flatnonzero(self.class_sums.counts < 2)

    @property
    def class_count(self) -> np.ndarray:
        """Samples labeled with each class."""
        return self.class_sums.counts


def normalized_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Row entropy divided by log K, in [0, 1]."""
    p = np.clip(probabilities.astype(np.float64, copy=False), ENTROPY_CLIP, None)
    entropy = -(p * np.log(p)).sum(axis=1)
    k = probabilities.shape[1]
    return entropy / np.log(k) if k > 1 else np.zeros(probabilities.shape[0])


@dataclass
class ConfidentJoint:
    """Pass 2: each sample's confident class and the K x K confident joint (given x confident)."""

    thresholds: np.ndarray
    _labels: np.ndarray
    confident_class: np.ndarray = field(init=False)
    confident_probability: np.ndarray = field(init=False)
    counts: PairTable = field(init=False)

    def __post_init__(self) -> None:
        self.confident_class = np.full(self._labels.size, NO_CLASS, dtype=np.int32)
        self.confident_probability = np.zeros(self._labels.size, dtype=np.float64)
        self.count()

    def settle_from_top_class(self, evidence: SampleEvidence) -> np.ndarray:
        """Rows whose most probable class clears its threshold have that class as confident
        class (the most probable overall is the most probable of those that clear), unless it
        ties with another class. Returns the mask of rows still unsettled, which need `update`
        with their full scores."""
        unsettled = np.empty(self._labels.size, dtype=bool)

        def settle(rows: slice) -> None:
            given, other = evidence.given_probability[rows], evidence.best_other_probability[rows]
            top_is_given = given >= other
            top_class = np.where(top_is_given, self._labels[rows], evidence.best_other_class[rows])
            top_probability = np.maximum(given, other)
            # A tie between the given label and the best other is left to the full rule, which
            # breaks ties by class index (a row's class does not depend on the pass that set it).
            settled = (top_probability >= self.thresholds[top_class]) & (given != other)
            if evidence.other_listed is not None:  # an unlisted top class is never confident
                listed = evidence.given_listed[rows], evidence.other_listed[rows]
                settled &= np.where(top_is_given, *listed)
            self.confident_class[rows][settled] = top_class[settled]
            self.confident_probability[rows][settled] = top_probability[settled]
            unsettled[rows] = ~settled

        in_row_blocks(self._labels.size, settle)
        return unsettled

    def settle_from_candidates(self, evidence: SampleEvidence, unsettled: np.ndarray) -> np.ndarray:
        """Settle the unsettled rows whose contenders pass 1 kept (core.candidates); returns
        the mask of rows still to read."""
        assert evidence.candidates is not None
        rows = PassOneRows(
            self._labels,
            evidence.given_probability,
            evidence.best_other_class,
            evidence.best_other_probability,
        )
        return evidence.candidates.resolve(
            self.thresholds, rows, unsettled, self.confident_class, self.confident_probability
        )

    def update(
        self, probabilities: np.ndarray | SparseRows, labels: np.ndarray, rows: np.ndarray
    ) -> None:
        """A sample's confident class: among classes whose probability clears their threshold,
        the most probable (the paper's rule); none when no class clears."""
        if isinstance(probabilities, SparseRows):
            confident, probability = probabilities.confident(self.thresholds)
            self.confident_class[rows] = confident
            self.confident_probability[rows] = probability
            return
        # In pieces: the masked copy is the largest temporary of pass 2.
        for start in range(0, rows.size, _PIECE_ROWS):
            piece = probabilities[start : start + _PIECE_ROWS]
            piece_rows = rows[start : start + _PIECE_ROWS]
            cleared = np.where(piece >= self.thresholds, piece, -1.0)
            best = cleared.argmax(axis=1)
            best_probability = cleared[np.arange(best.size), best]
            has_any = best_probability >= 0
            self.confident_class[piece_rows] = np.where(has_any, best, NO_CLASS)
            self.confident_probability[piece_rows] = np.where(has_any, best_probability, 0.0)

    def prefer_the_label_on_ties(self, evidence: SampleEvidence) -> None:
        """A row whose given label clears its threshold and ties with its confident class has
        the given label as confident class: a tie is no evidence against the label (as a tie
        is no disagreement). One place after every way of settling rows (whole rows, top-k
        lists, pass 1's note), so they all agree; uniform scores then count no flip."""
        labels = self._labels
        tied = (
            (self.confident_class != NO_CLASS)
            & (self.confident_class != labels)
            & (evidence.given_probability >= self.confident_probability)
            & (evidence.given_probability >= self.thresholds[labels])
        )
        if evidence.given_listed is not None:  # an unlisted label is never confident
            tied &= evidence.given_listed
        self.confident_class[tied] = labels[tied]
        self.confident_probability[tied] = evidence.given_probability[tied]

    def count(self) -> None:
        """The K x K confident joint: given label x confident class, over rows with one."""
        k = self.thresholds.size
        has_any = self.confident_class != NO_CLASS
        joint = PairCounts(k, k)
        joint.update(self._labels[has_any], self.confident_class[has_any])
        self.counts = joint.compute()


@dataclass(frozen=True)
class NoiseEstimate:
    """The calibrated confident joint and what follows from it (K x K tables kept sparse)."""

    calibrated_joint: PairTable
    joint: PairTable
    noise_matrix: PairTable
    class_noise_rate: np.ndarray
    estimated_errors: int
    noise_rate: float


def estimate_noise(counts: PairTable | np.ndarray, class_count: np.ndarray) -> NoiseEstimate:
    """Calibrate the confident joint to the class counts; derive P(given | true) and rates.

    Calibration scales row i (given label i) so that it sums to the number of samples labeled i;
    the estimated number of errors is the calibrated mass off the diagonal.
    """
    counts = PairTable.of(counts)
    values = counts.values.astype(np.float64)
    row_sums = np.bincount(counts.rows, weights=values, minlength=counts.n_rows)
    scale = np.divide(class_count, row_sums, out=np.zeros(row_sums.size), where=row_sums > 0)
    calibrated = counts.with_values(values * scale[counts.rows])
    total = float(calibrated.values.sum())
    joint = calibrated.with_values(calibrated.values / total) if total > 0 else calibrated
    column_sums = joint.column_sums()
    noise_matrix = joint.with_values(joint.values / column_sums[joint.columns])
    diagonal = calibrated.diagonal().astype(np.float64)
    class_noise = np.divide(
        class_count - diagonal, class_count, out=np.zeros(class_count.size), where=class_count > 0
    )
    class_noise = np.clip(class_noise, 0.0, 1.0)
    estimated = round(float(class_count.sum() - diagonal.sum()))
    n = int(class_count.sum())
    return NoiseEstimate(
        calibrated_joint=calibrated,
        joint=joint,
        noise_matrix=noise_matrix,
        class_noise_rate=class_noise,
        estimated_errors=max(estimated, 0),
        noise_rate=max(estimated, 0) / n if n else 0.0,
    )


def suggested_labels(
    evidence: SampleEvidence, joint: ConfidentJoint, labels: np.ndarray
) -> np.ndarray:
    """The confident class when it differs from the given label, else the best other class."""
    confident = joint.confident_class
    use_confident = (confident != NO_CLASS) & (confident != labels)
    return np.where(use_confident, confident, evidence.best_other_class)


@dataclass(frozen=True)
class Detection:
    """Everything the suspect search found, per sample and per class."""

    quality_score: str
    rule: str
    thresholds: np.ndarray
    evidence: SampleEvidence
    confident: ConfidentJoint
    noise: NoiseEstimate
    quality: np.ndarray
    flagged: np.ndarray
    suggested: np.ndarray
    suggested_probability: np.ndarray
    margin: np.ndarray
    pairs: list[PairAnomaly]
    classes_with_pooled_threshold: np.ndarray
    errors: ErrorCount  # the one estimate of how many labels are wrong (core/error_count.py)

    def ranks(self) -> np.ndarray:
        """Every sample's rank (1 = most suspect); a full sort, so computed only when asked."""
        return rank_by_quality(self.quality)


def detect(
    chunks: Callable[[np.ndarray | None], Iterable[tuple[np.ndarray, np.ndarray]]],
    labels: np.ndarray,
    n_classes: int,
    quality_score: str = "self_confidence",
    rule: str = "weighted_count",
    with_candidates: bool = False,
) -> Detection:
    """Run both passes over the scores and derive suspects and pairs.

    `chunks(needed)` yields (probabilities, rows): a writable (m, K) probability block and the
    dataset rows it holds; with a boolean mask `needed`, only chunks holding a needed row must be
    yielded (pass 2 needs few rows). Blocks are modified during pass 1 and restored.
    `with_candidates`: pass 1 keeps what pass 2 needs (core.candidates), for chunks that are
    costly to read again.
    """
    evidence = SampleEvidence(
        labels.size,
        n_classes,
        with_entropy=quality_score == "confidence_weighted_entropy",
        with_candidates=with_candidates,
    )
    run_in_parallel(
        chunks(None),
        lambda block, rows: evidence.update(block, labels[rows], rows),
        combine=evidence.add,
    )
    return finish_detection(evidence, chunks, labels, quality_score, rule)


def run_in_parallel(
    blocks: Iterable[tuple[Any, Any]],
    work: Callable[[Any, Any], Any],
    workers: int | None = None,
    combine: Callable[[Any], None] | None = None,
) -> None:
    """Apply `work` to each (block, rows) on a few threads (NumPy releases the GIL), one block
    per thread in flight so memory stays bounded. `work` must only write its rows. `combine`,
    when given, receives each `work` result on this thread in the blocks' order: sums merged
    there add in the same order on every run, so reports are reproducible to the last bit."""
    workers = workers or min(2, os.cpu_count() or 1)
    if workers == 1:
        for block, rows in blocks:
            result = work(block, rows)
            if combine is not None:
                combine(result)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        in_flight: deque[Future[Any]] = deque()
        for block, rows in blocks:
            in_flight.append(pool.submit(work, block, rows))
            if len(in_flight) >= workers:
                result = in_flight.popleft().result()
                if combine is not None:
                    combine(result)
        for future in in_flight:
            result = future.result()
            if combine is not None:
                combine(result)


def finish_detection(
    evidence: SampleEvidence,
    chunks: Callable[[np.ndarray | None], Iterable[tuple[np.ndarray, np.ndarray]]],
    labels: np.ndarray,
    quality_score: str,
    rule: str,
) -> Detection:
    """Pass 2 and everything after it, given pass 1's evidence (which may come from a pass
    shared with other statistics)."""
    if quality_score not in QUALITY_SCORES:
        raise ValueError(f"unknown label-quality score {quality_score!r}")
    if rule not in SUSPECT_RULES:
        raise ValueError(f"unknown suspect rule {rule!r}")
    thresholds = evidence.thresholds()
    confident = ConfidentJoint(thresholds, labels)
    unsettled = confident.settle_from_top_class(evidence)
    if evidence.candidates is not None:
        unsettled = confident.settle_from_candidates(evidence, unsettled)
        evidence.candidates = None  # its entries are spent: free them before what follows
    if unsettled.any():

        def settle(block: np.ndarray, rows: np.ndarray) -> None:
            keep = unsettled[rows]
            if keep.all():
                confident.update(block, labels[rows], rows)
            elif keep.any():
                confident.update(block[keep], labels[rows[keep]], rows[keep])

        run_in_parallel(chunks(unsettled), settle)
    confident.prefer_the_label_on_ties(evidence)
    confident.count()
    noise = estimate_noise(confident.counts, evidence.class_count)
    # The count rules pick their rows in adaptive-margin order, whatever the ranking's score.
    selection = label_quality(evidence, SELECTION_SCORE, noise)
    quality = (
        selection
        if quality_score == SELECTION_SCORE
        else label_quality(evidence, quality_score, noise)
    )
    margin = evidence.best_other_probability - evidence.given_probability
    found = _disagreements(evidence, confident, labels)
    estimate_set = flag_suspects(ESTIMATE_RULE, labels, evidence, noise, selection, found)
    flagged = (
        estimate_set
        if rule == ESTIMATE_RULE
        else flag_suspects(rule, labels, evidence, noise, selection, found)
    )
    errors = count_errors(
        estimate_set,
        labels,
        evidence.n_classes,
        confident_joint=noise.estimated_errors,
        disagreements=found.count,
        confident_disagreements=found.confident_count,
    )
    suggested = suggested_labels(evidence, confident, labels)
    use_confident = suggested == confident.confident_class
    suggested_probability = np.where(
        use_confident, confident.confident_probability, evidence.best_other_probability
    )
    pairs = pair_anomalies(
        pairs_of_the_estimate(noise, errors.count),
        evidence.class_count,
        labels,
        suggested,
        flagged,
        margin,
    )
    return Detection(
        quality_score=quality_score,
        rule=rule,
        thresholds=thresholds,
        evidence=evidence,
        confident=confident,
        noise=noise,
        quality=quality,
        flagged=flagged,
        suggested=suggested,
        suggested_probability=suggested_probability,
        margin=margin,
        pairs=pairs,
        classes_with_pooled_threshold=evidence.classes_with_pooled_threshold(),
        errors=errors,
    )


def _disagreements(
    evidence: SampleEvidence, confident: ConfidentJoint, labels: np.ndarray
) -> Disagreements:
    rows = evidence.best_other_probability > evidence.given_probability
    other = (confident.confident_class != NO_CLASS) & (confident.confident_class != labels)
    return Disagreements(rows, other & rows)


def in_memory_chunks(
    probabilities: np.ndarray, chunk_rows: int = CHUNK_ROWS
) -> Callable[[np.ndarray | None], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """Chunks of an in-memory matrix as views (modified in pass 1, then restored)."""

    def chunks(needed: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, probabilities.shape[0], chunk_rows):
            stop = min(start + chunk_rows, probabilities.shape[0])
            if needed is not None and not needed[start:stop].any():
                continue
            yield probabilities[start:stop], np.arange(start, stop)

    return chunks
