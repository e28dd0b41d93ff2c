"""The issues file's ranks (polars' ordinal rank, on its threads) equal the core ranking."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from labelaudit.core.noise import rank_by_quality
from labelaudit.pipelines.label_issues import quality_ranks


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.sampled_from([0.0, 0.1, 0.5, 1.0, float("nan")]) | st.floats(0, 1), max_size=60
    )
)
def test_issue_ranks_equal_the_core_ranking(values: list[float]) -> None:
    """The issues file's ranks (polars) are core.noise.rank_by_quality's, ties and NaN included."""
    quality = np.array(values, dtype=np.float64)
    np.testing.assert_array_equal(quality_ranks(quality), rank_by_quality(quality))
