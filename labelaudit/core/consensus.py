"""Consensus of several annotators (and models): a Dawid-Skene model whose per-annotator
confusion matrices are shrunk toward the crowd, with a model's probabilities as each item's prior
under a learned weight; and each annotator's quality with its uncertainty.

Why this shape (docs/annotators.md has the per-family evidence):
- A full confusion matrix per annotator (Dawid-Skene) overfits annotators with a few dozen
  labels: K x K numbers from 20 labels. Each row here gets a Dirichlet prior whose mean is the
  annotator's *own accuracy* (itself shrunk toward the crowd's) spread over the crowd's pooled
  error pattern, with a strength in pseudo-labels: an annotator with few labels is a one-coin
  annotator with the crowd's confusions; one with many earns its own matrix.
- A label is never evidence against its own class (`cap`): an annotator estimated to be worse
  than chance on a class cannot turn a correct label into a vote for another class. This is what
  makes "one more correct label cannot make the consensus wrong" hold at fixed parameters.
- A model enters as each item's prior, p(class)^w, with w chosen each round to maximize the
  annotations' marginal likelihood (the data decide how much the model is worth; a useless model
  gets w near 0). The posterior then weighs it against however many labels the item has: the
  more labels, the less the model decides (a weight per 1, 2, 3+ labels, `per_count`, measured no
  better). A label alone on its item beside an informative model is counted against the model's
  view of the item, not against a posterior that already holds that label (`leave_one_out`).

Annotations are the aligned integer arrays of `annotators.Annotations`. Every round is a few
sums over the annotations (sorted once), never a loop over items or annotations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from labelaudit.core.annotators import Annotations

SMOOTHING = 0.01  # plain Dawid-Skene: added to every confusion count
MAX_ROUNDS = 100
TOLERANCE = 1e-7  # stop when a round changes the log-likelihood by less than this share of it
MAX_WEIGHT = 4.0  # the model's weight is searched in [0, MAX_WEIGHT]
INFORMATIVE = 0.5  # a model weighs at least this for its items to be a leave-one-out reference
MIN_BUCKET = 200  # items a count bucket needs for its own model weight (else the pooled one)
MIN_CHECKED = 5  # below this many labels checkable against others, quality is n/a
FLOOR = 1e-6  # model probabilities are clipped here before the log
CROWD_PSEUDO = 2.0  # pseudo-labels a confusion row of the crowd's pooled prior
CROWD_ACCURACY = 0.75  # their accuracy: the crowd is taken to be better than chance
ERROR_PSEUDO = 2.0  # uniform pseudo-errors a cell of the crowd's pooled error pattern ...
ERROR_FADE = 100.0  # ... halved once the crowd shows this many errors, and fading beyond: a
# tiny crowd's few errors are no pattern, a real crowd's rare cells must keep their own counts
CLASS_PSEUDO = 10.0  # pseudo-labels a class of the crowd's per-class accuracy, at its overall one
PRIOR_PSEUDO = 3.0  # pseudo-items a class of the class prior (Dirichlet(3): never 0)


@dataclass(frozen=True)
class Settings:
    """How the consensus is fitted. The defaults were chosen leave-one-family-out
    (benchmarks/crowd_real.py --lofo; docs/annotators.md)."""

    method: str = "pooled"  # pooled | dawid_skene | one_coin
    row_strength: float | None = None  # pseudo-labels of each confusion row toward its prior
    # mean; None: chosen by empirical Bayes each round (_row_strength)
    accuracy_strength: float = 4.0  # pseudo-labels of an annotator's accuracy toward the crowd's
    cap: bool = True  # a label is never evidence against its own class
    per_count: bool = False  # the model's weight learned per 1, 2, 3+ labels an item (measured,
    # not chosen: one weight did as well, and keeps "a correct label never hurts" exact)
    warm: bool = True  # first settle with one-coin rows (row_strength inf), then relax
    # Where confusions are counted against each label's leave-one-out posterior (everything else
    # on its item) instead of the full one: "none" (plain EM), "lone" (labels alone on their item
    # beside a model: their own label would vouch for itself), "model" (every label on an item
    # a model scored), "all".
    leave_one_out: str = "lone"
    max_rounds: int = MAX_ROUNDS
    tolerance: float = TOLERANCE


@dataclass(frozen=True)
class Fit:
    """The fitted consensus: each item's class distribution, each annotator's confusion matrix
    (rows: true class, columns: label given), the class prior, the models' weights (models x
    count buckets), and the pieces the leave-one-out quality needs."""

    posterior: np.ndarray  # (items, K)
    confusion: np.ndarray  # (annotators, K, K)
    prior: np.ndarray  # (K,)
    rounds: int
    converged: bool
    weights: np.ndarray  # (models, buckets); empty without models
    log_joint: np.ndarray  # (items, K): log prior + evidence, unnormalized
    table: np.ndarray  # (annotators * K, K): each (annotator, label)'s log evidence per class
    log_model: np.ndarray  # (items, K): the models' part of the log prior (0 without)

    @property
    def label(self) -> np.ndarray:
        return np.argmax(self.posterior, axis=1)

    @property
    def quality(self) -> np.ndarray:
        """The consensus label's posterior probability (1 = certain)."""
        return self.posterior.max(axis=1)

    def annotator_accuracy(self) -> np.ndarray:
        """Each annotator's modelled accuracy: its confusion's diagonal weighted by the prior."""
        return np.diagonal(self.confusion, axis1=1, axis2=2) @ self.prior


