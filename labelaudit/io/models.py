"""Several models' scores for one labels table: each joined on id, checked against the others,
and served as one weighted mean of probabilities that the statistics read like a single model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from labelaudit.core.ensemble import combine_probabilities
from labelaudit.core.scores import to_probabilities
from labelaudit.errors import InputError
from labelaudit.io.dataset import Dataset
from labelaudit.io.predictions import ScoreMatrix


@dataclass(frozen=True)
class ModelScores:
    """One model's scores aligned to a dataset's analyzed rows, and how they read."""

    matrix: ScoreMatrix
    positions: np.ndarray  # vocabulary index -> the model's column (-1: no column, score 0)
    score_row: np.ndarray | None  # dataset row -> the model's row (None: the same row)
    mode: str = "probs"  # probs or logits, once decided

    @property
    def source(self) -> str:
        return self.matrix.source

    def probabilities(self, rows: slice | np.ndarray, multi_label: bool) -> np.ndarray:
        """Probabilities of dataset `rows` in vocabulary order (a fresh block)."""
        return to_probabilities(self.raw(rows), self.mode, multi_label)

    def raw(self, rows: slice | np.ndarray) -> np.ndarray:
        """The model's raw scores of dataset `rows` in vocabulary order (a fresh block)."""
        if self.score_row is None:
            return self.matrix.take(rows, self.positions)
        source = self.score_row[rows]
        if source.size and bool((np.diff(source) == 1).all()):
            return self.matrix.take(slice(int(source[0]), int(source[-1]) + 1), self.positions)
        return self.matrix.take(source, self.positions)


class CombinedScores:
    """The weighted mean of several models' probabilities, read like one score matrix whose rows
    are the dataset's rows (so `Dataset.score_chunks` serves it unchanged)."""

    def __init__(
        self,
        models: Sequence[ModelScores],
        weights: np.ndarray,
        classes: list[str],
        multi_label: bool,
    ) -> None:
        self.models = list(models)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.columns = list(classes)
        self.multi_label = multi_label
        self.ids: pl.Series | None = None
        self.matrix = None
        self.frame = None
        self.source = " + ".join(m.source for m in self.models)
        self._n_rows = _n_rows(self.models[0])

    @property
    def n_rows(self) -> int:
        return self._n_rows

    def blocks(self, rows: slice | np.ndarray) -> list[np.ndarray]:
        """Each model's probabilities of dataset `rows`, in vocabulary order."""
        return [model.probabilities(rows, self.multi_label) for model in self.models]

    def take(self, rows: slice | np.ndarray, positions: np.ndarray) -> np.ndarray:
        """The combined probabilities of `rows` (positions are the identity: vocabulary order)."""
        return combine_probabilities(self.blocks(rows), self.weights)


def _n_rows(model: ModelScores) -> int:
    return model.matrix.n_rows if model.score_row is None else int(model.score_row.size)


def align_models(datasets: Sequence[Dataset]) -> list[ModelScores]:
    """Each model's Dataset (built from one labels table) as ModelScores on the first one's rows;
    the models must score the same rows: differing ids are an error naming the files."""
    first = datasets[0]
    for other in datasets[1:]:
        if other.ids.len() != first.ids.len() or not other.ids.equals(first.ids):
            raise InputError(_differing_rows(first, other))
    return [
        ModelScores(ds.scores, ds.class_positions, _dataset_to_score_row(ds)) for ds in datasets
    ]


def _dataset_to_score_row(dataset: Dataset) -> np.ndarray | None:
    if dataset.score_rows is None:
        return None
    mapping = np.empty(dataset.n_samples, dtype=np.int64)
    mapping[dataset.label_rows] = dataset.score_rows
    return mapping


def _differing_rows(first: Dataset, other: Dataset) -> str:
    a = set(first.ids.cast(pl.String).to_list())
    b = set(other.ids.cast(pl.String).to_list())
    only_a, only_b = sorted(a - b)[:5], sorted(b - a)[:5]
    return (
        f"The models' predictions score different rows: '{first.scores.source}' covers "
        f"{len(a):,} labeled rows and '{other.scores.source}' {len(b):,} (only in the first: "
        f"{', '.join(only_a) or 'none'}; only in the second: {', '.join(only_b) or 'none'}). "
        "Every --preds file must score the same samples."
    )


def check_same_classes(matrices: Sequence[ScoreMatrix]) -> None:
    """Every model scores the same classes (in any column order): an error naming the files and
    the classes that differ."""
    first = matrices[0]
    for other in matrices[1:]:
        missing = [c for c in first.columns if c not in set(other.columns)]
        extra = [c for c in other.columns if c not in set(first.columns)]
        if missing or extra:
            raise InputError(
                f"The predictions '{first.source}' and '{other.source}' score different classes "
                f"(only in the first: {', '.join(missing[:10]) or 'none'}; only in the second: "
                f"{', '.join(extra[:10]) or 'none'}). Every --preds file must score the same "
                "classes, one column (or list position) each."
            )
        if len(set(other.columns)) != len(other.columns) or len(other.columns) != len(
            first.columns
        ):
            raise InputError(
                f"The predictions '{other.source}' have {len(other.columns)} score columns and "
                f"'{first.source}' {len(first.columns)}; every model needs one per class."
            )
