"""The calibrated confident joint and what follows from it: the joint distribution, the noise
matrix P(given | true), per-class noise rates and the confident joint's count of errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelaudit.core.pair_table import PairTable


@dataclass(frozen=True)
class NoiseEstimate:
    """The calibrated confident joint and what follows from it (K x K tables kept sparse)."""

    calibrated_joint: PairTable
    joint: PairTable
    noise_matrix: PairTable
    class_noise_rate: np.ndarray
    estimated_errors: int
    noise_rate: float


def estimate_noise(counts: PairTable | np.ndarray, class_count: np.ndarray) -> NoiseEstimate:
    """Calibrate the confident joint to the class counts; derive P(given | true) and rates.

    Calibration scales row i (given label i) so that it sums to the number of samples labeled i;
    the estimated number of errors is the calibrated mass off the diagonal.
    """
    counts = PairTable.of(counts)
    values = counts.values.astype(np.float64)
    row_sums = np.bincount(counts.rows, weights=values, minlength=counts.n_rows)
    scale = np.divide(class_count, row_sums, out=np.zeros(row_sums.size), where=row_sums > 0)
    calibrated = counts.with_values(values * scale[counts.rows])
    total = float(calibrated.values.sum())
    joint = calibrated.with_values(calibrated.values / total) if total > 0 else calibrated
    column_sums = joint.column_sums()
    noise_matrix = joint.with_values(joint.values / column_sums[joint.columns])
    diagonal = calibrated.diagonal().astype(np.float64)
    class_noise = np.divide(
        class_count - diagonal, class_count, out=np.zeros(class_count.size), where=class_count > 0
    )
    class_noise = np.clip(class_noise, 0.0, 1.0)
    estimated = round(float(class_count.sum() - diagonal.sum()))
    n = int(class_count.sum())
    return NoiseEstimate(
        calibrated_joint=calibrated,
        joint=joint,
        noise_matrix=noise_matrix,
        class_noise_rate=class_noise,
        estimated_errors=max(estimated, 0),
        noise_rate=max(estimated, 0) / n if n else 0.0,
    )
