"""Keep torch's own log records and warnings from the user while labelaudit loads and runs a model.

torch logs through the `torch.*` loggers, several with their own stderr handler (a bad .pt2 file
logs a 19-line traceback before the exception that labelaudit turns into one clear message), and
warns through `warnings` (advice meant for a programmer calling torch, not for the user of a
command). What matters reaches the user as labelaudit's own error or warning.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

SILENT = logging.CRITICAL + 1


@contextmanager
def torch_silenced() -> Iterator[None]:
    """Silence the `torch` loggers and all warnings inside the block; restore them after."""
    loggers = [logging.getLogger("torch")] + [
        logger
        for name, logger in list(logging.Logger.manager.loggerDict.items())
        if name.startswith("torch.") and isinstance(logger, logging.Logger)
    ]
    # Loggers made inside the block inherit from `torch`; those that exist may have a level.
    levels = [(logger, logger.level) for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(SILENT)
        try:
            yield
        finally:
            for logger, level in levels:
                logger.setLevel(level)
