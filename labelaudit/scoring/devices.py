"""Choose the torch device and the autocast precision from the user's words."""

from __future__ import annotations

import re
from typing import Any

from labelaudit._deps import import_optional
from labelaudit.errors import InputError
from labelaudit.scoring.choices import PRECISIONS

torch = import_optional("torch")

DEVICES_HELP = "auto|cpu|cuda|cuda:N|mps"
_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def resolve_device(text: str) -> Any:
    """auto: CUDA when present, then MPS, then CPU; asking for an absent device is an error."""
    text = text.strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise InputError("--device mps was asked for, but this machine has no MPS device.")
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if not match:
        raise InputError(f"--device '{text}' is not one of {DEVICES_HELP}.")
    if not torch.cuda.is_available():
        build = "a CPU-only build of torch" if torch.version.cuda is None else "no visible GPU"
        raise InputError(
            f"--device {text} was asked for, but CUDA is not available here ({build}). Use "
            "--device cpu (or auto), or install a CUDA build of torch on a machine with a GPU."
        )
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise InputError(
            f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s), "
            f"numbered from 0."
        )
    return torch.device("cuda", index)


def resolve_precision(text: str, device: Any) -> Any:
    """The autocast dtype, or None for plain fp32. auto: bf16 on a CUDA GPU that supports it."""
    if text not in PRECISIONS:
        raise InputError(f"--precision '{text}' is not one of {', '.join(PRECISIONS)}.")
    if text == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    if text == "fp32":
        return None
    if text == "fp16" and device.type == "cpu":
        raise InputError("--precision fp16 needs a GPU; on the CPU use bf16 or fp32.")
    return getattr(torch, _DTYPES[text])


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
