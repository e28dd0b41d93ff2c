"""`scan --embeddings`: read the embeddings, join them to the labeled rows, search each row's
nearest neighbours, and say what they show: near-duplicate sets (conflicting labels, leakage
across splits), outliers, and the neighbours' labels (evidence per row; without --preds, the
scores themselves). docs/embeddings.md documents every rule."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from labelaudit._text import agree, count
from labelaudit.config import ScanConfig
from labelaudit.core import neighbourhood as nb
from labelaudit.core.support import label_set_codes
from labelaudit.errors import InputError
from labelaudit.io.dataset import Dataset, build_dataset
from labelaudit.io.features import load_features
from labelaudit.io.labels import LabelTable, describe_ids
from labelaudit.io.predictions import ScoreMatrix
from labelaudit.report.schema import (
    DuplicateSet,
    NearDuplicatesSection,
    NeighboursSection,
    OutlierRow,
    OutliersSection,
    SetLeakage,
)

SHOWN_SETS = 10  # duplicate sets the report lists (conflicting and leaking ones first)
SHOWN_IDS = 10  # ids listed per set
SHOWN_OUTLIERS = 10
NO_GROUP = "(none)"  # the group value of a row whose group cell is empty (io.labels)
PROJECTED_ROWS = 3_000  # rows drawn in the HTML page's 2-D projection


@dataclass(frozen=True)
class Embedded:
    """The embeddings joined to the labeled rows: `vectors[i]` belongs to dataset row `rows[i]`
    (rows ascending)."""

    source: str
    vectors: np.ndarray
    rows: np.ndarray
    ids: pl.Series  # of those rows
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class Neighbourhood:
    """What the nearest neighbours say, per dataset row (NaN / -1 / False where a row has no
    embedding) and as the report's sections."""

    duplicates: NearDuplicatesSection
    outliers: OutliersSection
    neighbours: NeighboursSection
    duplicate_set: np.ndarray  # int64, -1 for none
    outlier_score: np.ndarray  # float32
    is_outlier: np.ndarray  # bool
    agreement: np.ndarray  # float32
    warnings: tuple[str, ...]
    projection: dict[str, list]

    def issue_columns(self, rows: np.ndarray) -> dict[str, pl.Series]:
        """The issues file's columns for these dataset rows (null where a row has none)."""
        sets = self.duplicate_set[rows]
        return {
            "near_duplicate_set": pl.Series(sets, dtype=pl.Int64).set(pl.Series(sets < 0), None),
            "outlier_score": pl.Series(self.outlier_score[rows]).fill_nan(None),
            "is_outlier": pl.Series(self.is_outlier[rows]).set(
                pl.Series(np.isnan(self.outlier_score[rows])), None
            ),
            "knn_agreement": pl.Series(self.agreement[rows]).fill_nan(None),
        }


