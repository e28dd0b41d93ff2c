"""Invariants: row order, class names vs integers, class permutation, perfect predictions, ECE."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelaudit.api import scan
from labelaudit.core.scores import MulticlassScoreSums

from .conftest import labels_frame, preds_frame


def _metrics(labels, probs, classes, ids=None, pred_order=None):
    ids = np.arange(len(labels)) if ids is None else ids
    order = np.arange(len(labels)) if pred_order is None else pred_order
    names = np.array(classes)[labels]
    preds = preds_frame(probs[order], classes, ids[order])
    return scan(labels_frame(names, ids), preds, classes=list(classes)).to_dict()["metrics"]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 80), k=st.integers(2, 7))
def test_permuting_prediction_rows_changes_nothing(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k), n)
    classes = [f"c{j}" for j in range(k)]
    base = _metrics(labels, probs, classes)
    shuffled = _metrics(labels, probs, classes, pred_order=rng.permutation(n))
    assert shuffled["confusion_matrix"] == base["confusion_matrix"]
    scalars = ("accuracy", "balanced_accuracy", "log_loss", "expected_calibration_error")
    for key in scalars:
        assert shuffled[key] == pytest.approx(base[key], rel=1e-12)
    assert shuffled["per_class"] == base["per_class"]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 80), k=st.integers(2, 7))
def test_relabeling_classes_permutes_results(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k), n) + rng.random((n, k)) * 1e-9  # no exact ties
    probs /= probs.sum(axis=1, keepdims=True)
    classes = [f"c{j}" for j in range(k)]
    perm = rng.permutation(k)  # new class j is old class perm[j]
    inverse = np.argsort(perm)
    base = _metrics(labels, probs, classes)
    moved = _metrics(inverse[labels], probs[:, perm], classes)
    for j in range(k):
        old, new = base["per_class"][perm[j]], moved["per_class"][j]
        assert (new["precision"], new["recall"], new["f1"], new["support"]) == pytest.approx(
            (old["precision"], old["recall"], old["f1"], old["support"])
        )
    assert moved["accuracy"] == pytest.approx(base["accuracy"])
    assert moved["log_loss"] == pytest.approx(base["log_loss"])


def test_integer_labels_and_names_agree(rng: np.random.Generator) -> None:
    labels = rng.integers(0, 4, 100)
    probs = rng.dirichlet(np.ones(4), 100)
    as_ints = scan(labels_frame(labels), preds_frame(probs, ["0", "1", "2", "3"])).to_dict()
    names = ["a", "b", "c", "d"]
    as_names = scan(labels_frame(np.array(names)[labels]), preds_frame(probs, names)).to_dict()
    assert as_ints["metrics"]["accuracy"] == as_names["metrics"]["accuracy"]
    assert (
        as_ints["metrics"]["confusion_matrix"]["counts"]
        == (as_names["metrics"]["confusion_matrix"]["counts"])
    )


@settings(max_examples=25, deadline=None)
@given(labels=st.lists(st.integers(0, 5), min_size=1, max_size=60))
def test_perfect_predictions_give_a_diagonal_confusion_matrix(labels: list[int]) -> None:
    y = np.array(labels)
    probs = np.eye(6)[y]
    classes = [str(c) for c in range(6)]
    m = scan(labels_frame(y), preds_frame(probs, classes), classes=classes).to_dict()["metrics"]
    counts = np.array(m["confusion_matrix"]["counts"])
    assert (counts == np.diag(np.diag(counts))).all()
    assert m["accuracy"] == 1.0


def test_expected_calibration_error_by_direct_loop(rng: np.random.Generator) -> None:
    n, k = 500, 4
    probs = rng.dirichlet(np.ones(k), n)
    probs[:5] = np.eye(k)[:1].repeat(5, axis=0)  # confidence exactly 1.0: the last bin
    labels = rng.integers(0, k, n)
    sums = MulticlassScoreSums(k)
    for start in range(0, n, 64):  # chunked: the sums must not depend on the chunking
        sums.update(probs[start : start + 64], labels[start : start + 64])
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    expected = 0.0
    for b in range(15):
        lo, hi = b / 15, (b + 1) / 15
        in_bin = (confidence > lo) & (confidence <= hi) if b else (confidence <= hi)
        if in_bin.any():
            accuracy = (predicted[in_bin] == labels[in_bin]).mean()
            expected += in_bin.mean() * abs(accuracy - confidence[in_bin].mean())
    assert sums.expected_calibration_error() == pytest.approx(expected, abs=1e-12)


def test_logits_are_detected_and_softmaxed(rng: np.random.Generator) -> None:
    logits = rng.normal(0, 3, (200, 5))
    labels = rng.integers(0, 5, 200)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    classes = [str(c) for c in range(5)]
    from_logits = scan(labels_frame(labels), preds_frame(logits, classes)).to_dict()["metrics"]
    from_probs = scan(labels_frame(labels), preds_frame(probs, classes)).to_dict()["metrics"]
    assert from_logits["score_mode"] == "logits"
    assert from_probs["score_mode"] == "probs"
    assert from_logits["log_loss"] == pytest.approx(from_probs["log_loss"], abs=1e-9)


def test_late_logits_chunk_restarts_auto_detection(rng: np.random.Generator) -> None:
    """The first chunk looks like probabilities, a later one reveals logits: all read as logits."""
    n, k = 300, 3
    logits = rng.normal(0, 1.0, (n, k))  # negative values: only logits
    logits[:100] = np.eye(k)[rng.integers(0, k, 100)]  # one-hot rows: valid probabilities
    labels = rng.integers(0, k, n)
    classes = [str(c) for c in range(k)]
    chunked = scan(labels_frame(labels), preds_frame(logits, classes), chunk_rows=100)
    whole = scan(labels_frame(labels), preds_frame(logits, classes), scores="logits")
    got, expected = chunked.to_dict()["metrics"], whole.to_dict()["metrics"]
    assert got["score_mode"] == "logits"
    assert got["confusion_matrix"] == expected["confusion_matrix"]
    assert got["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-12)


def test_chunk_size_does_not_change_results(rng: np.random.Generator) -> None:
    labels = rng.integers(0, 9, 1000)
    probs = rng.dirichlet(np.ones(9), 1000)
    classes = [str(c) for c in range(9)]
    a = scan(labels_frame(labels), preds_frame(probs, classes), chunk_rows=7).to_dict()
    b = scan(labels_frame(labels), preds_frame(probs, classes), chunk_rows=100_000).to_dict()
    a["config"].pop("chunk_rows"), b["config"].pop("chunk_rows")
    assert a["metrics"]["confusion_matrix"] == b["metrics"]["confusion_matrix"]
    assert a["metrics"]["log_loss"] == pytest.approx(b["metrics"]["log_loss"], rel=1e-12)
    assert a["metrics"]["expected_calibration_error"] == pytest.approx(
        b["metrics"]["expected_calibration_error"], rel=1e-12
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), cuts=st.lists(st.integers(0, 300), max_size=6))
def test_accumulators_merged_from_any_chunks_equal_one_pass(seed: int, cuts: list[int]) -> None:
    """Every accumulator of core.accumulators, fed in chunks on separate instances and merged
    in any order, computes what one instance fed everything computes."""
    from labelaudit.core.accumulators import DENSE_PAIR_CELLS, ClassCounts, ClassSums, PairCounts
    from labelaudit.core.pair_table import PairTable

    rng = np.random.default_rng(seed)
    n, k = 300, 6
    labels, other = rng.integers(0, k, n), rng.integers(0, k, n)
    values = rng.random(n)
    makers = {
        "counts": (lambda: ClassCounts(k), lambda a, s: a.update(labels[s])),
        "pairs": (lambda: PairCounts(k, k), lambda a, s: a.update(labels[s], other[s])),
        # Past DENSE_PAIR_CELLS cells a table keeps its nonzero cells only; same counts.
        "sparse pairs": (
            lambda: PairCounts(k, DENSE_PAIR_CELLS),
            lambda a, s: a.update(labels[s], other[s] * 1000),
        ),
        "sums": (lambda: ClassSums(k), lambda a, s: a.update(labels[s], values[s])),
    }
    edges = [0, *sorted(cuts), n]
    for make, feed in makers.values():
        whole = make()
        feed(whole, slice(0, n))
        parts = []
        for start, stop in itertools.pairwise(edges):
            part = make()
            feed(part, slice(start, stop))
            parts.append(part)
        merged = make()
        for part in reversed(parts):
            merged.merge(part)
        got, expected = merged.compute(), whole.compute()
        if isinstance(expected, PairTable):
            np.testing.assert_array_equal(got.codes, expected.codes)
            np.testing.assert_array_equal(got.values, expected.values)
            continue
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    direct = np.array([values[labels == c].mean() if (labels == c).sum() >= 2 else np.inf
                       for c in range(k)])  # fmt: skip
    sums = ClassSums(k)
    sums.update(labels, values)
    np.testing.assert_allclose(sums.compute(min_count=2), direct, rtol=1e-12)
