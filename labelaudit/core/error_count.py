"""How many labels are wrong: one estimate, its interval, and whether the evidence is weak.

The estimate is the size of the `weighted_count` set (core/suspect_rules.py): the n
disagreements with the lowest adaptive margin, n = C^w A^(1 - w) (C the calibrated confident
joint's count, A the disagreements, w the confident share of them). Every figure of a report
that counts errors (the noise rates, the health score, the confused pairs, the loss advice, the
gate) reads this one set, so none contradicts another. docs/detection.md ("How many are wrong")
gives the evidence: on human noise (where the held-out sets of issue 26 were) it is nearer the
truth than the confident joint's C, which is kept beside it.

The interval is empirical, not a sampling interval: the bias of any count dwarfs its sampling
noise. Over the development families (each weighted equally; the count table of `python
benchmarks/generalize.py`), the true count lay between 0.51 and 1.26 times the estimate on 90%
of the sets (5th and 95th percentiles); the bounds add two binomial standard deviations for
small counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# True count / estimate over the development families: 5th and 95th percentiles (see above).
LOW_RATIO = 0.51
HIGH_RATIO = 1.26
# Weak evidence: the model's most probable class differs from the given label on more than half
# of the rows. Then either most labels are wrong or the model is weaker than the noise it is asked
# to find, and the scores cannot tell which (1 - mean max probability, tried as the model's own
# error rate, does not separate the two: cross-validated models trained on noisy labels are
# underconfident).
MOST_DISAGREE = 0.5


@dataclass(frozen=True)
class ErrorCount:
    """The estimated number of label errors, its interval, and what it rests on."""

    count: int
    low: int
    high: int
    class_errors: np.ndarray  # per given label: how many of the estimate's rows carry it
    confident_joint: int  # C, the calibrated confident joint's off-diagonal mass
    disagreements: int  # A, rows whose most probable class is not the given label
    n_samples: int

    @property
    def rate(self) -> float:
        return self.count / self.n_samples if self.n_samples else 0.0

    def class_rates(self, class_count: np.ndarray) -> np.ndarray:
        """Per class, the share of its samples in the estimate (0 for an empty class)."""
        return np.divide(
            self.class_errors,
            class_count,
            out=np.zeros(class_count.size),
            where=class_count > 0,
        )

    @property
    def weak_evidence(self) -> bool:
        """Whether the model disagrees with most labels (`MOST_DISAGREE`): the count and the
        flagged set may be mostly the model's own mistakes."""
        return disagree_with_most(self.disagreements, self.n_samples)


def disagree_with_most(disagreements: int, n_samples: int) -> bool:
    """The weak-evidence rule: the model disagrees with more than MOST_DISAGREE of the rows."""
    return n_samples > 0 and disagreements > MOST_DISAGREE * n_samples


def count_errors(
    estimate_set: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    confident_joint: int,
    disagreements: int,
) -> ErrorCount:
    """The estimate from its set of rows, with the interval of the module docstring; under weak
    evidence the interval starts at 0 (nothing in the scores bounds it from below)."""
    n = int(labels.size)
    count = int(estimate_set.sum())
    spread = 2.0 * np.sqrt(count * (1.0 - count / n)) if n else 0.0
    low = max(0, int(np.floor(count * LOW_RATIO - spread)))
    high = min(n, int(np.ceil(count * HIGH_RATIO + spread)))
    return ErrorCount(
        count=count,
        low=0 if disagree_with_most(disagreements, n) else min(low, count),
        high=max(high, count),
        class_errors=np.bincount(labels[estimate_set], minlength=n_classes).astype(np.int64),
        confident_joint=int(confident_joint),
        disagreements=int(disagreements),
        n_samples=n,
    )
