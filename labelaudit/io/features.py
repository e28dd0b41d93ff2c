"""Read a features table (or a .npy array) for `labelaudit score`: ids, a float32 matrix, labels.

Features are every numeric column but the id and the label, or one list column (--features-col).
Non-numeric feature columns and NaN / infinite values are errors, never silently dropped or zeroed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from math import prod

import numpy as np
import polars as pl

from labelaudit.errors import InputError, SchemaError
from labelaudit.io.labels import describe_ids
from labelaudit.io.tables import detect_format, expand_paths, read_table


@dataclass(frozen=True)
class FeatureSet:
    """Rows to score: ids, features (rows first, float32), and labels when the table has them."""

    source: str
    ids: pl.Series
    features: np.ndarray
    labels: pl.Series | None

    @property
    def n_rows(self) -> int:
        return self.features.shape[0]


def load_features(
    source: str | os.PathLike[str],
    *,
    id_col: str = "id",
    label_col: str = "label",
    features_col: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    input_format: str | None = None,
    role: str = "features",
    row_ids: pl.Series | None = None,
    id_required: bool = False,
) -> FeatureSet:
    """Read features from a table or a .npy array, checked and shaped for the model. `role`
    names the input in messages (features for `score`, embeddings for `scan`). A .npy's rows
    are named by `row_ids` in messages when as many (row-aligned ids); with `id_required`, a
    table without the id column is an error (row numbers would join to the wrong rows)."""
    name = str(source)
    first = expand_paths(source, role)[0]
    if detect_format(first, input_format, role) == "npy":
        features = _load_npy(first, role)
        ids = pl.Series("id", np.arange(features.shape[0]))
        if row_ids is not None and row_ids.len() == features.shape[0]:
            ids = row_ids
        labels = None
    else:
        frame = read_table(source, role, input_format, ids=(id_col,), label=label_col)
        if frame.height == 0:
            raise InputError(f"The {role} table '{name}' has no rows.")
        if id_required and id_col not in frame.columns:
            raise SchemaError(
                f"The {role} '{name}' have no id column '{id_col}' (columns: "
                f"{', '.join(frame.columns[:10])}), so their rows cannot be joined to the labels: "
                f"a row number is not an id. Name the id column '{id_col}' in both files (or "
                "pass --id-col), or give a .npy row-aligned with the labels."
            )
        ids = _ids(frame, id_col, name, role)
        labels = frame[label_col] if label_col in frame.columns else None
        features = _matrix(frame, name, id_col, label_col, features_col, role)
    _check_finite(features, ids, name, role)
    if input_shape is not None:
        features = _reshape(features, input_shape, name)
    return FeatureSet(name, ids, features, labels)


def _load_npy(path: str, role: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"The {role} file '{path}' could not be read as a .npy array: {exc}."
        ) from exc
    if array.ndim < 2 or array.shape[0] == 0:
        raise InputError(
            f"The {role} file '{path}' holds an array of shape {array.shape}; expected rows "
            "first and at least one value a row: (samples, values) or (samples, *input_shape)."
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise SchemaError(
            f"The {role} file '{path}' holds {array.dtype} values; {role} must be numeric."
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def _ids(frame: pl.DataFrame, id_col: str, name: str, role: str) -> pl.Series:
    if id_col not in frame.columns:
        return pl.Series("id", np.arange(frame.height))
    ids = frame[id_col].rename("id")
    if ids.null_count():
        raise InputError(
            f"The id column '{id_col}' of the {role} '{name}' has {ids.null_count()} empty "
            "values. Every row needs an id."
        )
    if ids.is_duplicated().any():
        repeated = ids.filter(ids.is_duplicated()).unique(maintain_order=True)
        raise InputError(
            f"The {role} '{name}' repeat ids ({describe_ids(repeated)}). Each row needs its "
            "own id, so it can be joined to its label."
        )
    return ids


def _matrix(
    frame: pl.DataFrame,
    name: str,
    id_col: str,
    label_col: str,
    features_col: str | None,
    role: str,
) -> np.ndarray:
    flag = "--features-col" if role == "features" else f"--{role}-col"
    lists = [c for c in frame.columns if isinstance(frame[c].dtype, pl.List | pl.Array)]
    if features_col is None and len(lists) == 1:
        features_col = lists[0]  # the one list column holds the vectors
    if features_col is None and len(lists) > 1:
        raise SchemaError(
            f"The {role} '{name}' have several list columns ({', '.join(lists[:5])}): name the "
            f"one with the vectors with {flag}."
        )
    if features_col is not None:
        return _from_list_column(frame, name, features_col, flag)
    candidates = [c for c in frame.columns if c not in (id_col, label_col)]
    non_numeric = [c for c in candidates if not frame[c].dtype.is_numeric()]
    if non_numeric:
        shown = ", ".join(f"'{c}' ({frame[c].dtype})" for c in non_numeric[:5])
        raise SchemaError(
            f"The {role} '{name}' have columns that are not numbers: {shown}. Every column but "
            f"the id ('{id_col}') and the label ('{label_col}') is a value of the vector; drop "
            f"the others, or keep the vectors in one list column (named with {flag} when there "
            "are several)."
        )
    if not candidates:
        raise SchemaError(
            f"The {role} '{name}' have no value columns (columns: {', '.join(frame.columns)})."
        )
    return frame.select(candidates).to_numpy(order="c").astype(np.float32, copy=False)


def _from_list_column(frame: pl.DataFrame, name: str, column: str, flag: str) -> np.ndarray:
    if column not in frame.columns:
        raise SchemaError(
            f"'{name}' has no column '{column}' ({flag}). Columns found: "
            f"{', '.join(frame.columns[:20])}."
        )
    series = frame[column]
    if isinstance(series.dtype, pl.Array):
        inner = series.dtype.inner
    elif isinstance(series.dtype, pl.List):
        inner = series.dtype.inner
        lengths = series.list.len()
        if lengths.null_count() or lengths.min() != lengths.max():
            raise SchemaError(
                f"The list column '{column}' of '{name}' holds lists of different lengths "
                f"({lengths.min()} to {lengths.max()}) or empty rows; every row needs the same "
                "number of features."
            )
        series = series.list.to_array(int(lengths[0]))
    else:
        raise SchemaError(
            f"The column '{column}' of '{name}' holds {series.dtype}, not a list of numbers."
        )
    if inner is None or not inner.is_numeric():
        raise SchemaError(
            f"The list column '{column}' of '{name}' holds {inner} values; they must be numeric."
        )
    return series.to_numpy().astype(np.float32, copy=False).reshape(frame.height, -1)


def _check_finite(features: np.ndarray, ids: pl.Series, name: str, role: str) -> None:
    bad_rows = ~np.isfinite(features.reshape(features.shape[0], -1)).all(axis=1)
    if bad_rows.any():
        raise InputError(
            f"The {role} '{name}' have NaN, infinite or empty values in {int(bad_rows.sum()):,} "
            f"rows (ids {describe_ids(ids, bad_rows)}). Impute or drop those rows first."
        )


def _reshape(features: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    width = prod(features.shape[1:])
    if prod(shape) != width:
        raise InputError(
            f"--input-shape {'x'.join(map(str, shape))} holds {prod(shape)} values, but each row "
            f"of '{name}' has {width} features."
        )
    return features.reshape(features.shape[0], *shape)
