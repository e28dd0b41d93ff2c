"""Every metric against scikit-learn (zero_division=0) to 1e-9: named and generated cases."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from labelaudit.api import scan
from labelaudit.core.metrics import confusion_matrix, metrics_from_confusion
from labelaudit.core.metrics_multilabel import average_precision, multilabel_metrics

from .conftest import labels_frame, preds_frame

TOL = 1e-9


def _probs(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.dirichlet(np.ones(k) * 0.5, size=n)


def check_multiclass(labels: np.ndarray, probs: np.ndarray) -> None:
    """Run the whole scan on (labels, probs) and compare every figure with scikit-learn."""
    _n, k = probs.shape
    classes = [str(c) for c in range(k)]
    report = scan(labels_frame(labels), preds_frame(probs, classes), classes=classes).to_dict()
    m = report["metrics"]
    predicted = probs.argmax(axis=1)
    every = list(range(k))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted), abs=TOL)
    with _quiet():
        expected_bal = skm.balanced_accuracy_score(labels, predicted)
    assert m["balanced_accuracy"] == pytest.approx(expected_bal, abs=TOL)
    p, r, f, s = skm.precision_recall_fscore_support(
        labels, predicted, labels=every, zero_division=0
    )
    for j, row in enumerate(m["per_class"]):
        assert row["precision"] == pytest.approx(p[j], abs=TOL)
        assert row["recall"] == pytest.approx(r[j], abs=TOL)
        assert row["f1"] == pytest.approx(f[j], abs=TOL)
        assert row["support"] == s[j]
    for average in ("micro", "macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            labels, predicted, labels=every, average=average, zero_division=0
        )
        assert m[average]["precision"] == pytest.approx(p, abs=TOL)
        assert m[average]["recall"] == pytest.approx(r, abs=TOL)
        assert m[average]["f1"] == pytest.approx(f, abs=TOL)
    assert (
        m["confusion_matrix"]["counts"]
        == skm.confusion_matrix(labels, predicted, labels=every).tolist()
    )
    assert m["log_loss"] == pytest.approx(skm.log_loss(labels, probs, labels=every), abs=TOL)
    if k > 5:
        expected_top = skm.top_k_accuracy_score(labels, probs, k=5, labels=every)
        assert m["top_5_accuracy"] == pytest.approx(expected_top, abs=TOL)
    else:
        assert m["top_5_accuracy"] is None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence scikit-learn's warnings about classes absent from y_true."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


CASES = {
    "balanced": (200, 4, None),
    "class never predicted": (150, 5, "never_predicted"),
    "class never present": (150, 5, "never_present"),
    "many classes (top-5)": (300, 12, None),
    "two classes": (100, 2, None),
    "single class present": (50, 3, "single"),
    "ties in scores": (120, 7, "ties"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_multiclass_named_cases(case: str, rng: np.random.Generator) -> None:
    n, k, twist = CASES[case]
    probs = _probs(rng, n, k)
    labels = rng.integers(0, k, n)
    if twist == "never_predicted":
        probs[:, 0] = 0.0
        probs /= probs.sum(axis=1, keepdims=True)
    elif twist == "never_present":
        labels[labels == 1] = 2
    elif twist == "single":
        labels[:] = 2
    elif twist == "ties":
        probs = np.round(probs * 4) / 4 + 1e-3
        probs /= probs.sum(axis=1, keepdims=True)
        probs = np.round(probs, 6)
        probs[:, -1] = 1 - probs[:, :-1].sum(axis=1)
    with _quiet():
        check_multiclass(labels, probs)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    k=st.integers(2, 8),
    seed=st.integers(0, 2**32 - 1),
    quantize=st.booleans(),
)
def test_multiclass_generated(n: int, k: int, seed: int, quantize: bool) -> None:
    rng = np.random.default_rng(seed)
    probs = _probs(rng, n, k)
    if quantize:  # many exact ties
        probs = np.eye(k)[rng.integers(0, k, n)] * 0.5 + 0.5 / k
    labels = rng.integers(0, k, n)
    with _quiet():
        check_multiclass(labels, probs)


def test_core_confusion_metrics_match_sklearn_without_io(rng: np.random.Generator) -> None:
    labels = rng.integers(0, 6, 500)
    predicted = rng.integers(0, 6, 500)
    result = metrics_from_confusion(confusion_matrix(labels, predicted, 6))
    p, r, f, _ = skm.precision_recall_fscore_support(labels, predicted, zero_division=0)
    np.testing.assert_allclose(result.per_class.precision, p, atol=TOL)
    np.testing.assert_allclose(result.per_class.recall, r, atol=TOL)
    np.testing.assert_allclose(result.per_class.f1, f, atol=TOL)
    np.testing.assert_allclose(
        result.confusion_normalized, skm.confusion_matrix(labels, predicted, normalize="true")
    )


def check_multilabel(truth: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> None:
    result = multilabel_metrics(truth, probs, threshold)
    predicted = (probs >= threshold).astype(int)
    with _quiet():
        p, r, f, s = skm.precision_recall_fscore_support(
            truth, predicted, average=None, zero_division=0
        )
        np.testing.assert_allclose(result.per_class.precision, p, atol=TOL)
        np.testing.assert_allclose(result.per_class.recall, r, atol=TOL)
        np.testing.assert_allclose(result.per_class.f1, f, atol=TOL)
        np.testing.assert_array_equal(result.per_class.support, s)
        for name in ("micro", "macro", "weighted"):
            p, r, f, _ = skm.precision_recall_fscore_support(
                truth, predicted, average=name, zero_division=0
            )
            got = getattr(result, name)
            assert (got.precision, got.recall, got.f1) == pytest.approx((p, r, f), abs=TOL)
        assert result.cp == pytest.approx(
            skm.precision_score(truth, predicted, average="macro", zero_division=0), abs=TOL
        )
        assert result.cr == pytest.approx(
            skm.recall_score(truth, predicted, average="macro", zero_division=0), abs=TOL
        )
        cp, cr = result.cp, result.cr
        assert result.cf1 == pytest.approx(2 * cp * cr / (cp + cr) if cp + cr else 0.0, abs=TOL)
        assert result.of1 == pytest.approx(
            skm.f1_score(truth, predicted, average="micro", zero_division=0), abs=TOL
        )
        assert result.subset_accuracy == pytest.approx(
            skm.accuracy_score(truth, predicted), abs=TOL
        )
        assert result.hamming_loss == pytest.approx(skm.hamming_loss(truth, predicted), abs=TOL)
        with_positives = truth.sum(axis=0) > 0
        for c in np.flatnonzero(with_positives):
            expected = skm.average_precision_score(truth[:, c], probs[:, c])
            assert result.average_precision[c] == pytest.approx(expected, abs=TOL)
        assert np.isnan(result.average_precision[~with_positives]).all()
        if with_positives.any():
            expected_map = np.mean(
                [
                    skm.average_precision_score(truth[:, c], probs[:, c])
                    for c in np.flatnonzero(with_positives)
                ]
            )
            assert result.mean_average_precision == pytest.approx(expected_map, abs=TOL)


def test_multilabel_named_cases(rng: np.random.Generator) -> None:
    truth = (rng.random((200, 5)) < 0.3).astype(np.uint8)
    probs = np.clip(truth * 0.6 + rng.random((200, 5)) * 0.5, 0, 1)
    check_multilabel(truth, probs)
    truth[:, 2] = 0  # a class with no positive sample
    truth[:10] = 0  # rows with no positive label
    check_multilabel(truth, probs)
    check_multilabel(truth, np.round(probs, 1))  # ties
    check_multilabel(truth, probs, threshold=0.7)


@settings(max_examples=30, deadline=None)
# k >= 2: scikit-learn reads a one-column indicator matrix as a binary problem, not multi-label.
@given(n=st.integers(1, 50), k=st.integers(2, 6), seed=st.integers(0, 2**32 - 1))
def test_multilabel_generated(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = (rng.random((n, k)) < rng.random()).astype(np.uint8)
    probs = np.round(rng.random((n, k)), int(rng.integers(1, 4)))
    check_multilabel(truth, probs)


def test_average_precision_is_nan_without_positives() -> None:
    assert np.isnan(average_precision(np.array([0.2, 0.9]), np.array([0, 0])))


def test_multilabel_through_scan_matches_core() -> None:
    from .conftest import FIXTURES

    folder = FIXTURES / "synthetic-multilabel"
    report = scan(folder / "labels.parquet", folder / "preds.parquet").to_dict()
    import polars as pl

    labels = pl.read_parquet(folder / "labels.parquet")
    preds = pl.read_parquet(folder / "preds.parquet")
    classes = report["dataset"]["classes"]
    truth = np.array(
        [[c in row for c in classes] for row in labels["label"].to_list()], dtype=np.uint8
    )
    probs = preds.select(classes).to_numpy()
    expected = multilabel_metrics(truth, probs)
    m = report["metrics"]
    assert report["dataset"]["task"] == "multilabel"
    assert m["cf1"] == pytest.approx(expected.cf1, abs=TOL)
    assert m["mean_average_precision"] == pytest.approx(expected.mean_average_precision, abs=TOL)
    assert m["hamming_loss"] == pytest.approx(
        skm.hamming_loss(truth, (probs >= 0.5).astype(int)), abs=TOL
    )


def test_every_fixture_matches_sklearn() -> None:
    """The bundled multi-class fixtures, read from disk, against scikit-learn figure by figure."""
    import polars as pl

    from .conftest import FIXTURES

    for folder in ("cifar10-test", "synthetic-multiclass"):
        labels_path = FIXTURES / folder / "labels.csv"
        preds_path = FIXTURES / folder / "preds.parquet"
        report = scan(labels_path, preds_path).to_dict()
        classes = report["dataset"]["classes"]
        joined = pl.read_csv(labels_path).join(pl.read_parquet(preds_path), on="id")
        probs = joined.select(classes).to_numpy().astype(np.float64)
        labels = joined["label"].replace_strict(classes, list(range(len(classes)))).to_numpy()
        predicted = probs.argmax(axis=1)
        m = report["metrics"]
        p, r, f, _s = skm.precision_recall_fscore_support(
            labels, predicted, labels=list(range(len(classes))), zero_division=0
        )
        assert [c["precision"] for c in m["per_class"]] == pytest.approx(p, abs=TOL)
        assert [c["recall"] for c in m["per_class"]] == pytest.approx(r, abs=TOL)
        assert [c["f1"] for c in m["per_class"]] == pytest.approx(f, abs=TOL)
        assert m["balanced_accuracy"] == pytest.approx(
            skm.balanced_accuracy_score(labels, predicted), abs=TOL
        )
        # float32 scores (synthetic fixture) are widened to float64 before the log.
        with _quiet():
            expected_log_loss = skm.log_loss(labels, probs)
        assert m["log_loss"] == pytest.approx(expected_log_loss, abs=1e-7)
        assert m["top_5_accuracy"] == pytest.approx(
            skm.top_k_accuracy_score(labels, probs, k=5), abs=TOL
        )
