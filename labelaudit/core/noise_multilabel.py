"""Suspected errors in multi-label data: each class one-vs-rest, aggregated per sample.

For class c, the confident-learning thresholds of its binary problem are t1 (mean probability
over samples carrying c) and t0 (mean of 1 - p over samples without c). A tag is probably
missing when the sample lacks c but p >= t1 and p > 0.5, and probably extra when the sample
carries c but 1 - p >= t0 and p < 0.5. A sample's quality is its worst tag's quality (p when
the tag is given, 1 - p when not), and that tag is the one the suspect names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MISSING = "missing"
EXTRA = "extra"


@dataclass(frozen=True)
class MultilabelDetection:
    """Per-sample quality and the tag each suspect names."""

    quality: np.ndarray
    worst_class: np.ndarray
    worst_probability: np.ndarray  # the model's probability of the worst tag
    worst_is_missing: np.ndarray
    flagged: np.ndarray
    class_noise_rate: np.ndarray
    missing_per_class: np.ndarray
    extra_per_class: np.ndarray

    @property
    def suspects_per_class(self) -> np.ndarray:
        """Suspect tags per class (a tag is missing or extra, never both)."""
        return self.missing_per_class + self.extra_per_class


def detect_multilabel(indicators: np.ndarray, probabilities: np.ndarray) -> MultilabelDetection:
    """Flag missing and extra tags; K binary problems, vectorized over samples."""
    given = indicators.astype(bool, copy=False)
    n_pos = given.sum(axis=0)
    n_neg = given.shape[0] - n_pos
    pos_mean = np.divide(
        (probabilities * given).sum(axis=0),
        n_pos,
        out=np.full(n_pos.shape, np.inf),
        where=n_pos >= 2,
    )
    neg_mean = np.divide(
        ((1 - probabilities) * ~given).sum(axis=0),
        n_neg,
        out=np.full(n_neg.shape, np.inf),
        where=n_neg >= 2,
    )
    missing = ~given & (probabilities >= pos_mean) & (probabilities > 0.5)
    extra = given & ((1 - probabilities) >= neg_mean) & (probabilities < 0.5)
    tag_quality = np.where(given, probabilities, 1 - probabilities)
    worst = tag_quality.argmin(axis=1)
    rows = np.arange(given.shape[0])
    tag_suspects = missing | extra
    total = np.maximum(given.shape[0], 1)
    return MultilabelDetection(
        quality=tag_quality[rows, worst],
        worst_class=worst,
        worst_probability=probabilities[rows, worst],
        worst_is_missing=~given[rows, worst],
        flagged=tag_suspects.any(axis=1),
        class_noise_rate=tag_suspects.sum(axis=0) / total,
        missing_per_class=missing.sum(axis=0),
        extra_per_class=extra.sum(axis=0),
    )
