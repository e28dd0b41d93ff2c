"""Confused class pairs: the cells of the calibrated confident joint, scaled to the one error
estimate, that stand far above the typical pair, with their direction and example rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from labelaudit.core.pair_table import PairTable

if TYPE_CHECKING:
    from labelaudit.core.noise_estimate import NoiseEstimate


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


def pairs_of_the_estimate(noise: NoiseEstimate, estimate: int) -> PairTable:
    """The calibrated confident joint scaled so that its off-diagonal cells sum to the one
    estimate of label errors (rounded): the confused pairs count the same errors as the rest
    of the report, and which pairs stand out does not change (a ratio to the median)."""
    joint = noise.calibrated_joint
    scale = estimate / noise.estimated_errors if noise.estimated_errors > 0 else 1.0
    values = np.rint(joint.values.astype(np.float64) * scale).astype(np.int64)
    return joint.with_values(values)
