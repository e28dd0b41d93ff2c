"""labelaudit: audit classification labels and a model's out-of-sample scores.

`import labelaudit` stays light: the API (and polars, numpy) loads on first use of a function.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "LabelAuditWarning",
    "MetricAccumulator",
    "__version__",
    "cross_validate",
    "diff",
    "gate",
    "review_apply",
    "review_export",
    "scan",
    "score",
    "tune_thresholds",
]


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from labelaudit import api

        return getattr(api, name)
    raise AttributeError(f"module 'labelaudit' has no attribute {name!r}")
