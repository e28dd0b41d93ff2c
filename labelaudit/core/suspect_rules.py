"""Which samples are flagged as suspected label errors: the rules of `--suspects`.

Every rule reads the per-sample evidence of core/noise.py (the given label's probability, the
best other class, the confident class) and the calibrated confident joint, and flags only rows
the model disagrees with. The count rules (`weighted_count`, `balanced_count`,
`estimated_count`) decide how many from two counts that err in opposite directions and take
them in the order they are given (core/noise.py passes the adaptive margin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from labelaudit.core.evidence import SampleEvidence
    from labelaudit.core.noise_estimate import NoiseEstimate

SUSPECT_RULES = (
    "confident_joint",
    "prune_by_noise_rate",
    "both",
    "argmax",
    "estimated_count",
    "balanced_count",
    "weighted_count",
)


@dataclass(frozen=True)
class Disagreements:
    """The rows the model disagrees with (another class more probable than the given label; a
    tie goes to the label), and among them the confident ones (their confident class is another
    class): computed once, read by every rule and by the error count."""

    rows: np.ndarray
    confident: np.ndarray

    @property
    def count(self) -> int:
        return int(self.rows.sum())

    @property
    def confident_count(self) -> int:
        return int(self.confident.sum())


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
    noise: NoiseEstimate,
    order: np.ndarray,
    found: Disagreements,
) -> np.ndarray:
    """The flagged set (a boolean mask) under one of SUSPECT_RULES; the count rules take their n
    rows lowest `order` first.

    Whatever the rule, a sample whose given label is the model's most probable class is never
    flagged: the model agrees with the label, so there is no evidence against it.
    """
    disagrees, confident = found.rows, found.confident
    if rule == "confident_joint":
        return confident.copy()
    if rule == "argmax":
        return disagrees.copy()
    if rule == "estimated_count":
        return lowest_quality(order, noise.estimated_errors) & disagrees
    if rule == "balanced_count":
        count = balanced_count(noise.estimated_errors, found.count)
        return lowest_quality(np.where(disagrees, order, np.inf), count)
    if rule == "weighted_count":
        count = weighted_count(noise.estimated_errors, found.count, found.confident_count)
        return lowest_quality(np.where(disagrees, order, np.inf), count)
    pruned = _prune_by_noise_rate(labels, evidence, noise) & disagrees
    if rule == "prune_by_noise_rate":
        return pruned
    if rule == "both":
        return pruned & confident
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
