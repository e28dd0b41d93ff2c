"""Remedies for imbalance and noise: class and sample weights, and a loss recommendation.

Weights from class counts n_c (multi-class: samples per class; multi-label: positives per
class). inverse_frequency, inverse_sqrt and effective_number are normalized so that the mean
weight per sample is 1 (sum over classes of n_c * w_c = N); repeat_factor is a repeat count per
sample (>= 1, not normalized), as in LVIS. Classes with no sample get no weight (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

WEIGHTING_METHODS = ("inverse_frequency", "inverse_sqrt", "effective_number", "repeat_factor")

_BLOCK_ROWS = 65_536  # rows of an (N, K) label matrix weighed at a time


@dataclass(frozen=True)
class ClassWeights:
    """One weighting of the classes; NaN for classes without samples."""

    method: str
    params: dict[str, float]
    weights: np.ndarray


def default_beta(counts: np.ndarray) -> float:
    """beta = 1 - 1/n_max: the largest class's effective number is about 63% of its count,
    while a class of a few samples keeps nearly all of its count (Cui et al. 2019)."""
    n_max = float(counts.max()) if counts.size and counts.max() > 0 else 1.0
    return 1.0 - 1.0 / n_max if n_max > 1 else 0.0


def default_repeat_threshold(n_classes: int) -> float:
    """t = 1 / (2K): a class is repeated when its frequency is under half the uniform share."""
    return 1.0 / (2 * max(n_classes, 1))


def class_weights(
    counts: np.ndarray,
    method: str,
    n_samples: int,
    beta: float | None = None,
    t: float | None = None,
    max_weight: float | None = None,
) -> ClassWeights:
    """Weights per class by `method` (one of WEIGHTING_METHODS)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    raw = np.full(counts.size, np.nan)
    params: dict[str, float] = {}
    if method == "inverse_frequency":
        raw[present] = 1.0 / counts[present]
    elif method == "inverse_sqrt":
        raw[present] = 1.0 / np.sqrt(counts[present])
    elif method == "effective_number":
        beta = default_beta(counts) if beta is None else beta
        params["beta"] = beta
        raw[present] = (1.0 - beta) / (1.0 - beta ** counts[present]) if beta > 0 else 1.0
    elif method == "repeat_factor":
        t = default_repeat_threshold(counts.size) if t is None else t
        params["t"] = t
        frequency = counts[present] / max(n_samples, 1)
        raw[present] = np.maximum(1.0, np.sqrt(t / frequency))
    else:
        raise ValueError(f"unknown weighting {method!r}; expected one of {WEIGHTING_METHODS}")
    if method != "repeat_factor" and present.any():
        raw[present] *= counts[present].sum() / (counts[present] * raw[present]).sum()
    if max_weight is not None:
        params["max_weight"] = max_weight
        raw[present] = np.minimum(raw[present], max_weight)
    return ClassWeights(method, params, raw)


def sample_weights(
    weights: ClassWeights, labels: np.ndarray | None, indicators: np.ndarray | None
) -> np.ndarray:
    """Per-sample weight: the weight of the sample's class; multi-label: the largest weight
    over its labels (as LVIS repeat factors), 1.0 for a sample with no label."""
    w = np.nan_to_num(weights.weights, nan=0.0)
    if labels is not None:
        return w[labels]
    out = np.ones(indicators.shape[0])
    if indicators.size == 0:
        return out
    for start in range(0, indicators.shape[0], _BLOCK_ROWS):  # a block at a time, not N x K
        block = indicators[start : start + _BLOCK_ROWS].astype(bool)
        best = (block * w[None, :]).max(axis=1)
        out[start : start + _BLOCK_ROWS] = np.where(block.any(axis=1), best, 1.0)
    return out


def pos_weights(positives: np.ndarray, n_samples: int) -> np.ndarray:
    """BCE pos_weight per class: negatives / positives (NaN for a class with no positive)."""
    positives = np.asarray(positives, dtype=np.float64)
    out = np.full(positives.size, np.nan)
    has = positives > 0
    out[has] = (n_samples - positives[has]) / positives[has]
    return out


def recommended_weighting(imbalance_ratio: float | None, multi_label: bool) -> str:
    """The weighting `--weights-out` uses by default (docs/remedies.md, decision table)."""
    if multi_label:
        return "repeat_factor"
    if imbalance_ratio is None or imbalance_ratio <= 3:
        return "inverse_sqrt"
    if imbalance_ratio <= 100:
        return "effective_number"
    return "repeat_factor"


@dataclass(frozen=True)
class LossChoice:
    """A loss with its settings, why, what came second, and what can go wrong."""

    name: str
    params: dict[str, float]
    reasons: list[str]
    runner_up: dict[str, object]
    risks: list[str] = field(default_factory=list)


HIGH_NOISE = 0.10
MILD_IMBALANCE = 3.0
STRONG_IMBALANCE = 10.0
NEGATIVES_DOMINATE = 30.0
NEGATIVES_MATTER = 3.0


def _balanced_reason(ratio: float, effective: float, n_classes: int, present: int) -> str:
    """Why plain cross-entropy: the balance of the classes that have samples."""
    if present <= 1:
        if n_classes <= 1:
            return "There is one class: there is no balance to correct."
        return (
            f"Only {present:,} of the {n_classes:,} classes has samples: there is no balance to "
            "correct, and no loss teaches a classifier the other classes from these labels."
        )
    among = f"{present:,} with samples" if present < n_classes else f"{n_classes:,}"
    return (
        f"Classes are nearly balanced (imbalance ratio {ratio:.1f}, effective classes "
        f"{effective:,.1f} of {among}): plain cross-entropy needs no correction."
    )


