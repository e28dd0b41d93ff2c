"""Assemble suspected-label-error results: the report section and the per-sample issues table.

The statistics come from core/noise*.py; this module only names classes, attaches ids, and
shapes the results. The per-sample table is built on first use (a full sort for the ranks).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import polars as pl

from labelaudit._text import count
from labelaudit.config import ScanConfig
from labelaudit.core.noise import Detection, finish_detection
from labelaudit.core.noise_multilabel import detect_multilabel
from labelaudit.core.quality_scores import quality_histogram, rank_by_quality
from labelaudit.io.dataset import Dataset
from labelaudit.pipelines.passes import (
    MulticlassEvaluation,
    MultilabelEvaluation,
    probability_chunks,
)
from labelaudit.report.schema import (
    MAX_JSON_MATRIX_CLASSES,
    ClassHealth,
    LabelIssuesSection,
    NoiseMatrixSection,
    PairAnomalySection,
    QualityHistogram,
    Suspect,
)

IN_SAMPLE_ACCURACY = 0.99
CONFIDENT_OTHER = 0.9  # another class this probable contradicts the given label confidently
CONFIDENT_CONTRADICTIONS = 1 / 2_000  # out-of-sample scores on real labels show more than this


def looks_in_sample(accuracy: float, best_other_probability: np.ndarray, n_classes: int) -> bool:
    """Scores from a model that trained on these rows: near-perfect accuracy AND (almost) no
    label confidently contradicted. Real labels hold errors (0.1-10% in common benchmarks) that
    an out-of-sample model contradicts confidently; a model that memorized them does not. A
    cross-validated 99%-accurate model still contradicts its errors, so it is not flagged."""
    if n_classes < 2 or accuracy <= IN_SAMPLE_ACCURACY:
        return False
    confident = int((best_other_probability >= CONFIDENT_OTHER).sum())
    return confident <= CONFIDENT_CONTRADICTIONS * best_other_probability.size


WRITE_ROWS = 262_144  # rows per piece when a table is written piece by piece
LABEL_SET_ROWS = 65_536  # rows of tags written out as 'a|b' at a time
BACKGROUND_RANK_ROWS = 1_000_000  # from here the ranks' sort starts early, on its own thread


class LazyTable:
    """A per-sample table built on first access, then kept; or, for writing, built and handed
    over in pieces of rows (`pieces`), so a large one never sits whole in memory."""

    def __init__(
        self,
        build: Callable[[], pl.DataFrame],
        rows: Callable[[int, int], pl.DataFrame] | None = None,
        n_rows: int = 0,
        dataset_rows: np.ndarray | None = None,
    ) -> None:
        self._build = build
        self._rows = rows
        self._n_rows = n_rows
        self._table: pl.DataFrame | None = None
        self.dataset_rows = dataset_rows  # the dataset row of each table row (None: the same)

    def with_columns(self, extra: Callable[[np.ndarray], dict[str, Any]]) -> LazyTable:
        """This table with more columns, made by `extra` from the dataset rows of each piece
        (e.g. the embeddings' evidence)."""

        def positions(start: int, stop: int) -> np.ndarray:
            if self.dataset_rows is None:
                return np.arange(start, stop)
            return self.dataset_rows[start:stop]

        def build() -> pl.DataFrame:
            table = self.get()
            return table.with_columns(**extra(positions(0, table.height)))

        rows = None
        if self._rows is not None:
            inner = self._rows

            def rows(start: int, stop: int) -> pl.DataFrame:
                return inner(start, stop).with_columns(**extra(positions(start, stop)))

        return LazyTable(build, rows, self._n_rows, self.dataset_rows)

    def get(self) -> pl.DataFrame:
        if self._table is None:
            self._table = self._build()
        return self._table

    def pieces(self, size: int | None = None) -> Iterator[pl.DataFrame]:
        """The table's rows in order, `size` (WRITE_ROWS) at a time."""
        size = size or WRITE_ROWS
        if self._table is not None or self._rows is None:
            yield from self.get().iter_slices(size)
            return
        for start in range(0, max(self._n_rows, 1), size):
            yield self._rows(start, min(start + size, self._n_rows))


def rank_of(quality: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Ranks (1 = most suspect, ties by row order) of a few rows, without sorting all rows:
    one O(N) count per row asked for (the top-N of a report)."""
    out = np.empty(rows.size, dtype=np.int64)
    for i, r in enumerate(rows):
        tied_before = int(np.count_nonzero(quality[:r] == quality[r]))
        out[i] = int(np.count_nonzero(quality < quality[r])) + tied_before + 1
    return out


class Ranks:
    """Every row's rank (`quality_ranks`): for a large table sorted on a thread started at
    once, so the sort overlaps the report's work before the table is written; else on first
    use."""

    def __init__(self, quality: np.ndarray) -> None:
        self._quality = quality
        self._ranks: np.ndarray | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if quality.size >= BACKGROUND_RANK_ROWS:
            # A daemon: an interrupt or an error before the table is written does not wait
            # for the sort.
            self._thread = threading.Thread(target=self._sort, name="labelaudit-ranks", daemon=True)
            self._thread.start()

    def _sort(self) -> None:
        try:
            self._ranks = quality_ranks(self._quality)
        except BaseException as exc:  # raised again in get(), on the caller's thread
            self._error = exc

    def get(self) -> np.ndarray:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        if self._ranks is None:
            self._ranks = quality_ranks(self._quality)
        return self._ranks


def _most_suspect(quality: np.ndarray, flagged: np.ndarray, top: int) -> np.ndarray:
    rows = np.flatnonzero(flagged)
    return rows[np.argsort(quality[rows], kind="stable")[:top]]


def multiclass_label_issues(
    dataset: Dataset, evaluation: MulticlassEvaluation, config: ScanConfig, accuracy: float
) -> tuple[LabelIssuesSection, LazyTable, list[str]]:
    """Run detection's second pass and shape the results."""
    if dataset.engine is not None:  # pass 2 on the cluster (--engine ray)
        chunks = dataset.engine.probability_chunks(evaluation.score_mode)
    else:
        chunks = probability_chunks(dataset, evaluation.score_mode, config.chunk_rows, sparse=True)
    detection = finish_detection(
        evaluation.evidence, chunks, dataset.labels, config.quality_score, config.suspect_rule
    )
    classes = dataset.classes
    labels = dataset.labels
    warnings = _detection_warnings(dataset, detection, accuracy)
    class_count = detection.evidence.class_count
    errors = detection.errors
    class_noise_rate = errors.class_rates(class_count)
    suspects_per_class = np.bincount(labels[detection.flagged], minlength=len(classes))
    n = labels.size
    n_suspects = int(detection.flagged.sum())
    ranks = Ranks(detection.quality)
    top_rows = _most_suspect(detection.quality, detection.flagged, config.top)
    top_ranks = rank_of(detection.quality, top_rows)
    against = models_against(dataset, detection.evidence.predicted_class >= 0)
    section = LabelIssuesSection(
        quality_score=config.quality_score,
        rule=config.suspect_rule,
        n_scored=n,
        n_suspects=n_suspects,
        suspect_rate=n_suspects / n if n else 0.0,
        estimated_errors=errors.count,
        estimated_noise_rate=errors.rate,
        health_score=1.0 - errors.rate,
        per_class=sorted(
            (
                ClassHealth(
                    class_name=name,
                    support=int(class_count[c]),
                    estimated_noise_rate=float(class_noise_rate[c]),
                    suspects=int(suspects_per_class[c]),
                    suspect_share=float(suspects_per_class[c] / class_count[c])
                    if class_count[c]
                    else 0.0,
                    threshold=float(detection.thresholds[c])
                    if np.isfinite(detection.thresholds[c])
                    else None,
                )
                for c, name in enumerate(classes)
            ),
            key=lambda h: (-h.estimated_noise_rate, -h.suspect_share, h.class_name),
        ),
        pairs=[
            PairAnomalySection(
                from_class=classes[p.source],
                to_class=classes[p.target],
                kind=p.kind,
                count=p.count,
                share=p.share,
                reverse_count=p.reverse_count,
                ratio_to_median=p.ratio_to_median,
                example_ids=dataset.ids.gather(p.example_rows).to_list(),
            )
            for p in detection.pairs
        ],
        noise_matrix=NoiseMatrixSection(
            classes=list(classes),
            given_given_true=detection.noise.noise_matrix.dense().tolist()
            if len(classes) <= MAX_JSON_MATRIX_CLASSES
            else None,
        ),
        top_suspects=[
            Suspect(
                rank=int(rank),
                id=dataset.ids[int(r)],
                given_label=classes[labels[r]],
                suggested_label=classes[detection.suggested[r]],
                label_quality=float(detection.quality[r]),
                given_probability=float(detection.evidence.given_probability[r]),
                suggested_probability=float(detection.suggested_probability[r]),
                margin=float(detection.margin[r]),
                n_models_disagree=int(against[r]) if dataset.ensemble is not None else None,
            )
            for r, rank in zip(top_rows, top_ranks, strict=True)
        ],
        quality_histogram=histogram_section(detection.quality, detection.flagged),
        estimated_errors_low=errors.low,
        estimated_errors_high=errors.high,
        confident_joint_errors=errors.confident_joint,
        weak_evidence=errors.weak_evidence,
    )
    rows = _multiclass_rows(dataset, detection, against, ranks)
    return section, LazyTable(lambda: rows(0, dataset.n_samples), rows, dataset.n_samples), warnings


def _detection_warnings(dataset: Dataset, detection: Detection, accuracy: float) -> list[str]:
    warnings = []
    if looks_in_sample(accuracy, detection.evidence.best_other_probability, dataset.n_classes):
        warnings.append(
            f"Accuracy on the given labels is {accuracy:.4f} and the model contradicts no label "
            "confidently: the scores are probably in-sample (from a model that trained on these "
            "rows), which hides label errors. Use out-of-sample scores (cross-validation, or "
            "`labelaudit score --cv`)."
        )
    pooled = detection.classes_with_pooled_threshold
    if pooled.size:
        names = ", ".join(dataset.classes[c] for c in pooled[:10])
        more = f" and {pooled.size - 10:,} more" if pooled.size > 10 else ""
        defined = np.delete(detection.thresholds, pooled)
        if defined.size > 1:
            shared = f"the median of the other classes' ({float(np.median(defined)):.3f})"
        elif defined.size:
            shared = f"that of the one class with samples ({float(defined[0]):.3f})"
        else:
            shared = "none (no class has 2 samples): no sample is confidently of any class"
        warnings.append(
            f"{count(int(pooled.size), 'class')} {'has' if pooled.size == 1 else 'have'} fewer "
            f"than 2 samples, so {'its' if pooled.size == 1 else 'their'} confident-learning "
            f"threshold is {shared}: {names}{more}."
        )
    return warnings


def models_against(dataset: Dataset, disagrees: np.ndarray) -> np.ndarray:
    """Per sample, how many models' most probable class (multi-label: decided tag set) is not
    the given label: from pass 0 for several models, else 0 or 1 from the one model."""
    if dataset.ensemble is not None:
        return dataset.ensemble.models_disagreeing
    return disagrees.astype(np.int16)


def quality_ranks(quality: np.ndarray) -> np.ndarray:
    """Each row's rank (1 = most suspect, `core.quality_scores.rank_by_quality`) as unsigned 32-bit
    numbers (up to 4 billion rows), kept while the file is written; its int64 column is made
    piece by piece."""
    return rank_by_quality(quality, np.uint32 if quality.size < 2**32 else np.int64)


def _multiclass_rows(
    dataset: Dataset, detection: Detection, against: np.ndarray, ranks: Ranks
) -> Callable[[int, int], pl.DataFrame]:
    """The issues table's rows [start, stop)."""
    names = pl.Series("class", dataset.classes, dtype=pl.String)

    def rows(start: int, stop: int) -> pl.DataFrame:
        part = slice(start, stop)
        return pl.DataFrame(
            {
                "id": dataset.ids.slice(start, stop - start),
                "given_label": names.gather(dataset.labels[part]),
                "suggested_label": names.gather(detection.suggested[part]),
                "label_quality": detection.quality[part],
                "is_suspect": detection.flagged[part],
                "rank": ranks.get()[part].astype(np.int64),
                "given_probability": detection.evidence.given_probability[part],
                "suggested_probability": detection.suggested_probability[part],
                "margin": detection.margin[part],
                "n_models_disagree": against[part],
            }
        )

    return rows


def multilabel_label_issues(
    dataset: Dataset, evaluation: MultilabelEvaluation, config: ScanConfig
) -> tuple[LabelIssuesSection, LazyTable, list[str]]:
    """One-vs-rest detection per class; a suspect names its probably missing or extra tag."""
    scored = np.flatnonzero(evaluation.scored)
    every_row = scored.size == dataset.n_samples  # no copy of the (N, K) tags then
    indicators = dataset.indicators if every_row else dataset.indicators[scored]
    if evaluation.detection is not None:  # streamed: found in the evaluation's passes
        detection = evaluation.detection
        disagrees = evaluation.disagrees[scored]
    else:
        probabilities = evaluation.probabilities[scored]
        detection = detect_multilabel(indicators, probabilities)
        disagrees = ((probabilities >= config.threshold) != indicators.astype(bool)).any(axis=1)
    classes = dataset.classes
    n = scored.size
    n_suspects = int(detection.flagged.sum())
    suspects_per_class = detection.suspects_per_class
    positives = indicators.sum(axis=0)
    against = models_against(dataset, disagrees)
    if dataset.ensemble is not None:
        against = against[scored]
    top_rows = _most_suspect(detection.quality, detection.flagged, config.top)
    top_ranks = rank_of(detection.quality, top_rows)
    given_sets = _label_sets(indicators, classes)
    suggested_sets = _label_sets(indicators, classes, toggle=detection.worst_class)
    ids = dataset.ids.gather(scored)
    tag_probability = detection.worst_probability
    section = LabelIssuesSection(
        quality_score="self_confidence",
        rule="confident_joint",
        n_scored=n,
        n_suspects=n_suspects,
        suspect_rate=n_suspects / n if n else 0.0,
        estimated_errors=int(suspects_per_class.sum()),
        estimated_noise_rate=float(suspects_per_class.sum() / max(indicators.size, 1)),
        health_score=1.0 - n_suspects / n if n else 1.0,
        per_class=sorted(
            (
                ClassHealth(
                    class_name=name,
                    support=int(positives[c]),
                    estimated_noise_rate=float(detection.class_noise_rate[c]),
                    suspects=int(suspects_per_class[c]),
                    suspect_share=float(suspects_per_class[c] / n) if n else 0.0,
                    threshold=None,
                )
                for c, name in enumerate(classes)
            ),
            key=lambda h: (-h.estimated_noise_rate, h.class_name),
        ),
        pairs=[],
        noise_matrix=None,
        top_suspects=[
            Suspect(
                rank=int(rank),
                id=ids[int(r)],
                given_label=given_sets[int(r)],
                suggested_label=suggested_sets[int(r)],
                label_quality=float(detection.quality[r]),
                given_probability=float(1 - tag_probability[r])
                if detection.worst_is_missing[r]
                else float(tag_probability[r]),
                suggested_probability=float(tag_probability[r])
                if detection.worst_is_missing[r]
                else float(1 - tag_probability[r]),
                margin=float(1 - 2 * detection.quality[r]),
                n_models_disagree=int(against[r]) if dataset.ensemble is not None else None,
            )
            for r, rank in zip(top_rows, top_ranks, strict=True)
        ],
        quality_histogram=histogram_section(detection.quality, detection.flagged),
    )

    def table() -> pl.DataFrame:
        return pl.DataFrame(
            {
                "id": ids,
                "given_label": given_sets,
                "suggested_label": suggested_sets,
                "label_quality": detection.quality,
                "is_suspect": detection.flagged,
                "rank": quality_ranks(detection.quality).astype(np.int64),
                "tag": pl.Series(classes).gather(detection.worst_class),
                "tag_error": np.where(detection.worst_is_missing, "missing", "extra"),
                "n_models_disagree": against,
            }
        )

    return section, LazyTable(table, dataset_rows=None if every_row else scored), []


def _label_sets(
    indicators: np.ndarray, classes: list[str], toggle: np.ndarray | None = None
) -> pl.Series:
    """Each row's label set as 'a|b' in class order (vectorized through polars, in blocks of
    rows so memory stays a block's); with `toggle`, each row's tag of that class flipped."""
    names = pl.Series(classes)
    parts = []
    for start in range(0, indicators.shape[0], LABEL_SET_ROWS):
        block = indicators[start : start + LABEL_SET_ROWS]
        if toggle is not None:
            block = block.copy()
            block[np.arange(block.shape[0]), toggle[start : start + LABEL_SET_ROWS]] ^= 1
        rows, cols = np.divmod(np.flatnonzero(block), len(classes))
        joined = (
            pl.DataFrame({"row": rows, "tag": names.gather(cols)})
            .group_by("row", maintain_order=True)
            .agg(pl.col("tag").str.join("|"))
        )
        every = pl.DataFrame({"row": np.arange(block.shape[0])})
        parts.append(every.join(joined, on="row", how="left")["tag"].fill_null(""))
    if not parts:
        return pl.Series("labels", [], dtype=pl.String)
    return pl.concat(parts).rename("labels")


def histogram_section(quality: np.ndarray, flagged: np.ndarray) -> QualityHistogram:
    """The label-quality histogram of the report (aggregates only: the HTML figure's input)."""
    edges, counts, flagged_counts, cut = quality_histogram(quality, flagged)
    return QualityHistogram(edges.tolist(), counts.tolist(), flagged_counts.tolist(), cut)


def table_or_none(table: LazyTable | None) -> Any:
    return None if table is None else table.get()
