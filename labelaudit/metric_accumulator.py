"""Dataset metrics inside a training loop: sums per batch, the same figures as `scan`.

Batch metrics cannot be averaged into dataset metrics (a mean of per-batch F1 is not the F1), so
`MetricAccumulator` keeps the sums `scan` keeps (confusion matrix, log loss, calibration bins,
top-k hits) and builds the report's metrics section from them. Torch tensors stay on their
device: only a few numbers per row are copied to the CPU. Multi-label average precision needs
every score, so a multi-label accumulator keeps its (N, K) probabilities on the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from labelaudit._deps import import_optional
from labelaudit._text import count
from labelaudit.core.metrics_multilabel import DEFAULT_THRESHOLD, multilabel_metrics
from labelaudit.core.scores import (
    CLIP_SLACK,
    DISTRIBUTION_TOLERANCE,
    EXACT_SUM,
    RANGE_SLACK,
    TOP_K,
    MulticlassScoreSums,
    renormalize_rows,
    sigmoid,
    softmax,
)
from labelaudit.core.thresholds import OFF
from labelaudit.errors import InputError
from labelaudit.pipelines.metrics_sections import (
    multiclass_metrics_section,
    multilabel_metrics_section,
)
from labelaudit.report.schema import MulticlassMetricsSection, MultilabelMetricsSection

SCORE_KINDS = ("probs", "logits")
# Scalars written by log_to_tensorboard, per task: (tag, attribute path in the section).
_SCALARS = {
    False: [
        ("accuracy", "accuracy"),
        ("balanced_accuracy", "balanced_accuracy"),
        ("macro_f1", "macro.f1"),
        ("weighted_f1", "weighted.f1"),
        ("log_loss", "log_loss"),
        ("expected_calibration_error", "expected_calibration_error"),
        ("top_5_accuracy", "top_5_accuracy"),
    ],
    True: [
        ("mAP", "mean_average_precision"),
        ("CP", "cp"),
        ("CR", "cr"),
        ("CF1", "cf1"),
        ("OP", "op"),
        ("OR", "or_"),
        ("OF1", "of1"),
        ("subset_accuracy", "subset_accuracy"),
        ("hamming_loss", "hamming_loss"),
    ],
}


class MetricAccumulator:
    """Metrics over a whole dataset, fed one batch at a time; equal to `scan`'s.

    `classes`: the class names (or their number K, named "0".."K-1"); `multi_label`: labels are
    sets of classes; `scores`: "probs" (checked as `scan --scores probs` checks them: clipped
    into [0, 1] and renormalized) or "logits" (softmax; sigmoid for multi-label); `threshold`
    (multi-label) or `thresholds` (one per class, both tasks) decide predictions as in `scan`.
    """

    def __init__(
        self,
        classes: Sequence[str] | int,
        *,
        multi_label: bool = False,
        scores: str = "probs",
        threshold: float = DEFAULT_THRESHOLD,
        thresholds: Any = None,
    ) -> None:
        if isinstance(classes, bool) or not isinstance(classes, int | np.integer | Sequence):
            raise InputError(f"classes={classes!r}: give the class names (a list) or their number.")
        if isinstance(classes, str):
            raise InputError(f"classes={classes!r} is one string: give the class names as a list.")
        if isinstance(classes, int | np.integer):
            if classes < 1:
                raise InputError(f"classes={classes}: give at least one class.")
            classes = [str(i) for i in range(int(classes))]
        names = [str(c) for c in classes]
        if not names:
            raise InputError("classes is empty: give the class names (or their number).")
        if len(set(names)) != len(names):
            raise InputError("classes holds the same name twice: each class once.")
        if scores not in SCORE_KINDS:
            raise InputError(f"scores={scores!r}: use one of {', '.join(SCORE_KINDS)}.")
        if not isinstance(threshold, int | float | np.number) or not 0.0 <= threshold <= 1.0:
            raise InputError(f"threshold={threshold!r}: a probability in [0, 1].")
        self.classes = names
        self.multi_label = multi_label
        self.scores = scores
        self.threshold = float(threshold)
        self.thresholds = _thresholds(thresholds, names, multi_label)
        self._index = {name: i for i, name in enumerate(names)}
        self.reset()

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def reset(self) -> None:
        """Forget every batch (start of an epoch)."""
        self._sums = MulticlassScoreSums(self.n_classes, thresholds=self.thresholds)
        self._probabilities: list[np.ndarray] = []
        self._truth: list[np.ndarray] = []
        self._reduced = False

    @property
    def n_seen(self) -> int:
        """Rows added so far (on this process, or on all after `all_reduce`)."""
        if self.multi_label:
            return sum(t.shape[0] for t in self._truth)
        return self._sums.rows

    def update(self, labels: Any, scores: Any) -> None:
        """Add one batch: `labels` as class indices or names (multi-label: an (N, K) 0/1 matrix
        or lists of names), `scores` an (N, K) NumPy array or torch tensor of probabilities or
        logits (as set by `scores=`). Nothing of the batch is kept but sums (multi-label: its
        probabilities)."""
        self._check_open("update")
        if _is_tensor(scores):
            scores = scores.detach()
        n = _rows_of(scores, self.n_classes)
        if n == 0:
            _check_length(len(labels) if hasattr(labels, "__len__") else -1, 0)
            return  # an empty batch adds nothing
        if self.multi_label:
            truth = self._label_sets(labels, n)
            self._probabilities.append(self._multilabel_probabilities(scores))
            self._truth.append(truth)
            return
        if _is_tensor(scores) and self.thresholds is None:
            torch = import_optional("torch")
            index = self._class_indices(labels, n, device=scores.device)
            self._sums.update_rows(*_tensor_row_figures(torch, scores, index, self.scores))
            return
        index = self._class_indices(labels, n)
        self._sums.update(_probabilities(_to_numpy(scores), self.scores), index)

    def merge(self, other: MetricAccumulator) -> None:
        """Add another accumulator's batches (same classes and settings) into this one."""
        self._check_open("merge")
        if not isinstance(other, MetricAccumulator):
            raise InputError(
                f"merge() takes another MetricAccumulator, not {type(other).__name__}."
            )
        if other is self:
            raise InputError("merge() of an accumulator with itself would count its rows twice.")
        if (other.classes, other.multi_label, other.scores) != (
            self.classes,
            self.multi_label,
            self.scores,
        ) or not _same_thresholds(self, other):
            raise InputError(
                "These two accumulators differ in classes, task, scores or thresholds; only "
                "accumulators built with the same settings can be merged."
            )
        self._sums.merge(other._sums)
        self._probabilities += other._probabilities
        self._truth += other._truth

    def all_reduce(self, group: Any = None) -> None:
        """Sum this accumulator across the ranks of a torch.distributed process group (every
        rank then holds the whole dataset's sums). Call it once, before `compute()`; afterwards
        the accumulator takes no more batches until `reset()`."""
        self._check_open("all_reduce")
        dist = import_optional("torch.distributed")
        torch = import_optional("torch")
        if not (dist.is_available() and dist.is_initialized()):
            raise InputError(
                "all_reduce() needs torch.distributed initialized (init_process_group) in every "
                "rank; in one process, merge() the accumulators instead."
            )
        if self.multi_label:
            gathered: list[Any] = [None] * dist.get_world_size(group)
            dist.all_gather_object(gathered, (self._probabilities, self._truth), group=group)
            self._probabilities = [p for probs, _ in gathered for p in probs]
            self._truth = [t for _, truth in gathered for t in truth]
        else:
            device = torch.device("cpu")
            if dist.get_backend(group) == "nccl":
                device = torch.device("cuda", torch.cuda.current_device())
            if self._sums.pairs.counts is None:  # many classes: the confusion's cells, gathered
                cells: list[Any] = [None] * dist.get_world_size(group)
                pairs = self._sums.pairs
                dist.all_gather_object(cells, (pairs.codes, pairs.code_counts), group=group)
                pairs.codes, pairs.code_counts = cells[0]
                for codes, code_counts in cells[1:]:
                    pairs.add_cells(codes, code_counts)
            counts, sums = _pack(self._sums)
            counts_t = torch.from_numpy(counts).to(device)
            sums_t = torch.from_numpy(sums).to(device)
            dist.all_reduce(counts_t, group=group)
            dist.all_reduce(sums_t, group=group)
            _unpack(self._sums, counts_t.cpu().numpy(), sums_t.cpu().numpy())
        self._reduced = True

    def compute(self) -> MulticlassMetricsSection | MultilabelMetricsSection:
        """The metrics section `scan` reports for the same rows and scores
        (`labelaudit.scan(...).metrics`): equal to it within float rounding (1e-12). An
        accumulator without rows has no metrics: an error, not zeros."""
        if self.n_seen == 0:
            raise InputError(
                "compute() before any row was added: there is nothing to measure (update() "
                "with at least one batch of rows first)."
            )
        if self.multi_label:
            k = self.n_classes
            probabilities = (
                np.concatenate(self._probabilities) if self._probabilities else np.zeros((0, k))
            )
            truth = np.concatenate(self._truth) if self._truth else np.zeros((0, k), dtype=bool)
            threshold = self.threshold if self.thresholds is None else self.thresholds
            figures = multilabel_metrics(truth, probabilities, threshold)
            return multilabel_metrics_section(
                self.classes, figures, self.scores, self._decision(), truth.shape[0]
            )
        return multiclass_metrics_section(self.classes, self._sums, self.scores, self._decision())

    def log_to_tensorboard(self, writer: Any, step: int, prefix: str = "labelaudit") -> None:
        """Write the headline figures as scalars (and, multi-class, the confusion matrix as a
        figure) to a torch.utils.tensorboard SummaryWriter (or anything with its methods)."""
        section = self.compute()
        for tag, path in _SCALARS[self.multi_label]:
            value: Any = section
            for part in path.split("."):
                value = getattr(value, part)
            if value is not None:
                writer.add_scalar(f"{prefix}/{tag}", float(value), step)
        if not self.multi_label and hasattr(writer, "add_figure"):
            from labelaudit.report import figures
            from labelaudit.report.schema import to_jsonable

            figure = figures.confusion({"metrics": to_jsonable(section)})
            if figure is not None:
                writer.add_figure(f"{prefix}/confusion_matrix", figure, step)

    def _decision(self) -> str:
        if self.thresholds is not None:
            return "per-class thresholds"
        return f"p >= {self.threshold:g}" if self.multi_label else "argmax"

    def _check_open(self, what: str) -> None:
        if self._reduced:
            raise InputError(
                f"{what}() after all_reduce(): the sums already hold every rank's batches; call "
                "reset() to start again."
            )

    def _class_indices(self, labels: Any, n: int, device: Any = None) -> Any:
        """Multi-class labels as class indices: a NumPy int64 array, or a tensor on `device`."""
        if _is_tensor(labels) and device is not None:
            torch = import_optional("torch")
            if labels.dtype.is_floating_point or labels.dtype == torch.bool:
                raise InputError(
                    f"labels are a {labels.dtype} tensor: give class indices (integers) or names."
                )
            index = labels.reshape(-1).to(device=device, dtype=torch.int64)
            _check_length(index.shape[0], n)
            low, high = (int(v) for v in torch.stack([index.min(), index.max()]).cpu())
            _check_range(low, high, self.n_classes)
            return index
        index = self._encode(_to_numpy(labels).reshape(-1))
        _check_length(index.size, n)
        if device is not None:
            return import_optional("torch").from_numpy(index).to(device)
        return index

    def _encode(self, values: np.ndarray) -> np.ndarray:
        if values.dtype.kind in "iu":
            if values.size:
                _check_range(int(values.min()), int(values.max()), self.n_classes)
            return values.astype(np.int64)
        if values.dtype.kind == "b" or values.dtype.kind == "f":
            raise InputError(
                f"labels are {values.dtype} values: give class indices (integers) or names."
            )
        unique, inverse = np.unique(values.astype(str), return_inverse=True)
        unknown = [u for u in unique.tolist() if u not in self._index]
        if unknown:
            raise InputError(
                f"labels hold {count(len(unknown), 'name')} that is not a class "
                f"({', '.join(repr(u) for u in unknown[:5])}); the classes are "
                f"{', '.join(self.classes[:10])}{' ...' if self.n_classes > 10 else ''}."
            )
        return np.array([self._index[u] for u in unique.tolist()], dtype=np.int64)[inverse]

    def _label_sets(self, labels: Any, n: int) -> np.ndarray:
        """Multi-label labels as an (N, K) boolean matrix."""
        if _is_tensor(labels) or isinstance(labels, np.ndarray):
            matrix = _to_numpy(labels)
            if matrix.ndim == 2 and matrix.dtype.kind in "biuf":
                if matrix.shape[1] != self.n_classes:
                    raise InputError(
                        f"labels have {matrix.shape[1]} columns for {self.n_classes} classes."
                    )
                if not np.isin(matrix, (0, 1)).all():
                    raise InputError("multi-label labels as a matrix hold only 0 and 1.")
                _check_length(matrix.shape[0], n)
                return matrix.astype(bool)
        if (isinstance(labels, np.ndarray) and labels.dtype != object) or _is_tensor(labels):
            raise InputError(
                "multi-label labels: an (N, K) 0/1 matrix (one column per class) or one list of "
                "class names per row; a 1-D array of class indices is one label per row."
            )
        sets = list(labels)
        _check_length(len(sets), n)
        if any(isinstance(row, str) or not isinstance(row, Iterable) for row in sets):
            raise InputError(
                "multi-label labels: one list of class names per row (a row holding a single "
                "name is a list of one, e.g. ['cat'])."
            )
        truth = np.zeros((n, self.n_classes), dtype=bool)
        for row, names in enumerate(sets):  # one row per sample, its few names
            for name in names:
                column = self._index.get(str(name))
                if column is None:
                    raise InputError(f"labels name {str(name)!r}, which is not a class.")
                truth[row, column] = True
        return truth

    def _multilabel_probabilities(self, scores: Any) -> np.ndarray:
        raw = _to_numpy(scores).astype(np.float64)
        _check_finite(raw)
        if self.scores == "logits":
            return sigmoid(raw)
        if raw.size and (raw.min() < -RANGE_SLACK or raw.max() > 1 + RANGE_SLACK):
            raise InputError(
                "scores hold values outside [0, 1], so they are not probabilities: pass "
                "scores='logits' if they are logits."
            )
        return np.clip(raw, 0.0, 1.0)


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _to_numpy(value: Any) -> np.ndarray:
    """A NumPy view of an array, tensor (copied to the CPU) or sequence."""
    if _is_tensor(value):
        value = value.detach()
        if value.dtype.is_floating_point and value.dtype.itemsize < 4:
            value = value.float()  # bfloat16 / float16 have no NumPy twin
        return value.cpu().numpy()
    return np.asarray(value)


