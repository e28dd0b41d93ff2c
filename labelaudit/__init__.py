"""labelaudit: audit classification labels and a model's out-of-sample scores.

`import labelaudit` stays light: the API (and polars, numpy) loads on first use of `scan`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "cross_validate", "diff", "scan", "score"]


def __getattr__(name: str) -> Any:
    if name == "scan":
        from labelaudit.api import scan

        return scan
    if name == "diff":
        from labelaudit.diffing import diff

        return diff
    if name in ("score", "cross_validate"):  # torch-backed: imported only when asked for
        from labelaudit._deps import import_optional

        import_optional("torch")
        from labelaudit.scoring import run

        return getattr(run, name)
    raise AttributeError(f"module 'labelaudit' has no attribute {name!r}")
