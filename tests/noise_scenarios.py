"""Seeded label-noise scenarios with known truth, for choosing and checking detection defaults.

Scores imitate an out-of-sample model trained on the noisy labels: a clean posterior (signal on
the true class, confusable class pairs, per-sample difficulty) mixed with what the noise teaches
the model (the noise matrix applied to the clean posterior).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scenario:
    name: str
    probabilities: np.ndarray
    given: np.ndarray
    truth: np.ndarray

    @property
    def is_error(self) -> np.ndarray:
        return self.given != self.truth


def _clean_posterior(rng, n, k, priors, signal=3.0, confusable_pairs=3):
    truth = rng.choice(k, size=n, p=priors)
    difficulty = rng.beta(2.0, 2.0, size=n)  # 0 easy, 1 hard
    logits = rng.normal(0.0, 1.0, (n, k))
    logits[np.arange(n), truth] += signal * (1.3 - difficulty)
    similar = {}
    for _ in range(confusable_pairs):
        a, b = rng.choice(k, 2, replace=False)
        similar[a], similar[b] = b, a
    for a, b in similar.items():
        rows = truth == a
        logits[rows, b] += 2.0 * difficulty[rows]
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return truth, p, difficulty


def _apply_noise(rng, truth, transition):
    """given ~ transition[true] (rows: true class, columns: given class)."""
    cumulative = transition[truth].cumsum(axis=1)
    u = rng.random(truth.size)[:, None]
    return (u > cumulative).sum(axis=1).clip(0, transition.shape[0] - 1)


def _model_on_noisy_labels(p_clean, transition, absorbed):
    """A model trained on noisy labels learns part of the noise: p = (1-a) p + a p T."""
    noisy = p_clean @ transition
    return (1 - absorbed) * p_clean + absorbed * noisy


def make_scenario(kind: str, seed: int = 0, n: int = 20_000, k: int = 10) -> Scenario:
    rng = np.random.default_rng(seed)
    priors = (
        rng.dirichlet(np.full(k, 2.0)) if kind != "imbalanced" else rng.dirichlet(np.full(k, 0.5))
    )
    truth, p_clean, difficulty = _clean_posterior(rng, n, k, priors)
    transition = np.eye(k)
    if kind in ("uniform", "imbalanced"):
        rate = 0.10
        transition = np.full((k, k), rate / (k - 1))
        np.fill_diagonal(transition, 1 - rate)
        given = _apply_noise(rng, truth, transition)
    elif kind == "pair_flips":
        for _ in range(3):
            a, b = rng.choice(k, 2, replace=False)
            transition[a, a], transition[a, b] = 0.7, 0.3
        given = _apply_noise(rng, truth, transition)
    elif kind == "class_dependent":
        rates = rng.uniform(0.0, 0.3, k)
        for a in range(k):
            spread = rng.dirichlet(np.full(k - 1, 0.3))
            transition[a] = 0.0
            transition[a, a] = 1 - rates[a]
            transition[a, np.arange(k) != a] = rates[a] * spread
        given = _apply_noise(rng, truth, transition)
    elif kind == "human_like":
        # People err on ambiguous samples, towards the class the sample resembles most.
        masked = p_clean.copy()
        masked[np.arange(n), truth] = -1
        resembles = masked.argmax(axis=1)
        flip = rng.random(n) < 0.25 * difficulty**2
        given = np.where(flip, resembles, truth)
        transition = np.zeros((k, k))
        np.add.at(transition, (truth, given), 1)
        transition /= transition.sum(axis=1, keepdims=True).clip(1)
    else:
        raise ValueError(kind)
    probabilities = _model_on_noisy_labels(p_clean, transition, absorbed=0.4)
    return Scenario(kind, probabilities, given.astype(np.int64), truth)


KINDS = ("uniform", "imbalanced", "pair_flips", "class_dependent", "human_like")