def recommend_loss(
    *,
    multi_label: bool,
    imbalance_ratio: float | None,
    effective_classes: float,
    n_classes: int,
    rare_classes: int,
    noise_rate: float | None,
    label_density: float | None = None,
    zero_support_classes: int = 0,
) -> LossChoice:
    """Choose a loss from measured figures by the decision table of docs/remedies.md."""
    ratio = imbalance_ratio or 1.0
    present = n_classes - zero_support_classes
    noisy = noise_rate is not None and noise_rate > HIGH_NOISE
    risks = ["After any remedy, re-tune the decision thresholds on held-out data "
             "(`labelaudit thresholds`)."]  # fmt: skip
    if noisy:
        risks.insert(
            0,
            f"The estimated noise rate is {noise_rate:.1%}: re-weighting amplifies mislabeled "
            "rare samples, so fix the suspected labels first.",
        )
    if multi_label:
        return _multilabel_loss(label_density or 0.0, risks)
    if zero_support_classes:
        empty = zero_support_classes
        risks.insert(
            0,
            f"{empty:,} of the {n_classes:,} classes {'has' if empty == 1 else 'have'} no sample: "
            f"no loss learns {'it' if empty == 1 else 'them'} from these labels. Collect samples, "
            "or leave them out of --classes.",
        )
    if noisy:
        return LossChoice(
            "cross_entropy_label_smoothing",
            {"epsilon": 0.1},
            [
                f"About {noise_rate:.0%} of labels look wrong: label smoothing (epsilon 0.1) keeps "
                "the model from fitting them with full confidence (Szegedy et al. 2016; Mueller et "
                "al. 2019)."
            ],
            {"name": "logit_adjusted_cross_entropy", "params": {"tau": 1.0}}
            if ratio > STRONG_IMBALANCE
            else {"name": "cross_entropy", "params": {}},
            risks,
        )
    if ratio <= MILD_IMBALANCE:
        return LossChoice(
            "cross_entropy",
            {},
            [_balanced_reason(ratio, effective_classes, n_classes, present)],
            {"name": "cross_entropy_label_smoothing", "params": {"epsilon": 0.1}},
            risks,
        )  # fmt: skip
    if ratio <= STRONG_IMBALANCE:
        beta = 0.999
        return LossChoice(
            "class_balanced_cross_entropy",
            {"beta": beta},
            [f"Moderate imbalance (ratio {ratio:.1f}): class-balanced weights by effective number "
             f"(beta {beta}) lift the smaller classes without the extreme weights of inverse "
             "frequency (Cui et al. 2019)."],
            {"name": "logit_adjusted_cross_entropy", "params": {"tau": 1.0}},
            risks,
        )  # fmt: skip
    return LossChoice(
        "logit_adjusted_cross_entropy",
        {"tau": 1.0},
        [f"Strong imbalance (ratio {ratio:.1f}, {rare_classes} rare classes): logit adjustment "
         "adds tau * log(prior) to the logits in training, which targets balanced error without "
         "per-sample weights that blow up on rare classes (Menon et al. 2021)."],
        {"name": "focal_loss", "params": {"gamma": 2.0, "alpha": "class_balanced"}},
        [*risks, "Focal loss (the runner-up) raises recall on rare classes and can lower "
         "precision; compare both on held-out data."],
    )  # fmt: skip


def _multilabel_loss(density: float, risks: list[str]) -> LossChoice:
    negatives_per_positive = (1 - density) / density if density > 0 else float("inf")
    shown = f"{negatives_per_positive:.0f}:1" if np.isfinite(negatives_per_positive) else "all"
    if negatives_per_positive <= NEGATIVES_MATTER:
        return LossChoice(
            "binary_cross_entropy",
            {},
            [f"Negatives outnumber positives only {shown}: plain BCE is well balanced."],
            {"name": "bce_with_pos_weight", "params": {"pos_weight": "negatives / positives"}},
            risks,
        )
    if negatives_per_positive <= NEGATIVES_DOMINATE:
        return LossChoice(
            "bce_with_pos_weight",
            {"pos_weight": "negatives / positives per class"},
            [f"Negatives outnumber positives {shown}: per-class pos_weight restores the balance "
             "of each binary problem."],
            {"name": "asymmetric_loss", "params": {"gamma_pos": 0.0, "gamma_neg": 4.0,
                                                   "clip": 0.05}},
            risks,
        )  # fmt: skip
    return LossChoice(
        "asymmetric_loss",
        {"gamma_pos": 0.0, "gamma_neg": 2.0, "clip": 0.05},
        [f"Negatives outnumber positives {shown}: the asymmetric loss down-weights easy "
         "negatives (Ridnik et al. 2021); gamma_neg 2 rather than the paper's 4, because "
         "negatives dominate many times over."],
        {"name": "bce_with_pos_weight", "params": {"pos_weight": "negatives / positives"}},
        [*risks, "Asymmetric and focal losses raise recall and can collapse precision when "
         "negatives dominate the loss many times over: if precision falls, prefer BCE with "
         "pos_weight plus tuned thresholds, or a milder gamma_neg."],
    )  # fmt: skip
