"""`labelaudit review`: send the suspects of an issues file to people (Label Studio tasks, or a
CSV with a decision column), and apply their verdicts to the labels file. docs/review.md
documents the formats and every rule."""

from __future__ import annotations

import json
import numbers
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import polars as pl

from labelaudit._text import agree, count
from labelaudit.config import ScanConfig
from labelaudit.errors import ConfigError, InputError, SchemaError
from labelaudit.io.labels import class_names, describe_ids
from labelaudit.io.relabel import output_compressed, write_relabeled
from labelaudit.io.review_files import ACCEPT, CONTROL, KEEP, read_verdicts
from labelaudit.io.tables import (
    detect_format,
    expand_paths,
    read_table,
)

MODEL_VERSION = "labelaudit"
EVIDENCE = ("label_quality", "rank", "given_probability", "suggested_probability", "margin")
TARGETS = ("label-studio", "csv")  # `review export --to`: the CLI's choices, checked here too


def check_export_arguments(
    to: object, top: object, media_col: object, labels: object, output: object = None
) -> None:
    """The arguments of `review export` checked in one place, for the CLI and the API alike
    (`output` when given: its name must say what is written, .json or .csv)."""
    if not isinstance(to, str) or to not in TARGETS:
        raise ConfigError(f"Unknown --to {to!r}: give label-studio or csv.")
    wanted = ".json" if to == "label-studio" else ".csv"
    if output is not None and Path(str(output)).suffix.lower() != wanted:
        raise ConfigError(
            f"The output '{output}' does not end in {wanted}, but --to {to} writes "
            f"{wanted[1:].upper()}: name the file for what it holds."
        )
    if top is not None and (
        isinstance(top, bool) or not isinstance(top, numbers.Integral) or top < 1
    ):
        raise ConfigError(
            f"--top {top!r} is not a number of rows: give a whole number of at least 1 (the N "
            "most suspect rows), or none for every flagged suspect."
        )
    if media_col is not None and (not isinstance(media_col, str) or not media_col.strip()):
        raise ConfigError(f"--media-col {media_col!r} does not name a column.")
    if labels is not None and not isinstance(labels, str | os.PathLike):
        raise ConfigError(
            f"A path is needed for --labels (the labels file holding --media-col), not a "
            f"{type(labels).__name__}."
        )


def check_apply_arguments(ignore_unknown: object, classes: object) -> list[str] | None:
    """The arguments of `review apply` checked in one place; `classes` named by the rule
    `--classes FILE` is read by (blanks dropped, NFC), each once."""
    if not isinstance(ignore_unknown, bool | np.bool_):
        raise ConfigError(f"Give True or False for --ignore-unknown, not {ignore_unknown!r}.")
    if classes is None:
        return None
    if isinstance(classes, str) or not isinstance(classes, list | tuple):
        raise ConfigError(
            f"Give --classes FILE as a list of class names, not a {type(classes).__name__}."
        )
    if not all(isinstance(c, str) for c in classes):
        raise ConfigError("Give --classes FILE as a list of class names (text).")
    names = [unicodedata.normalize("NFC", c.strip()) for c in classes]
    if not names or not all(names):
        raise ConfigError("Give --classes FILE with at least one class, and no empty name.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"--classes FILE names some classes twice: {', '.join(repeated[:5])}. Each class "
            "must appear once."
        )
    return names


@dataclass(frozen=True)
class Exported:
    """What `review export` writes: the file's text, the labeling config, and a summary."""

    text: str
    label_config: str | None
    rows: int
    warnings: list[str]


