"""Multi-label figures in two passes over chunks (core.multilabel_stream) equal the figures of
the whole matrix: average precision to scikit-learn's, detection exactly."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from labelaudit.core.metrics_multilabel import multilabel_metrics
from labelaudit.core.multilabel_stream import (
    MultilabelPassOne,
    MultilabelPassTwo,
    streamed_detection,
    streamed_metrics,
)
from labelaudit.core.noise_multilabel import detect_multilabel


def _stream(truth: np.ndarray, probs: np.ndarray, cuts: list[int], threshold=0.5):
    n, k = truth.shape
    edges = [0, *sorted(c % (n + 1) for c in cuts), n]
    one = MultilabelPassOne(n, k, threshold)
    for a, b in itertools.pairwise(edges):
        one.add(one.update(truth[a:b], probs[a:b], np.arange(a, b)))
    two = MultilabelPassTwo(one.positive_scores(), *one.thresholds(), n)
    for a, b in itertools.pairwise(edges):  # other chunks in pass 2
        two.update(truth[a:b][::-1], probs[a:b][::-1], np.arange(a, b)[::-1])
    return one, two


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 120),
    k=st.integers(1, 6),
    ties=st.booleans(),
    cuts=st.lists(st.integers(0, 200), max_size=5),
)
def test_two_passes_equal_the_whole_matrix(
    seed: int, n: int, k: int, ties: bool, cuts: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random((n, k)) < 0.4
    probs = rng.random((n, k))
    if ties:
        probs = np.round(probs * 4) / 4
    one, two = _stream(truth, probs, cuts)
    streamed = streamed_metrics(one, two)
    whole = multilabel_metrics(truth, probs)
    for name in ("cp", "cr", "cf1", "op", "or_", "of1", "subset_accuracy", "hamming_loss"):
        assert math.isclose(getattr(streamed, name), getattr(whole, name), abs_tol=1e-12), name
    np.testing.assert_array_equal(streamed.per_class.support, whole.per_class.support)
    np.testing.assert_allclose(streamed.per_class.f1, whole.per_class.f1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        streamed.average_precision, whole.average_precision, rtol=0, atol=1e-12
    )
    for c in range(k):
        if truth[:, c].any():
            expected = average_precision_score(truth[:, c], probs[:, c])
            assert math.isclose(streamed.average_precision[c], expected, abs_tol=1e-12)
        else:
            assert math.isnan(streamed.average_precision[c])
    found = streamed_detection(one, two, np.arange(n))
    direct = detect_multilabel(truth, probs)
    for name in ("quality", "worst_class", "worst_probability", "worst_is_missing", "flagged"):
        np.testing.assert_array_equal(getattr(found, name), getattr(direct, name), err_msg=name)
    np.testing.assert_array_equal(found.suspects_per_class, direct.suspects_per_class)
    np.testing.assert_array_equal(found.missing_per_class, direct.missing_per_class)


def test_per_class_thresholds_and_the_disagreement_threshold() -> None:
    rng = np.random.default_rng(3)
    truth = rng.random((200, 4)) < 0.5
    probs = rng.random((200, 4))
    thresholds = np.array([0.2, 0.5, 0.8, 1.0])
    one = MultilabelPassOne(200, 4, thresholds, against_threshold=0.5)
    one.add(one.update(truth, probs, np.arange(200)))
    two = MultilabelPassTwo(one.positive_scores(), *one.thresholds(), 200)
    two.update(truth, probs, np.arange(200))
    whole = multilabel_metrics(truth, probs, thresholds)
    assert math.isclose(streamed_metrics(one, two).of1, whole.of1, abs_tol=1e-12)
    np.testing.assert_array_equal(one.disagrees, ((probs >= 0.5) != truth).any(axis=1))


def test_label_sets_written_in_blocks(monkeypatch) -> None:
    """The issues file's 'a|b' sets, given and with one tag flipped, built a block at a time."""
    from labelaudit.pipelines import label_issues

    monkeypatch.setattr(label_issues, "LABEL_SET_ROWS", 3)
    rng = np.random.default_rng(5)
    indicators = (rng.random((10, 4)) < 0.4).astype(np.uint8)
    classes = ["a", "b", "c", "d"]
    toggle = rng.integers(0, 4, 10)
    flipped = indicators.copy()
    flipped[np.arange(10), toggle] ^= 1
    for matrix, flip in ((indicators, None), (flipped, toggle)):
        expected = ["|".join(c for c, on in zip(classes, row, strict=True) if on) for row in matrix]
        got = label_issues._label_sets(indicators, classes, toggle=flip).to_list()
        assert got == expected
    assert label_issues._label_sets(indicators[:0], classes).to_list() == []
