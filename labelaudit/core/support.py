"""Label support: class counts, shares, imbalance figures, multi-label cardinality, duplicates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelaudit.core.accumulators import ClassCounts

_BLOCK_ROWS = 65_536  # rows of an (N, K) label matrix worked on at a time


@dataclass(frozen=True)
class ImbalanceFigures:
    """How unevenly samples spread over classes; `None` where a figure is undefined."""

    ratio: float | None
    normalized_entropy: float | None
    effective_classes: float
    rare_classes: np.ndarray
    zero_support_classes: np.ndarray


@dataclass(frozen=True)
class DuplicateSummary:
    """Ids that occur on several rows, and those whose rows disagree on the label."""

    duplicate_ids: int
    duplicate_rows: int
    conflicting_ids: int
    example_duplicate_rows: np.ndarray
    example_conflicting_rows: np.ndarray


@dataclass(frozen=True)
class CardinalityFigures:
    """Multi-label shape: labels per sample and how often pairs of labels co-occur."""

    cardinality: float
    density: float
    samples_without_label: int
    max_labels_per_sample: int
    top_pairs: list[tuple[int, int, int]]


def class_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Samples per class for integer labels in [0, n_classes)."""
    counts = ClassCounts(n_classes)
    counts.update(labels)
    return counts.compute()


def multilabel_class_counts(indicators: np.ndarray) -> np.ndarray:
    """Positive samples per class for an (N, K) 0/1 matrix."""
    return indicators.sum(axis=0, dtype=np.int64)


def imbalance(counts: np.ndarray, min_support: int) -> ImbalanceFigures:
    """Imbalance ratio (largest / smallest non-zero), normalized entropy, effective classes."""
    counts = np.asarray(counts, dtype=np.int64)
    nonzero = counts[counts > 0]
    ratio = float(nonzero.max() / nonzero.min()) if nonzero.size else None
    total = counts.sum()
    if total > 0:
        shares = nonzero / total
        entropy = 0.0 + float(-(shares * np.log(shares)).sum())  # + 0.0: never -0.0
    else:
        entropy = 0.0
    # Normalized by log(K) over the whole vocabulary: a zero-support class counts as imbalance.
    normalized = entropy / np.log(counts.size) if counts.size > 1 else None
    rare = np.flatnonzero((counts > 0) & (counts < min_support))
    zero = np.flatnonzero(counts == 0)
    return ImbalanceFigures(
        ratio=ratio,
        normalized_entropy=None if normalized is None else float(normalized),
        effective_classes=float(np.exp(entropy)) if total > 0 else 0.0,
        rare_classes=rare,
        zero_support_classes=zero,
    )


def multilabel_cardinality(indicators: np.ndarray, top_pairs: int = 10) -> CardinalityFigures:
    """Labels per sample (cardinality), cardinality / K (density), and frequent label pairs."""
    n, k = indicators.shape
    per_sample = indicators.sum(axis=1, dtype=np.int64)
    # Co-occurrence is a K x K matrix product, in row blocks: float32 counts are exact within a
    # block (< 2^24 rows), summed as integers; memory stays a block's, never N x K.
    cooccurrence = np.zeros((k, k), dtype=np.int64)
    for start in range(0, n, _BLOCK_ROWS):
        block = indicators[start : start + _BLOCK_ROWS].astype(np.float32)
        cooccurrence += (block.T @ block).astype(np.int64)
    upper_i, upper_j = np.triu_indices(k, k=1)
    pair_counts = cooccurrence[upper_i, upper_j]
    order = np.lexsort((upper_j, upper_i, -pair_counts))[:top_pairs]
    pairs = [
        (int(upper_i[o]), int(upper_j[o]), int(pair_counts[o])) for o in order if pair_counts[o] > 0
    ]
    return CardinalityFigures(
        cardinality=float(per_sample.mean()) if n else 0.0,
        density=float(per_sample.mean() / k) if n and k else 0.0,
        samples_without_label=int((per_sample == 0).sum()),
        max_labels_per_sample=int(per_sample.max()) if n else 0,
        top_pairs=pairs,
    )


def duplicates(
    id_codes: np.ndarray, label_codes: np.ndarray, examples: int = 5
) -> DuplicateSummary:
    """Find ids on several rows and ids whose rows carry different labels.

    `id_codes` are dense integer codes of the ids; `label_codes` one integer per row that is equal
    exactly when two rows carry the same label (a class index, or a hash of a label set).
    """
    n = id_codes.size
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return DuplicateSummary(0, 0, 0, empty, empty)
    rows_per_id = np.bincount(id_codes)
    dup_mask_ids = rows_per_id > 1
    if not dup_mask_ids.any():
        empty = np.empty(0, dtype=np.int64)
        return DuplicateSummary(0, 0, 0, empty, empty)
    dup_row_mask = dup_mask_ids[id_codes]
    order = np.lexsort((label_codes, id_codes))
    sorted_ids = id_codes[order]
    sorted_labels = label_codes[order]
    same_id_as_prev = sorted_ids[1:] == sorted_ids[:-1]
    label_changes = same_id_as_prev & (sorted_labels[1:] != sorted_labels[:-1])
    conflicting_ids = np.unique(sorted_ids[1:][label_changes])
    conflict_row_mask = np.isin(id_codes, conflicting_ids)
    return DuplicateSummary(
        duplicate_ids=int(dup_mask_ids.sum()),
        duplicate_rows=int(dup_row_mask.sum()),
        conflicting_ids=int(conflicting_ids.size),
        example_duplicate_rows=_first_row_of_each_id(id_codes, dup_row_mask, examples),
        example_conflicting_rows=_first_row_of_each_id(id_codes, conflict_row_mask, examples),
    )


def _first_row_of_each_id(id_codes: np.ndarray, mask: np.ndarray, examples: int) -> np.ndarray:
    """The first row of each of the first `examples` distinct ids among the masked rows (so an
    example list names each id once)."""
    rows = np.flatnonzero(mask)
    _, first = np.unique(id_codes[rows], return_index=True)
    return rows[np.sort(first)][:examples]


def label_set_codes(indicators: np.ndarray) -> np.ndarray:
    """One int64 per row, equal for equal label sets (a random projection; collisions ~2^-64)."""
    n, k = indicators.shape
    weights = np.random.default_rng(0).integers(1, 2**62, size=k, dtype=np.int64)
    codes = np.empty(n, dtype=np.int64)
    with np.errstate(over="ignore"):
        for start in range(0, n, _BLOCK_ROWS):  # a block's int64 copy, never N x K
            block = indicators[start : start + _BLOCK_ROWS].astype(np.int64)
            codes[start : start + _BLOCK_ROWS] = (block * weights).sum(axis=1)
    return codes
