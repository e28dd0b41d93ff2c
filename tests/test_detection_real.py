"""Floors for the proposed detection defaults on real label noise (shared development data).

The data lives outside the repository, in ../shared/data next to the checkout (see its READMEs);
these tests are skipped when it is absent. The floors sit a little below the figures of
benchmarks/detection_real.py, so that a change that makes detection worse on real noise fails.
On the full CIFAR-10N "worst" labels (40% wrong, the models' disagreements are nearly all
errors) the proposed rule flags a little fewer than argmax and ends up to 0.011 F1 below it
(round 1's balanced_count: 0.004); the floors say so rather than hide it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labelaudit.core.ensemble import detect_ensemble, in_memory_model_chunks
from labelaudit.core.noise import detect, in_memory_chunks

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CIFAR10N = DATA / "real-noise" / "cifar10n-worst"
DEFAULT = ("adaptive_margin", "weighted_count")  # proposed defaults (round 2)
ROUND1 = ("half_margin", "balanced_count")  # proposed in round 1
TODAY = ("normalized_margin", "prune_by_noise_rate")  # the defaults before issue 11

pytestmark = pytest.mark.skipif(
    not (CIFAR10N / "true_labels.npy").exists(),
    reason=f"the shared real-noise data is absent ({DATA})",
)


def _f1(flagged: np.ndarray, truth: np.ndarray) -> float:
    tp = int((flagged & truth).sum())
    return 2 * tp / (int(flagged.sum()) + int(truth.sum()))


def _average_precision(is_positive: np.ndarray, quality: np.ndarray) -> float:
    hits = is_positive[np.argsort(quality, kind="stable")]
    precision_at = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float((precision_at * hits).sum() / hits.sum())


def _argmax_flags(probs: np.ndarray, given: np.ndarray) -> np.ndarray:
    return probs[np.arange(given.size), given] < probs.max(axis=1)


@pytest.fixture(scope="module")
def cifar10n() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    given = np.load(CIFAR10N / "labels.npy").astype(np.int64)
    truth = np.load(CIFAR10N / "true_labels.npy").astype(np.int64)
    models = {m: np.load(CIFAR10N / f"pred_probs_{m}.npy") for m in ("resnet18", "swin")}
    return models, given, truth


def _subsample(given: np.ndarray, truth: np.ndarray, rate: float) -> np.ndarray:
    """All clean rows and a random part of the wrong ones: rows for a noise rate of `rate`."""
    wrong = given != truth
    clean, errors = np.flatnonzero(~wrong), np.flatnonzero(wrong)
    take = round(rate / (1 - rate) * clean.size)
    picked = np.random.default_rng(0).choice(errors, take, replace=False)
    return np.sort(np.r_[clean, picked])


@pytest.mark.parametrize(
    ("model", "f1_floor", "ap_floor"), [("resnet18", 0.875, 0.955), ("swin", 0.938, 0.989)]
)
def test_human_noise_one_model(cifar10n, model: str, f1_floor: float, ap_floor: float) -> None:
    models, given, truth = cifar10n
    probs = models[model]
    d = detect(in_memory_chunks(probs.copy()), given, 10, *DEFAULT)
    wrong = given != truth
    assert _f1(d.flagged, wrong) >= f1_floor
    assert _f1(d.flagged, wrong) >= _f1(_argmax_flags(probs, given), wrong) - 0.015
    assert _average_precision(wrong, d.quality) >= ap_floor
    round1 = detect(in_memory_chunks(probs.copy()), given, 10, *ROUND1)
    assert _average_precision(wrong, d.quality) >= _average_precision(wrong, round1.quality) - 0.001


@pytest.mark.parametrize("model", ["resnet18", "swin"])
def test_at_lower_noise_the_default_beats_argmax(cifar10n, model: str) -> None:
    models, given, truth = cifar10n
    rows = _subsample(given, truth, 0.15)
    probs, labels, wrong = models[model][rows], given[rows], (given != truth)[rows]
    d = detect(in_memory_chunks(probs.copy()), labels, 10, *DEFAULT)
    assert _f1(d.flagged, wrong) >= _f1(_argmax_flags(probs, labels), wrong) + 0.002
    today = detect(in_memory_chunks(probs.copy()), labels, 10, *TODAY)
    assert _f1(d.flagged, wrong) > _f1(today.flagged, wrong)


def test_two_models_match_or_beat_the_better_one(cifar10n) -> None:
    models, given, truth = cifar10n
    wrong = given != truth
    e = detect_ensemble(in_memory_model_chunks(list(models.values())), given, 2, 10)
    assert e.weights[1] > e.weights[0]  # the Swin transformer makes fewer mistakes of its own
    f1, ap = _f1(e.detection.flagged, wrong), _average_precision(wrong, e.detection.quality)
    assert f1 >= 0.938 and ap >= 0.985  # the self-confidence ranking (issue 26): 0.989
    swin = detect(in_memory_chunks(models["swin"].copy()), given, 10)  # the defaults
    assert f1 >= _f1(swin.flagged, wrong) - 0.005
    assert ap >= _average_precision(wrong, swin.quality)
    assert np.array_equal(
        e.models_disagreeing, sum(_argmax_flags(p, given).astype(int) for p in models.values())
    )


@pytest.mark.skipif(
    not (DATA / "cifar10-test" / "mturk.json").exists(), reason="the CIFAR-10 review is absent"
)
def test_cifar10_review() -> None:
    folder = DATA / "cifar10-test"
    given = np.load(folder / "labels.npy").astype(np.int64)
    probs = np.load(folder / "pred_probs.npy")
    review = json.loads((folder / "mturk.json").read_text())
    rows = np.array([int(r["id"]) for r in review])
    validated = np.array([r["mturk"]["given"] < 3 for r in review])
    d = detect(in_memory_chunks(probs.copy()), given, 10, *DEFAULT)
    assert (d.flagged[rows] & validated).sum() >= 52  # of 54 validated errors
    assert (d.ranks()[rows][validated] <= rows.size).sum() >= 50
    assert _average_precision(validated, d.quality[rows]) >= 0.27


@pytest.mark.parametrize("model", ["resnet18", "swin"])
def test_the_error_estimate_on_human_noise(cifar10n, model: str) -> None:
    """The one estimate of label errors (issue 26): measured 4% and 7% below the true 20,104 on
    the full set; its interval holds the truth, on the 15% subsample too."""
    models, given, truth = cifar10n
    for rows in (np.arange(given.size), _subsample(given, truth, 0.15)):
        d = detect(in_memory_chunks(models[model][rows].copy()), given[rows], 10)
        true = int((given[rows] != truth[rows]).sum())
        assert d.errors.low <= true <= d.errors.high
        if rows.size == given.size:
            assert abs(d.errors.count - true) / true <= 0.10
