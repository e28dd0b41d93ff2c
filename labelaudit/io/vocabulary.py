"""The class vocabulary: which classes a scan has and in what order (a fixed list, the score
columns and the labels), and the checks that keep a stray numeric column from becoming a class."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace

import numpy as np
import polars as pl

from labelaudit._text import agree, count
from labelaudit.errors import InputError
from labelaudit.io.labels import MULTILABEL, LabelTable, describe_ids
from labelaudit.io.predictions import ScoreMatrix


def resolve_classes(
    table: LabelTable, scores: ScoreMatrix | None, fixed: list[str] | None
) -> tuple[list[str], list[str]]:
    """The class vocabulary and any warnings: `fixed` exactly, else scores' columns ∪ labels."""
    present = _label_classes(table)
    warnings: list[str] = []
    if fixed is not None:
        unknown = sorted(set(present) - set(fixed))
        if unknown:
            raise InputError(
                f"{count(len(unknown), 'label value')} in '{table.source}' "
                f"{agree(len(unknown), 'is', 'are')} not in --classes: "
                f"{', '.join(unknown[:10])}. Add them to the classes file or fix the labels."
            )
        if scores is not None and getattr(scores, "topk", None) is not None:
            _check_complete_lists(scores, len(fixed))
        return list(fixed), warnings
    if scores is not None and getattr(scores, "topk", None) is not None:
        if table.task == MULTILABEL:
            raise InputError(
                f"The predictions '{scores.source}' are top-k lists, which hold one "
                "distribution over the classes a row: multi-label labels need one score per class."
            )
        known = set(present)
        if present and not known & set(scores.columns):
            raise InputError(
                f"No class of the top-k lists in '{scores.source}' is a label of "
                f"'{table.source}' (lists: {', '.join(scores.columns[:5]) or 'no class at all'}"
                f"; labels: {', '.join(sorted(known)[:5])}), so nothing can be measured. Check "
                "that both name the classes the same way (`score --top-k` writes the names of "
                "--classes)."
            )
        strangers = [c for c in scores.columns if c not in known]
        if strangers:
            raise InputError(
                f"The top-k lists of '{scores.source}' name {count(len(strangers), 'class')} "
                f"that no label of '{table.source}' has: {', '.join(strangers[:10])}. Classes "
                "with no labeled sample change the averages, so they are taken only from a "
                "list of every class: pass --classes FILE (the model's classes, one a line)."
            )
        _check_complete_lists(scores, len(present))
        return _sorted_classes(present, table.integer_labels), warnings
    if scores is not None and scores.matrix is None:
        # A wide table's class columns are the labels' classes: any other numeric column (a
        # fold, a pandas index) would otherwise become a phantom class and change every figure.
        known = set(present)
        # An unnamed column (a pandas index saved with to_csv) cannot be a class: no label is
        # empty. It is left out, and said.
        unnamed = [c for c in scores.columns if c == ""]
        if unnamed:
            warnings.append(
                f"The predictions '{scores.source}' have an unnamed numeric column (a saved "
                "index?); it is not a class and was ignored."
            )
        skipped = getattr(scores, "skipped_label_col", None)
        if skipped is not None and skipped in known:
            raise InputError(
                f"The numeric column '{skipped}' of the predictions '{scores.source}' is read as "
                f"the label column, but '{skipped}' is also a class of the labels in "
                f"'{table.source}', so its scores would be lost. Rename the labels' column and "
                "pass its name with --label-col (the predictions' column is then a class)."
            )
        strangers = [c for c in scores.columns if c not in known and c != ""]
        if strangers:
            scored = len(scores.columns) - len(strangers)
            raise InputError(_columns_message(scores.source, table.source, strangers, scored))
        columns = [c for c in scores.columns if c != ""]
        extra = [c for c in _sorted_classes(present, table.integer_labels) if c not in columns]
        text = [c for c in extra if c in getattr(scores, "text_columns", ())]
        if text:
            raise InputError(
                f"The predictions '{scores.source}' have {count(len(text), 'column')} named "
                f"like {'a class' if len(text) == 1 else 'classes'} of the labels that "
                f"{'holds' if len(text) == 1 else 'hold'} values that are not numbers: "
                f"{', '.join(repr(c) for c in text[:10])}. A class's scores must be numbers "
                "(a missing one empty, NA or nan); fix the values that are not."
            )
        if extra:
            warnings.append(
                f"{count(len(extra), 'class')} in the labels {'has' if len(extra) == 1 else 'have'}"
                f" no score column in '{scores.source}' ({', '.join(extra[:10])}); "
                f"{'its' if len(extra) == 1 else 'their'} score is taken as 0."
            )
        return columns + extra, warnings
    if scores is not None:
        columns = list(scores.columns)
        unknown = sorted(set(present) - set(columns))
        if unknown:
            raise InputError(
                f"The labels hold values that are not among the {len(columns)} score columns of "
                f"'{scores.source}' (named {columns[0]}..{columns[-1]}): "
                f"{', '.join(unknown[:10])}. "
                "Pass --classes FILE with one class name per score column, in order."
            )
        return columns, warnings
    return _sorted_classes(present, table.integer_labels), warnings


