"""Read a command's inputs: the labels table, each model's scores, and the class vocabulary."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import polars as pl

from labelaudit.config import ScanConfig
from labelaudit.errors import InputError
from labelaudit.io.labels import LabelTable, load_labels
from labelaudit.io.models import check_same_classes
from labelaudit.io.predictions import (
    ScoreMatrix,
    check_ignored_found,
    load_predictions,
    read_class_file,
)
from labelaudit.io.vocabulary import align_boolean_names, resolve_classes

Source = str | os.PathLike[str] | pl.DataFrame
ScoreSource = str | os.PathLike[str] | pl.DataFrame | np.ndarray
ScoreSources = ScoreSource | Sequence[ScoreSource] | None


def read_inputs(
    labels: Source,
    preds: ScoreSources,
    config: ScanConfig,
    classes: list[str] | None = None,
) -> tuple[LabelTable, list[ScoreMatrix], list[str], list[str]]:
    """The labels table, every model's scores, the class vocabulary, and the warnings so far.
    `classes` (the API's) is the list of class names, or a path to a classes file (a string
    would otherwise be read as a list of one-letter classes)."""
    if isinstance(classes, str | os.PathLike):
        classes = read_class_file(classes)
    fixed = list(classes) if classes is not None else None
    if fixed is None and config.classes is not None:
        fixed = read_class_file(config.classes)
    table = load_label_table(labels, config)
    matrices = load_score_matrices(preds, config, fixed)
    table = align_boolean_names(table, matrices[0] if matrices else None)
    vocabulary, warnings = resolve_classes(table, matrices[0] if matrices else None, fixed)
    return table, matrices, vocabulary, warnings


def score_sources(preds: ScoreSource | Sequence[ScoreSource] | None) -> list[ScoreSource]:
    """`preds` as a list of models' score sources: none, one, or several."""
    if preds is None:
        return []
    if isinstance(preds, list | tuple):
        return list(preds)
    return [preds]


def load_score_matrices(
    preds: ScoreSources,
    config: ScanConfig,
    classes: list[str] | None,
) -> list[ScoreMatrix]:
    """Every model's scores, read; several models must score the same classes."""
    matrices = [load_score_matrix(p, config, classes) for p in score_sources(preds)]
    check_ignored_found(matrices, config.ignore_cols)
    if config.scores in ("logits", "percent") and any(m.topk is not None for m in matrices):
        raise InputError(
            f"--scores {config.scores} does not apply to top-k predictions: their lists hold "
            "probabilities. Drop --scores (or pass --scores probs)."
        )
    if len(matrices) > 1:
        check_same_classes(matrices)
    return matrices


def load_label_table(labels: Source, config: ScanConfig) -> LabelTable:
    """Read a labels table with the configured columns and format."""
    return load_labels(
        labels,
        id_col=config.id_col,
        label_col=config.label_col,
        label_sep=config.label_sep,
        id_col_required=config.id_col != ScanConfig.id_col,
        input_format=None if config.input_format == "npy" else config.input_format,
        group_cols=config.group_cols,
        optional_group_cols=("split",) if config.embeddings and not config.group_cols else (),
    )


def load_score_matrix(
    preds: ScoreSource, config: ScanConfig, classes: list[str] | None
) -> ScoreMatrix:
    """Read model scores with the configured columns and format."""
    return load_predictions(
        preds,
        id_col=config.id_col,
        label_col=config.label_col,
        probs_col=config.probs_col,
        classes=classes,
        input_format=config.input_format,
        ignore_cols=config.ignore_cols,
        topk_cols=(config.topk_classes_col, config.topk_probs_col),
        stream_above=config.stream_above_mib * 2**20,
    )
