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
from labelaudit.core.pair_table import PairTable
from labelaudit.core.sparse_rows import ENTROPY_CLIP, SparseRows

QUALITY_SCORES = (
    "self_confidence",
    "normalized_margin",
    "half_margin",
    "adaptive_margin",
    "confidence_weighted_entropy",
)
SUSPECT_RULES = (
    "confident_joint",
    "prune_by_noise_rate",
    "both",
    "argmax",
    "estimated_count",
    "balanced_count",
    "weighted_count",
)
NO_CLASS = -1
_ENTROPY_FLOOR = 1e-6  # the clip cleanlab uses for its confidence-weighted entropy
_PIECE_ROWS = 16_384
_RANK_PIECE = 1 << 20


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


def label_quality(
    evidence: SampleEvidence, method: str, noise: NoiseEstimate | None = None
) -> np.ndarray:
    """Per-sample label quality in [0, 1]; lower is more suspect.

    - self_confidence: p(given).
    - normalized_margin: (p(given) - p(best other) + 1) / 2.
    - half_margin: (2 p(given) - p(best other) + 1) / 3, the average of self-confidence and the
      margin p(given) - p(best other), mapped into [0, 1]. Self-confidence ranks best when the
      model's doubt is spread over many classes (uniform noise, weak models), the margin when one
      other class stands out (noise between look-alike classes); each fails where the other
      works, and their average stays close to the better one of the two.
    - adaptive_margin: (p(given) - c p(best other) + c) / (1 + c), c = `flip_concentration`
      of the calibrated confident joint (so `noise` is required): self-confidence (c = 0) when
      the estimated label flips into a class come from many classes, the margin (c = 1) when
      they come from one class each, in between otherwise. Why: the odds that a sample labeled
      y is mislabeled are the sum over other classes j of P(labeled y | truly j) p(j), over
      P(labeled y | truly y) p(y). When the flips into y are spread evenly over the other
      classes, that sum is proportional to 1 - p(y), and the ranking is that of self-confidence;
      when they come from one class (the one the sample resembles), it is proportional to
      p(best other), and the ranking is that of p(given) against p(best other).
    - confidence_weighted_entropy: see below.
    """
    given, other = evidence.given_probability, evidence.best_other_probability
    if method == "self_confidence":
        return np.clip(given, 0.0, 1.0)
    if method == "normalized_margin":
        return np.clip((given - other + 1.0) / 2.0, 0.0, 1.0)
    if method == "half_margin":
        return np.clip((2.0 * given - other + 1.0) / 3.0, 0.0, 1.0)
    if method == "adaptive_margin":
        if noise is None:
            raise ValueError("adaptive_margin needs the noise estimate (the confident joint)")
        c = flip_concentration(noise.calibrated_joint)
        return np.clip((given - c * other + c) / (1.0 + c), 0.0, 1.0)
    if method == "confidence_weighted_entropy":
        # Entropy over self-confidence, mapped into (0, 1] by log(s + 1) / s (as cleanlab does).
        ratio = evidence.normalized_entropy / np.clip(given, _ENTROPY_FLOOR, None)
        return np.log(ratio + 1.0) / np.clip(ratio, _ENTROPY_FLOOR, None)
    raise ValueError(f"unknown label-quality score {method!r}; expected one of {QUALITY_SCORES}")


def flip_concentration(calibrated_joint: PairTable | np.ndarray) -> float:
    """How concentrated the estimated label flips are, in [0, 1]: 0 when the samples labeled i
    that belong elsewhere are spread evenly over the other classes, 1 when they all belong to
    one other class. Computed on the calibrated confident joint (rows: given label, columns:
    confident class): per given label i, the largest off-diagonal share of row i's off-diagonal
    mass, rescaled so that an even spread over the K - 1 other classes is 0; then the average
    over labels weighted by their off-diagonal mass. With 2 classes it is 1 (a single other
    class; self-confidence and the margin rank alike there); with no off-diagonal mass at all,
    1/2 (no evidence either way).
    """
    calibrated_joint = PairTable.of(calibrated_joint)
    k = calibrated_joint.n_rows
    if k <= 2:
        return 1.0
    off = calibrated_joint.off_diagonal()
    off = off.with_values(off.values.astype(np.float64))
    mass = off.row_sums().astype(np.float64)
    total = float(mass.sum())
    if total <= 0:
        return 0.5
    share = np.divide(off.row_maxima(), mass, out=np.zeros(k), where=mass > 0)
    even = 1.0 / (k - 1)
    per_label = np.clip((share - even) / (1.0 - even), 0.0, 1.0)
    return float((per_label * mass).sum() / total)


