"""The choices of `labelaudit score`'s options, in a module free of torch (the CLI reads them)."""

from __future__ import annotations

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PROBES = ("linear", "mlp")
