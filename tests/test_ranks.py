"""Ranks of the issues file: lowest quality first, ties in row order, NaN last; the fast path
(qualities sorted as the bit patterns of non-negative floats) equals the definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelaudit.core import quality_scores
from labelaudit.core.quality_scores import rank_by_quality
from labelaudit.pipelines import label_issues
from labelaudit.pipelines.label_issues import Ranks, quality_ranks, rank_of

SPECIAL = [0.0, -0.0, 0.1, 0.5, 1.0, float("nan"), float("inf"), -0.25, 1e-300]


@settings(max_examples=120, deadline=None)
@given(values=st.lists(st.sampled_from(SPECIAL) | st.floats(0, 1), max_size=60))
def test_ranks_follow_their_definition(values: list[float]) -> None:
    quality = np.array(values, dtype=np.float64)
    order = sorted(range(len(values)), key=lambda i: (math.isnan(values[i]), values[i], i))
    expected = np.empty(len(values), dtype=np.int64)
    expected[order] = np.arange(1, len(values) + 1)
    np.testing.assert_array_equal(rank_by_quality(quality), expected)
    np.testing.assert_array_equal(quality_ranks(quality), expected)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quality_scores, "_RANK_PIECE", 7)  # the ranks filled a few at a time
        patch.setattr(label_issues, "BACKGROUND_RANK_ROWS", 0)  # sorted on a thread
        np.testing.assert_array_equal(Ranks(quality).get(), expected)
    finite = np.flatnonzero(~np.isnan(quality))
    np.testing.assert_array_equal(rank_of(quality, finite), expected[finite])


def test_an_error_while_sorting_on_a_thread_reaches_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(quality: np.ndarray) -> np.ndarray:
        raise MemoryError

    monkeypatch.setattr(label_issues, "BACKGROUND_RANK_ROWS", 0)
    monkeypatch.setattr(label_issues, "quality_ranks", fail)
    ranks = Ranks(np.zeros(3))
    with pytest.raises(MemoryError):
        ranks.get()
