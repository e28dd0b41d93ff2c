"""The crowds benchmarks/crowd_real.py measures on: families of real and simulated crowds, each
drawn again per seed (its run-to-run noise). The real ones are read from ../shared (development
data: never copied into the repository) and are absent, with a reason, where it is not.

A family is a way of drawing a crowd: the real CIFAR-10N workers (three labels an image, most
workers 10 to 100 labels) subsampled to 1, 2 or 3 labels an image or without the busiest workers,
and seeded simulations (one-coin workers, class-confusing workers, spammers and adversaries,
sparse workers, varying labels an item), with or without a model's out-of-sample probabilities
(the real ResNet-18 and Swin ones, or simulated ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from annotators import own_class_confusion

REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real-crowd"
CIFAR10N = REAL / "cifar10n-half1"


@dataclass(frozen=True)
class Crowd:
    item: np.ndarray
    annotator: np.ndarray
    label: np.ndarray
    n_items: int
    n_annotators: int
    n_classes: int
    truth: np.ndarray
    probs: np.ndarray | None  # the model's (items, K), or None

    @property
    def worker_accuracy(self) -> np.ndarray:
        """Each annotator's true accuracy: the share of its labels equal to the true class."""
        right = (self.label == self.truth[self.item]).astype(float)
        given = np.bincount(self.annotator, minlength=self.n_annotators)
        return np.bincount(self.annotator, right, self.n_annotators) / np.maximum(given, 1)

    @property
    def worker_labels(self) -> np.ndarray:
        return np.bincount(self.annotator, minlength=self.n_annotators)


def _compact(item, annotator, label, truth, probs, k) -> Crowd:
    """Renumber the items and annotators that remain 0..n-1."""
    items, item = np.unique(item, return_inverse=True)
    _, annotator = np.unique(annotator, return_inverse=True)
    return Crowd(item, annotator, label, items.size, int(annotator.max()) + 1, k, truth[items],
                 None if probs is None else probs[items])  # fmt: skip


_cache: dict[str, object] = {}


def cifar10n() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The real crowd: item, annotator, label codes, the true labels and the models' probs."""
    if "cifar" not in _cache:
        import polars as pl

        classes = (CIFAR10N / "classes.txt").read_text().split()
        frame = pl.read_csv(CIFAR10N / "annotations.csv")
        label = frame["label"].replace_strict(classes, list(range(len(classes)))).to_numpy()
        _, annotator = np.unique(frame["annotator"].to_numpy(), return_inverse=True)
        probs = {m: np.load(CIFAR10N / f"pred_probs_{m}.npy") for m in ("resnet18", "swin")}
        _cache["cifar"] = (frame["id"].to_numpy(), annotator, label,
                           np.load(CIFAR10N / "true_labels.npy"), probs)  # fmt: skip
    return _cache["cifar"]  # type: ignore[return-value]


def real(per: int | str, model: str | None, seed: int, share: float = 2 / 3) -> Crowd:
    """A seeded share of the CIFAR-10N images with `per` labels each (1, 2, 3; 'mixed': 1 to 3
    at random; 'light': the 20 busiest workers' labels left out)."""
    item, annotator, label, truth, probs = cifar10n()
    rng = np.random.default_rng(seed)
    keep_item = rng.random(truth.size) < share if share < 1 else np.ones(truth.size, bool)
    order = np.lexsort((rng.random(item.size), item))  # a random order within each item
    rank = np.empty(item.size, int)
    starts = np.searchsorted(item[order], item[order])
    rank[order] = np.arange(item.size) - starts
    if per == "mixed":
        wanted = rng.integers(1, 4, truth.size)[item]
    elif per == "light":
        busiest = np.argsort(-np.bincount(annotator))[:20]
        wanted = np.where(np.isin(annotator, busiest), 0, 3)
    else:
        wanted = np.full(item.size, int(per))
    keep = keep_item[item] & (rank < wanted)
    return _compact(item[keep], annotator[keep], label[keep], truth,
                    None if model is None else probs[model], 10)  # fmt: skip


def _draw(rng, confusion, worker, truth_of_annotation) -> np.ndarray:
    cdf = confusion[worker, truth_of_annotation].cumsum(axis=1)
    return np.minimum((rng.random(worker.size)[:, None] > cdf).sum(axis=1), confusion.shape[1] - 1)


