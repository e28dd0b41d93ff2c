"""Do the scores fit the labels better than the same scores in a random row order would? A check
for scores joined to labels by row position, where a reordered file joins silently."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Scores fit the labels no better than chance when the agreement is less than this many standard
# deviations above what a random order of the rows gives (one-sided; p < 0.0014 for a real fit).
MISALIGNED_BELOW_Z = 3.0
# Below this many labels (rows, or given tags) a shuffle cannot be told from a weak model's fit
# (20 rows of a 30%-accurate model are 2.9 SD above chance): the check says nothing.
MIN_LABELS_CHECKED = 100


@dataclass(frozen=True)
class ChanceAgreement:
    """Agreeing (row, class) decisions: observed, and their mean and spread under a shuffle."""

    agreeing: int  # rows (multi-class) or given tags (multi-label) the model's decision matches
    chance_mean: float  # the same count expected when the score rows are randomly permuted
    chance_sd: float
    n_labels: int  # labeled rows (multi-class) or given tags (multi-label)
    classes_given: int  # classes (tags) with at least one label

    @property
    def z(self) -> float:
        """Standard deviations above chance; inf when a shuffle cannot vary the count."""
        excess = self.agreeing - self.chance_mean
        if self.chance_sd > 0:
            return float(excess / self.chance_sd)
        return float("inf") if excess > 0 else float("-inf") if excess < 0 else 0.0

    @property
    def at_chance(self) -> bool:
        """No better than a random row order, with enough labels to tell. With one class given,
        no shuffle changes the count and a model that predicts it is not at chance: False. (One
        class predicted for every row is at chance: the scores tell the rows apart not at all.)"""
        if self.classes_given <= 1:
            return False
        return self.n_labels >= MIN_LABELS_CHECKED and self.z < MISALIGNED_BELOW_Z


def chance_agreement(
    true_positives: np.ndarray, positives: np.ndarray, predicted: np.ndarray, n_rows: int
) -> ChanceAgreement:
    """Per class: a random permutation of the score rows makes its matches hypergeometric
    (`positives` given, `predicted` decided, among `n_rows`): mean P * D / N, variance
    P * D * (N - P) * (N - D) / (N^2 (N - 1)). Summed over classes (their covariance left out:
    the spread is approximate, the mean exact)."""
    p = np.asarray(positives, dtype=np.float64)
    d = np.asarray(predicted, dtype=np.float64)
    n = float(n_rows)
    mean = float(p @ d / max(n, 1.0))
    variance = float(np.sum(p * d * (n - p) * (n - d)) / (n * n * (n - 1))) if n >= 2 else 0.0
    return ChanceAgreement(
        int(np.sum(true_positives)), mean, variance**0.5, int(p.sum()), int((p > 0).sum())
    )