def _rows_of(scores: Any, k: int) -> int:
    shape = tuple(scores.shape) if hasattr(scores, "shape") else np.shape(scores)
    if len(shape) != 2 or shape[1] != k:
        raise InputError(f"scores have shape {shape}: expected (rows, {k}), one column per class.")
    return int(shape[0])


def _check_length(got: int, n: int) -> None:
    if got != n:
        raise InputError(f"{count(got, 'label')} for {count(n, 'row')} of scores.")


def _check_range(low: int, high: int, k: int) -> None:
    if low < 0 or high >= k:
        raise InputError(
            f"labels hold class index {low if low < 0 else high}: indices run from 0 to {k - 1}."
        )


def _check_finite(raw: np.ndarray) -> None:
    if not np.isfinite(raw).all():
        raise InputError("scores hold NaN or infinite values.")


def _thresholds(values: Any, classes: list[str], multi_label: bool) -> np.ndarray | None:
    """Per-class thresholds from a list (class order), a {class: threshold} mapping, or the
    path of a thresholds.json written by `labelaudit thresholds`."""
    k = len(classes)
    if values is None:
        return None
    if isinstance(values, str | os.PathLike):
        from labelaudit.io.thresholds_file import read_thresholds

        return read_thresholds(values, classes, "multilabel" if multi_label else "multiclass")
    if isinstance(values, Mapping):
        missing = [c for c in classes if c not in values]
        unknown = [c for c in values if c not in classes]
        if missing or unknown:
            raise InputError(
                f"thresholds: give one per class (missing: {', '.join(missing[:5]) or 'none'}; "
                f"not classes: {', '.join(map(str, unknown[:5])) or 'none'})."
            )
        values = [values[c] for c in classes]
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(f"thresholds: give {k} numbers in [0, 1], one per class.") from exc
    if array.size != k or not np.isfinite(array).all() or (array < 0).any() or (array > OFF).any():
        raise InputError(f"thresholds: give {k} numbers in [0, 1], one per class.")
    return array


