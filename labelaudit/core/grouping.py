"""Positions grouped by an integer code, with one sort: what every per-group loop walks."""

from __future__ import annotations

import numpy as np


def group_positions(codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """`order` (positions sorted by code, stable) and `bounds` (n_groups + 1): the positions of
    group g are order[bounds[g] : bounds[g + 1]]."""
    order = np.argsort(codes, kind="stable")
    return order, np.searchsorted(codes[order], np.arange(n_groups + 1))
