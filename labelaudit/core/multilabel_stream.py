"""Multi-label metrics and detection from chunks of rows, in two passes, without the (N, K)
probabilities: what streamed scores need.

Pass 1 (`MultilabelPassOne`) sums the counts at the decision threshold and the one-vs-rest
means of detection, keeps each positive tag's score (for average precision) and each row's
worst tag. Pass 2 (`MultilabelPassTwo`), with those known, counts per class the negatives at or
above each distinct positive score (scikit-learn's AP, exactly: precision changes only where a
positive sits) and the missing and extra tags. Memory: a few numbers per row plus 12 bytes per
positive tag.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from labelaudit.core.metrics import (
    indicator_counts,
    macro_average,
    micro_average,
    scores_from_counts,
    weighted_average,
)
from labelaudit.core.metrics_multilabel import MultilabelMetrics, assemble
from labelaudit.core.noise_multilabel import MultilabelDetection
from labelaudit.core.thresholds import multilabel_decide


@dataclass
class MultilabelPassOne:
    """Counts at the threshold, detection's per-class means, positive scores, worst tags."""

    n_samples: int
    n_classes: int
    threshold: float | np.ndarray
    against_threshold: float | None = None  # for `disagrees`; the threshold when None
    counts: np.ndarray = field(init=False)  # (3, K): TP, FP, FN
    exact_rows: int = field(init=False, default=0)
    mismatches: int = field(init=False, default=0)
    rows_seen: int = field(init=False, default=0)
    sums: np.ndarray = field(init=False)  # (4, K): n positive, sum p, n negative, sum 1 - p
    quality: np.ndarray = field(init=False)
    worst_class: np.ndarray = field(init=False)
    worst_probability: np.ndarray = field(init=False)
    worst_is_missing: np.ndarray = field(init=False)
    disagrees: np.ndarray = field(init=False)
    _positives: list[tuple[np.ndarray, np.ndarray]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        n, k = self.n_samples, self.n_classes
        self._lock = threading.Lock()
        self.counts = np.zeros((3, k), dtype=np.int64)
        self.sums = np.zeros((4, k), dtype=np.float64)
        self.quality = np.zeros(n)
        self.worst_class = np.zeros(n, dtype=np.int32)
        self.worst_probability = np.zeros(n)
        self.worst_is_missing = np.zeros(n, dtype=bool)
        self.disagrees = np.zeros(n, dtype=bool)

    def update(self, truth: np.ndarray, probabilities: np.ndarray, rows: np.ndarray) -> tuple:
        """Record a chunk's rows ((m, K) booleans and probabilities of dataset rows `rows`);
        returns its sums, for `add` (in chunk order: the same figures on every run)."""
        if np.ndim(self.threshold):
            predicted = multilabel_decide(probabilities, np.asarray(self.threshold))
        else:
            predicted = probabilities >= self.threshold
        counts = np.stack(indicator_counts(truth, predicted))
        mismatched = truth != predicted
        sums = np.stack(
            [
                truth.sum(axis=0, dtype=np.int64),
                (probabilities * truth).sum(axis=0),
                (~truth).sum(axis=0, dtype=np.int64),
                ((1 - probabilities) * ~truth).sum(axis=0),
            ]
        )
        at = np.flatnonzero(truth)
        positives = (at % self.n_classes).astype(np.int32), probabilities.ravel()[at]
        tag_quality = np.where(truth, probabilities, 1 - probabilities)
        worst = tag_quality.argmin(axis=1)
        m = np.arange(rows.size)
        self.quality[rows] = tag_quality[m, worst]
        self.worst_class[rows] = worst
        self.worst_probability[rows] = probabilities[m, worst]
        self.worst_is_missing[rows] = ~truth[m, worst]
        wrong_rows = mismatched.any(axis=1)
        against = self.against_threshold
        if against is not None and (np.ndim(self.threshold) or against != self.threshold):
            wrong_rows_against = ((probabilities >= against) != truth).any(axis=1)
        else:
            wrong_rows_against = wrong_rows
        self.disagrees[rows] = wrong_rows_against
        exact = int(rows.size - wrong_rows.sum())
        return counts, exact, int(mismatched.sum()), rows.size, sums, positives

    def add(self, part: tuple) -> None:
        """Add a chunk's sums (`update`'s result)."""
        counts, exact, mismatches, n_rows, sums, positives = part
        with self._lock:
            self.counts += counts
            self.exact_rows += exact
            self.mismatches += mismatches
            self.rows_seen += n_rows
            self.sums += sums
            self._positives.append(positives)

    def positive_scores(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per class, its positive tags' distinct scores (ascending) and how many share each."""
        if self._positives:
            classes = np.concatenate([c for c, _ in self._positives])
            scores = np.concatenate([s for _, s in self._positives])
        else:
            classes, scores = np.empty(0, dtype=np.int32), np.empty(0)
        order = np.lexsort((scores, classes))
        classes, scores = classes[order], scores[order]
        bounds = np.searchsorted(classes, np.arange(self.n_classes + 1))
        out = []
        for c in range(self.n_classes):
            values, counts = np.unique(scores[bounds[c] : bounds[c + 1]], return_counts=True)
            out.append((values, counts))
        return out

    def thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Detection's one-vs-rest thresholds per class: the mean probability over rows with
        the tag, the mean of 1 - p over rows without it (inf below 2 rows)."""
        n_pos, sum_pos, n_neg, sum_neg = self.sums
        positive = np.divide(sum_pos, n_pos, out=np.full(self.n_classes, np.inf), where=n_pos >= 2)
        negative = np.divide(sum_neg, n_neg, out=np.full(self.n_classes, np.inf), where=n_neg >= 2)
        return positive, negative


@dataclass
class MultilabelPassTwo:
    """Negatives at or above each positive score per class, and the missing and extra tags."""

    positives: list[tuple[np.ndarray, np.ndarray]]
    positive_mean: np.ndarray
    negative_mean: np.ndarray
    n_samples: int
    negatives_above: list[np.ndarray] = field(init=False)
    missing_per_class: np.ndarray = field(init=False)
    extra_per_class: np.ndarray = field(init=False)
    flagged: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        k = len(self.positives)
        self._lock = threading.Lock()
        self.negatives_above = [np.zeros(v.size + 1, dtype=np.int64) for v, _ in self.positives]
        self.missing_per_class = np.zeros(k, dtype=np.int64)
        self.extra_per_class = np.zeros(k, dtype=np.int64)
        self.flagged = np.zeros(self.n_samples, dtype=bool)

    def update(self, truth: np.ndarray, probabilities: np.ndarray, rows: np.ndarray) -> None:
        missing = ~truth & (probabilities >= self.positive_mean) & (probabilities > 0.5)
        extra = truth & ((1 - probabilities) >= self.negative_mean) & (probabilities < 0.5)
        self.flagged[rows] = (missing | extra).any(axis=1)
        # Per class: how many positive scores each negative reaches (bins of a histogram).
        columns, negative = probabilities.T, ~truth.T
        bins = []
        for c, (values, _) in enumerate(self.positives):
            reached = np.searchsorted(values, columns[c][negative[c]], side="right")
            bins.append(np.bincount(reached, minlength=values.size + 1))
        with self._lock:
            self.missing_per_class += missing.sum(axis=0)
            self.extra_per_class += extra.sum(axis=0)
            for total, part in zip(self.negatives_above, bins, strict=True):
                total += part

    def average_precision(self) -> np.ndarray:
        """Per class, scikit-learn's AP (NaN without a positive): over the distinct positive
        scores, highest first, precision at that threshold times the recall it adds."""
        out = np.full(len(self.positives), np.nan)
        for c, ((values, counts), reached) in enumerate(
            zip(self.positives, self.negatives_above, strict=True)
        ):
            if values.size == 0:
                continue
            # Positives and negatives at or above values[i]: suffix sums (a negative in bin r
            # reaches values[0..r-1]).
            positives_at = np.cumsum(counts[::-1])[::-1]
            negatives_at = np.cumsum(reached[::-1])[::-1][1:]
            precision = positives_at / (positives_at + negatives_at)
            recall_step = counts / positives_at[0]
            out[c] = float(recall_step[::-1] @ precision[::-1])
        return out


def streamed_metrics(one: MultilabelPassOne, two: MultilabelPassTwo) -> MultilabelMetrics:
    """The multi-label figures (`multilabel_metrics`) from the two passes' sums."""
    true_positive, false_positive, false_negative = one.counts
    per_class = scores_from_counts(true_positive, false_positive, false_negative)
    micro = micro_average(true_positive, false_positive, false_negative)
    macro = macro_average(per_class)
    n, k = one.rows_seen, one.n_classes
    return assemble(
        one.threshold,
        per_class,
        micro,
        macro,
        weighted_average(per_class),
        subset_accuracy=one.exact_rows / n if n else 0.0,
        hamming_loss=one.mismatches / (n * k) if n * k else 0.0,
        average_precision=two.average_precision(),
    )


def streamed_detection(
    one: MultilabelPassOne, two: MultilabelPassTwo, scored: np.ndarray
) -> MultilabelDetection:
    """Detection's results for the `scored` rows (tag suspects counted per class, not kept)."""
    suspects = two.missing_per_class + two.extra_per_class
    return MultilabelDetection(
        quality=one.quality[scored],
        worst_class=one.worst_class[scored],
        worst_probability=one.worst_probability[scored],
        worst_is_missing=one.worst_is_missing[scored],
        flagged=two.flagged[scored],
        class_noise_rate=suspects / max(scored.size, 1),
        missing_per_class=two.missing_per_class,
        extra_per_class=two.extra_per_class,
    )
