"""Per-sample label quality (the ranking's scores, lower = more suspect), the ranking itself,
and the histogram the reports draw of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labelaudit.core.pair_table import PairTable

if TYPE_CHECKING:
    from labelaudit.core.evidence import SampleEvidence
    from labelaudit.core.noise_estimate import NoiseEstimate

QUALITY_SCORES = (
    "self_confidence",
    "normalized_margin",
    "half_margin",
    "adaptive_margin",
    "confidence_weighted_entropy",
)
_ENTROPY_FLOOR = 1e-6  # the clip cleanlab uses for its confidence-weighted entropy
_RANK_PIECE = 1 << 20


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