def export_review(
    issues_path: str | pl.DataFrame,
    to: str,
    top: int | None,
    media_col: str | None,
    labels_path: str | None,
    config: ScanConfig,
) -> Exported:
    """The suspects to review (the top N by rank, or every flagged row) as Label Studio tasks
    or a CSV with an empty decision column."""
    check_export_arguments(to, top, media_col, labels_path)
    if isinstance(issues_path, pl.DataFrame):
        issues, issues_path = issues_path, "the issues DataFrame"
    else:
        issues = read_table(issues_path, "issues", None, ids=("id",))
    needed = {"id", "given_label", "suggested_label", "rank", "is_suspect"}
    missing = sorted(needed - set(issues.columns))
    if missing:
        raise SchemaError(
            f"'{issues_path}' is not an issues file of `labelaudit scan --issues-out`: it has no "
            f"column {', '.join(missing)}."
        )
    if "tag" in issues.columns:
        raise InputError(
            f"'{issues_path}' comes from a multi-label scan: review export and apply are "
            "single-label only for now."
        )
    chosen = issues.sort("rank")
    chosen = chosen.head(top) if top is not None else chosen.filter(pl.col("is_suspect"))
    warnings: list[str] = []
    if media_col:
        chosen = _with_media(chosen, media_col, labels_path, config)
        missing = int(chosen[media_col].null_count())
        if missing == chosen.height and missing:
            raise InputError(
                f"--media-col {media_col}: none of the {count(missing, 'row')} to review has "
                "one (check that --labels has the same ids)."
            )
        if missing:
            verb = "has" if missing == 1 else "have"
            warnings.append(f"{count(missing, 'row')} to review {verb} no {media_col}.")
    classes = sorted(
        set(issues["given_label"].cast(pl.String).drop_nulls().to_list())
        | set(issues["suggested_label"].cast(pl.String).drop_nulls().to_list())
    )
    if to == "csv":
        evidence = [c for c in EVIDENCE if c in chosen.columns]
        table = chosen.select(
            "id", "given_label", "suggested_label", *evidence, *([media_col] if media_col else [])
        ).with_columns(decision=pl.lit(None, dtype=pl.String))
        return Exported(table.write_csv(), None, table.height, warnings)
    tasks = [_task(row, media_col) for row in chosen.iter_rows(named=True)]  # the N shown
    return Exported(
        json.dumps(tasks, indent=1, default=str) + "\n",
        label_config(classes, media_col),
        len(tasks),
        warnings,
    )


def _with_media(
    chosen: pl.DataFrame, media_col: str, labels_path: str | None, config: ScanConfig
) -> pl.DataFrame:
    """The media column from the issues file, else from --labels joined on id."""
    if media_col in chosen.columns:
        return chosen
    if labels_path is None:
        raise InputError(
            f"--media-col {media_col}: the issues file has no such column; pass --labels LABELS "
            "(the labels file that has it) to take it from there."
        )
    labels = read_table(
        labels_path, "labels", None, ids=(config.id_col,), keep=(config.id_col, media_col)
    )
    if media_col not in labels.columns:
        raise SchemaError(f"--media-col {media_col}: '{labels_path}' has no such column.")
    if config.id_col not in labels.columns:  # row numbers are the ids, as in scan
        labels = labels.with_columns(pl.int_range(pl.len()).alias(config.id_col))
    labels = labels.rename({config.id_col: "id"}) if config.id_col != "id" else labels
    if labels["id"].dtype != chosen["id"].dtype:
        labels = labels.with_columns(pl.col("id").cast(pl.String))
        chosen = chosen.with_columns(pl.col("id").cast(pl.String))
    return chosen.join(labels.unique("id", keep="first"), on="id", how="left")


def _task(row: dict[str, Any], media_col: str | None) -> dict[str, Any]:
    """One Label Studio task: the data to show and the suggestion as a prediction."""
    data: dict[str, Any] = {"id": row["id"], "given_label": row["given_label"]}
    target = "text"
    if media_col:
        data["image"] = row.get(media_col)
        target = "image"
    else:
        data["text"] = f"{row['id']}: labeled {row['given_label']}"
    score = row.get("suggested_probability")
    return {
        "data": data,
        "predictions": [
            {
                "model_version": MODEL_VERSION,
                "score": float(score) if score is not None else None,
                "result": [
                    {
                        "from_name": CONTROL,
                        "to_name": target,
                        "type": "choices",
                        "value": {"choices": [row["suggested_label"]]},
                    }
                ],
            }
        ],
    }


def label_config_path(output: str | Path) -> str:
    """Where the labeling config is written beside the tasks: tasks.json ->
    tasks.label_config.xml."""
    return str(Path(output).with_suffix("")) + ".label_config.xml"


