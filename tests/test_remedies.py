"""Weights and the loss recommendation against the direct formulas; --weights-out."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from labelaudit.api import scan
from labelaudit.core import remedies

from .conftest import FIXTURES, CliRun, labels_frame

COUNTS = np.array([100, 30, 5, 0])
N = 135


def _normalized(raw: np.ndarray) -> np.ndarray:
    present = COUNTS > 0
    return raw * COUNTS[present].sum() / (COUNTS[present] * raw).sum()


def test_inverse_frequency_and_sqrt() -> None:
    present = COUNTS > 0
    for method, raw in (
        ("inverse_frequency", 1 / COUNTS[present]),
        ("inverse_sqrt", 1 / np.sqrt(COUNTS[present])),
    ):
        w = remedies.class_weights(COUNTS, method, N).weights
        np.testing.assert_allclose(w[present], _normalized(raw))
        assert np.isnan(w[3])
        assert (COUNTS[present] * w[present]).sum() == pytest.approx(N)  # mean sample weight 1


def test_effective_number() -> None:
    w = remedies.class_weights(COUNTS, "effective_number", N, beta=0.99)
    raw = np.array([(1 - 0.99) / (1 - 0.99**n) for n in COUNTS[:3]])
    np.testing.assert_allclose(w.weights[:3], _normalized(raw))
    default = remedies.class_weights(COUNTS, "effective_number", N)
    assert default.params["beta"] == pytest.approx(1 - 1 / 100)


def test_repeat_factor() -> None:
    w = remedies.class_weights(COUNTS, "repeat_factor", N, t=0.2)
    expected = [max(1.0, math.sqrt(0.2 / (n / N))) for n in COUNTS[:3]]
    np.testing.assert_allclose(w.weights[:3], expected)
    assert w.params == {"t": 0.2}


def test_max_weight_caps_and_multilabel_samples() -> None:
    w = remedies.class_weights(COUNTS, "inverse_frequency", N, max_weight=2.0)
    assert np.nanmax(w.weights) == 2.0
    indicators = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
    per_sample = remedies.sample_weights(w, None, indicators)
    np.testing.assert_allclose(per_sample, [2.0, 1.0, w.weights[1]])
    np.testing.assert_allclose(remedies.pos_weights(np.array([10, 0, 50]), 100), [9.0, np.nan, 1.0])


@pytest.mark.parametrize(
    ("ratio", "noise", "expected"),
    [
        (1.5, None, "cross_entropy"),
        (6.0, 0.01, "class_balanced_cross_entropy"),
        (50.0, 0.02, "logit_adjusted_cross_entropy"),
        (50.0, 0.2, "cross_entropy_label_smoothing"),
    ],
)
def test_multiclass_loss_table(ratio: float, noise: float | None, expected: str) -> None:
    choice = remedies.recommend_loss(
        multi_label=False,
        imbalance_ratio=ratio,
        effective_classes=5.0,
        n_classes=10,
        rare_classes=2,
        noise_rate=noise,
    )
    assert choice.name == expected
    assert choice.reasons and choice.runner_up["name"] != expected
    assert any("re-tune the decision thresholds" in r for r in choice.risks)
    if noise and noise > 0.1:
        assert any("fix the suspected labels first" in r for r in choice.risks)


@pytest.mark.parametrize(
    ("density", "expected"),
    [(0.4, "binary_cross_entropy"), (0.1, "bce_with_pos_weight"), (0.01, "asymmetric_loss")],
)
def test_multilabel_loss_table(density: float, expected: str) -> None:
    choice = remedies.recommend_loss(
        multi_label=True,
        imbalance_ratio=3.0,
        effective_classes=5.0,
        n_classes=10,
        rare_classes=0,
        noise_rate=None,
        label_density=density,
    )
    assert choice.name == expected
    if expected == "asymmetric_loss":
        assert choice.params["gamma_neg"] == 2.0
        assert any("collapse precision" in r for r in choice.risks)


def test_recommendations_in_the_report_and_weights_out(cli: CliRun, tmp_path: Path) -> None:
    folder = FIXTURES / "synthetic-multiclass"
    target = tmp_path / "weights.parquet"
    result = cli("scan", str(folder / "labels.csv"), "--preds", str(folder / "preds.parquet"),
                 "--format", "json", "--weights-out", str(target))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    advice = json.loads(result.stdout)["recommendations"]
    methods = [w["method"] for w in advice["class_weights"]]
    assert methods == list(remedies.WEIGHTING_METHODS)
    assert set(advice["loss"]) == {"name", "params", "reasons", "runner_up", "risks"}
    weights = pl.read_parquet(target)
    assert weights.columns == ["id", "weight"] and weights.height == 3000
    chosen = next(w for w in advice["class_weights"] if w["method"] == advice["sampling"]["method"])
    labels = pl.read_csv(folder / "labels.csv")
    joined = labels.join(weights, on="id")
    for name, weight in chosen["weights"].items():
        assert joined.filter(pl.col("label") == name)["weight"].unique().to_list() == [
            pytest.approx(weight)
        ]


def test_zero_support_class_gets_no_weight_and_a_note() -> None:
    report = scan(
        labels_frame(np.array(["a", "a", "b"])),
        classes=["a", "b", "c"],
        weighting="inverse_frequency",
    ).to_dict()
    weights = report["recommendations"]["class_weights"][0]["weights"]
    assert weights["c"] is None
    notes = report["recommendations"]["sampling"]["notes"]
    assert "1 class has no sample and gets no weight: c" in notes[0]
