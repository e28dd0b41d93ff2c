"""Join labels and scores into a Dataset: class vocabulary, encoded labels, aligned score rows."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from labelaudit._text import agree, count
from labelaudit.core import CHUNK_ROWS
from labelaudit.core.sparse_rows import SparseRows
from labelaudit.errors import InputError
from labelaudit.io.labels import MULTILABEL, LabelTable, describe_ids
from labelaudit.io.predictions import ScoreMatrix

ON_MISSING_CHOICES = ("error", "drop")
GATHER_BELOW_SHARE = 0.25  # measured: gathering half a chunk costs more than copying it all
PREFETCH = 1  # chunks copied ahead of the one being computed on
REREAD_RANGES_BELOW = 0.5  # a second pass reads only the needed chunks when they are fewer


@dataclass(frozen=True)
class Dataset:
    """Everything the statistics need, as arrays; rows are the labeled rows of the labels file.

    `labels` holds class indices (multi-class) and `indicators` an (N, K) 0/1 matrix
    (multi-label). Scores are not copied: `score_chunks` serves them aligned to these rows.
    """

    source: str
    task: str
    classes: list[str]
    ids: pl.Series
    labels: np.ndarray | None
    indicators: np.ndarray | None
    null_labels: int
    null_label_examples: str
    scores: ScoreMatrix | None
    class_positions: np.ndarray | None
    score_rows: np.ndarray | None
    label_rows: np.ndarray | None
    warnings: tuple[str, ...]
    # Set for several models' combined scores: already probabilities, and pass 0's results.
    score_mode: str | None = None
    ensemble: Any = None
    # Set with --engine ray: runs the passes over the scores on the cluster (engines.ray_engine).
    engine: Any = None
    # The --group-col columns (text), one row a dataset row; None without any.
    groups: pl.DataFrame | None = None
    # Set with --embeddings: what the nearest neighbours say (pipelines.neighbourhood).
    neighbourhood: Any = None
    # The score files joined to the labels by row position (no id column): checked for a fit.
    positional_sources: tuple[str, ...] = ()

    @property
    def n_samples(self) -> int:
        return self.ids.len()

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def multi_label(self) -> bool:
        return self.task == MULTILABEL

    @property
    def streams(self) -> bool:
        """Whether the scores are read from disk batch by batch (each pass reads them again)."""
        return self.scores is not None and getattr(self.scores, "lazy", None) is not None

    @property
    def n_scored(self) -> int:
        """Rows with scores (the joined pairs)."""
        if self.scores is None:
            return 0
        return self.n_samples if self.score_rows is None else int(self.score_rows.size)

    def score_chunks(
        self, chunk_rows: int = CHUNK_ROWS, needed: np.ndarray | None = None, sparse: bool = False
    ) -> Iterator[tuple[np.ndarray | SparseRows, np.ndarray]]:
        """Yield (raw scores, row indices into this dataset) chunk by chunk, memory bounded.

        With a boolean mask `needed` over dataset rows, chunks holding no needed row are skipped
        and sparse chunks are gathered down to their needed rows; a dense chunk comes whole (a
        gather costs more than a plain copy), so callers still filter. Each block is a fresh copy
        the caller may modify. A worker thread copies the next chunks while the caller computes
        on this one (polars and NumPy release the GIL); at most PREFETCH chunks wait in memory.
        With `sparse`, top-k scores come as SparseRows (read as probabilities already), never
        dense: for consumers that handle them (scan's metrics and detection).
        """
        if self.scores is None:
            return
        topk = getattr(self.scores, "topk", None)
        take = self.scores.take
        if topk is not None and sparse:
            take = topk.sparse
        elif topk is not None:
            chunk_rows = topk.chunk_rows(self.n_classes, chunk_rows)
        if self.streams:
            yield from self._streamed_chunks(chunk_rows, needed)
            return
        plans = list(self._chunk_plans(chunk_rows, needed))
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: deque[tuple[Future[np.ndarray], np.ndarray]] = deque()
            for source, rows in plans:
                pending.append((pool.submit(take, source, self.class_positions), rows))
                if len(pending) > PREFETCH:
                    future, ready_rows = pending.popleft()
                    yield future.result(), ready_rows
            while pending:
                future, ready_rows = pending.popleft()
                yield future.result(), ready_rows

    def _streamed_chunks(
        self, chunk_rows: int, needed: np.ndarray | None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`score_chunks` for scores read from disk in file order: each batch's rows mapped to
        dataset rows (score rows without a labeled row dropped), a worker thread reading ahead."""
        # Text sources are read whole again: a slice of NDJSON counts blank lines that a whole
        # read skips, and slicing text saves little (every line is still scanned).
        text = getattr(self.scores, "text", False)
        ranges = None if needed is None or text else self._needed_ranges(needed, chunk_rows)
        batches = self.scores.stream(self.class_positions, chunk_rows, ranges)
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(next, batches, None)
            while True:
                item = ahead.result()
                if item is None:
                    return
                ahead = pool.submit(next, batches, None)
                start, block = item
                rows, picked = rows_of_block(
                    start, block.shape[0], self.score_rows, self.label_rows
                )
                if needed is not None:
                    kept = _keep_needed(needed, rows, picked, lambda keep: np.flatnonzero(keep))
                    if kept is None:
                        continue
                    rows, picked = kept
                if picked is not None:
                    if picked.size == 0:
                        continue
                    block = block[picked]
                yield block, rows

    def _needed_ranges(self, needed: np.ndarray, chunk_rows: int) -> list[tuple[int, int]] | None:
        """The file rows to read again for the `needed` dataset rows, as [start, stop) runs of
        whole chunks; None (read it all) when they cover over REREAD_RANGES_BELOW of the file."""
        rows = np.flatnonzero(needed)
        if self.score_rows is not None:  # dataset rows -> file rows through the join
            wanted = np.zeros(self.n_samples, dtype=bool)
            wanted[rows] = True
            rows = self.score_rows[wanted[self.label_rows]]
        chunks = np.unique(rows // chunk_rows)
        if chunks.size * chunk_rows > REREAD_RANGES_BELOW * max(self.scores.n_rows, 1):
            return None
        breaks = np.flatnonzero(np.diff(chunks) != 1) + 1
        return [
            (int(run[0]) * chunk_rows, (int(run[-1]) + 1) * chunk_rows)
            for run in np.split(chunks, breaks)
            if run.size
        ]

    def _chunk_plans(
        self, chunk_rows: int, needed: np.ndarray | None
    ) -> Iterator[tuple[slice | np.ndarray, np.ndarray]]:
        """(source rows in the score matrix, dataset rows) for each chunk to read."""
        total = self.n_scored
        identity = self.score_rows is None
        for start in range(0, total, chunk_rows):
            stop = min(start + chunk_rows, total)
            rows = np.arange(start, stop) if identity else self.label_rows[start:stop]
            source: slice | np.ndarray = (
                slice(start, stop) if identity else self.score_rows[start:stop]
            )
            if needed is not None:
                kept = _keep_needed(
                    needed,
                    rows,
                    None if identity else source,
                    lambda keep, start=start, stop=stop: np.arange(start, stop)[keep],
                )
                if kept is None:
                    continue
                rows, gathered = kept
                if gathered is not None:
                    source = gathered
            yield source, rows


def rows_of_block(
    start: int, height: int, score_rows: np.ndarray | None, label_rows: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """For file rows [start, start + height): their dataset rows and, when the join leaves
    some out or reorders them, which rows of the block they are (None: all, in order)."""
    if score_rows is None:
        return np.arange(start, start + height), None
    lo, hi = np.searchsorted(score_rows, (start, start + height))
    return label_rows[lo:hi], score_rows[lo:hi] - start


def _keep_needed(
    needed: np.ndarray,
    rows: np.ndarray,
    source: np.ndarray | None,
    all_rows: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A chunk's (dataset rows, source rows) cut down to the `needed` ones when they are sparse
    (a gather costs more than a plain copy of a dense chunk); None when none is needed. `source`
    None means the source rows follow from the chunk's range (`all_rows(keep)` gives them)."""
    keep = needed[rows]
    if not keep.any():
        return None
    if keep.mean() > GATHER_BELOW_SHARE:
        return rows, source
    return rows[keep], all_rows(keep) if source is None else source[keep]


def build_dataset(
    table: LabelTable,
    scores: ScoreMatrix | None,
    classes: list[str],
    *,
    on_missing: str = "error",
    extra_warnings: list[str] | None = None,
) -> Dataset:
    """Encode labels to the vocabulary and align score rows to label rows by id."""
    warnings = [*table.warnings, *(extra_warnings or [])]
    keep = ~table.null_mask
    null_count = int(table.null_mask.sum())
    null_examples = describe_ids(table.ids, table.null_mask) if null_count else ""
    labels, indicators = _encode(table, classes, keep)
    positions = None
    score_rows = label_rows = None
    analyzed_index = np.cumsum(keep) - 1
    if scores is not None:
        positions = _class_positions(scores, classes)
        pair_score, pair_label, unknown = _pair_rows(table, scores)
        labeled = keep[pair_label]
        pair_score, pair_label = pair_score[labeled], analyzed_index[pair_label[labeled]]
        covered = np.zeros(int(keep.sum()), dtype=bool)
        covered[pair_label] = True
        keep_analyzed, message = _check_missing(table, scores, covered, keep, unknown, on_missing)
        if message:
            warnings.append(message)
        if not keep_analyzed.any():
            raise InputError(
                f"No labeled row of '{table.source}' has predictions in '{scores.source}' (the "
                "ids do not overlap), so there is nothing to measure. Check that both files use "
                "the same ids (and --id-col)."
            )
        if not keep_analyzed.all():
            new_index = np.cumsum(keep_analyzed) - 1
            pair_label = new_index[pair_label]
            keep[np.flatnonzero(keep)[~keep_analyzed]] = False
            labels = labels[keep_analyzed] if labels is not None else None
            indicators = indicators[keep_analyzed] if indicators is not None else None
        order = np.argsort(pair_score, kind="stable")
        pair_score, pair_label = pair_score[order], pair_label[order]
        # Identity: file row i is dataset row i for every row of both (a file row without a
        # labeled row, even the last, makes the join explicit: streamed reads see every row).
        identity = pair_score.size == int(keep.sum()) == scores.n_rows and _is_arange_pair(
            pair_score, pair_label
        )
        if not identity:
            score_rows, label_rows = pair_score, pair_label
    ids = table.ids.filter(pl.Series(keep))
    groups = table.groups.filter(pl.Series(keep)) if table.groups is not None else None
    return Dataset(
        source=table.source,
        task=table.task,
        classes=classes,
        ids=ids,
        labels=labels,
        indicators=indicators,
        null_labels=null_count,
        null_label_examples=null_examples,
        scores=scores,
        class_positions=positions,
        score_rows=score_rows,
        label_rows=label_rows,
        warnings=tuple(warnings),
        groups=groups,
        positional_sources=(scores.source,) if scores is not None and scores.ids is None else (),
    )


def _encode(
    table: LabelTable, classes: list[str], keep: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    values = table.values.filter(pl.Series(keep))
    codes = pl.Series(range(len(classes)), dtype=pl.Int32)
    if table.task == MULTILABEL:
        lengths = values.list.len().to_numpy()
        flat = values.explode().drop_nulls()
        class_of = flat.replace_strict(classes, codes, return_dtype=pl.Int32).to_numpy()
        rows = np.repeat(np.arange(values.len()), lengths)
        indicators = np.zeros((values.len(), len(classes)), dtype=np.uint8)
        indicators[rows, class_of] = 1
        return None, indicators
    if values.dtype.is_integer():
        return _encode_integers(values.to_numpy(), classes), None
    labels = values.replace_strict(classes, codes, return_dtype=pl.Int32).to_numpy()
    return labels.astype(np.int64), None


def _encode_integers(values: np.ndarray, classes: list[str]) -> np.ndarray:
    """Class indices of integer labels by a sorted lookup, without a round trip through text.

    Only classes whose name is an integer's canonical string form can match (as with text)."""
    numeric = {
        int(c): i for i, c in enumerate(classes) if c.lstrip("-").isdigit() and str(int(c)) == c
    }
    keys = np.array(sorted(numeric), dtype=np.int64)
    index = np.array([numeric[k] for k in keys], dtype=np.int64)
    return index[np.searchsorted(keys, values)]


def _class_positions(scores: ScoreMatrix, classes: list[str]) -> np.ndarray:
    where = {name: i for i, name in enumerate(scores.columns)}
    return np.array([where.get(name, -1) for name in classes], dtype=np.int64)


def _pair_rows(table: LabelTable, scores: ScoreMatrix) -> tuple[np.ndarray, np.ndarray, pl.Series]:
    """(score row, label row) pairs, and score ids absent from the labels.

    Joined on id when both tables have ids, else paired by row position.
    """
    no_unknown = pl.Series("id", [], dtype=pl.Int64)
    # Labels without an id column have their row numbers as ids (documented): scores with ids
    # join on them too, never by position (their rows may be in another order).
    if scores.ids is None:
        if scores.n_rows != table.n_rows:
            raise InputError(
                f"The predictions '{scores.source}' have {count(scores.n_rows, 'row')} and no id "
                f"column, so they must be row-aligned with the {count(table.n_rows, 'row')} of "
                f"'{table.source}'. Give "
                "both files an id column, or scores for every label row in the same order."
            )
        rows = np.arange(table.n_rows)
        return rows, rows, no_unknown
    label_ids, score_ids = table.ids, scores.ids
    if label_ids.dtype != score_ids.dtype:
        label_ids, score_ids = label_ids.cast(pl.String), score_ids.cast(pl.String)
    same = label_ids.len() == score_ids.len() and label_ids.equals(score_ids)
    # Equal id columns repeat an id exactly when the labels do; the cheap check covers both.
    duplicated = (
        np.bincount(dense_codes(score_ids))[dense_codes(score_ids)] > 1
        if same
        else score_ids.is_duplicated().to_numpy()
    )
    if duplicated.any():
        ids = score_ids.filter(pl.Series(duplicated)).unique(maintain_order=True)
        raise InputError(
            f"The predictions '{scores.source}' repeat {count(ids.len(), 'id')} on "
            f"{count(int(duplicated.sum()), 'row')} (e.g. {describe_ids(ids)}). A sample needs "
            "exactly one row of scores; remove the repeats."
        )
    if same:
        rows = np.arange(table.n_rows)
        return rows, rows, no_unknown
    score_frame = pl.DataFrame({"id": score_ids, "score_row": np.arange(score_ids.len())})
    label_frame = pl.DataFrame({"id": label_ids, "label_row": np.arange(label_ids.len())})
    joined = label_frame.join(score_frame, on="id", how="inner")
    unknown = score_frame.join(label_frame, on="id", how="anti")["id"]
    return joined["score_row"].to_numpy(), joined["label_row"].to_numpy(), unknown


def _check_missing(
    table: LabelTable,
    scores: ScoreMatrix,
    covered: np.ndarray,
    keep: np.ndarray,
    unknown: pl.Series,
    on_missing: str,
) -> tuple[np.ndarray, str]:
    """Rows without scores and scores without rows: an error, or dropped with a warning."""
    without_scores = ~covered
    if not without_scores.any() and unknown.len() == 0:
        return covered, ""
    analyzed_ids = table.ids.filter(pl.Series(keep))
    parts = []
    if without_scores.any():
        parts.append(
            f"{count(int(without_scores.sum()), 'labeled row')} "
            f"{agree(int(without_scores.sum()), 'has', 'have')} no predictions (e.g. ids "
            f"{describe_ids(analyzed_ids, without_scores)})"
        )
    if unknown.len():
        parts.append(
            f"{count(unknown.len(), 'prediction row')} {agree(unknown.len(), 'has', 'have')} "
            "ids not in the labels (e.g. "
            f"{describe_ids(unknown)})"
        )
    detail = "; ".join(parts)
    if on_missing == "error":
        hint = (
            ""
            if table.has_id_column
            else f" ('{table.source}' has no id column, so its ids are its row numbers from 0)"
        )
        raise InputError(
            f"The ids of '{table.source}' and '{scores.source}' do not match{hint}: {detail}. "
            "Fix the files, or pass --on-missing drop to analyze only the rows present in both."
        )
    return covered, f"--on-missing drop: {detail}; those rows were left out."


def _is_arange_pair(score_rows: np.ndarray, label_rows: np.ndarray) -> bool:
    expected = np.arange(score_rows.size)
    return bool((score_rows == expected).all() and (label_rows == expected).all())


def dense_codes(ids: pl.Series) -> np.ndarray:
    """Integer codes equal exactly for equal ids, for vectorized duplicate detection."""
    if ids.dtype.is_numeric() and ids.len() > 1:
        values = ids.to_numpy()
        if bool((values[1:] > values[:-1]).all()):  # sorted unique ids (row numbers, say): no rank
            return np.arange(ids.len(), dtype=np.int64)
    return ids.rank(method="dense").cast(pl.Int64).to_numpy() - 1
