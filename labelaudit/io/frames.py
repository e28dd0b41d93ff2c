"""Tables from other libraries as polars DataFrames, for the Python API: pandas DataFrames,
pyarrow Tables and Hugging Face `datasets.Dataset`s, through Arrow (no copy where Arrow allows).
None of them is a dependency: they are recognized by their type's module, never imported."""

from __future__ import annotations

from typing import Any

import polars as pl

from labelaudit.errors import InputError


def as_polars(source: Any) -> Any:
    """`source` as a polars DataFrame when it is another library's table; anything else (a
    path, a polars DataFrame, a NumPy array) as it is."""
    if isinstance(source, pl.DataFrame | str) or source is None:
        return source
    module = type(source).__module__.split(".")[0]
    kind = type(source).__name__
    try:
        if module == "pandas" and kind == "DataFrame":
            return pl.from_pandas(source)
        if module == "pyarrow" and kind in ("Table", "RecordBatch"):
            return pl.from_arrow(source)
        if module == "datasets" and kind == "Dataset":
            return pl.from_arrow(source.data.table)  # the dataset's own Arrow table
        if module == "polars" and kind == "LazyFrame":
            return source.collect()
    except (ValueError, TypeError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"The {module} {kind} could not be read as a table: {exc}.") from exc
    return source


def as_polars_all(sources: Any) -> Any:
    """`as_polars` of one source, or of each of a list (several models' scores)."""
    if isinstance(sources, list | tuple):
        return [as_polars(s) for s in sources]
    return as_polars(sources)
