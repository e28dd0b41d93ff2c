"""Lazy imports of optional heavy dependencies, naming the extra that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from labelaudit.errors import MissingDependencyError

_EXTRA_FOR = {"torch": "torch", "ray": "ray", "faiss": "embeddings", "matplotlib": None}


def import_optional(module: str) -> ModuleType:
    """Import `module` on first use; a clear error names how to install it when it is absent."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_FOR.get(top)
        how = f"pip install 'labelaudit[{extra}]'" if extra else f"pip install {top}"
        raise MissingDependencyError(
            f"This command needs the optional dependency '{top}', which is not installed "
            f"({exc}). Install it with: {how}"
        ) from exc