def load_embedded(
    source: str,
    table: LabelTable,
    dataset_ids: pl.Series,
    config: ScanConfig,
    scored: bool = True,
) -> Embedded:
    """The embeddings of the dataset's rows, joined on id (a .npy is row-aligned with the
    labels file); rows on one side only follow --on-missing."""
    repeated = dataset_ids.is_duplicated()
    if repeated.any():
        shown = describe_ids(dataset_ids.filter(repeated).unique(maintain_order=True))
        raise InputError(
            f"The labels '{table.source}' repeat ids ({shown}), and --embeddings joins on the "
            "id, so each labeled row needs its own. Remove the repeats (a plain scan reports "
            "them under duplicates)."
        )
    found = load_features(
        source,
        id_col=config.id_col,
        label_col=config.label_col,
        features_col=config.embeddings_col,
        input_format=None,
        role="embeddings",
        row_ids=table.ids,
        id_required=True,
    )
    vectors, ids = found.features.reshape(found.n_rows, -1), found.ids
    if source.endswith(".npy"):
        if found.n_rows != table.n_rows:
            raise InputError(
                f"The embeddings '{source}' hold {count(found.n_rows, 'row')} and no ids, so they "
                f"must be row-aligned with the {count(table.n_rows, 'row')} of '{table.source}'. "
                "Give a table with an id column, or one vector for every label row in order."
            )
        ids = table.ids
    label_ids, vector_ids = dataset_ids, ids
    if label_ids.dtype != vector_ids.dtype:
        label_ids, vector_ids = label_ids.cast(pl.String), vector_ids.cast(pl.String)
    left = pl.DataFrame({"id": label_ids, "row": np.arange(label_ids.len())})
    right = pl.DataFrame({"id": vector_ids, "vector": np.arange(vector_ids.len())})
    joined = left.join(right, on="id", how="inner").sort("row")
    rows, picked = joined["row"].to_numpy(), joined["vector"].to_numpy()
    warnings = _missing(source, table, label_ids, right, rows, config.on_missing, scored)
    if rows.size < 2:
        raise InputError(
            f"Only {count(rows.size, 'labeled row')} of '{table.source}' "
            f"{agree(rows.size, 'has', 'have')} an embedding in '{source}'; nearest neighbours "
            "need at least two. Check that both files use the same ids (and --id-col)."
        )
    vectors = (
        vectors[picked] if picked.size != vectors.shape[0] or not _is_arange(picked) else vectors
    )
    chosen_ids = dataset_ids.gather(rows)
    if config.distance == "cosine":
        zero = ~np.any(vectors != 0, axis=1)
        if zero.any():
            raise InputError(
                f"The embeddings '{source}' have {count(int(zero.sum()), 'vector')} of zeros (ids "
                f"{describe_ids(chosen_ids, zero)}), which have no direction, so cosine distance "
                "is undefined for them. Drop those rows, or pass --distance l2."
            )
        if vectors.shape[1] == 1:
            raise InputError(
                f"The embeddings '{source}' have one dimension: by cosine, every row is then "
                "one of two directions (its sign). Pass --distance l2, or give real embeddings."
            )
    _check_distinct(vectors, source)
    return Embedded(source, vectors, rows, chosen_ids, tuple(warnings))


def _check_distinct(vectors: np.ndarray, source: str) -> None:
    """Every row the same vector: nothing to compare, so no figure from it would mean anything."""
    if (vectors == vectors[:1]).all():
        raise InputError(
            f"Every row of the embeddings '{source}' is the same vector, so there are no "
            "neighbours to tell apart: near-duplicates, outliers and the neighbours' labels "
            "would all be arbitrary. Check the embeddings (a constant column, a failed export)."
        )


def _is_arange(values: np.ndarray) -> bool:
    return bool((values == np.arange(values.size)).all())


def _missing(
    source: str,
    table: LabelTable,
    label_ids: pl.Series,
    right: pl.DataFrame,
    rows: np.ndarray,
    on_missing: str,
    scored: bool,
) -> list[str]:
    """Labeled rows without an embedding and embeddings of no labeled row: exit 2, or left out
    with a warning under --on-missing drop."""
    without = np.ones(label_ids.len(), dtype=bool)
    without[rows] = False
    # Embeddings of rows without a label are not unknown: those rows are the labels' own.
    every_id = table.ids.cast(pl.String) if table.ids.dtype != label_ids.dtype else table.ids
    unknown = right.join(pl.DataFrame({"id": every_id}), on="id", how="anti")["id"]
    parts = []
    if without.any():
        parts.append(
            f"{count(int(without.sum()), 'labeled row')} {agree(int(without.sum()), 'has', 'have')}"
            f" no embedding (e.g. ids {describe_ids(label_ids, without)})"
        )
    if unknown.len():
        parts.append(
            f"{count(unknown.len(), 'embedding')} {agree(unknown.len(), 'has', 'have')} ids not "
            f"among the labeled rows (e.g. {describe_ids(unknown)})"
        )
    if not parts:
        return []
    detail = "; ".join(parts)
    if on_missing == "error":
        raise InputError(
            f"The ids of '{table.source}' and the embeddings '{source}' do not match: {detail}. "
            "Fix the files, or pass --on-missing drop to use only the rows present in both."
        )
    where = "the neighbourhood" if scored else "the scan"
    return [f"--on-missing drop: {detail}; those rows were left out of {where}."]


