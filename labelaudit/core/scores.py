"""Turning model scores into probabilities, and the score-based figures summed over row chunks.

Figures that need the scores (predicted class, log loss, calibration, top-k) are sums over rows,
so they are accumulated chunk by chunk with memory bounded by the chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from labelaudit.core.accumulators import PairCounts
from labelaudit.core.pair_table import PairTable
from labelaudit.core.sparse_rows import SparseRows
from labelaudit.core.thresholds import multiclass_decide

ECE_BINS = 15
TOP_K = 5
SUM_TOLERANCE = 1e-3  # float error of a row of probabilities (float32, float16 included)
DISTRIBUTION_TOLERANCE = 0.05  # rows this close to 1 (plus rounding) read as distributions
EXACT_SUM = 1e-6  # rows off by more than this are renormalized when read as probabilities
RANGE_SLACK = 1e-3  # values this far outside [0, 1] are not probabilities (unless rows sum to 1)
CLIP_SLACK = 0.01  # rows summing to 1 with values this far outside [0, 1]: clipped probabilities
NEAR_PROBABILITIES = 0.05  # logits within this of [0, 1] are said to be a close call
PERCENT = 100.0


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, stable for large logits."""
    with np.errstate(over="ignore"):  # a gap beyond float range is -inf: probability 0
        shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Elementwise logistic function in float64, without overflow warnings."""
    logits = logits.astype(np.float64)
    out = np.empty_like(logits)
    positive = logits >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-logits[positive]))
    exp_neg = np.exp(logits[~positive])
    out[~positive] = exp_neg / (1.0 + exp_neg)
    return out


@dataclass(frozen=True)
class ScoreCheck:
    """What one chunk of raw scores looks like: used to validate them and to decide how to read
    them (see `reading`)."""

    non_finite_rows: np.ndarray
    low: float
    high: float
    row_sums: np.ndarray | None
    off_sum_rows: np.ndarray
    decimals: int | None
    percent_rows: bool = False  # every row sums to 100 within its tolerance


def check_scores(scores: np.ndarray, expect_row_sum: bool) -> ScoreCheck:
    """Rows with NaN/inf, the range of the finite values and (multi-class) the rows whose sum is
    not 1 within the tolerance of their rounding (`sum_tolerance`).

    Row sums come first: a NaN or inf makes its row's sum non-finite, so only those rows are
    inspected element by element. The maximum is only needed when rows may not sum to 1.
    """
    sums = scores.sum(axis=1, dtype=np.float64)
    suspect = np.flatnonzero(~np.isfinite(sums))
    finite_rows = np.ones(scores.shape[0], dtype=bool)
    if suspect.size:
        finite_rows[suspect[~np.isfinite(scores[suspect]).all(axis=1)]] = False
    non_finite = np.flatnonzero(~finite_rows)
    finite = scores if non_finite.size == 0 else scores[finite_rows]
    if finite.size == 0:
        return ScoreCheck(non_finite, 0.0, 0.0, None, np.empty(0, dtype=np.int64), None)
    low = float(finite.min())
    off_sum = np.empty(0, dtype=np.int64)
    decimals = None
    if expect_row_sum:
        deviation = np.abs(sums - 1.0)
        off_sum = np.flatnonzero(finite_rows & ~(deviation <= SUM_TOLERANCE))
        percent = False
        if off_sum.size:  # visibly off: rounded, sloppy, percentages, or not distributions
            decimals = rounding_decimals(finite)
            tolerance = sum_tolerance(scores.shape[1], decimals)
            off_sum = off_sum[deviation[off_sum] > tolerance]
            # Percentages rounded to d decimals are probabilities rounded to d + 2.
            shifted = None if decimals is None else decimals + 2
            in_percent = np.abs(sums[finite_rows] / PERCENT - 1.0)
            percent = bool((in_percent <= sum_tolerance(scores.shape[1], shifted)).all())
        # Non-negative rows summing to about 1 hold no value much above 1: no second pass.
        high = float(finite.max()) if off_sum.size or low < 0 else 1.0
        return ScoreCheck(non_finite, low, high, sums, off_sum, decimals, percent)
    high = float(finite.max())
    return ScoreCheck(non_finite, low, high, sums, off_sum, decimals)


def rounding_decimals(scores: np.ndarray, most: int = 6) -> int | None:
    """The fewest decimals (1..most) every score is a multiple of (probabilities written rounded,
    e.g. to 3 decimals), or None when they are not rounded."""
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: not rounded, no noise
        return _rounding_decimals(scores, most)


def _rounding_decimals(scores: np.ndarray, most: int) -> int | None:
    eps = np.finfo(scores.dtype).eps if np.issubdtype(scores.dtype, np.floating) else 0.0
    sample = scores[:4096].astype(np.float64)
    for decimals in range(1, most + 1):
        scaled = sample * 10.0**decimals
        slack = 4 * eps * 10.0**decimals + 1e-9
        if np.all(np.abs(scaled - np.rint(scaled)) <= slack):
            whole = scores.astype(np.float64) * 10.0**decimals
            if np.all(np.abs(whole - np.rint(whole)) <= slack):
                return decimals
    return None


def sum_tolerance(n_classes: int, decimals: int | None) -> float:
    """How far from 1 a row of probabilities may sum: DISTRIBUTION_TOLERANCE (float error and
    sloppy normalization: 1.001 is a distribution, not logits), plus K half-steps when the values
    were rounded to `decimals` (each rounded value is off by at most half a step, so K of them by
    at most K half-steps)."""
    if decimals is None:
        return DISTRIBUTION_TOLERANCE
    return DISTRIBUTION_TOLERANCE + n_classes * 0.5 * 10.0**-decimals


def reading(check: ScoreCheck, multi_label: bool) -> str:
    """How a chunk reads, by the documented rule (docs/inputs.md), in this order:

    - multi-class rows summing to 1 within their tolerance, values within CLIP_SLACK of [0, 1]:
      "probs" (clipped into [0, 1], renormalized when read);
    - values in [0, 100] whose rows sum to 100 within the same tolerance (multi-label: any
      values in [0, 100] above 1): "percent" (divided by 100);
    - any value outside [0, 1] by more than RANGE_SLACK: "logits";
    - multi-label values in [0, 1]: "probs";
    - multi-class values in [0, 1] whose rows do not sum to 1: "ambiguous" (neither a
      distribution over the classes nor plausible logits; the caller stops and asks).
    """
    low, high = check.low, check.high
    in_range = low >= -RANGE_SLACK and high <= 1 + RANGE_SLACK
    if multi_label:
        if in_range:
            return "probs"
        return "percent" if low >= 0 and high <= PERCENT else "logits"
    if check.off_sum_rows.size == 0 and low >= -CLIP_SLACK and high <= 1 + CLIP_SLACK:
        return "probs"
    if low >= 0 and 1 < high <= PERCENT and check.percent_rows:
        return "percent"
    return "ambiguous" if in_range else "logits"


def distribution_row_count(scores: np.ndarray, row_sums: np.ndarray | None) -> int:
    """How many rows of a chunk read, each on its own, as a distribution: values within
    CLIP_SLACK of [0, 1] summing to 1, or values in [0, 100] summing to 100 (each within
    DISTRIBUTION_TOLERANCE). Logit rows rarely do; probabilities pasted among logits do."""
    if scores.size == 0:
        return 0
    sums = scores.sum(axis=1, dtype=np.float64) if row_sums is None else row_sums
    low, high = scores.min(axis=1), scores.max(axis=1)
    probability = (
        (low >= -CLIP_SLACK)
        & (high <= 1 + CLIP_SLACK)
        & (np.abs(sums - 1) <= DISTRIBUTION_TOLERANCE)
    )
    percent = (
        (low >= 0) & (high <= PERCENT) & (np.abs(sums / PERCENT - 1) <= DISTRIBUTION_TOLERANCE)
    )
    return int((probability | percent).sum())


def to_probabilities(
    raw: np.ndarray, mode: str, multi_label: bool = False, check: ScoreCheck | None = None
) -> np.ndarray:
    """Scores read as `mode`: logits through softmax (sigmoid for multi-label); probabilities
    clipped into [0, 1] and (multi-class) each row off 1 by more than float error divided by
    its sum. Works in place on `raw` for probabilities; `check` (of this very block) saves the
    passes that find the range and the row sums."""
    if mode == "logits":
        return sigmoid(raw) if multi_label else softmax(raw)
    if mode == "percent":
        raw = np.divide(raw, PERCENT, out=raw if raw.dtype.kind == "f" else None)
        check = None
    if check is None:  # multi-class needs no maximum: renormalizing brings values into [0, 1]
        low = float(raw.min()) if raw.size else 0.0
        high = float(raw.max()) if raw.size and multi_label else 1.0
        sums = None
    else:
        low, high, sums = check.low, check.high, check.row_sums
    if low < 0 or (multi_label and high > 1):
        np.clip(raw, 0.0, 1.0, out=raw)
        sums = None
    if multi_label:
        return raw
    return renormalize_rows(raw, sums)


def renormalize_rows(probabilities: np.ndarray, sums: np.ndarray | None = None) -> np.ndarray:
    """Divide (in place) each row whose sum is off 1 by more than EXACT_SUM by its sum (in the
    array's own dtype); `sums` are the rows' float64 sums when already known."""
    if sums is None:
        sums = probabilities.sum(axis=1, dtype=np.float64)
    off = np.flatnonzero(np.abs(sums - 1.0) > EXACT_SUM)
    if off.size:
        safe = np.where(sums[off] > 0, sums[off], 1.0)
        probabilities[off] = probabilities[off] / safe[:, None].astype(probabilities.dtype)
    return probabilities


@dataclass(frozen=True)
class ScoreFigures:
    """What MulticlassScoreSums computes: the confusion matrix and the score-based figures."""

    rows: int
    fallback_rows: int
    confusion: PairTable
    log_loss: float
    expected_calibration_error: float
    top_k_accuracy: float | None
    bin_count: np.ndarray
    bin_confidence: np.ndarray
    bin_accuracy: np.ndarray


@dataclass
class MulticlassScoreSums:
    """Running sums over chunks of (probabilities, labels) for a K-class problem: an accumulator
    (core.accumulators) with `update`, `merge` and `compute`."""

    n_classes: int
    top_k: int = TOP_K
    bins: int = ECE_BINS
    thresholds: np.ndarray | None = None
    rows: int = 0
    fallback_rows: int = 0
    pairs: PairCounts = field(init=False)  # given label x predicted class
    log_loss_sum: float = 0.0
    top_k_hits: int = 0
    bin_count: np.ndarray = field(init=False)
    bin_confidence: np.ndarray = field(init=False)
    bin_correct: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        k = self.n_classes
        self.pairs = PairCounts(k, k)
        self.bin_count = np.zeros(self.bins, dtype=np.int64)
        self.bin_confidence = np.zeros(self.bins, dtype=np.float64)
        self.bin_correct = np.zeros(self.bins, dtype=np.int64)

    def update(self, probabilities: np.ndarray | SparseRows, labels: np.ndarray) -> np.ndarray:
        """Add one chunk; returns its predicted classes: the argmax (ties to the lowest class), or
        the per-class threshold decision when thresholds are set."""
        if isinstance(probabilities, SparseRows):
            return self._update_sparse(probabilities, labels)
        if self.thresholds is None:
            predicted = probabilities.argmax(axis=1)
            fallback = 0
        else:
            predicted, fallback = multiclass_decide(probabilities, self.thresholds)
        given = np.take_along_axis(probabilities, labels[:, None], axis=1)[:, 0]
        confidence = np.take_along_axis(probabilities, predicted[:, None], axis=1)[:, 0]
        hits = 0
        if self.n_classes > self.top_k:
            hits = int(top_k_hits(probabilities, labels, given, self.top_k).sum())
        self.update_rows(labels, predicted, given, confidence, hits, fallback)
        return predicted

    def _update_sparse(self, rows: SparseRows, labels: np.ndarray) -> np.ndarray:
        """`update` for rows given by their listed entries (top-k predictions)."""
        if self.thresholds is None:
            predicted, confidence = rows.best()
            fallback = 0
        else:
            predicted, fallback = multiclass_decide(rows, self.thresholds)
            confidence = rows.given(predicted)
        given = rows.given(labels)
        hits = 0
        if self.n_classes > self.top_k:
            hits = int(rows.top_k_hits(labels, given, self.top_k).sum())
        self.update_rows(labels, predicted, given, confidence, hits, fallback)
        return predicted

    def update_rows(
        self,
        labels: np.ndarray,
        predicted: np.ndarray,
        given: np.ndarray,
        confidence: np.ndarray,
        top_k_hit_count: int,
        fallback_rows: int = 0,
    ) -> None:
        """Add one chunk from its per-row figures (the given label's and the predicted class's
        probabilities, the predicted class) and its top-k hit count: what `add` reads from a
        probability matrix, computed elsewhere (on a GPU, say) without moving the matrix."""
        self.rows += labels.size
        self.fallback_rows += fallback_rows
        self.pairs.update(labels, predicted.astype(np.int64))
        given64 = given.astype(np.float64)
        eps = np.finfo(np.float64).eps
        self.log_loss_sum += float(-np.log(np.clip(given64, eps, 1 - eps)).sum())
        confidence = confidence.astype(np.float64)
        # Bins are (lo, hi]; a confidence of exactly 0 falls in the first bin.
        bin_index = np.clip(np.ceil(confidence * self.bins).astype(np.int64) - 1, 0, self.bins - 1)
        correct = predicted == labels
        self.bin_count += np.bincount(bin_index, minlength=self.bins)
        self.bin_confidence += np.bincount(bin_index, weights=confidence, minlength=self.bins)
        self.bin_correct += np.bincount(bin_index, weights=correct, minlength=self.bins).astype(
            np.int64
        )
        self.top_k_hits += top_k_hit_count

    def merge(self, other: MulticlassScoreSums) -> None:
        """Add another accumulator's sums (from chunks processed elsewhere) into this one."""
        self.rows += other.rows
        self.fallback_rows += other.fallback_rows
        self.pairs.merge(other.pairs)
        self.log_loss_sum += other.log_loss_sum
        self.top_k_hits += other.top_k_hits
        self.bin_count += other.bin_count
        self.bin_confidence += other.bin_confidence
        self.bin_correct += other.bin_correct

    def compute(self) -> ScoreFigures:
        """The figures of every row added."""
        counts, confidence, accuracy = self.reliability()
        return ScoreFigures(
            rows=self.rows,
            fallback_rows=self.fallback_rows,
            confusion=self.confusion,
            log_loss=self.log_loss(),
            expected_calibration_error=self.expected_calibration_error(),
            top_k_accuracy=self.top_k_accuracy(),
            bin_count=counts,
            bin_confidence=confidence,
            bin_accuracy=accuracy,
        )

    @property
    def confusion(self) -> PairTable:
        """The confusion matrix (given label x predicted class), its nonzero cells."""
        return self.pairs.compute()

    def log_loss(self) -> float:
        """Mean negative log probability of the given label (clipped to [eps, 1 - eps])."""
        return self.log_loss_sum / self.rows if self.rows else 0.0

    def expected_calibration_error(self) -> float:
        """Sum over bins of (bin share) x |accuracy - mean confidence| on the top label."""
        if self.rows == 0:
            return 0.0
        occupied = self.bin_count > 0
        gap = np.abs(
            self.bin_correct[occupied] - self.bin_confidence[occupied]
        )  # counts x |acc - conf|
        return float(gap.sum() / self.rows)

    def reliability(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per confidence bin: row count, mean top-label confidence and accuracy (NaN if empty);
        the reliability diagram behind the ECE."""
        count = self.bin_count.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.bin_count.copy(), self.bin_confidence / count, self.bin_correct / count

    def top_k_accuracy(self) -> float | None:
        """Share of rows whose given label is among the k highest scores; None when K <= k."""
        if self.n_classes <= self.top_k or self.rows == 0:
            return None
        return self.top_k_hits / self.rows


def top_k_hits(scores: np.ndarray, labels: np.ndarray, given: np.ndarray, k: int) -> np.ndarray:
    """Whether each row's label ranks in the top k; ties rank the higher class index first.

    That tie rule is scikit-learn's (a stable ascending sort, reversed), so figures agree exactly.
    One full pass: a row with at most k scores >= its label's is a hit whatever the ties; only
    the other rows (mostly misses) are looked at again, with the tie rule.
    """
    at_least = np.count_nonzero(scores >= given[:, None], axis=1)
    hits = at_least <= k
    unsure = np.flatnonzero(~hits)
    if unsure.size:
        sub, sub_given = scores[unsure], given[unsure, None]
        higher = np.count_nonzero(sub > sub_given, axis=1)
        class_index = np.arange(scores.shape[1])
        tied_after = np.count_nonzero(
            (sub == sub_given) & (class_index > labels[unsure, None]), axis=1
        )
        hits[unsure] = (higher + tied_after) < k
    return hits
