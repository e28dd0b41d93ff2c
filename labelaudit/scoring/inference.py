"""Run a model over batches: inference mode, autocast, non-blocking copies, OOM-halving batches.

The loop never waits for the GPU between batches: inputs go up with non-blocking copies from
pinned memory, outputs come back the same way into one pinned array, synchronized at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelaudit._deps import import_optional
from labelaudit.errors import InputError
from labelaudit.scoring.batches import Batch
from labelaudit.scoring.models import first_sentence
from labelaudit.scoring.progress import Progress

torch = import_optional("torch")
OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
ACTIVATIONS = ("softmax", "sigmoid", "logits")


@dataclass
class InferenceResult:
    """Model outputs for every row (float32), which rows failed, and the batch size that ran."""

    outputs: np.ndarray
    ok: np.ndarray
    errors: list[str]
    batch_size: int


def run_inference(
    model: Callable[..., Any],
    batches: Iterable[Batch],
    *,
    n_rows: int,
    device: Any,
    autocast_dtype: Any,
    activation: str,
    batch_size: int,
    halve_on_oom: bool,
    expected_width: int | None,
    progress: Progress,
    on_error: Callable[[str], None] | None = None,
) -> InferenceResult:
    """Outputs of `model` on every row, activated (softmax, sigmoid or raw logits), on the CPU."""
    outputs = None
    ok = np.ones(n_rows, dtype=bool)
    errors: list[str] = []
    micro = batch_size
    with torch.inference_mode(), _autocast(device, autocast_dtype):
        for batch in batches:
            if batch.errors:
                errors.extend(batch.errors)
                if on_error is not None:
                    on_error(batch.errors[0])
            if batch.ok is not None:
                ok[batch.start : batch.start + len(batch.ok)] = batch.ok
            inputs = batch.inputs.to(device, non_blocking=True)
            position = 0
            while position < len(inputs):
                chunk = inputs[position : position + micro]
                try:
                    scores = _activate(_logits(_forward(model, chunk)), activation)
                except OUT_OF_MEMORY as exc:
                    if not halve_on_oom or micro == 1:
                        raise InputError(
                            f"The GPU ran out of memory at batch size {micro}. Pass a smaller "
                            "--batch-size, or leave it at auto to find one that fits."
                        ) from exc
                    micro = max(1, micro // 2)
                    del exc
                    _free_cache(device)
                    continue
                if outputs is None:
                    outputs = _allocate(n_rows, scores, expected_width, device)
                begin = batch.start + position
                outputs[begin : begin + len(scores)].copy_(scores, non_blocking=True)
                position += len(chunk)
            progress.update(len(inputs))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    progress.close()
    assert outputs is not None, "no rows were scored"
    return InferenceResult(outputs.numpy(), ok, errors, micro)


def _forward(model: Callable[..., Any], chunk: Any) -> Any:
    """The model's output on one batch. The model is the user's code: when it fails on the data
    (a shape it does not take), that is bad input (exit 2), not a bug in labelaudit."""
    try:
        return model(chunk)
    except OUT_OF_MEMORY:
        raise  # run_inference halves the batch
    except Exception as exc:
        raise InputError(
            f"The model failed on a batch of shape {tuple(chunk.shape)} ({type(exc).__name__}: "
            f"{first_sentence(exc)}). Check that the data fits the model: the number of features "
            "or --input-shape, or --image-size for images; a .pt2 program exported without a "
            "dynamic batch dimension runs only its example's batch size."
        ) from exc


def _autocast(device: Any, dtype: Any) -> Any:
    kind = device.type if device.type in ("cuda", "cpu", "mps") else "cpu"
    return torch.autocast(device_type=kind, dtype=dtype, enabled=dtype is not None)


def _logits(output: Any) -> Any:
    """The logits in a model's output: a tensor, the first of a tuple, or a dict's 'logits'."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    elif isinstance(output, dict) and "logits" in output:
        output = output["logits"]
    if not isinstance(output, torch.Tensor):
        raise InputError(
            f"The model returned {type(output).__name__}; it should return a tensor of scores "
            "(batch, classes), a tuple starting with one, or a dict with 'logits'."
        )
    if output.ndim != 2:
        raise InputError(
            f"The model returned scores of shape {tuple(output.shape)}; expected (batch, classes)."
        )
    return output


def _activate(logits: Any, activation: str) -> Any:
    logits = logits.float()
    if activation == "softmax":
        return torch.softmax(logits, dim=1)
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    return logits


def _allocate(n_rows: int, first: Any, expected_width: int | None, device: Any) -> Any:
    width = first.shape[1]
    if expected_width is not None and width != expected_width:
        raise InputError(
            f"The model returns {width} scores a row, but there are {expected_width} classes "
            "(from --classes or the image folders). Give a class list with one name per model "
            "output, in order."
        )
    return torch.empty((n_rows, width), dtype=torch.float32, pin_memory=device.type == "cuda")


def _free_cache(device: Any) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