def knn_scores(
    embedded: Embedded,
    neighbours: object,
    labels: np.ndarray | None,
    indicators: np.ndarray | None,
    classes: list[str],
) -> ScoreMatrix:
    """The leave-one-out neighbours' labels as scores (docs/embeddings.md): a ScoreMatrix of
    the embedded rows, read by the scan like a model's probabilities."""
    indices, k = neighbours.indices, neighbours.k  # type: ignore[attr-defined]
    weights = nb.closeness(neighbours.distances)  # type: ignore[attr-defined]
    if indicators is None:
        own = labels[embedded.rows]
        votes = nb.neighbour_votes(indices, own, len(classes), weights)
        prior = np.bincount(own, minlength=len(classes)) / own.size
    else:
        own = indicators[embedded.rows]
        votes = nb.neighbour_tag_votes(indices, own, weights)
        prior = own.mean(axis=0)
    probabilities = nb.knn_probabilities(
        votes, weights.sum(axis=1), prior, multi_label=indicators is not None
    )
    return ScoreMatrix(
        source=f"the {k} nearest neighbours' labels in {embedded.source}",
        ids=embedded.ids,
        columns=list(classes),
        matrix=probabilities,
    )


def search(embedded: Embedded, config: ScanConfig) -> object:
    """Each embedded row's k nearest other embedded rows."""
    from labelaudit.engines.vector_search import nearest_neighbours

    return nearest_neighbours(embedded.vectors, config.knn, config.distance, config.knn_index)


def analyse(
    dataset: Dataset, embedded: Embedded, neighbours: object, config: ScanConfig, seconds: float
) -> Neighbourhood:
    """The report's sections and the per-row columns from the neighbours of the embedded rows."""
    started = time.perf_counter()
    indices, distances = neighbours.indices, neighbours.distances  # type: ignore[attr-defined]
    k = int(indices.shape[1])
    n, m = dataset.n_samples, embedded.rows.size
    rows = embedded.rows
    radius = nb.duplicate_radius(distances, config.duplicate_threshold)
    pairs = nb.duplicate_pairs(indices, distances, radius)
    set_of = nb.connected_sets(m, pairs)
    scores = nb.outlier_scores(distances)
    cut = nb.outlier_fence(scores)
    flagged = scores > cut
    if dataset.multi_label:
        own = dataset.indicators[rows]
        agreement = nb.tag_agreement(indices, own)
    else:
        own_labels = dataset.labels[rows]
        votes = nb.neighbour_votes(indices, own_labels, dataset.n_classes)
        agreement = nb.knn_agreement(votes, k, own_labels)
    scale = getattr(neighbours, "scale", 1.0)
    duplicates = _duplicates_section(dataset, embedded, set_of, pairs, radius * scale, config)
    outliers = _outliers_section(dataset, embedded, scores, flagged, cut)
    info = NeighboursSection(
        source=embedded.source,
        rows=int(m),
        dimensions=int(embedded.vectors.shape[1]),
        k=k,
        distance=config.distance,
        search=neighbours.method,  # type: ignore[attr-defined]
        measured_recall=neighbours.recall,  # type: ignore[attr-defined]
        mean_agreement=float(agreement.mean()),
        rows_agreeing_below_half=int(np.count_nonzero(agreement < 0.5)),
        seconds=round(seconds + time.perf_counter() - started, 3),
    )
    per_row_set = np.full(n, -1, dtype=np.int64)
    per_row_set[rows] = set_of
    per_row_score = np.full(n, np.nan, dtype=np.float32)
    per_row_score[rows] = scores
    per_row_flag = np.zeros(n, dtype=bool)
    per_row_flag[rows] = flagged
    per_row_agreement = np.full(n, np.nan, dtype=np.float32)
    per_row_agreement[rows] = agreement
    projection = _projection(dataset, embedded, set_of, flagged, agreement)
    return Neighbourhood(
        duplicates, outliers, info, per_row_set, per_row_score, per_row_flag,
        per_row_agreement, embedded.warnings, projection,
    )  # fmt: skip


