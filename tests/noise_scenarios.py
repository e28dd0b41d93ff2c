"""Seeded label-noise scenarios with known truth, for choosing and checking detection defaults.

Each sample has a true class, a difficulty (most samples are easy, as in real data) and a class it
resembles, drawn from a sparse class-similarity matrix: classes have one or two look-alikes.
Models see the samples through that structure: a model's clean posterior puts its signal on the
true class, less of it on hard samples, and the rest on the look-alike class, plus noise partly
shared between models (samples that are hard for every model) and partly its own. Model strength
ranges from weak (many confident mistakes) to strong (confidently right on clean easy samples,
like a large pretrained network).

The noise follows the same structure as the models' confusions where real noise does: the
`confusion` kind draws flips from the similarity matrix (a class-conditional matrix shaped like a
real model's confusions), `human_like` flips ambiguous samples to the class they resemble
(instance-dependent noise). A model trained on the noisy labels learns part of the noise: its
out-of-sample probabilities mix its clean posterior with the noisy-label distribution at that
sample (`absorbed`), as cross-validated networks do.

`make_scenario(kind, seed, model=...)` gives one model's scores; `models=("weak", "strong")`
gives several models' scores for the same samples and labels (an ensemble).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = (
    "uniform",
    "imbalanced",
    "pair_flips",
    "class_dependent",
    "confusion",
    "human_like",
    "low_noise",
)
# signal on the true class of an easy sample (logit units) and the model's own noise
MODELS = {
    "weak": (3.5, 1.0),
    "medium": (5.5, 0.8),
    "strong": (9.0, 0.6),
}


@dataclass(frozen=True)
class Scenario:
    name: str
    probabilities: np.ndarray
    given: np.ndarray
    truth: np.ndarray
    models: tuple[np.ndarray, ...] = ()

    @property
    def is_error(self) -> np.ndarray:
        return self.given != self.truth


def _similarity(rng: np.random.Generator, k: int) -> np.ndarray:
    """Row i: which classes class i resembles (sparse: one or two look-alikes)."""
    similar = np.zeros((k, k))
    for i in range(k):
        others = np.flatnonzero(np.arange(k) != i)
        similar[i, others] = rng.dirichlet(np.full(k - 1, 0.25))
    return similar


def _draw(rng: np.random.Generator, rows: np.ndarray) -> np.ndarray:
    """One class per row of a row-stochastic matrix."""
    cumulative = rows.cumsum(axis=1)
    u = rng.random(rows.shape[0])[:, None] * cumulative[:, -1:]
    return (u > cumulative).sum(axis=1).clip(0, rows.shape[1] - 1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _transition(kind: str, rng: np.random.Generator, k: int, similar: np.ndarray) -> np.ndarray:
    """Class-conditional noise: rows true class, columns given class."""
    transition = np.eye(k)
    if kind in ("uniform", "imbalanced"):
        transition = np.full((k, k), 0.10 / (k - 1))
        np.fill_diagonal(transition, 0.90)
    elif kind == "pair_flips":
        for _ in range(3):
            a, b = rng.choice(k, 2, replace=False)
            transition[a, a], transition[a, b] = 0.7, 0.3
    elif kind == "class_dependent":
        rates = rng.uniform(0.0, 0.3, k)
        for a in range(k):
            transition[a] = 0.0
            transition[a, a] = 1 - rates[a]
            transition[a, np.arange(k) != a] = rates[a] * rng.dirichlet(np.full(k - 1, 0.3))
    elif kind in ("confusion", "low_noise"):
        rate = 0.20 if kind == "confusion" else 0.04
        transition = (1 - rate) * np.eye(k) + rate * similar
    else:
        raise ValueError(kind)
    return transition


def make_scenario(
    kind: str,
    seed: int = 0,
    n: int = 20_000,
    k: int = 10,
    model: str = "medium",
    models: tuple[str, ...] | None = None,
    absorbed: float = 0.5,
) -> Scenario:
    """One scenario; `models` (names of MODELS) overrides `model` for several models' scores."""
    rng = np.random.default_rng(seed)
    names = models or (model,)
    priors = rng.dirichlet(np.full(k, 0.5 if kind == "imbalanced" else 4.0))
    similar = _similarity(rng, k)
    truth = rng.choice(k, size=n, p=priors)
    difficulty = rng.beta(1.1, 4.0, size=n)  # most samples are easy
    resembles = _draw(rng, similar[truth])
    at = np.arange(n)
    shared = rng.normal(0.0, 1.0, (n, k))  # what makes a sample hard for every model
    if kind == "human_like":
        # People err on ambiguous samples, towards the class the sample resembles.
        flip_chance = np.clip(0.03 + 0.6 * difficulty**2, 0.0, 1.0)
        flip = rng.random(n) < flip_chance
        given = np.where(flip, resembles, truth)
    else:
        transition = _transition(kind, rng, k, similar)
        given = _draw(rng, transition[truth])
    scores = []
    for name in names:
        signal, own = MODELS[name]
        logits = own * (0.7 * shared + 0.7 * rng.normal(0.0, 1.0, (n, k)))
        logits[at, truth] += signal * (1.0 - difficulty)
        logits[at, resembles] += 0.7 * signal * difficulty
        clean = _softmax(logits)
        # What a model trained on the noisy labels learns: the noisy-label distribution.
        if kind == "human_like":
            noisy = (1 - flip_chance)[:, None] * clean
            noisy[at, resembles] += flip_chance
        else:
            noisy = clean @ transition
        scores.append((1 - absorbed) * clean + absorbed * noisy)
    label = "+".join(names)
    return Scenario(
        f"{kind}/{label}", scores[0], given.astype(np.int64), truth.astype(np.int64), tuple(scores)
    )