def _assign(rng, n: int, per: np.ndarray, workload: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`per[i]` distinct workers for item i, drawn in proportion to `workload`."""
    m = workload.size
    keys = -np.log(rng.random((n, m))) / workload[None, :]  # exponential race: weighted sample
    chosen = np.argsort(keys, axis=1)
    mask = np.arange(m)[None, :] < per[:, None]
    item = np.repeat(np.arange(n), per)
    return item, chosen[mask]


def simulated(kind: str, seed: int, model: str | None = None, n: int = 6000) -> Crowd:
    """Seeded simulated crowds; see the module docstring."""
    rng = np.random.default_rng(1000 + seed)
    if kind == "onecoin":
        k, m = 10, 80
        accuracy = rng.uniform(0.35, 0.95, m)
        confusion = np.repeat(((1 - accuracy) / (k - 1))[:, None, None], k, 1).repeat(k, 2)
        confusion[:, np.arange(k), np.arange(k)] = accuracy[:, None]
        per, workload = np.full(n, 3), rng.pareto(1.0, m) + 1
    elif kind == "confusion":
        k, m = 8, 30
        accuracy = np.linspace(0.45, 0.95, m)
        confusion = own_class_confusion(rng, accuracy, k)
        per, workload = np.full(n, 3), np.ones(m)
    elif kind == "spammers":
        k, m = 6, 50
        kind_of = rng.choice(3, m, p=[0.6, 0.3, 0.1])  # good, spammer, adversary
        confusion = np.empty((m, k, k))
        for a in range(m):
            if kind_of[a] == 0:
                acc = rng.uniform(0.7, 0.95)
                confusion[a] = np.full((k, k), (1 - acc) / (k - 1))
                np.fill_diagonal(confusion[a], acc)
            elif kind_of[a] == 1:  # uniform at random, or mostly one label
                favourite = np.full(k, 1.0)
                favourite[rng.integers(k)] += rng.choice([0.0, 10.0])
                confusion[a] = (favourite / favourite.sum())[None, :]
            else:  # sends class c to c + 1 most of the time
                confusion[a] = 0.1 / (k - 1) * (1 - np.eye(k)) + 0.9 * np.eye(k)
                confusion[a] = np.roll(confusion[a], 1, axis=1) * 0.8 + np.eye(k) * 0.2 * 0.9
                confusion[a] /= confusion[a].sum(axis=1, keepdims=True)
        per, workload = np.full(n, 3), np.ones(m)
    elif kind == "sparse":
        k, m = 10, 500
        shared = rng.dirichlet(np.full(k, 0.3), size=k)  # the crowd's common confusions
        np.fill_diagonal(shared, 0)
        shared /= shared.sum(axis=1, keepdims=True)
        accuracy = np.clip(rng.beta(6, 1.5, m), 0.2, 0.99)
        confusion = (1 - accuracy)[:, None, None] * shared[None] + accuracy[:, None, None] * np.eye(
            k
        )
        per, workload = np.full(n, 3), np.exp(rng.normal(0, 1.5, m))
    elif kind == "varying":
        k, m = 5, 40
        accuracy = rng.uniform(0.45, 0.9, m)
        confusion = np.empty((m, k, k))
        for a in range(m):
            errors = rng.dirichlet(np.full(k - 1, 0.5), size=k)
            for c in range(k):
                confusion[a, c, np.arange(k) != c] = (1 - accuracy[a]) * errors[c]
                confusion[a, c, c] = accuracy[a]
        per, workload = rng.integers(1, 6, n), np.ones(m)
    else:
        raise ValueError(kind)
    truth = rng.choice(k, n, p=rng.dirichlet(np.full(k, 5.0)))
    item, worker = _assign(rng, n, per, workload)
    label = _draw(rng, confusion, worker, truth[item])
    return _compact(item, worker, label, truth, _sim_model(rng, model, truth, k), k)


def _sim_model(rng, model: str | None, truth: np.ndarray, k: int) -> np.ndarray | None:
    if model is None:
        return None
    n = truth.size
    if model == "random":  # sharp and useless
        return rng.dirichlet(np.full(k, 0.3), size=n)
    strength = {"weak": 1.5, "good": 3.0, "overconfident": 3.0}[model]
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += strength
    logits *= 3.0 if model == "overconfident" else 1.0
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Family:
    name: str
    draw: Callable[[int], Crowd]
    real: bool
    with_model: bool


def families() -> list[Family]:
    """Every family, the real ones only where the data is here."""
    found = []
    if CIFAR10N.exists():
        for per in (3, 2, "mixed", "light"):
            found.append(Family(f"cifar10n-{per}", lambda s, p=per: real(p, None, s), True, False))
        for per, model in ((3, "resnet18"), (3, "swin"), (2, "resnet18"), (1, "resnet18"),
                           (1, "swin"), ("mixed", "swin")):  # fmt: skip
            found.append(Family(f"cifar10n-{per}+{model}",
                                lambda s, p=per, m=model: real(p, m, s), True, True))  # fmt: skip
    for kind in ("onecoin", "confusion", "spammers", "sparse", "varying"):
        found.append(Family(f"sim-{kind}", lambda s, x=kind: simulated(x, s), False, False))
    pairs = (("confusion", "good"), ("sparse", "weak"), ("spammers", "random"),
             ("varying", "overconfident"))  # fmt: skip
    for kind, model in pairs:
        draw = partial(simulated, kind, model=model)
        found.append(Family(f"sim-{kind}+{model}", draw, False, True))
    return found
