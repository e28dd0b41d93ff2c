"""Split rows into n shards by a stable hash of their id, so machines can share the scoring.

A row's shard is FNV-1a (64 bit) of its id's UTF-8 text, modulo n: it depends on the id alone,
not on the row order, the file or the machine, so shards cover every id exactly once.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from labelaudit.errors import InputError

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise InputError(
            f"--shard '{text}' should be i/n with 0 <= i < n, e.g. 0/4 for the first of four."
        )
    return int(match.group(1)), int(match.group(2))


def id_hashes(ids: pl.Series) -> np.ndarray:
    """FNV-1a 64 of each id's text, vectorized over rows (a loop over byte positions only)."""
    encoded = ids.cast(pl.String).cast(pl.Binary)
    lengths = encoded.bin.size().to_numpy().astype(np.int64)
    width = int(lengths.max()) if lengths.size else 0
    raw = np.array(encoded.to_list(), dtype=f"S{max(width, 1)}")
    table = raw.view(np.uint8).reshape(len(raw), -1)
    hashes = np.full(len(raw), FNV_OFFSET, dtype=np.uint64)
    for position in range(width):
        active = lengths > position
        mixed = (hashes ^ table[:, position].astype(np.uint64)) * FNV_PRIME
        hashes = np.where(active, mixed, hashes)
    return hashes


def shard_mask(ids: pl.Series, shard: int, n_shards: int) -> np.ndarray:
    """True for the rows that belong to shard `shard` of `n_shards`."""
    if n_shards == 1:
        return np.ones(ids.len(), dtype=bool)
    return id_hashes(ids) % np.uint64(n_shards) == np.uint64(shard)
