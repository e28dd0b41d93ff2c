"""Several models' scores for the same samples: per-model weights, the combined probabilities,
and per sample how many models disagree with the given label.

Pure numpy and chunk by chunk. The models' (N, K) probabilities are read as aligned chunks (the
same rows of every model at once). One pass (pass 0) accumulates the sums behind the weights
and the per-sample disagreement counts; detection then runs its usual two passes on the weighted
mean of the models' probabilities, combined chunk by chunk (`combined_chunks`).

Weights: a model's weight is inversely proportional to its estimated error rate, measured on the
consensus rows: the rows whose given label is the most probable class of the equal-weight mean.
There the label is almost always right, so a model that disagrees with it is almost always
making a mistake of its own. Accuracy on all the given labels (cleanlab's weights,
`accuracy_weights`) mostly measures the label noise, which is the same for every model, so it
hardly tells models apart.

Chosen leave-one-family-out (issue 26, benchmarks/ensembles.py: CIFAR-10N with 2 to 5 models,
real crowd labels, models trained on the noisy labels, simulated pairs): against the plain mean,
these weights raise the average precision of the combination's self-confidence and the F1 of its
flagged set on every family but one, where they are level within its noise; accuracy weights,
agreement with the other models, the error rate on the other models' consensus and the
geometric mean of the probabilities do not beat them. Self-confidence of the accuracy-weighted
mean is cleanlab's default ensemble score exactly (the mean is linear), so `accuracy_weights`
reproduces that score.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from labelaudit.core import CHUNK_ROWS
from labelaudit.core.evidence import SampleEvidence
from labelaudit.core.noise import Detection, finish_detection, run_in_parallel

ModelChunks = Callable[[np.ndarray | None], Iterable[tuple[Sequence[np.ndarray], np.ndarray]]]


def combine_probabilities(
    blocks: Sequence[np.ndarray], weights: np.ndarray | Sequence[float] | None = None
) -> np.ndarray:
    """The weighted mean of M aligned (m, K) probability blocks (equal weights when None).

    Weights are normalized to sum to 1, so rows of the result sum to 1 when the inputs' do. The
    result has the first block's floating dtype (float32 stays float32).
    """
    if not blocks:
        raise ValueError("no probability blocks to combine")
    w = _normalized(weights, len(blocks))
    first = blocks[0]
    dtype = first.dtype if np.issubdtype(first.dtype, np.floating) else np.float64
    out = np.multiply(first, w[0], dtype=dtype)
    for weight, block in zip(w[1:], blocks[1:], strict=True):
        if block.shape != first.shape:
            raise ValueError(f"models' blocks differ in shape: {first.shape} and {block.shape}")
        out += np.multiply(block, weight, dtype=dtype)
    return out


def _normalized(weights: np.ndarray | Sequence[float] | None, n_models: int) -> np.ndarray:
    if weights is None:
        return np.full(n_models, 1.0 / n_models)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_models,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"expected {n_models} non-negative weights, not all zero; got {w}")
    return w / w.sum()


def _disagrees(block: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows whose most probable class is not the given label (ties go to the given label)."""
    return block[np.arange(labels.size), labels] < block.max(axis=1)


