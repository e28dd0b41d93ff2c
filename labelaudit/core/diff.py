"""Two versions of a dataset: what was added, removed, relabeled, and how the classes shifted.

Pure numpy on class codes over one shared vocabulary and the rows matched by id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from labelaudit.core.accumulators import PairCounts
from labelaudit.core.pair_table import PairTable

PSI_FLOOR = 1e-4  # a zero share is taken as this, so PSI stays finite


@dataclass(frozen=True)
class LabelChanges:
    """Row-level changes between matched old and new rows (multi-class)."""

    unchanged: int
    relabeled: int
    added: int
    removed: int
    transitions: PairTable  # (K + 1) x (K + 1), by cell: index K is "absent" (added: from it)


@dataclass(frozen=True)
class Shift:
    """Distribution shift between two class distributions."""

    tvd: float
    js: float
    psi: float
    chi2_p: float | None


def label_changes(
    old_codes: np.ndarray,
    new_codes: np.ndarray,
    matched_old: np.ndarray,
    matched_new: np.ndarray,
    n_classes: int,
) -> LabelChanges:
    """Transition counts old -> new over matched rows, plus added and removed rows."""
    absent = n_classes
    old_matched = old_codes[matched_old]
    new_matched = new_codes[matched_new]
    size = n_classes + 1
    removed_mask = np.ones(old_codes.size, dtype=bool)
    removed_mask[matched_old] = False
    added_mask = np.ones(new_codes.size, dtype=bool)
    added_mask[matched_new] = False
    pairs = PairCounts(size, size)
    pairs.update(old_matched, new_matched)
    pairs.update(np.full(int(added_mask.sum()), absent), new_codes[added_mask])
    pairs.update(old_codes[removed_mask], np.full(int(removed_mask.sum()), absent))
    transitions = pairs.compute()
    relabeled = int((old_matched != new_matched).sum())
    return LabelChanges(
        unchanged=int(old_matched.size - relabeled),
        relabeled=relabeled,
        added=int(added_mask.sum()),
        removed=int(removed_mask.sum()),
        transitions=transitions,
    )


def distribution_shift(old_counts: np.ndarray, new_counts: np.ndarray) -> Shift:
    """TVD, Jensen-Shannon distance (base 2, in [0, 1]), PSI, and a chi-square p-value."""
    p = _shares(old_counts)
    q = _shares(new_counts)
    tvd = 0.5 * float(np.abs(p - q).sum())
    m = 0.5 * (p + q)
    divergence = 0.5 * _kl(p, m) + 0.5 * _kl(q, m)
    js = math.sqrt(max(divergence, 0.0))
    p_floor, q_floor = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    psi = float(((q_floor - p_floor) * np.log(q_floor / p_floor)).sum())
    return Shift(tvd=tvd, js=js, psi=psi, chi2_p=homogeneity_p_value(old_counts, new_counts))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(counts.size)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    mask = p > 0
    return float((p[mask] * np.log2(p[mask] / q[mask])).sum())


def homogeneity_p_value(old_counts: np.ndarray, new_counts: np.ndarray) -> float | None:
    """Chi-square test that both versions share one class distribution (2 x K table).

    Classes absent from both are left out; None when fewer than 2 classes, an empty version, or
    a table too sparse for the chi-square approximation (Cochran's rule: more than 20% of the
    expected counts below 5, or any below 1; many rare classes). Information only: at large N
    every difference is "significant".
    """
    table = np.vstack([old_counts, new_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return None
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    if (expected < 1).any() or (expected < 5).mean() > 0.2:
        return None
    statistic = float(((table - expected) ** 2 / expected).sum())
    return chi2_survival(statistic, table.shape[1] - 1)


def chi2_survival(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square(dof): the regularized upper incomplete gamma Q(dof/2, x/2)."""
    if x <= 0:
        return 1.0
    return _upper_regularized_gamma(dof / 2.0, x / 2.0)


def _upper_regularized_gamma(a: float, x: float) -> float:
    """Q(a, x): a power series for x < a + 1, a continued fraction (Lentz) otherwise."""
    log_prefactor = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(10_000):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_prefactor) * h)


def share_changes(
    old_counts: np.ndarray, new_counts: np.ndarray, min_count: int
) -> list[tuple[int, float, float, float | None]]:
    """(class, old share, new share, new/old ratio) for classes with >= min_count samples in
    either version, largest relative change first; ratio None when the old share is 0."""
    p, q = _shares(old_counts), _shares(new_counts)
    eligible = np.flatnonzero(np.maximum(old_counts, new_counts) >= min_count)
    rows = []
    for c in eligible:  # a loop over classes, not rows
        ratio = float(q[c] / p[c]) if p[c] > 0 else None
        rows.append((int(c), float(p[c]), float(q[c]), ratio))

    def magnitude(row: tuple[int, float, float, float | None]) -> float:
        ratio = row[3]
        if ratio is None:
            return math.inf
        return abs(math.log(ratio)) if ratio > 0 else math.inf

    return sorted(rows, key=lambda r: (-magnitude(r), r[0]))
