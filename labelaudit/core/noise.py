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
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labelaudit.core import CHUNK_ROWS
from labelaudit.core.accumulators import PairCounts
from labelaudit.core.candidates import PassOneRows, in_row_blocks
from labelaudit.core.confused_pairs import PairAnomaly, pair_anomalies, pairs_of_the_estimate
from labelaudit.core.error_count import ErrorCount, count_errors
from labelaudit.core.evidence import SampleEvidence
from labelaudit.core.noise_estimate import NoiseEstimate, estimate_noise
from labelaudit.core.pair_table import PairTable
from labelaudit.core.quality_scores import QUALITY_SCORES, label_quality, rank_by_quality
from labelaudit.core.sparse_rows import SparseRows
from labelaudit.core.suspect_rules import SUSPECT_RULES, Disagreements, flag_suspects

NO_CLASS = -1
# The estimate of how many labels are wrong is this rule's set (core/error_count.py), and the
# count rules choose their rows in this score's order; the ranking's score is the user's.
ESTIMATE_RULE = "weighted_count"
SELECTION_SCORE = "adaptive_margin"
_PIECE_ROWS = 16_384


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