def _projection(
    dataset: Dataset,
    embedded: Embedded,
    set_of: np.ndarray,
    flagged: np.ndarray,
    agreement: np.ndarray,
) -> dict[str, list]:
    """The first two principal components of a seeded sample of rows (every outlier and
    duplicate-set member first, up to a tenth of the sample each), for the HTML figure."""
    m = embedded.rows.size
    rng = np.random.default_rng(0)
    marked = [np.flatnonzero(flagged), np.flatnonzero(set_of >= 0)]
    chosen = [rng.permutation(rows)[: PROJECTED_ROWS // 10] for rows in marked]
    rest = rng.choice(m, size=min(m, PROJECTED_ROWS), replace=False)
    sample = np.unique(np.concatenate([*chosen, rest]))[: PROJECTED_ROWS + PROJECTED_ROWS // 5]
    vectors = embedded.vectors[sample].astype(np.float64)
    vectors -= vectors.mean(axis=0)
    _, _, axes = np.linalg.svd(vectors, full_matrices=False)
    points = (
        vectors @ axes[:2].T if axes.shape[0] >= 2 else np.c_[vectors[:, :1], 0 * vectors[:, :1]]
    )
    labels = _label_codes(dataset, embedded.rows[sample]) if not dataset.multi_label else None
    return {
        "x": points[:, 0].round(5).tolist(),
        "y": points[:, 1].round(5).tolist(),
        "label": [] if labels is None else labels.tolist(),
        "classes": list(dataset.classes),
        "outlier": flagged[sample].tolist(),
        "duplicate": (set_of[sample] >= 0).tolist(),
        "disagrees": (agreement[sample] < 0.5).tolist(),
        "every_row": bool(sample.size == m),
    }


def _label_codes(dataset: Dataset, rows: np.ndarray) -> np.ndarray:
    """A code per row, equal for equal labels (label sets when multi-label)."""
    if dataset.multi_label:
        return label_set_codes(dataset.indicators[rows])
    return dataset.labels[rows]


def _label_text(dataset: Dataset, rows: np.ndarray) -> list[str]:
    """The labels of a few rows as text (a multi-label set as 'a|b', '(none)' when empty)."""
    if dataset.multi_label:
        names = np.array(dataset.classes)
        return ["|".join(names[t.astype(bool)]) or "(none)" for t in dataset.indicators[rows]]
    return [dataset.classes[i] for i in dataset.labels[rows]]


def _duplicates_section(
    dataset: Dataset,
    embedded: Embedded,
    set_of: np.ndarray,
    pairs: np.ndarray,
    radius: float,
    config: ScanConfig,
) -> NearDuplicatesSection:
    """The sets, which conflict (labels differ) and which leak (span a group column's values)."""
    in_set = np.flatnonzero(set_of >= 0)
    n_sets = int(set_of.max()) + 1 if in_set.size else 0
    member_sets = set_of[in_set]
    codes = _label_codes(dataset, embedded.rows[in_set])
    conflicting = _spans(member_sets, codes, n_sets)
    groups = dataset.groups
    leaks: dict[str, np.ndarray] = {}
    if groups is not None:
        for column in groups.columns:
            values = groups[column].gather(embedded.rows[in_set])
            codes = values.cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
            known = (values != NO_GROUP).to_numpy()  # a row without a value shows no leak
            leaks[column] = _spans(member_sets[known], codes[known], n_sets)
    leaking_any = np.zeros(n_sets, dtype=bool)
    for spans in leaks.values():
        leaking_any |= spans
    sizes = np.bincount(member_sets, minlength=n_sets) if n_sets else np.zeros(0, np.int64)
    order = _shown_sets(conflicting, leaking_any)
    shown = [
        _describe_set(dataset, embedded, int(s), set_of, bool(conflicting[s]), leaks) for s in order
    ]
    return NearDuplicatesSection(
        distance=config.distance,
        threshold=float(config.duplicate_threshold),
        radius=float(radius),
        pairs=int(pairs.shape[0]),
        sets=n_sets,
        rows_in_sets=int(in_set.size),
        largest_set=int(sizes.max()) if n_sets else 0,
        conflicting_sets=int(conflicting.sum()),
        rows_in_conflicting_sets=int(conflicting[member_sets].sum()) if n_sets else 0,
        leakage=[
            SetLeakage(column, int(spans.sum()), int(spans[member_sets].sum()))
            for column, spans in leaks.items()
        ],
        leaking_sets=int(leaking_any.sum()),
        examples=shown,
    )


def _shown_sets(conflicting: np.ndarray, leaking: np.ndarray) -> np.ndarray:
    """The sets the report lists: leaking ones (up to half), then conflicting ones, then the
    largest; so neither kind hides the other (set numbers are by size already)."""
    everything = np.arange(conflicting.size)
    leaks = everything[leaking][: SHOWN_SETS // 2]
    conflicts = everything[conflicting & ~np.isin(everything, leaks)]
    rest = everything[~np.isin(everything, leaks) & ~np.isin(everything, conflicts)]
    return np.concatenate([leaks, conflicts, rest])[:SHOWN_SETS]


def _spans(member_sets: np.ndarray, codes: np.ndarray, n_sets: int) -> np.ndarray:
    """Per set, whether its members hold more than one distinct code."""
    if n_sets == 0:
        return np.zeros(0, dtype=bool)
    codes = np.asarray(codes, dtype=np.int64)
    low = np.full(n_sets, np.iinfo(np.int64).max)
    high = np.full(n_sets, np.iinfo(np.int64).min)
    np.minimum.at(low, member_sets, codes)
    np.maximum.at(high, member_sets, codes)
    return high > low


def _describe_set(
    dataset: Dataset,
    embedded: Embedded,
    number: int,
    set_of: np.ndarray,
    conflicting: bool,
    leaks: dict[str, np.ndarray],
) -> DuplicateSet:
    members = np.flatnonzero(set_of == number)
    rows = embedded.rows[members]
    text = _label_text(dataset, rows)
    shown = rows[:SHOWN_IDS]
    groups = {}
    if dataset.groups is not None:
        for column in dataset.groups.columns:
            groups[column] = sorted(set(dataset.groups[column].gather(rows).to_list()))
    return DuplicateSet(
        set=number,
        size=int(members.size),
        ids=dataset.ids.gather(shown).to_list(),
        labels=text[:SHOWN_IDS],
        distinct_labels=sorted(set(text)),
        conflicting=conflicting,
        leaks=[c for c, spans in leaks.items() if spans[number]],
        groups=groups,
    )


def _outliers_section(
    dataset: Dataset, embedded: Embedded, scores: np.ndarray, flagged: np.ndarray, cut: float
) -> OutliersSection:
    worst = np.argsort(-scores, kind="stable")[:SHOWN_OUTLIERS]
    text = _label_text(dataset, embedded.rows[worst])
    return OutliersSection(
        fence=float(cut),
        flagged=int(flagged.sum()),
        share=float(flagged.mean()),
        median_score=1.0,
        worst=[
            OutlierRow(
                dataset.ids[int(embedded.rows[i])], text[j], float(scores[i]), bool(flagged[i])
            )
            for j, i in enumerate(worst)
        ],
    )


def with_neighbourhood(
    table: LabelTable,
    matrices: list[ScoreMatrix],
    vocabulary: list[str],
    config: ScanConfig,
    warnings: list[str],
) -> Dataset:
    """The dataset with what its rows' nearest neighbours say attached (`neighbourhood`); with
    no predictions, the neighbours' labels are its scores (the embedded rows only)."""
    from labelaudit.pipelines.models import scored_dataset

    assert config.embeddings is not None
    started = time.perf_counter()
    if matrices:
        dataset = scored_dataset(table, matrices, vocabulary, config, warnings)
        embedded = load_embedded(config.embeddings, table, dataset.ids, config)
        neighbours = search(embedded, config)
    else:
        base = build_dataset(table, None, vocabulary, extra_warnings=warnings)
        embedded = load_embedded(config.embeddings, table, base.ids, config, scored=False)
        neighbours = search(embedded, config)
        scores = knn_scores(embedded, neighbours, base.labels, base.indicators, vocabulary)
        if embedded.rows.size < base.n_samples:  # --on-missing drop: the embedded rows only
            table = _only_rows(table, embedded.rows)
        dataset = build_dataset(table, scores, vocabulary, extra_warnings=warnings)
        embedded = replace(embedded, rows=np.arange(embedded.rows.size))
    seconds = time.perf_counter() - started
    found = analyse(dataset, embedded, neighbours, config, seconds)
    return replace(dataset, neighbourhood=found, warnings=dataset.warnings + found.warnings)


def _only_rows(table: LabelTable, rows: np.ndarray) -> LabelTable:
    """The labels table cut to these labeled rows (indices among its labeled rows), and its
    unlabeled rows (still counted as rows without a label)."""
    keep = table.null_mask.copy()
    keep[np.flatnonzero(~table.null_mask)[rows]] = True
    mask = pl.Series(keep)
    return replace(
        table,
        ids=table.ids.filter(mask),
        values=table.values.filter(mask),
        null_mask=table.null_mask[keep],
        groups=table.groups.filter(mask) if table.groups is not None else None,
    )
