"""Read the labels table: ids, one label per row (multi-class) or a set of labels (multi-label)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from labelaudit._text import count
from labelaudit.errors import InputError, SchemaError
from labelaudit.io.tables import read_table, table_columns

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
    boolean_labels: bool = False
    warnings: tuple[str, ...] = ()
    groups: pl.DataFrame | None = None  # the --group-col columns, one row a file row

    @property
    def n_rows(self) -> int:
        return self.ids.len()


def describe_ids(ids: pl.Series, mask: np.ndarray | None = None, limit: int = 5) -> str:
    """The first few ids (where `mask` is true) as text for an error or a warning."""
    chosen = ids if mask is None else ids.filter(pl.Series(mask))
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in chosen.head(limit))
    more = chosen.len() - min(limit, chosen.len())
    return shown + (f" and {more:,} more" if more > 0 else "")


def load_labels(
    source: str | os.PathLike[str] | pl.DataFrame,
    *,
    id_col: str = "id",
    label_col: str = "label",
    label_sep: str | None = None,
    id_col_required: bool = False,
    input_format: str | None = None,
    group_cols: tuple[str, ...] = (),
    optional_group_cols: tuple[str, ...] = (),
) -> LabelTable:
    """Read the labels from a path or a DataFrame and check the columns it needs; `group_cols`
    (which must be there) and `optional_group_cols` (when there) are kept as `groups`."""
    if id_col == label_col:
        raise SchemaError(
            f"--id-col and --label-col both name '{label_col}'; the id and the label are two "
            "columns."
        )
    if isinstance(source, pl.DataFrame):
        frame, name = source, "labels DataFrame"
    else:
        frame = read_table(
            source,
            "labels",
            input_format,
            ids=(id_col,),
            label=label_col,
            keep=(id_col, label_col, *group_cols, *optional_group_cols),
        )  # fmt: skip: a labels table's other columns (paths, metadata) are not read
        name = str(source)

    def every_column() -> list[str]:  # the file's, for messages (only two columns are read)
        if isinstance(source, pl.DataFrame):
            return source.columns
        return table_columns(source, "labels", input_format)

    if label_col not in frame.columns:
        raise SchemaError(
            f"The labels in '{name}' have no column '{label_col}'. Columns found: "
            f"{', '.join(every_column())}. Name the label column with --label-col."
        )
    if frame.height == 0:
        raise InputError(
            f"The labels in '{name}' have no rows. Give a table with one row a sample."
        )
    ids, has_ids = _read_ids(frame, name, id_col, id_col_required, every_column)
    raw = _usable_label_column(frame[label_col], name, label_col)
    if label_sep is not None and label_sep.strip() == "":
        raise InputError(
            f"--label-sep {label_sep!r} is empty or blank; give the character that separates "
            "labels in one cell, e.g. --label-sep '|'."
        )
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
            f"({count(frame.height, 'row')}). Check --label-col and the file's contents."
        )
    boolean = frame[label_col].dtype == pl.Boolean
    notes = _check_label_texts(values, name, label_col) if task == MULTICLASS else ()
    groups = _group_columns(
        frame, name, group_cols, optional_group_cols, (id_col, label_col), every_column
    )
    return LabelTable(name, ids, has_ids, task, values, null_mask, integer, boolean, notes, groups)


def _group_columns(
    frame: pl.DataFrame,
    name: str,
    wanted: tuple[str, ...],
    optional: tuple[str, ...],
    taken: tuple[str, str],
    every_column: Any,
) -> pl.DataFrame | None:
    """The grouping columns as text (a null is its own group, shown as '(none)')."""
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"--group-col names {', '.join(repr(c) for c in missing)}, which the labels "
            f"'{name}' do not have. Columns found: {', '.join(every_column()[:20])}."
        )
    clash = [c for c in wanted if c in taken]
    if clash:
        raise SchemaError(
            f"--group-col '{clash[0]}' is the id or the label column; a group is another "
            "column of the labels (a split, a source, an annotator)."
        )
    chosen = [*wanted, *(c for c in optional if c in frame.columns and c not in taken)]
    if not chosen:
        return None
    # Empty text and float NaN are missing values too: all of them are the group '(none)'.
    return frame.select(
        pl.when(pl.col(c).cast(pl.String).str.strip_chars().is_in(["", "NaN", "nan"]))
        .then(None)
        .otherwise(pl.col(c).cast(pl.String))
        .fill_null("(none)")
        .alias(c)
        for c in dict.fromkeys(chosen)
    )


JSON_LIST = r'^\[\s*(\]|("[^"]*"|-?\d+)(\s*,\s*("[^"]*"|-?\d+))*\s*\])$'
JSON_OBJECT = r'^\{\s*("[^"]*"\s*:.*)?\}$'  # a record, as polars writes one into a text column
SEPARATORS = ("|", ";", ",")


def _check_label_texts(values: pl.Series, name: str, label_col: str) -> tuple[str, ...]:
    """One label a row, as read: a JSON list or record in the text (a JSON-lines column mixing
    single labels with lists or records) is an error; separators in many labels get a hint
    (--label-sep)."""
    if values.dtype != pl.String:
        return ()
    distinct = values.drop_nulls().unique()
    lists = distinct.filter(distinct.str.contains(JSON_LIST))
    if lists.len():
        raise SchemaError(
            f"The label column '{label_col}' of '{name}' mixes single labels with lists (e.g. "
            f"{lists[0]}). Give every row a list (multi-label) or every row one label."
        )
    records = distinct.filter(distinct.str.contains(JSON_OBJECT))
    if records.len():
        raise SchemaError(
            f"The label column '{label_col}' of '{name}' mixes single labels with records (e.g. "
            f"{records[0]}). A label is a class name or an integer: give every row one."
        )
    notes = []
    for sep in SEPARATORS:
        holding = int(distinct.str.contains(sep, literal=True).sum())
        if holding and holding >= max(2, distinct.len() // 4):
            notes.append(
                f"{count(holding, 'distinct label')} of '{name}' contain '{sep}' (e.g. "
                f"{distinct.filter(distinct.str.contains(sep, literal=True))[0]!r}): if a row "
                f"holds several labels, pass --label-sep '{sep}'."
            )
            break
    return tuple(notes)


def _read_ids(
    frame: pl.DataFrame,
    name: str,
    id_col: str,
    required: bool,
    every_column: Callable[[], list[str]],
) -> tuple[pl.Series, bool]:
    if id_col not in frame.columns:
        if required:
            raise SchemaError(
                f"The labels in '{name}' have no id column '{id_col}'. Columns found: "
                f"{', '.join(every_column())}. Name the id column with --id-col, or leave it "
                "out to use the row number as the id."
            )
        return pl.Series("id", np.arange(frame.height, dtype=np.int64)), False
    return checked_ids(frame[id_col], id_col, f"'{name}'"), True


def checked_ids(column: pl.Series, id_col: str, where: str) -> pl.Series:
    """An id column as the join needs it: scalars (no lists or records), none null or NaN."""
    if column.dtype.is_nested() or isinstance(column.dtype, pl.Binary | pl.Object | pl.Null):
        raise SchemaError(
            f"The id column '{id_col}' of {where} holds {column.dtype} values; an id is one "
            "scalar per row (a number or a string). Check --id-col."
        )
    ids = column.rename("id")
    missing = ids.is_null()
    if ids.dtype.is_float():
        missing = missing | ids.is_nan()
    if missing.any():
        first = np.flatnonzero(missing.to_numpy())[:5].tolist()
        raise InputError(
            f"The id column '{id_col}' of {where} has {int(missing.sum())} empty values (first "
            f"at rows {first}, counting from 0). Every row needs an id; fill them or drop the "
            "column."
        )
    return ids


def class_names(values: pl.Series, name: str, column: str, what: str, flag: str) -> pl.Series:
    """Scalar class values from elsewhere (e.g. top-k lists, exploded) named by the labels' one
    rule: integers by their decimal form, text stripped and in NFC, an empty name null;
    fractions and non-scalars are an error naming `what` `column` and the `flag` to check."""
    usable = _usable_label_column(values, name, column, what, flag)
    return _multiclass_values(usable).cast(pl.String)


def _usable_label_column(
    raw: pl.Series,
    name: str,
    label_col: str,
    what: str = "label column",
    flag: str = "--label-col",
) -> pl.Series:
    """The label column in a form classes can be named from, by one documented rule:

    - floats: NaN is a missing label; integer-valued floats (1.0) are integers (class "1");
      other fractions are an error (a class is a name or an integer, not a measurement);
    - booleans: classes "False" and "True" (see `align_boolean_names` for score columns);
    - nested records (structs), binary and other non-scalar types are an error.
    """
    dtype = raw.dtype
    if isinstance(dtype, pl.List | pl.Array):
        inner = dtype.inner
        if isinstance(inner, pl.List | pl.Array | pl.Struct):
            raise SchemaError(
                f"The {what} '{label_col}' of '{name}' holds lists of {inner}; multi-label "
                "labels are a list of class names or integers."
            )
        return raw
    if isinstance(dtype, pl.Struct | pl.Binary | pl.Object | pl.Null):
        raise SchemaError(
            f"The {what} '{label_col}' of '{name}' holds {dtype} values; a label is a class "
            "name or an integer (or, for multi-label, a list of them or a string split by "
            f"--label-sep). Check {flag}."
        )
    if dtype.is_float() or dtype.is_decimal():
        values = raw.cast(pl.Float64)
        finite = values.fill_nan(None)
        fractional = finite.is_not_null() & (
            finite.is_infinite() | (finite != finite.round(0)) | (finite.abs() >= 2.0**63)
        )
        if fractional.any():
            example = finite.filter(fractional).unique(maintain_order=True).head(3).to_list()
            raise SchemaError(
                f"The {what} '{label_col}' of '{name}' holds numbers that are not integers "
                f"(e.g. "
                f"{', '.join(str(v) for v in example)}); a label is a class name or an integer. "
                f"Check {flag}."
            )
        return finite.cast(pl.Int64).rename(raw.name)
    if dtype == pl.Boolean:
        return raw.replace_strict({False: "False", True: "True"}, return_dtype=pl.String)
    return raw


def _multiclass_values(raw: pl.Series) -> pl.Series:
    if raw.dtype.is_integer():
        # Integer labels stay integers (their string form names the class); no blanks possible.
        return raw.cast(pl.Int64).rename("label")
    return class_name_text(raw).rename("label")


def class_name_text(values: pl.Series) -> pl.Series:
    """Text as it names a class: surrounding blanks dropped, Unicode NFC, empty as null. So a
    composed and a decomposed "café", or "cat " and "cat", are one class wherever labels are
    compared (scan, diff, gate, review; the same rule as multi-label elements, prediction
    columns and --classes)."""
    text = values.cast(pl.String).str.strip_chars().str.normalize("NFC")
    return pl.select(pl.when(text == "").then(None).otherwise(text).alias(values.name)).to_series()


def _multilabel_from_lists(raw: pl.Series) -> pl.Series:
    if isinstance(raw.dtype, pl.Array):
        raw = raw.cast(pl.List(raw.dtype.inner))
    as_text = raw.cast(pl.List(pl.String))
    return _clean_elements(as_text).rename("label")


def _multilabel_from_strings(raw: pl.Series, sep: str) -> pl.Series:
    return _clean_elements(raw.cast(pl.String).str.split(sep)).rename("label")


def _clean_elements(lists: pl.Series) -> pl.Series:
    """Each element stripped of surrounding blanks and in Unicode NFC; empty and null elements
    dropped."""
    stripped = pl.element().str.strip_chars().str.normalize("NFC")
    return lists.list.eval(stripped.filter(stripped.is_not_null() & (stripped != "")))


def _inner_is_integer(dtype: pl.DataType) -> bool:
    inner = getattr(dtype, "inner", None)
    return bool(inner is not None and inner.is_integer())
