"""Several models: the weights of core/ensemble.py against direct computations (issue 26)."""

from __future__ import annotations

import numpy as np
import pytest

from labelaudit.core.ensemble import (
    ModelAgreement,
    combine_probabilities,
    detect_ensemble,
    in_memory_model_chunks,
)
from labelaudit.core.noise import detect, in_memory_chunks, run_in_parallel

from .noise_scenarios import make_scenario


def _probs(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.dirichlet(np.ones(k) * 0.4, size=n)


def _agreement(models: list[np.ndarray], labels: np.ndarray, chunk_rows: int) -> ModelAgreement:
    agreement = ModelAgreement(labels.size, len(models))
    run_in_parallel(  # several threads, as detect_ensemble runs it
        in_memory_model_chunks(models, chunk_rows)(None),
        lambda blocks, rows: agreement.update(blocks, labels[rows], rows),
    )
    return agreement


def _average_precision(is_positive: np.ndarray, quality: np.ndarray) -> float:
    hits = is_positive[np.argsort(quality, kind="stable")]
    precision_at = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float((precision_at * hits).sum() / hits.sum())


def test_accuracy_weights_match_a_direct_computation(rng: np.random.Generator) -> None:
    n, k = 900, 6
    models = [_probs(rng, n, k) for _ in range(4)]
    labels = rng.integers(0, k, n)
    agreement = _agreement(models, labels, 64)
    accuracy = np.array([(p.argmax(axis=1) == labels).mean() for p in models])
    assert agreement.rows_seen == n
    np.testing.assert_allclose(agreement.accuracies(), accuracy)
    np.testing.assert_allclose(agreement.accuracy_weights(), accuracy / accuracy.sum())
    # the default weights are unchanged: inverse error rates on the consensus rows
    at = np.arange(n)
    mean = sum(models) / len(models)
    consensus = mean[at, labels] >= mean.max(axis=1)
    rates = np.array(
        [((p[at, labels] < p.max(axis=1)) & consensus).sum() + 0.5 for p in models]
    ) / (consensus.sum() + 1)
    np.testing.assert_allclose(agreement.weights(), (1 / rates) / (1 / rates).sum())


def test_accuracy_weights_do_not_depend_on_chunking(rng: np.random.Generator) -> None:
    n, k = 700, 5
    models = [_probs(rng, n, k).astype(np.float32) for _ in range(3)]
    labels = rng.integers(0, k, n)
    a, b = _agreement(models, labels, 7), _agreement(models, labels, 10_000)
    np.testing.assert_array_equal(a.disagreements, b.disagreements)
    np.testing.assert_array_equal(a.accuracy_weights(), b.accuracy_weights())
    np.testing.assert_array_equal(a.models_disagreeing, b.models_disagreeing)


def test_self_confidence_of_the_accuracy_weighted_mean_is_cleanlabs_ensemble_score(
    rng: np.random.Generator,
) -> None:
    """cleanlab's default get_label_quality_ensemble_scores: the accuracy-weighted mean of each
    model's self-confidence, accuracy that of each model's argmax on the given labels."""
    n, k = 600, 4
    models = [_probs(rng, n, k) for _ in range(3)]
    labels = rng.integers(0, k, n)
    at = np.arange(n)
    accuracy = np.array([(p.argmax(axis=1) == labels).mean() for p in models])
    cleanlab = sum(
        a * p[at, labels] for a, p in zip(accuracy / accuracy.sum(), models, strict=True)
    )
    weights = _agreement(models, labels, 100).accuracy_weights()
    combined = combine_probabilities(models, weights)
    np.testing.assert_allclose(combined[at, labels], cleanlab, rtol=1e-12)


def test_accuracy_ties_go_to_the_label_and_zero_accuracy_gives_equal_weights() -> None:
    tie = np.array([[0.5, 0.5], [0.5, 0.5]])
    wrong = np.array([[0.0, 1.0], [1.0, 0.0]])
    labels = np.array([0, 1])
    agreement = _agreement([tie, wrong], labels, 1)
    np.testing.assert_array_equal(agreement.accuracies(), [1.0, 0.0])
    np.testing.assert_array_equal(agreement.accuracy_weights(), [1.0, 0.0])
    nobody = _agreement([wrong, wrong], labels, 1)
    np.testing.assert_array_equal(nobody.accuracy_weights(), [0.5, 0.5])
    assert ModelAgreement(0, 2).accuracies().tolist() == [0.0, 0.0]


@pytest.mark.parametrize("kind", ["uniform", "human_like"])
def test_error_weights_rank_above_accuracy_weights_and_the_plain_mean(kind: str) -> None:
    """A weak and a strong model: self-confidence of the default combination ranks the planted
    errors above cleanlab's ensemble score (accuracy weights) and the plain mean."""
    s = make_scenario(kind, seed=1, n=4000, models=("weak", "strong"))
    models, at = list(s.models), np.arange(s.given.size)
    e = detect_ensemble(in_memory_model_chunks(models), s.given, 2, 10)
    agreement = _agreement(models, s.given, 1000)
    np.testing.assert_allclose(e.weights, agreement.weights())

    def ap(weights) -> float:
        combined = combine_probabilities(models, weights)
        return _average_precision(s.is_error, combined[at, s.given])

    default, accuracy, plain = ap(e.weights), ap(agreement.accuracy_weights()), ap(None)
    assert default > accuracy + 0.005
    assert accuracy >= plain


def test_the_rankings_equal_cleanlabs(rng: np.random.Generator) -> None:
    """The dev-only oracle itself: one model's self-confidence is cleanlab's label quality, and
    self-confidence of the accuracy-weighted mean is its ensemble score."""
    rank = pytest.importorskip("cleanlab.rank")
    n, k = 500, 5
    models = [_probs(rng, n, k) for _ in range(3)]
    labels = rng.integers(0, k, n)
    labels[:k] = np.arange(k)  # every class present, as cleanlab requires
    single = detect(in_memory_chunks(models[0].copy()), labels, k)
    ours = single.quality
    theirs = rank.get_label_quality_scores(labels, models[0], method="self_confidence")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    weights = _agreement(models, labels, 100).accuracy_weights()
    combined = combine_probabilities(models, weights)[np.arange(n), labels]
    ensemble = rank.get_label_quality_ensemble_scores(labels, models, verbose=False)
    np.testing.assert_allclose(combined, ensemble, rtol=1e-10)
