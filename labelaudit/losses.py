"""Torch losses for imbalanced and noisy labels (torch is imported on first use).

    from labelaudit.losses import FocalLoss, AsymmetricLoss, class_balanced_weights

Each works on logits, on any device the inputs are on, and in float32, float16 or bfloat16
(computed in float32 internally, so extreme logits stay finite).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labelaudit._deps import import_optional

torch = import_optional("torch")
nn = torch.nn
F = torch.nn.functional

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Any, reduction: str) -> Any:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be one of {_REDUCTIONS}, not {reduction!r}")


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017) on logits (N, K) with integer targets (N,).

    loss_i = -alpha[y_i] * (1 - p_i)^gamma * log p_i, p_i the softmax probability of y_i.
    `weight` (K,) multiplies each sample's loss like cross-entropy's `weight`; with gamma = 0 and
    no alpha this is exactly `F.cross_entropy(logits, targets, weight=weight)` (weighted mean).
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: Sequence[float] | Any | None = None,
        weight: Any | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, not {reduction!r}")
        self.gamma = float(gamma)
        self.reduction = reduction
        self.register_buffer("alpha", None if alpha is None else torch.as_tensor(alpha))
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight))

    def forward(self, logits: Any, targets: Any) -> Any:
        log_probs = F.log_softmax(logits.float(), dim=-1)
        log_p = log_probs.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)
        p = log_p.exp()
        loss = -((1 - p).clamp(min=0) ** self.gamma) * log_p
        scale = torch.ones_like(loss)
        if self.alpha is not None:
            scale = scale * self.alpha.to(loss.device, torch.float32)[targets.long()]
        if self.weight is not None:
            scale = scale * self.weight.to(loss.device, torch.float32)[targets.long()]
        loss = loss * scale
        if self.reduction == "mean" and (self.weight is not None or self.alpha is not None):
            return loss.sum() / scale.sum()  # cross-entropy's weighted mean
        return _reduce(loss, self.reduction)


class AsymmetricLoss(nn.Module):
    """Asymmetric loss (Ridnik et al. 2021) on logits (N, K) with 0/1 targets (N, K).

    Positives: -(1 - p)^gamma_pos * log p. Negatives: -p_m^gamma_neg * log(1 - p_m) with the
    shifted probability p_m = max(p - clip, 0). With gamma_pos = gamma_neg = 0 and clip = 0 it
    equals `F.binary_cross_entropy_with_logits` with the same reduction ("mean" averages over all
    N x K elements, "none" keeps (N, K)).
    """

    def __init__(
        self,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, not {reduction!r}")
        self.gamma_pos, self.gamma_neg, self.clip = float(gamma_pos), float(gamma_neg), float(clip)
        self.reduction = reduction

    def forward(self, logits: Any, targets: Any) -> Any:
        x = logits.float()
        y = targets.float()
        p = torch.sigmoid(x)
        log_p = F.logsigmoid(x)
        if self.clip > 0:
            p_neg = (p - self.clip).clamp(min=0)
            log_not_p = torch.log1p(-p_neg.clamp(max=1 - 1e-7))
        else:
            p_neg = p
            log_not_p = F.logsigmoid(-x)
        positive = -((1 - p) ** self.gamma_pos) * log_p if self.gamma_pos else -log_p
        negative = -(p_neg**self.gamma_neg) * log_not_p if self.gamma_neg else -log_not_p
        loss = y * positive + (1 - y) * negative
        return _reduce(loss, self.reduction)


def class_balanced_weights(
    counts: Sequence[float] | Any, beta: float = 0.999, device: Any = None
) -> Any:
    """A (K,) tensor for cross-entropy's `weight`: (1 - beta) / (1 - beta^n_c), scaled so the
    weights sum to K (Cui et al. 2019). Classes with no sample get weight 0."""
    n = torch.as_tensor(counts, dtype=torch.float64)
    weights = torch.zeros_like(n)
    present = n > 0
    weights[present] = (1 - beta) / (
        1 - torch.pow(torch.tensor(beta, dtype=torch.float64), n[present])
    )
    weights = weights * (present.sum() / weights.sum())
    return weights.to(dtype=torch.float32, device=device)


class LogitAdjustedCrossEntropy(nn.Module):
    """Cross-entropy on logits + tau * log(prior) (Menon et al. 2021, the logit-adjusted loss).

    Train with this loss and predict with the plain logits: the adjustment targets balanced
    error. `class_counts` (K,) give the prior; classes with no sample get a tiny prior.
    """

    def __init__(
        self, class_counts: Sequence[float] | Any, tau: float = 1.0, reduction: str = "mean"
    ) -> None:
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float32).clamp(min=1e-12)
        self.register_buffer("log_prior", torch.log(counts / counts.sum()))
        self.tau = float(tau)
        self.reduction = reduction

    def forward(self, logits: Any, targets: Any) -> Any:
        adjusted = logits.float() + self.tau * self.log_prior.to(logits.device)
        return F.cross_entropy(adjusted, targets.long(), reduction=self.reduction)