def suggested_labels(
    evidence: SampleEvidence, joint: ConfidentJoint, labels: np.ndarray
) -> np.ndarray:
    """The confident class when it differs from the given label, else the best other class."""
    confident = joint.confident_class
    use_confident = (confident != NO_CLASS) & (confident != labels)
    return np.where(use_confident, confident, evidence.best_other_class)


def rank_by_quality(quality: np.ndarray, dtype: type = np.int64) -> np.ndarray:
    """Rank 1 is the most suspect: lowest quality first; equal qualities keep row order, so
    ranks are a total order that does not depend on the sort's internals. Qualities that are
    all finite and >= 0 (the usual case) sort as their bit patterns, unsigned integers in the
    same order, which NumPy's stable sort handles faster than floats."""
    keys = np.asarray(quality, dtype=np.float64)
    if keys.size and np.isfinite(keys).all() and keys.min() >= 0:
        keys = (keys + 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0
    order = np.argsort(keys, kind="stable")
    del keys
    ranks = np.empty(order.size, dtype=dtype)
    for start in range(0, order.size, _RANK_PIECE):  # no N-long arange beside the order
        stop = min(start + _RANK_PIECE, order.size)
        ranks[order[start:stop]] = np.arange(start + 1, stop + 1, dtype=dtype)
    return ranks


def lowest_quality(quality: np.ndarray, count: int) -> np.ndarray:
    """Mask of the `count` lowest-quality samples (ties by row order): O(N), no full sort."""
    mask = np.zeros(quality.size, dtype=bool)
    if count <= 0:
        return mask
    if count >= quality.size:
        mask[:] = True
        return mask
    cut = np.partition(quality, count - 1)[count - 1]
    below = quality < cut
    mask[below] = True
    ties = np.flatnonzero(quality == cut)[: count - int(below.sum())]
    mask[ties] = True
    return mask


def flag_suspects(
    rule: str,
    labels: np.ndarray,
    evidence: SampleEvidence,
    joint: ConfidentJoint,
    noise: NoiseEstimate,
    quality: np.ndarray,
    margin_floor: float = 0.0,
) -> np.ndarray:
    """The flagged set (a boolean mask) under one of SUSPECT_RULES.

    Whatever the rule, a sample whose given label is the model's most probable class is never
    flagged: the model agrees with the label, so there is no evidence against it.
    """
    margin = evidence.best_other_probability - evidence.given_probability
    disagrees = margin > margin_floor
    off_diagonal = (joint.confident_class != NO_CLASS) & (joint.confident_class != labels)
    if rule == "confident_joint":
        return off_diagonal & disagrees
    if rule == "argmax":
        return disagrees
    if rule == "estimated_count":
        return lowest_quality(quality, noise.estimated_errors) & disagrees
    if rule == "balanced_count":
        count = balanced_count(noise.estimated_errors, int(disagrees.sum()))
        return lowest_quality(np.where(disagrees, quality, np.inf), count)
    if rule == "weighted_count":
        count = weighted_count(
            noise.estimated_errors, int(disagrees.sum()), int((off_diagonal & disagrees).sum())
        )
        return lowest_quality(np.where(disagrees, quality, np.inf), count)
    pruned = _prune_by_noise_rate(labels, evidence, noise) & disagrees
    if rule == "prune_by_noise_rate":
        return pruned
    if rule == "both":
        return pruned & off_diagonal
    raise ValueError(f"unknown suspect rule {rule!r}; expected one of {SUSPECT_RULES}")


def balanced_count(estimated_errors: int, disagreements: int) -> int:
    """How many samples `balanced_count` flags: the geometric mean of two estimates of the number
    of label errors that err in opposite directions, at most the number of disagreements.

    The number of samples the model disagrees with counts the model's own mistakes as errors, so
    it is too high when the model is weak or the noise is low; the calibrated confident joint's
    count leaves out errors on ambiguous samples (no class clears its threshold), so it is too
    low when errors are hard, instance-dependent ones (human noise). The geometric mean is the
    midpoint on a ratio scale: off by at most the square root of the worse estimate's factor
    when the truth lies between them.
    """
    if estimated_errors <= 0 or disagreements <= 0:
        return 0
    return min(round(float(np.sqrt(float(estimated_errors) * disagreements))), disagreements)


def weighted_count(estimated_errors: int, disagreements: int, confident_disagreements: int) -> int:
    """How many samples `weighted_count` flags: a weighted geometric mean of the disagreements A
    and the calibrated confident joint's estimate C, C^w A^(1 - w), with w the share of the
    disagreements whose best other class clears its own threshold (the confident
    disagreements); at most A.

    The confident joint counts the disagreements it sees (a confident other class) and
    extrapolates to the rest, the samples where no class clears its threshold, as if their error
    rate were that of the confident ones. That is where C goes wrong: with a model trained on the
    noisy labels, errors on ambiguous samples (human noise) are unconfident, and C falls far below
    the true count, while A counts them all. So C gets the weight of the evidence it actually
    sees: when every disagreement is confident (w = 1) the count is C, the confident joint's
    own regime; when none is (w = 0) it is A. No constant is tuned (`balanced_count` is the same
    mean with w fixed at 1/2). With no disagreement there is nothing to flag; with C = 0 no
    disagreement is confident (w = 0) and the count is A.
    """
    if disagreements <= 0:
        return 0
    if confident_disagreements <= 0:
        return disagreements  # w = 0: the count is A
    if estimated_errors <= 0:
        return 0
    w = min(confident_disagreements / disagreements, 1.0)
    log_count = w * np.log(float(estimated_errors)) + (1.0 - w) * np.log(float(disagreements))
    return min(round(float(np.exp(log_count))), disagreements)


def _prune_by_noise_rate(
    labels: np.ndarray, evidence: SampleEvidence, noise: NoiseEstimate
) -> np.ndarray:
    """For each pair (given i, other j), flag the n_ij samples labeled i with the largest margin
    p_j - p_i, n_ij the calibrated joint's off-diagonal count (the paper's prune-by-noise-rate).

    A sample competes only for its best other class j: the samples with the largest p_j - p_i
    almost always have j as their best other class. One sort of N keys, no loop over pairs.
    """
    k = noise.calibrated_joint.n_columns
    off = noise.calibrated_joint.off_diagonal()
    to_remove = off.with_values(np.round(off.values).astype(np.int64))
    margin = evidence.best_other_probability - evidence.given_probability
    # Only samples the model disagrees with can be flagged (flag_suspects), so only they compete.
    candidates = np.flatnonzero(margin > 0)
    pair = labels[candidates] * k + evidence.best_other_class[candidates]
    # Sort by pair, then by margin descending; a sample's position within its pair is its rank.
    order = np.lexsort((-margin[candidates], pair))
    sorted_pair = pair[order]
    first_of_pair = np.searchsorted(sorted_pair, sorted_pair, side="left")
    rank_in_pair = np.arange(order.size) - first_of_pair
    flagged = np.zeros(labels.size, dtype=bool)
    flagged[candidates[order]] = rank_in_pair < to_remove.at(sorted_pair // k, sorted_pair % k)
    return flagged


@dataclass(frozen=True)
class PairAnomaly:
    """A class pair whose confusion stands far above the typical off-diagonal share."""

    source: int
    target: int
    count: int
    share: float
    reverse_count: int
    ratio_to_median: float
    kind: str
    example_rows: np.ndarray


def pair_anomalies(
    counts: PairTable | np.ndarray,
    class_count: np.ndarray,
    labels: np.ndarray,
    suggested: np.ndarray,
    flagged: np.ndarray,
    margin: np.ndarray,
    min_count: int = 5,
    min_ratio: float = 5.0,
    examples: int = 5,
) -> list[PairAnomaly]:
    """Ordered pairs (a -> b) of the confident joint with count >= min_count and a share of a's
    samples >= min_ratio x the median off-diagonal share; asymmetric when a -> b is at least 3x
    b -> a (a labeling rule gone wrong), else symmetric overlap (reported once, as a <-> b).
    The median runs over every off-diagonal cell of a labeled class, the empty ones included."""
    counts = PairTable.of(counts)
    k = counts.n_rows
    present = class_count > 0
    cells = int(present.sum()) * (k - 1)
    if cells == 0:
        return []
    off = counts.off_diagonal()
    held = present[off.rows]
    share = off.values[held] / class_count[off.rows[held]]
    median = max(_median_with_zeros(share, cells - share.size), 1e-3)
    is_candidate = np.zeros(off.values.size, dtype=bool)
    is_candidate[held] = (off.values[held] >= min_count) & (share >= min_ratio * median)
    chosen = np.flatnonzero(is_candidate)
    codes = off.codes[chosen]
    example_rows = _pair_examples(labels, suggested, flagged, margin, codes, k, examples)
    found: list[PairAnomaly] = []
    for a, b, n in zip(off.rows[chosen].tolist(), off.columns[chosen].tolist(),
                       off.values[chosen].tolist(), strict=True):  # fmt: skip
        reverse = int(off.at(np.array([b]), np.array([a]))[0])
        asymmetric = n >= 3 * max(reverse, 1)
        reverse_candidate = _holds(codes, b * k + a)
        if not asymmetric and reverse_candidate and (reverse, b) > (n, a):
            continue  # a symmetric pair is reported once, from its larger side
        found.append(
            PairAnomaly(
                source=a,
                target=b,
                count=int(n),
                share=float(n / class_count[a]),
                reverse_count=reverse,
                ratio_to_median=float(n / class_count[a] / median),
                kind="asymmetric" if asymmetric else "symmetric",
                example_rows=example_rows.get(a * k + b, np.empty(0, dtype=np.int64)),
            )
        )
    found.sort(key=lambda p: (-p.count, p.source, p.target))
    return found


def _median_with_zeros(values: np.ndarray, zeros: int) -> float:
    """The median of `values` (all > 0) together with `zeros` zeros, as np.median would give."""
    n = values.size + zeros
    ordered = np.sort(values)

    def at(position: int) -> float:
        return 0.0 if position < zeros else float(ordered[position - zeros])

    return (at((n - 1) // 2) + at(n // 2)) / 2.0


def _holds(sorted_codes: np.ndarray, code: int) -> bool:
    where = int(np.searchsorted(sorted_codes, code))
    return where < sorted_codes.size and int(sorted_codes[where]) == code


def _pair_examples(
    labels: np.ndarray,
    suggested: np.ndarray,
    flagged: np.ndarray,
    margin: np.ndarray,
    wanted: np.ndarray,
    k: int,
    examples: int,
) -> dict[int, np.ndarray]:
    """For each wanted (given, suggested) pair (sorted codes given * k + suggested), the flagged
    rows with the largest margins; only the rows of wanted pairs are sorted (a few, where the
    whole flagged set may be millions)."""
    rows = np.flatnonzero(flagged)
    pair = labels[rows].astype(np.int64) * k + suggested[rows]
    keep = np.isin(pair, wanted)
    rows, pair = rows[keep], pair[keep]
    if rows.size == 0:
        return {}
    order = np.lexsort((-margin[rows], pair))
    sorted_pair = pair[order]
    starts = np.flatnonzero(np.r_[True, sorted_pair[1:] != sorted_pair[:-1]])
    ends = np.r_[starts[1:], sorted_pair.size]
    return {
        int(sorted_pair[s]): rows[order[s : min(e, s + examples)]]
        for s, e in zip(starts, ends, strict=True)
    }


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

    def ranks(self) -> np.ndarray:
        """Every sample's rank (1 = most suspect); a full sort, so computed only when asked."""
        return rank_by_quality(self.quality)


def detect(
    chunks: Callable[[np.ndarray | None], Iterable[tuple[np.ndarray, np.ndarray]]],
    labels: np.ndarray,
    n_classes: int,
    quality_score: str = "self_confidence",
    rule: str = "confident_joint",
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
    quality = label_quality(evidence, quality_score, noise)
    margin = evidence.best_other_probability - evidence.given_probability
    flagged = flag_suspects(rule, labels, evidence, confident, noise, quality)
    suggested = suggested_labels(evidence, confident, labels)
    use_confident = suggested == confident.confident_class
    suggested_probability = np.where(
        use_confident, confident.confident_probability, evidence.best_other_probability
    )
    pairs = pair_anomalies(
        confident.counts, evidence.class_count, labels, suggested, flagged, margin
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
    )


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


def quality_histogram(
    quality: np.ndarray, flagged: np.ndarray, bins: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    """Histogram of label quality (all rows, flagged rows) on shared edges, and the cut: the
    highest quality of any flagged row (None when none is flagged)."""
    finite = np.isfinite(quality)
    low = min(0.0, float(quality[finite].min())) if finite.any() else 0.0
    high = max(1.0, float(quality[finite].max())) if finite.any() else 1.0
    edges = np.linspace(low, high, bins + 1)
    counts, _ = np.histogram(quality[finite], bins=edges)
    flagged_counts, _ = np.histogram(quality[finite & flagged], bins=edges)
    cut = float(quality[flagged].max()) if flagged.any() else None
    return edges, counts, flagged_counts, cut