def fit(
    a: Annotations, models: list[np.ndarray] | None = None, settings: Settings | None = None
) -> Fit:
    """EM from the (soft) majority vote, the models' probabilities added to it. `models` are
    (items, K) probabilities, NaN rows for items a model did not score."""
    s = settings or Settings()
    k = a.n_classes
    counts = a.counts()
    logs, scored = _model_logs(models or [], a.n_items, k)
    start = counts + 1e-9
    for lg, ok in zip(logs, scored, strict=True):
        start += np.exp(lg) * ok[:, None]
    posterior = start / start.sum(axis=1, keepdims=True)
    if s.warm and s.method == "pooled" and (s.row_strength or 0) != np.inf:
        first = fit(a, models, replace(s, row_strength=np.inf, warm=False, tolerance=1e-5))
        posterior = first.posterior
    bucket = np.clip(counts.sum(axis=1).astype(np.int64), 1, 3) - 1
    weights = np.ones((len(logs), 3))
    previous, converged, rounds, others = -np.inf, False, 0, None
    has_model = np.any(scored, axis=0) if scored else np.zeros(a.n_items, bool)
    checkable = _checkable(a, has_model)
    # Items with one label and no model say nothing about the class prior beyond that label:
    # they count as their label in it (else the prior and the confusions can drift together).
    lone = (counts.sum(axis=1) < 2) & ~has_model
    votes = (counts[lone] + 1e-9) / (counts[lone] + 1e-9).sum(axis=1, keepdims=True)
    # Only checkable labels count in the confusions: a lone label with no model would vouch for
    # itself (its posterior is its label), rating every annotator perfect and every lone
    # consensus certain. Unchecked, it takes its annotator's accuracy from the others' labels.
    checked = a if checkable.all() else _subset(a, checkable)
    while rounds < s.max_rounds and not converged:
        rounds += 1
        posterior[lone] = votes
        confusion, prior = m_step(checked, posterior, s, _part(others, checkable))
        table = log_table(confusion, s.cap)
        evidence = evidence_of(a, table)
        if logs:
            weights = _fit_weights(evidence, logs, scored, prior, bucket, weights, s.per_count)
        log_model = _log_prior(logs, scored, weights, bucket, prior)
        posterior, likelihood, log_joint = _posterior(evidence + log_model)
        if s.leave_one_out != "none":
            informed = has_model & (weights.max(axis=0)[bucket] >= INFORMATIVE if logs else False)
            others = (
                _counted_against(a, posterior, log_joint, table, checkable, informed,
                                 s.leave_one_out)
                if informed.any() or s.leave_one_out == "all"
                else None
            )  # fmt: skip
        converged = abs(likelihood - previous) <= s.tolerance * abs(likelihood)
        previous = likelihood
    kept = posterior.copy()
    posterior[lone] = votes
    confusion, prior = m_step(checked, posterior, s, _part(others, checkable))
    posterior = kept
    return Fit(posterior, confusion, prior, rounds, converged, weights, log_joint, table,
               log_model)  # fmt: skip