def _same_thresholds(a: MetricAccumulator, b: MetricAccumulator) -> bool:
    if a.thresholds is None or b.thresholds is None:
        return a.thresholds is None and b.thresholds is None and a.threshold == b.threshold
    return bool(np.array_equal(a.thresholds, b.thresholds))


def _not_probabilities(low: float, high: float, worst_sum: float) -> InputError:
    return InputError(
        f"scores are not probabilities (values from {low:.4g} to {high:.4g}, a row summing to "
        f"{worst_sum:.4g}): each row must sum to 1 within {DISTRIBUTION_TOLERANCE}; pass "
        "scores='logits' if they are logits."
    )


def _probabilities(raw: np.ndarray, kind: str) -> np.ndarray:
    """A batch as probabilities, by `scan --scores probs|logits`'s arithmetic (never in place on
    the caller's array)."""
    if raw.dtype.kind not in "fiu":
        raise InputError(f"scores are {raw.dtype} values: give numbers.")
    _check_finite(raw)
    if kind == "logits":
        return softmax(raw)
    raw = raw.astype(np.float32) if raw.dtype == np.float16 else raw
    sums = raw.sum(axis=1, dtype=np.float64)
    low = float(raw.min()) if raw.size else 0.0
    high = float(raw.max()) if raw.size else 1.0
    worst = float(sums[np.abs(sums - 1.0).argmax()]) if sums.size else 1.0
    if low < -CLIP_SLACK or high > 1 + CLIP_SLACK or abs(worst - 1.0) > DISTRIBUTION_TOLERANCE:
        raise _not_probabilities(low, high, worst)
    out = raw.astype(np.float64 if raw.dtype.kind in "iu" else raw.dtype)  # a copy
    if low < 0:
        np.clip(out, 0.0, 1.0, out=out)
        return renormalize_rows(out)
    return renormalize_rows(out, sums)


