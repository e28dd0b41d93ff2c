"""Read the labels table: ids, one label per row (multi-class) or a set of labels (multi-label)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import polars as pl

from labelaudit.errors import InputError, SchemaError
from labelaudit.io.tables import read_table

MULTICLASS = "multiclass"
MULTILABEL = "multilabel"


@dataclass(frozen=True)
class LabelTable:
    """The labels as read: every row of the file, nulls marked, not yet encoded to classes."""

    source: str
    ids: pl.Series
    has_id_column: bool
    task: str
    values: pl.Series
    null_mask: np.ndarray
    integer_labels: bool

    @property
    def n_rows(self) -> int:
        return self.ids.len()


def describe_ids(ids: pl.Series, mask: np.ndarray | None = None, limit: int = 5) -> str:
    """The first few ids (where `mask` is true) as text for an error or a warning."""
    chosen = ids if mask is None else ids.filter(pl.Series(mask))
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in chosen.head(limit))
    more = chosen.len() - min(limit, chosen.len())
    return shown + (f" and {more} more" if more > 0 else "")


def load_labels(
    source: str | os.PathLike[str] | pl.DataFrame,
    *,
    id_col: str = "id",
    label_col: str = "label",
    label_sep: str | None = None,
    id_col_required: bool = False,
    input_format: str | None = None,
) -> LabelTable:
    """Read the labels from a path or a DataFrame and check the columns it needs."""
    if isinstance(source, pl.DataFrame):
        frame, name = source, "labels DataFrame"
    else:
        frame, name = read_table(source, "labels", input_format), str(source)
    if frame.height == 0:
        raise InputError(
            f"The labels in '{name}' have no rows. Give a table with one row a sample."
        )
    if label_col not in frame.columns:
        raise SchemaError(
            f"The labels in '{name}' have no column '{label_col}'. Columns found: "
            f"{', '.join(frame.columns)}. Name the label column with --label-col."
        )
    ids, has_ids = _read_ids(frame, name, id_col, id_col_required)
    raw = frame[label_col]
    if isinstance(raw.dtype, pl.List | pl.Array):
        values, integer = _multilabel_from_lists(raw), _inner_is_integer(raw.dtype)
        task = MULTILABEL
    elif label_sep is not None:
        values, integer = _multilabel_from_strings(raw, label_sep), False
        task = MULTILABEL
    else:
        values, integer = _multiclass_values(raw), raw.dtype.is_integer()
        task = MULTICLASS
    null_mask = values.is_null().to_numpy()
    if null_mask.all():
        raise InputError(
            f"Every label in column '{label_col}' of '{name}' is null or empty "
            f"({frame.height} rows). Check --label-col and the file's contents."
        )
    return LabelTable(name, ids, has_ids, task, values, null_mask, integer)


def _read_ids(
    frame: pl.DataFrame, name: str, id_col: str, required: bool
) -> tuple[pl.Series, bool]:
    if id_col not in frame.columns:
        if required:
            raise SchemaError(
                f"The labels in '{name}' have no id column '{id_col}'. Columns found: "
                f"{', '.join(frame.columns)}. Name the id column with --id-col, or leave it out "
                "to use the row number as the id."
            )
        return pl.Series("id", np.arange(frame.height, dtype=np.int64)), False
    ids = frame[id_col].rename("id")
    nulls = ids.null_count()
    if nulls:
        first = np.flatnonzero(ids.is_null().to_numpy())[:5].tolist()
        raise InputError(
            f"The id column '{id_col}' of '{name}' has {nulls} empty values (first at rows "
            f"{first}, counting from 0). Every row needs an id; fill them or drop the column."
        )
    return ids, True


def _multiclass_values(raw: pl.Series) -> pl.Series:
    if raw.dtype.is_integer():
        # Integer labels stay integers (their string form names the class); no blanks possible.
        return raw.cast(pl.Int64).rename("label")
    text = raw.cast(pl.String)
    # An empty or blank label is as missing as a null one.
    return pl.select(
        pl.when(text.str.strip_chars() == "").then(None).otherwise(text).alias("label")
    ).to_series()


def _multilabel_from_lists(raw: pl.Series) -> pl.Series:
    if isinstance(raw.dtype, pl.Array):
        raw = raw.cast(pl.List(raw.dtype.inner))
    as_text = raw.cast(pl.List(pl.String))
    return as_text.list.eval(pl.element().drop_nulls()).rename("label")


def _multilabel_from_strings(raw: pl.Series, sep: str) -> pl.Series:
    text = raw.cast(pl.String)
    split = text.str.split(sep).list.eval(pl.element().str.strip_chars().filter(pl.element() != ""))
    return split.rename("label")


def _inner_is_integer(dtype: pl.DataType) -> bool:
    inner = getattr(dtype, "inner", None)
    return bool(inner is not None and inner.is_integer())
