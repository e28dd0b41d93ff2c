"""How many CPU threads torch computes with while probes train (docs/score.md#threads).

A probe's step is small: with torch's default (a thread a core) each op waits at a barrier for
every thread, and a core busy with anything else stalls them all (digits on 2 CPUs: 7 s became
up to a minute).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from labelaudit._deps import import_optional

torch = import_optional("torch")

WORK_PER_THREAD = 1_000_000  # multiply-adds of one training step below which a thread never pays
USER_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # torch's own: set, they are obeyed


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def threads_for(work: int, current: int) -> int:
    """torch's thread count for steps of `work` multiply-adds: one a WORK_PER_THREAD, at least 1,
    at most the available CPUs and `current`; `current` itself when the user set the variables."""
    if any(os.environ.get(name, "").strip() for name in USER_VARIABLES):
        return current
    return max(1, min(work // WORK_PER_THREAD, available_cpus(), current))


@contextmanager
def torch_threads(work: int) -> Iterator[int]:
    """torch's intra-op threads set by `threads_for` inside, the caller's count restored after.
    Inter-op threads and numpy's BLAS are left alone: probes use neither while they train."""
    before = torch.get_num_threads()
    wanted = threads_for(work, before)
    if wanted != before:
        torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