def _tensor_row_figures(
    torch: Any, scores: Any, labels: Any, kind: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """What `MulticlassScoreSums.add` reads from a batch, computed on the tensor's device with
    the same arithmetic as the NumPy path; only N-length vectors come back to the CPU."""
    x = scores
    if x.dtype in (torch.float16, torch.bfloat16) or not x.dtype.is_floating_point:
        x = x.float() if x.dtype.is_floating_point else x.double()
    if kind == "logits":
        x = x.double()
        if not bool(torch.isfinite(x).all()):
            raise InputError("scores hold NaN or infinite values.")
        x = torch.softmax(x, dim=1)
    else:
        sums = x.sum(dim=1, dtype=torch.float64)
        stats = torch.stack(
            [x.min().double(), x.max().double(), (sums - 1).abs().max(), sums.isfinite().all()]
        ).cpu()
        low, high, deviation, finite = (float(v) for v in stats)
        if not finite:
            raise InputError("scores hold NaN or infinite values.")
        if low < -CLIP_SLACK or high > 1 + CLIP_SLACK or deviation > DISTRIBUTION_TOLERANCE:
            worst = float(sums[(sums - 1).abs().argmax()])
            raise _not_probabilities(low, high, worst)
        if low < 0:
            x = x.clamp(0.0, 1.0)
            sums = x.sum(dim=1, dtype=torch.float64)
        off = (sums - 1).abs() > EXACT_SUM
        if bool(off.any()):
            safe = torch.where(sums[off] > 0, sums[off], torch.ones_like(sums[off]))
            x = x.clone()
            x[off] = x[off] / safe[:, None].to(x.dtype)
    predicted = x.argmax(dim=1)
    given = x.gather(1, labels[:, None])[:, 0]
    confidence = x.gather(1, predicted[:, None])[:, 0]
    hits = 0
    k = x.shape[1]
    if k > TOP_K:
        # scikit-learn's tie rule, as core.scores.top_k_hits: ties rank the higher index first.
        higher = (x > given[:, None]).sum(dim=1)
        classes = torch.arange(k, device=x.device)
        tied_after = ((x == given[:, None]) & (classes[None, :] > labels[:, None])).sum(dim=1)
        hits = int(((higher + tied_after) < TOP_K).sum())
    return (
        labels.cpu().numpy(),
        predicted.cpu().numpy(),
        given.cpu().numpy(),
        confidence.cpu().numpy(),
        hits,
    )


def _pack(sums: MulticlassScoreSums) -> tuple[np.ndarray, np.ndarray]:
    """The sums as one int64 and one float64 vector, for an all-reduce."""
    counts = np.concatenate(
        [
            [sums.rows, sums.fallback_rows, sums.top_k_hits],
            sums.pairs.counts.ravel() if sums.pairs.counts is not None else [],
            sums.bin_count,
            sums.bin_correct,
        ]
    ).astype(np.int64)
    floats = np.concatenate([[sums.log_loss_sum], sums.bin_confidence]).astype(np.float64)
    return counts, floats


def _unpack(sums: MulticlassScoreSums, counts: np.ndarray, floats: np.ndarray) -> None:
    k, bins = sums.n_classes, sums.bins
    cells = k * k if sums.pairs.counts is not None else 0  # else gathered apart
    sums.rows, sums.fallback_rows, sums.top_k_hits = (int(v) for v in counts[:3])
    if cells:
        sums.pairs.counts = counts[3 : 3 + cells].reshape(k, k).copy()
    sums.bin_count = counts[3 + cells : 3 + cells + bins].copy()
    sums.bin_correct = counts[3 + cells + bins :].copy()
    sums.log_loss_sum = float(floats[0])
    sums.bin_confidence = floats[1:].copy()