def label_config(classes: list[str], media_col: str | None) -> str:
    """The Label Studio labeling config matching the tasks: the item (image or text), its given
    label, and one choice per class."""
    target = "image" if media_col else "text"
    shown = '  <Image name="image" value="$image"/>' if media_col else (
        '  <Text name="text" value="$text"/>'
    )  # fmt: skip
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in classes)
    return (
        "<View>\n"
        f"{shown}\n"
        '  <Header value="Given label: $given_label"/>\n'
        f'  <Choices name="{CONTROL}" toName="{target}" choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


@dataclass(frozen=True)
class Applied:
    """What `review apply` did."""

    accepted: int  # relabeled to the suggestion
    kept: int  # the given label confirmed
    relabeled_other: int  # to a class that was neither
    unchanged: int  # not reviewed, skipped or cancelled
    unknown_ids: int
    changed: int  # rows of the labels file whose label changed
    warnings: list[str] = field(default_factory=list)


def apply_review(
    review_path: str,
    labels_path: str,
    output: str,
    config: ScanConfig,
    ignore_unknown: bool,
    classes: list[str] | None,
) -> Applied:
    """Write LABELS with the reviewed ids relabeled to `output`, every other row as it was."""
    classes = check_apply_arguments(ignore_unknown, classes)
    shards = expand_paths(labels_path, "labels")
    if len(shards) > 1:
        raise InputError(
            f"The labels '{labels_path}' match {count(len(shards), 'file')}: review apply writes "
            "one new labels file from one labels file. Give the one the review was made on."
        )
    labels_path = shards[0]
    fmt = detect_format(labels_path, None, "labels")
    compressed = output_compressed(output, fmt)
    verdicts = read_verdicts(review_path)
    repeated = verdicts.filter(pl.col("id").is_duplicated())["id"].unique(maintain_order=True)
    if repeated.len():
        raise InputError(
            f"The review '{review_path}' decides {count(repeated.len(), 'id')} more than once "
            f"(e.g. {describe_ids(repeated)}): which decision counts is not ours to guess."
        )
    labels = read_table(labels_path, "labels", None, ids=(config.id_col,), label=config.label_col)
    if config.label_col not in labels.columns:
        raise SchemaError(f"The labels '{labels_path}' have no column '{config.label_col}'.")
    if isinstance(labels[config.label_col].dtype, pl.List | pl.Array):
        raise InputError(
            f"The labels '{labels_path}' are multi-label (lists): applying a review is "
            "single-label only for now."
        )
    ids = _label_ids(labels, config, labels_path)
    repeated = ids.filter(ids.is_duplicated()).unique(maintain_order=True)
    if repeated.len():
        raise InputError(
            f"The labels '{labels_path}' repeat ids ({describe_ids(repeated)}), so a verdict "
            "would land on rows nobody reviewed. Remove the repeats first."
        )
    # Only decided rows (accept, keep, a class) are checked and applied: a row nobody decided
    # changes nothing, whatever its id or the label it was shown with.
    undecided = int(verdicts["kind"].is_null().sum())
    verdicts = verdicts.filter(pl.col("kind").is_not_null())
    reviewed = verdicts["id"].is_in(ids.implode())
    strangers = verdicts.filter(~reviewed)["id"]
    unknown = strangers.len()
    warnings: list[str] = []
    if unknown:
        zeros = _leading_zeros_hint(strangers, ids, "review", "labels")
        if not ignore_unknown:
            raise InputError(
                f"The review '{review_path}' decides {count(unknown, 'id')} that '{labels_path}' "
                f"does not have (e.g. {describe_ids(strangers)}).{zeros} Check that it reviews "
                "these labels, or pass --ignore-unknown to apply the rest."
            )
        if zeros:
            warnings.append(f"{count(unknown, 'reviewed id')} skipped as unknown.{zeros}")
    # Labels compare by the one naming rule every command uses (blanks, Unicode NFC), so a
    # reviewed "café" typed on a Mac is the label the reviewer saw.
    named = class_names(
        labels[config.label_col], labels_path, config.label_col, "label column", "--label-col"
    )
    current = pl.DataFrame({"id": ids, "current": named})
    known = verdicts.filter(reviewed).join(current, on="id", how="left")
    _check_fresh(known, review_path, labels_path)
    _check_accepts(known, review_path)
    decided = known.with_columns(
        label=pl.when(pl.col("kind") == ACCEPT).then(pl.col("suggested"))
        .when(pl.col("kind") == KEEP).then(None)
        .otherwise(pl.col("label"))
    )  # fmt: skip
    no_suggestion = decided.filter((pl.col("kind") == ACCEPT) & pl.col("label").is_null())["id"]
    if no_suggestion.len():
        raise InputError(
            f"The review '{review_path}' accepts a suggestion for "
            f"{count(no_suggestion.len(), 'id')} that has none (e.g. "
            f"{describe_ids(no_suggestion)}). Name the class instead."
        )
    present = named.drop_nulls()
    vocabulary = set(classes) if classes else set(present)
    strange = sorted(set(decided["label"].drop_nulls()) - vocabulary)
    if strange:
        raise InputError(
            f"The review '{review_path}' relabels to {count(len(strange), 'class')} the labels do "
            f"not have: {', '.join(strange[:10])}. Fix the decisions, or pass --classes FILE with "
            "every class."
        )
    changed = decided.filter(
        pl.col("label").is_not_null() & (pl.col("label") != pl.col("current").fill_null(""))
    )
    position = pl.DataFrame({"id": ids, "row": np.arange(ids.len())})
    rows = changed.join(position, on="id", how="left")
    changing = list(zip(rows["row"].to_list(), rows["label"].to_list(), strict=True))
    write_relabeled(labels_path, output, fmt, labels, config.label_col, changing, compressed)
    kind, label = decided["kind"], decided["label"]
    same = (label == decided["current"]).fill_null(False)
    suggested = (label == decided["suggested"]).fill_null(False) & ~same
    return Applied(
        accepted=int(((kind == ACCEPT) | ((kind == "class") & suggested)).sum()),
        kept=int(((kind == KEEP) | ((kind == "class") & same)).sum()),
        relabeled_other=int(((kind == "class") & ~same & ~suggested).sum()),
        unchanged=undecided,
        unknown_ids=unknown,
        changed=len(changing),
        warnings=warnings,
    )


def _without_zeros(ids: pl.Series) -> pl.Series:
    """Ids of digits as a spreadsheet shows them: leading zeros dropped ("007" -> "7")."""
    return ids.cast(pl.String).str.replace(r"^0+(\d)", "${1}")


def _leading_zeros_hint(strangers: pl.Series, ids: pl.Series, these: str, those: str) -> str:
    """When unknown ids match once leading zeros are dropped, say so: a spreadsheet read the id
    column as numbers."""

    def key(ids: pl.Series) -> dict[str, str]:  # digit ids by their form without zeros
        digits = ids.filter(ids.str.contains(r"^\d+$"))
        return dict(zip(_without_zeros(digits).to_list(), digits.to_list(), strict=True))

    theirs = key(ids)
    matches = [(mine, theirs[k]) for k, mine in key(strangers).items() if k in theirs]
    if not matches:
        return ""
    (stranger, id_), many = matches[0], len(matches)
    return (
        f" {many:,} of them {agree(many, 'matches', 'match')} an id of the {those}"
        f" once leading zeros are dropped ({these} {stranger!r}, {those} "
        f"{id_!r}): a spreadsheet probably read the id column as numbers. Export the review "
        "again and open it with the id column as text."
    )


def _label_ids(labels: pl.DataFrame, config: ScanConfig, path: str) -> pl.Series:
    """The labels' ids as text; without an id column, the row numbers (as `scan` numbers them)."""
    if config.id_col in labels.columns:
        return labels[config.id_col].cast(pl.String).rename("id")
    if config.id_col != ScanConfig.id_col:
        raise SchemaError(f"The labels '{path}' have no column '{config.id_col}' (--id-col).")
    return pl.Series("id", np.arange(labels.height)).cast(pl.String)


def _check_fresh(known: pl.DataFrame, review_path: str, labels_path: str) -> None:
    """The review was made on these labels: each decided row's current label is the one the
    reviewer saw. Else a verdict (even `keep`) would overwrite a newer label. `known` holds the
    decided rows only: a row nobody decided changes nothing, so it is not checked."""
    stale = known.filter(
        pl.col("given").is_not_null()
        & (pl.col("given") != pl.col("current").fill_null("(no label)"))
    )
    if stale.height:
        shown = ", ".join(
            f"{i!r} (reviewed as {g!r}, now {c!r})"
            for i, g, c in stale.head(3).select("id", "given", "current").iter_rows()
        )
        zeros = stale.filter(
            pl.col("current").is_not_null()
            & (_without_zeros(stale["given"]) == _without_zeros(stale["current"].fill_null("")))
        )
        hint = (
            f" For {zeros.height:,} of these rows only leading zeros "
            "differ: if the review went through a spreadsheet, it may have read given_label as "
            "numbers (export again and open it with the label columns as text)."
            if zeros.height
            else ""
        )
        raise InputError(
            f"{count(stale.height, 'decided row')} of '{review_path}' no longer "
            f"{'has' if stale.height == 1 else 'have'} the label the reviewer saw in "
            f"'{labels_path}' ({shown}): the labels changed since the export. Export and review "
            f"these rows again.{hint}"
        )


def _check_accepts(known: pl.DataFrame, review_path: str) -> None:
    """An `accept` whose suggestion is the row's own label (or the label the reviewer saw) is
    exit 2: `scan` never suggests the given label, so the review's suggestion columns were
    altered (a spreadsheet reads `007` as 7), and the accepted class is not the suggestion
    the reviewer was shown."""
    own = known.filter(
        (pl.col("kind") == ACCEPT)
        & pl.col("suggested").is_not_null()
        & (
            (pl.col("suggested") == pl.col("current")).fill_null(False)
            | (pl.col("suggested") == pl.col("given")).fill_null(False)
        )
    )
    if own.height:
        shown = ", ".join(
            f"{i!r} (suggested {s!r}, labeled {c!r})"
            for i, s, c in own.head(3).select("id", "suggested", "current").iter_rows()
        )
        raise InputError(
            f"The review '{review_path}' accepts a suggestion that is the row's own label for "
            f"{count(own.height, 'row')} ({shown}): a review export never suggests the given "
            "label, so its given_label or suggested_label column was altered, e.g. by a "
            "spreadsheet that read `007` as 7. Export the review again and open it with the "
            "label columns as text, or name the class in decision."
        )
