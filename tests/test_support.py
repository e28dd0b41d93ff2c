"""Support, imbalance, duplicates and multi-label shape against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelaudit.api import scan
from labelaudit.core import support

from .conftest import FIXTURES, labels_frame


def test_imbalance_figures_by_hand() -> None:
    counts = np.array([50, 25, 25, 0, 3])
    figures = support.imbalance(counts, min_support=10)
    shares = np.array([50, 25, 25, 3]) / 103
    entropy = -sum(p * math.log(p) for p in shares)
    assert figures.ratio == pytest.approx(50 / 3)
    assert figures.normalized_entropy == pytest.approx(entropy / math.log(5))
    assert figures.effective_classes == pytest.approx(math.exp(entropy))
    assert figures.rare_classes.tolist() == [4]
    assert figures.zero_support_classes.tolist() == [3]


def test_single_class_has_no_normalized_entropy() -> None:
    figures = support.imbalance(np.array([7]), min_support=10)
    assert figures.normalized_entropy is None
    assert figures.ratio == 1.0
    assert figures.effective_classes == pytest.approx(1.0)


def test_duplicates_and_conflicts() -> None:
    id_codes = np.array([0, 0, 1, 1, 2, 3, 3, 3])
    labels = np.array([5, 5, 1, 2, 0, 4, 4, 9])
    summary = support.duplicates(id_codes, labels)
    assert summary.duplicate_ids == 3
    assert summary.duplicate_rows == 7
    assert summary.conflicting_ids == 2
    assert summary.example_conflicting_rows.tolist() == [2, 5]  # the first row of each id


def test_multilabel_cardinality_by_hand() -> None:
    y = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 0], [0, 1, 1]], dtype=np.uint8)
    shape = support.multilabel_cardinality(y)
    assert shape.cardinality == pytest.approx(7 / 4)
    assert shape.density == pytest.approx(7 / 12)
    assert shape.samples_without_label == 1
    assert shape.max_labels_per_sample == 3
    assert shape.top_pairs[0] == (0, 1, 2)  # ties in count: the lower class pair first
    assert {(a, b): n for a, b, n in shape.top_pairs} == {(0, 1): 2, (1, 2): 2, (0, 2): 1}


@settings(max_examples=50, deadline=None)
@given(labels=st.lists(st.integers(0, 6), min_size=1, max_size=80))
def test_counts_sum_to_n_and_shares_to_one(labels: list[int]) -> None:
    report = scan(labels_frame(np.array(labels))).to_dict()
    per_class = report["support"]["per_class"]
    assert sum(c["count"] for c in per_class) == len(labels)
    assert sum(c["share"] for c in per_class) == pytest.approx(1.0)
    assert report["dataset"]["n_samples"] == len(labels)


def test_synthetic_multiclass_support_and_findings() -> None:
    folder = FIXTURES / "synthetic-multiclass"
    report = scan(folder / "labels.csv", min_support=40).to_dict()
    assert report["dataset"]["classes"] == ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"]
    assert report["imbalance"]["rare_classes"] == ["hen"]
    assert [f["code"] for f in report["findings"]] == ["rare_classes"]


def test_multilabel_support_from_separator_matches_list_column() -> None:
    folder = FIXTURES / "synthetic-multilabel"
    from_list = scan(folder / "labels.parquet").to_dict()
    from_text = scan(folder / "labels.csv", label_sep="|").to_dict()
    assert from_list["support"] == from_text["support"]
    assert from_list["multilabel"] == from_text["multilabel"]
    assert from_list["dataset"]["task"] == "multilabel"