@dataclass
class ModelAgreement:
    """Pass 0 over aligned chunks: per-model sums for the weights, per-sample disagreement.

    Per model: its disagreements with the given label on the consensus rows (`weights`, the
    default) and on all rows (`accuracies`, `accuracy_weights`); per sample: how many models
    disagree (`models_disagreeing`). A model disagrees when its most probable class beats the
    given label (a tie goes to the label, as everywhere)."""

    n_samples: int
    n_models: int
    consensus_rows: int = 0
    rows_seen: int = 0
    consensus_mistakes: np.ndarray = field(init=False)
    disagreements: np.ndarray = field(init=False)
    models_disagreeing: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.consensus_mistakes = np.zeros(self.n_models, dtype=np.int64)
        self.disagreements = np.zeros(self.n_models, dtype=np.int64)
        self.models_disagreeing = np.zeros(self.n_samples, dtype=np.int16)

    def update(
        self,
        blocks: Sequence[np.ndarray],
        labels: np.ndarray,
        rows: np.ndarray | slice,
        disagreements: Sequence[np.ndarray] | None = None,
    ) -> None:
        """Record one aligned chunk: `blocks[m]` holds model m's probabilities for `rows`;
        `disagreements[m]`, when the caller has them, whether model m's most probable class
        beats the given label (saves a pass over each block)."""
        if len(blocks) != self.n_models:
            raise ValueError(f"expected {self.n_models} models' blocks, got {len(blocks)}")
        consensus = ~_disagrees(combine_probabilities(blocks), labels)
        disagreeing = np.zeros(labels.size, dtype=np.int16)
        mistakes = np.zeros(self.n_models, dtype=np.int64)
        wrong = np.zeros(self.n_models, dtype=np.int64)
        for m, block in enumerate(blocks):  # M models: a loop over models, not rows
            disagrees = _disagrees(block, labels) if disagreements is None else disagreements[m]
            disagreeing += disagrees
            mistakes[m] = int((disagrees & consensus).sum())
            wrong[m] = int(disagrees.sum())
        self.models_disagreeing[rows] = disagreeing
        with self._lock:  # chunks may be added from several threads; rows never overlap
            self.consensus_rows += int(consensus.sum())
            self.rows_seen += int(labels.size)
            self.consensus_mistakes += mistakes
            self.disagreements += wrong

    def error_rates(self) -> np.ndarray:
        """Each model's estimated error rate: the share of consensus rows where its most probable
        class is not the given label, smoothed by half a mistake (never exactly zero)."""
        return (self.consensus_mistakes + 0.5) / (self.consensus_rows + 1.0)

    def weights(self) -> np.ndarray:
        """Per-model weights (the default), inversely proportional to the estimated error rates;
        sum to 1."""
        inverse = 1.0 / self.error_rates()
        return inverse / inverse.sum()

    def accuracies(self) -> np.ndarray:
        """Each model's accuracy on the given labels: the share of rows where it does not
        disagree with the label (0 before any row is seen)."""
        return (self.rows_seen - self.disagreements) / max(self.rows_seen, 1)

    def accuracy_weights(self) -> np.ndarray:
        """cleanlab's ensemble weights: the accuracies normalized to sum to 1 (equal weights
        when every accuracy is 0). Self-confidence of the mean with these weights is cleanlab's
        default ensemble score (`get_label_quality_ensemble_scores`); cleanlab's argmax sends a
        tie to the lower class, here it goes to the label."""
        accuracy = self.accuracies()
        if accuracy.sum() <= 0:
            return np.full(self.n_models, 1.0 / self.n_models)
        return accuracy / accuracy.sum()


def combined_chunks(
    model_chunks: ModelChunks, weights: np.ndarray | Sequence[float] | None
) -> Callable[[np.ndarray | None], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """Detection's `chunks` callable over the weighted mean of the models' aligned chunks."""

    def chunks(needed: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for blocks, rows in model_chunks(needed):
            yield combine_probabilities(blocks, weights), rows

    return chunks


def in_memory_model_chunks(
    probabilities: Sequence[np.ndarray], chunk_rows: int = CHUNK_ROWS
) -> ModelChunks:
    """Aligned chunks (views) of several in-memory (N, K) matrices, one per model."""
    n = probabilities[0].shape[0]
    if any(p.shape != probabilities[0].shape for p in probabilities):
        raise ValueError("the models' probability matrices differ in shape")

    def chunks(needed: np.ndarray | None = None) -> Iterator[tuple[list[np.ndarray], np.ndarray]]:
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            if needed is not None and not needed[start:stop].any():
                continue
            yield [p[start:stop] for p in probabilities], np.arange(start, stop)

    return chunks


@dataclass(frozen=True)
class EnsembleDetection:
    """Detection on the combined probabilities, with the weights and per-sample agreement."""

    detection: Detection
    weights: np.ndarray
    error_rates: np.ndarray
    models_disagreeing: np.ndarray


def detect_ensemble(
    model_chunks: ModelChunks,
    labels: np.ndarray,
    n_models: int,
    n_classes: int,
    quality_score: str = "self_confidence",
    rule: str = "weighted_count",
    weights: np.ndarray | Sequence[float] | None = None,
) -> EnsembleDetection:
    """Pass 0 (agreement and weights, unless `weights` are given), then detection's two passes on
    the weighted mean of the models' probabilities."""
    agreement = ModelAgreement(labels.size, n_models)
    run_in_parallel(
        model_chunks(None), lambda blocks, rows: agreement.update(blocks, labels[rows], rows)
    )
    used = agreement.weights() if weights is None else _normalized(weights, n_models)
    chunks = combined_chunks(model_chunks, used)
    evidence = SampleEvidence(
        labels.size, n_classes, with_entropy=quality_score == "confidence_weighted_entropy"
    )
    run_in_parallel(
        chunks(None),
        lambda block, rows: evidence.update(block, labels[rows], rows),
        combine=evidence.add,
    )
    detection = finish_detection(evidence, chunks, labels, quality_score, rule)
    return EnsembleDetection(
        detection=detection,
        weights=used,
        error_rates=agreement.error_rates(),
        models_disagreeing=agreement.models_disagreeing,
    )
