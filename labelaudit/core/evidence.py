"""Pass 1 of detection: per-sample evidence (the given label's probability, the best other
class and its probability, the entropy when asked) and per-class sums (the thresholds), filled
chunk by chunk from dense or top-k rows, on several threads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from labelaudit.core.accumulators import ClassSums
from labelaudit.core.candidates import CandidateNote
from labelaudit.core.sparse_rows import ENTROPY_CLIP, SparseRows


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
