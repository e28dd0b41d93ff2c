"""Cross-validated probes: K models, each trained on K-1 stratified folds, predict the Kth.

Every row's probabilities come from a probe that never saw the row. Each probe standardizes the
features with its own training rows, holds out a stratified tenth of them for early stopping, and
keeps the weights of its best epoch on that inner split. Seeded: the same input gives the same
output on the CPU.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labelaudit._deps import import_optional
from labelaudit.core.thresholds import split_folds
from labelaudit.scoring.threads import torch_threads

torch = import_optional("torch")

INNER_FOLDS = 10  # one inner fold of ten stops the training: a stratified tenth of the rows
MIN_GAIN, MIN_GAIN_SHARE = 1e-4, 1e-3  # an epoch improves when the inner loss drops by more


@dataclass(frozen=True)
class ProbeSettings:
    """How each probe is trained. batch_size None: auto (about 20 steps an epoch, 32 to 1024 rows);
    0: full-batch."""

    kind: str = "linear"
    hidden: int = 256
    max_epochs: int = 100
    batch_size: int | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 5
    seed: int = 0


@dataclass
class CrossValResult:
    """Out-of-fold probabilities (rows x classes), each row's fold, and how training went."""

    probabilities: np.ndarray
    fold: np.ndarray
    epochs: list[int] = field(default_factory=list)

    def accuracy(self, labels: np.ndarray) -> float:
        return float((self.probabilities.argmax(axis=1) == labels).mean())

    def log_loss(self, labels: np.ndarray) -> float:
        picked = self.probabilities[np.arange(labels.size), labels].astype(np.float64)
        return float(-np.log(np.clip(picked, 1e-15, 1.0)).mean())


def cross_val_predict(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    folds: int,
    settings: ProbeSettings,
    device: Any,
    on_fold: Callable[[int, int], None] | None = None,
) -> CrossValResult:
    """Out-of-fold probabilities of `folds` probes; labels are class indices 0..n_classes-1."""
    fold = split_folds(labels, folds, settings.seed)
    inputs = torch.from_numpy(np.require(features, np.float32, ["C", "W"])).to(device)
    targets = torch.from_numpy(labels.astype(np.int64)).to(device)
    probabilities = np.zeros((labels.size, n_classes), dtype=np.float32)
    result = CrossValResult(probabilities, fold)
    fit_rows = labels.size * (folds - 1) // folds * (INNER_FOLDS - 1) // INNER_FOLDS
    with torch_threads(step_work(fit_rows, inputs.shape[1], n_classes, settings)):
        for f in range(folds):
            train_rows = np.flatnonzero(fold != f)
            test_rows = np.flatnonzero(fold == f)
            probe, epochs = fit_probe(inputs, targets, train_rows, n_classes, settings, f)
            probabilities[test_rows] = predict(probe, inputs, test_rows)
            result.epochs.append(epochs)
            if on_fold is not None:
                on_fold(f, epochs)
    return result


def step_work(fit_rows: int, width: int, n_classes: int, settings: ProbeSettings) -> int:
    """Multiply-adds of one forward pass over a mini-batch: what torch's threads would share
    (scoring.threads picks their number from it)."""
    weights = width * n_classes
    if settings.kind != "linear":
        weights = width * settings.hidden + settings.hidden * n_classes
    return _batch_size(settings.batch_size, fit_rows) * weights


class Probe(torch.nn.Module):
    """Standardize with the training rows' mean and spread, then a linear layer or a small MLP."""

    def __init__(self, mean: Any, scale: Any, n_classes: int, kind: str, hidden: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)
        width = mean.shape[0]
        if kind == "linear":
            self.net = torch.nn.Linear(width, n_classes)
        else:
            self.net = torch.nn.Sequential(
                torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_classes)
            )

    def forward(self, x: Any) -> Any:
        return self.net((x - self.mean) / self.scale)


def fit_probe(
    inputs: Any,
    targets: Any,
    train_rows: np.ndarray,
    n_classes: int,
    settings: ProbeSettings,
    fold: int,
) -> tuple[Probe, int]:
    """Train one probe on `train_rows` only; returns it at its best inner-split epoch."""
    seed = settings.seed * 1000 + fold
    inner = split_folds(targets.cpu().numpy()[train_rows], INNER_FOLDS, seed) == 0
    fit_rows = _rows(train_rows[~inner], inputs.device)
    stop_rows = _rows(train_rows[inner], inputs.device)
    x_fit = inputs[fit_rows]
    y_fit = targets[fit_rows]
    x_stop, y_stop = inputs[stop_rows], targets[stop_rows]
    mean = x_fit.mean(dim=0)
    scale = x_fit.std(dim=0).clamp_min(1e-6) if len(fit_rows) > 1 else torch.ones_like(mean)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = Probe(mean, scale, n_classes, settings.kind, settings.hidden).to(inputs.device)
    optimizer = torch.optim.AdamW(
        probe.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    shuffler = torch.Generator().manual_seed(seed)
    size = _batch_size(settings.batch_size, len(fit_rows))
    best_loss, best_state, best_epoch, epoch = np.inf, None, 0, 0
    for epoch in range(1, settings.max_epochs + 1):
        probe.train()
        order = torch.randperm(len(fit_rows), generator=shuffler).to(inputs.device)
        for start in range(0, len(fit_rows), size):
            chosen = order[start : start + size]
            loss = torch.nn.functional.cross_entropy(probe(x_fit[chosen]), y_fit[chosen])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        stop_loss = _loss(probe, x_stop, y_stop) if len(stop_rows) else -epoch
        if best_state is None or stop_loss < best_loss - max(MIN_GAIN, MIN_GAIN_SHARE * best_loss):
            best_loss, best_state, best_epoch = stop_loss, copy.deepcopy(probe.state_dict()), epoch
        elif epoch - best_epoch >= settings.patience:
            break
    if best_state is not None:
        probe.load_state_dict(best_state)
    probe.eval()
    return probe, best_epoch


def predict(probe: Probe, inputs: Any, rows: np.ndarray, batch: int = 65536) -> np.ndarray:
    """Softmax probabilities of `probe` for `rows`, as float32 on the CPU."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(rows), batch):
            chosen = _rows(rows[start : start + batch], inputs.device)
            out.append(torch.softmax(probe(inputs[chosen]).float(), dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def _batch_size(asked: int | None, rows: int) -> int:
    if asked is None:
        return int(min(1024, max(32, rows // 20)))
    return asked if asked > 0 else max(rows, 1)


def _loss(probe: Probe, x: Any, y: Any) -> float:
    probe.eval()
    with torch.inference_mode():
        return float(torch.nn.functional.cross_entropy(probe(x), y))


def _rows(rows: np.ndarray, device: Any) -> Any:
    return torch.from_numpy(rows.astype(np.int64)).to(device)
