"""Several annotators per item: majority vote, Dawid-Skene consensus (EM over per-annotator
confusion matrices), annotator
quality, and agreement (Krippendorff's alpha, Fleiss' kappa, pairwise agreement).

Annotations are three aligned integer arrays: item (0..n-1), annotator (0..m-1) and label
(0..K-1), one entry per annotation. Everything is vectorized over annotations (bincounts), never
a loop over items.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

SMOOTHING = 0.01  # added to every confusion count: an unseen (class, label) is rare, not impossible
MAX_ROUNDS = 100  # real structure settles in tens; labels without any agreement may not
TOLERANCE = 1e-7  # stop when a round raises the log-likelihood by less than this share of it


@dataclass(frozen=True)
class Annotations:
    item: np.ndarray
    annotator: np.ndarray
    label: np.ndarray
    n_items: int
    n_annotators: int
    n_classes: int

    @cached_property
    def by_item(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The annotations grouped by item (`_grouped`), sorted once for every EM round."""
        return _grouped(self.item)

    @cached_property
    def by_pair(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Grouped by (annotator, label given)."""
        return _grouped(self.annotator * self.n_classes + self.label)

    @cached_property
    def pairs_by_item(self) -> np.ndarray:
        """Each annotation's (annotator, label) code, in `by_item` order."""
        return (self.annotator * self.n_classes + self.label)[self.by_item[2]]

    @cached_property
    def items_by_pair(self) -> np.ndarray:
        """Each annotation's item, in `by_pair` order."""
        return self.item[self.by_pair[2]]

    def counts(self) -> np.ndarray:
        """(items, K) how many annotators gave each label."""
        return _per_item(self, np.ones(self.item.size))


def _per_item(a: Annotations, weights: np.ndarray) -> np.ndarray:
    flat = a.item * a.n_classes + a.label
    return np.bincount(flat, weights=weights, minlength=a.n_items * a.n_classes).reshape(
        a.n_items, a.n_classes
    )


def majority_vote(a: Annotations, prior: np.ndarray | None = None) -> np.ndarray:
    """Each item's most frequent label; ties go to the label with the larger `prior` (the
    overall label shares by default), then to the lower class index."""
    counts = a.counts()
    if prior is None:
        prior = np.bincount(a.label, minlength=a.n_classes) / max(a.label.size, 1)
    # The prior only breaks ties: it is below one vote.
    return np.argmax(counts + 0.5 * prior / max(prior.max(), 1e-12), axis=1)


@dataclass(frozen=True)
class Consensus:
    """Dawid-Skene's result: each item's class distribution, each annotator's confusion matrix
    (rows: true class, columns: label given; rows sum to 1), the class prior, and the rounds."""

    posterior: np.ndarray  # (items, K)
    confusion: np.ndarray  # (annotators, K, K)
    prior: np.ndarray  # (K,)
    rounds: int
    converged: bool

    @property
    def label(self) -> np.ndarray:
        return np.argmax(self.posterior, axis=1)

    @property
    def quality(self) -> np.ndarray:
        """The consensus label's posterior probability (1 = certain)."""
        return self.posterior.max(axis=1)

    def annotator_accuracy(self) -> np.ndarray:
        """Each annotator's estimated accuracy: the diagonal of its confusion matrix weighted by
        the class prior (the chance it gives the true label of a random item)."""
        diagonal = np.diagonal(self.confusion, axis1=1, axis2=2)
        return diagonal @ self.prior


def dawid_skene(a: Annotations) -> Consensus:
    """EM for the Dawid-Skene model, started from the (soft) majority vote. (A model's scores
    join as one more annotator: pipelines/annotators.py.)"""
    counts = a.counts()
    posterior = (counts + 1e-9) / (counts + 1e-9).sum(axis=1, keepdims=True)
    converged = False
    rounds = 0
    previous = -np.inf
    while rounds < MAX_ROUNDS and not converged:  # EM rounds, each vectorized over annotations
        rounds += 1
        confusion, prior = _m_step(a, posterior)
        posterior, likelihood = _e_step(a, confusion, prior)
        converged = likelihood - previous <= TOLERANCE * abs(likelihood)
        previous = likelihood
    confusion, prior = _m_step(a, posterior)
    return Consensus(posterior, confusion, prior, rounds, converged)


def _m_step(a: Annotations, posterior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each annotator's confusion matrix: expected counts of (true class, given label), from
    every annotation's item posterior, smoothed and row-normalized; and the class prior."""
    k = a.n_classes
    pairs, starts, _ = a.by_pair
    sums = np.add.reduceat(posterior[a.items_by_pair], starts, axis=0)  # (pairs seen, true K)
    counts = np.zeros((a.n_annotators * k, k))
    counts[pairs] = sums
    # (annotator, label, true) -> (annotator, true, label)
    confusion = counts.reshape(a.n_annotators, k, k).transpose(0, 2, 1) + SMOOTHING
    confusion /= confusion.sum(axis=2, keepdims=True)
    prior = posterior.mean(axis=0) if posterior.size else np.full(k, 1 / k)
    prior = np.clip(prior, 1e-12, None)
    return confusion, prior / prior.sum()


def _e_step(a: Annotations, confusion: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, float]:
    """Each item's class distribution given its annotations (a sum of log-likelihoods), and
    the annotations' log-likelihood under the model (EM never lowers it)."""
    k = a.n_classes
    # Rows (annotator, label given), columns the true class: one row gathered per annotation.
    table = np.log(confusion).transpose(0, 2, 1).reshape(a.n_annotators * k, k)
    items, starts, _ = a.by_item
    log_post = np.zeros((a.n_items, k))
    log_post[items] = np.add.reduceat(table[a.pairs_by_item], starts, axis=0)
    log_post += np.log(prior)[None, :]
    top = log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post - top)
    total = post.sum(axis=1, keepdims=True)
    likelihood = float((np.log(total) + top).sum())
    return post / total, likelihood


def _grouped(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct keys, where each one's run starts in the stable sort, and that sort."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = (
        np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        if keys.size
        else np.empty(0, np.int64)
    )
    return ordered[starts], starts, order


def agreement_with(a: Annotations, labels: np.ndarray) -> np.ndarray:
    """Per annotator, the share of its labels equal to `labels` (e.g. the consensus)."""
    same = (a.label == labels[a.item]).astype(np.float64)
    given = np.bincount(a.annotator, minlength=a.n_annotators)
    agreed = np.bincount(a.annotator, weights=same, minlength=a.n_annotators)
    return np.divide(agreed, given, out=np.full(a.n_annotators, np.nan), where=given > 0)


def krippendorff_alpha(a: Annotations) -> float:
    """Krippendorff's alpha for nominal data: 1 - observed / expected disagreement, from the
    coincidence matrix of the items with at least two annotations."""
    counts = a.counts()
    per_item = counts.sum(axis=1)
    pairable = per_item >= 2
    if not pairable.any():
        return float("nan")
    c = counts[pairable]
    m = per_item[pairable]
    weighted = c / (m - 1)[:, None]
    coincidence = weighted.T @ c - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    observed = n - np.trace(coincidence)
    expected = (n * n - (n_c * n_c).sum()) / (n - 1)
    if expected == 0:
        return float("nan")  # every value the same: agreement is undefined
    return float(1 - observed / expected)


def fleiss_kappa(a: Annotations) -> float | None:
    """Fleiss' kappa, defined when every item has the same number (>= 2) of annotations; None
    otherwise."""
    counts = a.counts()
    raters = counts.sum(axis=1)
    if raters.size == 0 or raters.min() != raters.max() or raters[0] < 2:
        return None
    r = raters[0]
    agreement = ((counts * counts).sum(axis=1) - r) / (r * (r - 1))
    shares = counts.sum(axis=0) / counts.sum()
    expected = float((shares * shares).sum())
    if expected == 1:
        return float("nan")
    return float((agreement.mean() - expected) / (1 - expected))


def pairwise_agreement(a: Annotations) -> float:
    """The share of agreeing pairs among all pairs of annotations of the same item."""
    counts = a.counts()
    per_item = counts.sum(axis=1)
    pairs = (per_item * (per_item - 1)).sum()
    if pairs == 0:
        return float("nan")
    return float(((counts * (counts - 1)).sum()) / pairs)
