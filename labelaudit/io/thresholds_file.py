"""Read a thresholds.json written by `labelaudit thresholds`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from labelaudit.errors import InputError


def read_thresholds(path: str | os.PathLike[str], classes: list[str]) -> np.ndarray:
    """Thresholds from a thresholds.json, in the vocabulary's order; errors name what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        table = data["thresholds"]
    except FileNotFoundError as exc:
        raise InputError(f"The thresholds file '{path}' does not exist.") from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(
            f"The thresholds file '{path}' is not a labelaudit thresholds.json (a JSON object "
            "with a 'thresholds' table of class -> threshold). Make it with `labelaudit "
            "thresholds ... -o FILE`."
        ) from exc
    missing = [c for c in classes if c not in table]
    if missing:
        raise InputError(
            f"The thresholds file '{path}' has no threshold for {len(missing)} classes: "
            f"{', '.join(missing[:10])}. Tune them on the same classes."
        )
    values = np.array([table[c] for c in classes], dtype=np.float64)
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise InputError(f"The thresholds in '{path}' must be numbers in [0, 1].")
    return values