BOOLEAN_NAMES = (("False", "True"), ("false", "true"), ("0", "1"))


def align_boolean_names(table: LabelTable, scores: ScoreMatrix | None) -> LabelTable:
    """Boolean labels take the names their score columns use (False/True, false/true or 0/1,
    the first pair present in the columns); "False"/"True" otherwise."""
    if not table.boolean_labels or scores is None or table.task == MULTILABEL:
        return table
    columns = set(scores.columns)
    for names in BOOLEAN_NAMES:
        if set(names) & columns:
            mapping = dict(zip(("False", "True"), names, strict=True))
            values = table.values.replace(mapping)
            return replace(table, values=values)
    return table


def _check_complete_lists(scores: ScoreMatrix, n_classes: int) -> None:
    """A top-k list naming every class leaves no mass to share: its probabilities must sum to
    1 (within a distribution's tolerance), or nothing makes the row a distribution."""
    from labelaudit.core.scores import DISTRIBUTION_TOLERANCE

    topk = scores.topk
    lengths = topk.lengths
    short = (lengths >= n_classes) & (topk.total < 1 - DISTRIBUTION_TOLERANCE)
    if short.any():
        ids = scores.ids if scores.ids is not None else pl.Series("id", np.arange(lengths.size))
        raise InputError(
            f"{count(int(short.sum()), 'row')} of the top-k lists in '{scores.source}' name every "
            f"class but their probabilities sum to less than {1 - DISTRIBUTION_TOLERANCE:g} (1 "
            "less the tolerance of a distribution; ids "
            f"{describe_ids(ids, short)}): top-k scores must be probabilities."
        )


def _label_classes(table: LabelTable) -> list[str]:
    values = table.values.drop_nulls()
    if table.task == MULTILABEL:
        values = values.explode().drop_nulls()
    return values.unique().cast(pl.String).to_list()


def _sorted_classes(names: list[str], integer: bool) -> list[str]:
    if integer:
        return sorted(names, key=int)
    return sorted(names)


def _columns_message(source: str, labels: str, strangers: list[str], class_columns: int) -> str:
    """Numeric columns that are no class of the labels. With at most one class column left they
    must be classes (a model scores at least two), so only --classes is advised; else
    --ignore-cols too, with the whole list so the hint can be pasted."""
    shown = ", ".join(repr(c) for c in strangers[:10])
    more = f" and {len(strangers) - 10:,} more" if len(strangers) > 10 else ""
    head = (
        f"The predictions '{source}' have {count(len(strangers), 'numeric column')} that "
        f"{'is' if len(strangers) == 1 else 'are'} not a class of the labels in '{labels}': "
        f"{shown}{more}. Class columns are named by the labels' values."
    )
    if class_columns <= 1:
        return (
            f"{head} Only {count(class_columns, 'column')} {'is' if class_columns == 1 else 'are'}"
            " a class the labels have, so these are classes with no labeled sample: list every "
            "class, in the model's order, with --classes FILE."
        )
    if any("," in c for c in strangers):  # a flag splits on commas: name them in a list
        listed = ", ".join(json.dumps(c, ensure_ascii=False) for c in strangers)
        drop = f"list them in the configuration file: ignore_cols = [{listed}]"
    else:
        drop = f"pass --ignore-cols {shlex.quote(','.join(strangers))}"
    return (
        f"{head} If these are classes with no labeled sample, list every class with --classes "
        f"FILE; if they are not scores (a fold, an index), {drop}."
    )