def _subset(a: Annotations, keep: np.ndarray) -> Annotations:
    """The annotations where `keep` holds, on the same items, annotators and classes."""
    return Annotations(a.item[keep], a.annotator[keep], a.label[keep], a.n_items,
                       a.n_annotators, a.n_classes)  # fmt: skip


def _part(others: np.ndarray | None, keep: np.ndarray) -> np.ndarray | None:
    """`others` (per annotation) where `keep` holds; None stays None."""
    return others if others is None or keep.all() else others[keep]


def _model_logs(
    models: list[np.ndarray], n: int, k: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each model's log probabilities (renormalized after clipping; 0 where unscored) and the
    rows it scored."""
    logs, scored = [], []
    for probs in models:
        ok = ~np.isnan(probs).any(axis=1)
        p = np.where(ok[:, None], np.clip(np.nan_to_num(probs), FLOOR, None), 1.0)
        p = p / p.sum(axis=1, keepdims=True)
        logs.append(np.where(ok[:, None], np.log(p), 0.0))
        scored.append(ok)
    return logs, scored


def _log_prior(
    logs: list[np.ndarray],
    scored: list[np.ndarray],
    weights: np.ndarray,
    bucket: np.ndarray,
    prior: np.ndarray,
) -> np.ndarray:
    """Each item's normalized log prior: sum_m w_m log p_m + (1 - sum_m w_m)+ log(class prior),
    the class prior alone where no model scored the item."""
    n = bucket.size
    total = np.zeros((n, prior.size))
    used = np.zeros(n)
    for m, (lg, ok) in enumerate(zip(logs, scored, strict=True)):
        w = weights[m][bucket] * ok
        total += w[:, None] * lg
        used += w
    total += np.clip(1 - used, 0, None)[:, None] * np.log(prior)[None, :]
    top = total.max(axis=1, keepdims=True)
    return total - top - np.log(np.exp(total - top).sum(axis=1, keepdims=True))


def _fit_weights(
    evidence: np.ndarray,
    logs: list[np.ndarray],
    scored: list[np.ndarray],
    prior: np.ndarray,
    bucket: np.ndarray,
    weights: np.ndarray,
    per_count: bool,
) -> np.ndarray:
    """Each model's weight (per count bucket, or one for all) maximizing the annotations'
    marginal likelihood, one golden-section search per model and bucket (coordinate ascent)."""
    pooled = _fit_part(evidence, logs, scored, prior, np.ones(bucket.size, bool), weights[:, 0])
    weights = np.repeat(pooled[:, None], 3, axis=1)
    if per_count:
        for b in range(3):
            rows = bucket == b
            if rows.sum() >= MIN_BUCKET:
                weights[:, b] = _fit_part(evidence, logs, scored, prior, rows, pooled)
    return weights


def _fit_part(
    evidence: np.ndarray,
    logs: list[np.ndarray],
    scored: list[np.ndarray],
    prior: np.ndarray,
    rows: np.ndarray,
    start: np.ndarray,
) -> np.ndarray:
    """The models' weights on `rows`: coordinate ascent from `start`, a golden-section search
    per model."""
    part = (evidence[rows], [lg[rows] for lg in logs], [ok[rows] for ok in scored], prior)
    trial = start[:, None].copy()
    for m in range(len(logs)):
        trial[m, 0] = _golden(partial(_likelihood, part, trial.copy(), m), 0.0, MAX_WEIGHT)
    return trial[:, 0]


def _likelihood(part: tuple, trial: np.ndarray, m: int, w: float) -> float:
    """The marginal likelihood of `part`'s annotations with model m's weight set to w."""
    evidence, logs, scored, prior = part
    trial[m, 0] = w
    bucket = np.zeros(evidence.shape[0], np.int64)
    return _posterior(evidence + _log_prior(logs, scored, trial, bucket, prior))[1]


def _golden(f: Callable[[float], float], lo: float, hi: float, steps: int = 18) -> float:
    """The maximizer of a unimodal f on [lo, hi] (golden-section search)."""
    ratio = (np.sqrt(5) - 1) / 2
    x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f1, f2 = f(x1), f(x2)
    for _ in range(steps):
        if f1 >= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - ratio * (hi - lo)
            f1 = f(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + ratio * (hi - lo)
            f2 = f(x2)
    return float((lo + hi) / 2)


def _checkable(a: Annotations, has_model: np.ndarray) -> np.ndarray:
    """Per annotation, whether something else speaks to its item: another annotation or a model."""
    per_item = np.bincount(a.item, minlength=a.n_items)
    return (per_item[a.item] >= 2) | has_model[a.item]


def _counted_against(
    a: Annotations,
    posterior: np.ndarray,
    log_joint: np.ndarray,
    table: np.ndarray,
    checkable: np.ndarray,
    has_model: np.ndarray,
    rule: str,
) -> np.ndarray:
    """(annotations, K): what each annotation is counted against in the M step: its item's
    leave-one-out posterior where `rule` says so (and something else speaks to the item), the
    full posterior elsewhere."""
    rows = posterior[a.item]
    per_item = np.bincount(a.item, minlength=a.n_items)[a.item]
    where = {"lone": per_item == 1, "model": True, "all": True}[rule]
    chosen = (has_model[a.item] if rule != "all" else checkable) & where
    if chosen.any():
        sub = Annotations(a.item[chosen], a.annotator[chosen], a.label[chosen], a.n_items,
                          a.n_annotators, a.n_classes)  # fmt: skip
        rows[chosen] = leave_one_out(sub, log_joint, table)
    return rows


def leave_one_out(a: Annotations, log_joint: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(annotations, K): each annotation's item posterior without that annotation's own
    evidence: what everything else says its item is."""
    rows = log_joint[a.item] - table[a.annotator * a.n_classes + a.label]
    rows -= rows.max(axis=1, keepdims=True)
    np.exp(rows, out=rows)
    rows /= rows.sum(axis=1, keepdims=True)
    return rows


def expected_counts(
    a: Annotations, posterior: np.ndarray, others: np.ndarray | None = None
) -> np.ndarray:
    """(annotators, true K, given K): the expected number of each annotator's labels l on items
    of true class c, from every annotation's item posterior, or from `others` (per annotation:
    the posterior without it, `leave_one_out`) when given."""
    k = a.n_classes
    pairs, starts, order = a.by_pair
    counts = np.zeros((a.n_annotators * k, k))
    if starts.size:
        rows = posterior[a.items_by_pair] if others is None else others[order]
        counts[pairs] = np.add.reduceat(rows, starts, axis=0)
    return counts.reshape(a.n_annotators, k, k).transpose(0, 2, 1)


def m_step(
    a: Annotations, posterior: np.ndarray, s: Settings, others: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each annotator's confusion matrix, by `s.method`, and the class prior."""
    k = a.n_classes
    counts = expected_counts(a, posterior, others)
    prior = (posterior.sum(axis=0) + PRIOR_PSEUDO) / (posterior.shape[0] + PRIOR_PSEUDO * k)
    if s.method == "dawid_skene":
        confusion = counts + SMOOTHING
        return confusion / confusion.sum(axis=2, keepdims=True), prior
    mean = _prior_mean(counts, s)
    strength = _row_strength(counts, mean) if s.row_strength is None else s.row_strength
    if np.isinf(strength):
        return mean, prior
    rows = counts.sum(axis=2, keepdims=True)
    return (counts + strength * mean) / (rows + strength), prior


STRENGTHS = 2.0 ** np.arange(0, 11)  # the row strengths empirical Bayes chooses among


def _row_strength(counts: np.ndarray, mean: np.ndarray) -> float:
    """The Dirichlet strength under which the annotators' (expected) confusion counts are most
    probable (the Dirichlet-multinomial marginal likelihood, over STRENGTHS): how far the crowd
    really differs from its pooled, one-coin-per-annotator picture."""
    rows = counts.sum(axis=2)
    seen = rows > 1e-9
    n, c, mu = rows[seen], counts[seen], np.clip(mean[seen], 1e-12, None)
    best, found = -np.inf, float(STRENGTHS[-1])
    for strength in STRENGTHS:
        score = float((_lgamma(np.array(strength)) - _lgamma(n + strength)).sum()
                      + (_lgamma(c + strength * mu) - _lgamma(strength * mu)).sum())  # fmt: skip
        if score > best:
            best, found = score, float(strength)
    return found


def _lgamma(x: np.ndarray) -> np.ndarray:
    """log Gamma(x) for x > 0, vectorized (NumPy has none): shift to x + 8, then Stirling's
    series (error below 1e-10)."""
    x = np.asarray(x, dtype=np.float64)
    shift = np.zeros_like(x)
    z = x.copy()
    for _ in range(8):
        shift += np.log(z)
        z += 1
    inv = 1 / z
    series = inv / 12 - inv**3 / 360 + inv**5 / 1260
    return (z - 0.5) * np.log(z) - z + 0.5 * np.log(2 * np.pi) + series - shift


def _prior_mean(counts: np.ndarray, s: Settings) -> np.ndarray:
    """Each annotator's prior confusion: its accuracy, shrunk toward the crowd's by
    `accuracy_strength` pseudo-labels, shifting (on the logit scale) the crowd's per-class
    accuracy, and its errors spread as the crowd's are (`pooled`) or uniformly (`one_coin`)."""
    m, k, _ = counts.shape
    eye = np.eye(k, dtype=bool)
    total = counts.sum(axis=0)
    # The crowd's accuracy: its pooled counts plus CROWD_PSEUDO labels a row at CROWD_ACCURACY
    # (a crowd better than chance), which only matters when almost nothing is checkable.
    crowd = (np.trace(total) + CROWD_PSEUDO * k * CROWD_ACCURACY) / (total.sum() + CROWD_PSEUDO * k)
    crowd = min(max(float(crowd), 1e-3), 1 - 1e-3)
    # Its per-class accuracy, shrunk toward that by CLASS_PSEUDO labels a class, and its error
    # pattern, its pooled errors plus uniform pseudo-errors a cell (ERROR_PSEUDO, fading with the
    # errors the crowd shows: ERROR_FADE): pseudo-counts that outweigh a tiny crowd's few labels,
    # so that a handful of items cannot define "the crowd's confusions" that then explain those
    # same items, and leave a real crowd's rare cells alone (2 a cell cost 0.4 points there).
    base = (np.diagonal(total) + CLASS_PSEUDO * crowd) / (total.sum(axis=1) + CLASS_PSEUDO)
    off_total = float(total.sum() - np.trace(total))
    errs = np.where(eye, 0.0, total + ERROR_PSEUDO / (1.0 + off_total / ERROR_FADE))
    given = counts.sum(axis=(1, 2))
    right = np.trace(counts, axis1=1, axis2=2)
    strength = s.accuracy_strength
    own = (right + strength * crowd) / (given + strength)
    own = np.clip(own, 1e-3, 1 - 1e-3)
    shift = _logit(own) - _logit(crowd)  # (m,)
    if s.method == "one_coin":
        diagonal = np.repeat(own[:, None], k, axis=1)
        errors = np.where(eye, 0.0, 1.0 / (k - 1))[None, :, :].repeat(m, 0)
    else:
        base = np.clip(base, 1e-3, 1 - 1e-3)
        diagonal = 1 / (1 + np.exp(-(_logit(base)[None, :] + shift[:, None])))  # (m, K)
        errors = (errs / errs.sum(axis=1, keepdims=True))[None, :, :].repeat(m, 0)
    mean = errors * (1 - diagonal)[:, :, None]
    mean[:, eye] = diagonal
    return mean


def _logit(p: np.ndarray | float) -> np.ndarray:
    return np.log(p) - np.log1p(-np.asarray(p))


def log_table(confusion: np.ndarray, cap: bool) -> np.ndarray:
    """Rows (annotator, label given), columns the true class: log P(label | class). With `cap`,
    no class is more likely than the label's own class to have produced it."""
    m, k, _ = confusion.shape
    table = np.log(np.clip(confusion, 1e-300, None)).transpose(0, 2, 1)  # (m, given, true)
    if cap:
        own = np.diagonal(table, axis1=1, axis2=2)[:, :, None]  # log P(l | l)
        table = np.minimum(table, own)
    return table.reshape(m * k, k)


def evidence_of(a: Annotations, table: np.ndarray) -> np.ndarray:
    """(items, K): the sum of each item's annotations' log evidence per class."""
    items, starts, _ = a.by_item
    evidence = np.zeros((a.n_items, a.n_classes))
    if starts.size:
        evidence[items] = np.add.reduceat(table[a.pairs_by_item], starts, axis=0)
    return evidence


def _posterior(log_joint: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Normalized posterior, the log marginal likelihood, and the unnormalized log joint."""
    top = log_joint.max(axis=1, keepdims=True)
    post = np.exp(log_joint - top)
    total = post.sum(axis=1, keepdims=True)
    return post / total, float((np.log(total) + top).sum()), log_joint


@dataclass(frozen=True)
class Quality:
    """Each annotator's quality: the expected share of its labels that are right, the mean over
    its labels of the consensus probability of the label it gave (the Bayes estimate of its
    realized accuracy: its own label counts as the fitted model says it should); a 95% Wilson
    interval on the labels it rests on; and that count."""

    quality: np.ndarray  # (annotators,)
    low: np.ndarray
    high: np.ndarray
    checked: np.ndarray  # labels on items with other evidence (another label or a model)
    known: np.ndarray  # checked >= MIN_CHECKED


def annotator_quality(a: Annotations, f: Fit, has_model: np.ndarray | None = None) -> Quality:
    """See `Quality`. Only labels on items with other evidence (another annotator, or a model:
    `has_model`, by default where the fit's model prior is not flat) are checkable; with fewer
    than MIN_CHECKED the quality is n/a (`known` false)."""
    if has_model is None:
        has_model = np.ptp(f.log_model, axis=1) > 0 if f.weights.size else np.zeros(a.n_items, bool)
    per_item = np.bincount(a.item, minlength=a.n_items)
    checkable = ((per_item[a.item] >= 2) | has_model[a.item]).astype(np.float64)
    m = a.n_annotators
    checked = np.bincount(a.annotator, checkable, m)
    right = np.bincount(a.annotator, f.posterior[a.item, a.label] * checkable, m)
    quality = np.divide(right, checked, out=np.full(m, np.nan), where=checked > 0)
    low, high = wilson(quality, checked)
    return Quality(quality, low, high, checked, checked >= MIN_CHECKED)


def wilson(rate: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of a rate observed on n trials (NaN where n is 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
