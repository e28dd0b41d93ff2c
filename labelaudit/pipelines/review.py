"""`labelaudit review`: send the suspects of an issues file to people (Label Studio tasks, or a
CSV with a decision column), and apply their verdicts to the labels file. docs/review.md
documents the formats and every rule."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import polars as pl

from labelaudit._text import count
from labelaudit.config import ScanConfig
from labelaudit.errors import InputError, SchemaError
from labelaudit.io.labels import class_name_text, class_names, describe_ids
from labelaudit.io.tables import detect_format, read_table
from labelaudit.io.writers import write_atomically

MODEL_VERSION = "labelaudit"
CONTROL = "label"  # the Choices control's name in the labeling config
EVIDENCE = ("label_quality", "rank", "given_probability", "suggested_probability", "margin")
ACCEPT, KEEP = "accept", "keep"


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


def apply_review(
    review_path: str,
    labels_path: str,
    output: str,
    config: ScanConfig,
    ignore_unknown: bool,
    classes: list[str] | None,
) -> Applied:
    """Write LABELS with the reviewed ids relabeled to `output`, every other row as it was."""
    verdicts = _verdicts(review_path)
    repeated = verdicts.filter(pl.col("id").is_duplicated())["id"].unique(maintain_order=True)
    if repeated.len():
        raise InputError(
            f"The review '{review_path}' decides {count(repeated.len(), 'id')} more than once "
            f"(e.g. {describe_ids(repeated)}): which decision counts is not ours to guess."
        )
    fmt = detect_format(labels_path, None, "labels")
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
    reviewed = verdicts["id"].is_in(ids.implode())
    unknown = int((~reviewed).sum())
    if unknown and not ignore_unknown:
        raise InputError(
            f"The review '{review_path}' decides {count(unknown, 'id')} that '{labels_path}' "
            f"does not have (e.g. {describe_ids(verdicts.filter(~reviewed)['id'])}). Check that "
            "it reviews these labels, or pass --ignore-unknown to apply the rest."
        )
    # Labels compare by the one naming rule every command uses (blanks, Unicode NFC), so a
    # reviewed "café" typed on a Mac is the label the reviewer saw.
    named = class_names(
        labels[config.label_col], labels_path, config.label_col, "label column", "--label-col"
    )
    current = pl.DataFrame({"id": ids, "current": named})
    known = verdicts.filter(reviewed).join(current, on="id", how="left")
    _check_fresh(known, review_path, labels_path)
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
    _write_labels(labels_path, output, fmt, labels, config.label_col, changing)
    kind, label = decided["kind"].fill_null(""), decided["label"]
    same = (label == decided["current"]).fill_null(False)
    suggested = (label == decided["suggested"]).fill_null(False) & ~same
    return Applied(
        accepted=int(((kind == ACCEPT) | ((kind == "class") & suggested)).sum()),
        kept=int(((kind == KEEP) | ((kind == "class") & same)).sum()),
        relabeled_other=int(((kind == "class") & ~same & ~suggested).sum()),
        unchanged=int(decided["kind"].is_null().sum()),
        unknown_ids=unknown,
        changed=len(changing),
    )


def _label_ids(labels: pl.DataFrame, config: ScanConfig, path: str) -> pl.Series:
    """The labels' ids as text; without an id column, the row numbers (as `scan` numbers them)."""
    if config.id_col in labels.columns:
        return labels[config.id_col].cast(pl.String).rename("id")
    if config.id_col != ScanConfig.id_col:
        raise SchemaError(f"The labels '{path}' have no column '{config.id_col}' (--id-col).")
    return pl.Series("id", np.arange(labels.height)).cast(pl.String)


def _check_fresh(known: pl.DataFrame, review_path: str, labels_path: str) -> None:
    """The review was made on these labels: each reviewed row's current label is the one the
    reviewer saw. Else a verdict (even `keep`) would overwrite a newer label."""
    stale = known.filter(
        pl.col("given").is_not_null()
        & (pl.col("given") != pl.col("current").fill_null("(no label)"))
    )
    if stale.height:
        shown = ", ".join(
            f"{i!r} (reviewed as {g!r}, now {c!r})"
            for i, g, c in stale.head(3).select("id", "given", "current").iter_rows()
        )
        raise InputError(
            f"{count(stale.height, 'reviewed row')} of '{review_path}' no longer "
            f"{'has' if stale.height == 1 else 'have'} the label the reviewer saw in "
            f"'{labels_path}' ({shown}): the labels changed since the export. Export and review "
            "these rows again."
        )


def _verdicts(path: str) -> pl.DataFrame:
    """id, kind (accept, keep, class, or null: undecided), label (the class named), given (the
    label the reviewer saw) and suggested, from a Label Studio JSON export or a filled CSV; the
    class names as the labels' naming rule reads them."""
    frame = _from_label_studio(path) if Path(path).suffix.lower() == ".json" else _from_csv(path)
    return frame.with_columns(class_name_text(frame[c]) for c in ("label", "given", "suggested"))


def _from_csv(path: str) -> pl.DataFrame:
    # The label columns read as the text they are (`007` stays `007`), as the labels' are.
    frame = read_table(
        path, "review", None, ids=("id", "given_label", "suggested_label", "decision")
    )
    for column in ("id", "given_label", "suggested_label", "decision"):
        if column not in frame.columns:
            raise SchemaError(
                f"The review '{path}' has no column '{column}': give the CSV that `labelaudit "
                "review export --to csv` wrote, with its decision column filled."
            )
    decision = frame["decision"].cast(pl.String).str.strip_chars().fill_null("")
    lowered = decision.str.to_lowercase()
    kind = (
        pl.when(lowered == ACCEPT).then(pl.lit(ACCEPT))
        .when(lowered == KEEP).then(pl.lit(KEEP))
        .when(decision == "").then(None)
        .otherwise(pl.lit("class"))
    )  # fmt: skip
    return pl.DataFrame(
        {
            "id": frame["id"].cast(pl.String),
            "decision": decision,
            "given": frame["given_label"].cast(pl.String),
            "suggested": frame["suggested_label"].cast(pl.String),
        }
    ).select(
        "id",
        kind.alias("kind"),
        pl.when(kind == "class").then(pl.col("decision")).alias("label"),
        "given",
        "suggested",
    )


def _from_label_studio(path: str) -> pl.DataFrame:
    """Each task's most recent annotation that was not cancelled (by updated_at, then
    created_at, as times; then its id); a task without one, or whose result is empty (skipped),
    changes nothing. A result that cannot be read as one class of the `label` control is exit 2."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise InputError(f"The review '{path}' could not be read as JSON: {exc}.") from exc
    if not isinstance(tasks, list):
        raise InputError(
            f"The review '{path}' is not a Label Studio JSON export (a list of tasks)."
        )
    rows = []
    for number, task in enumerate(tasks):  # tasks reviewed by people: thousands at most
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or data.get("id") is None:
            raise InputError(
                f"Task {number} of the review '{path}' has no data.id (the sample's id that "
                "`labelaudit review export` put there)."
            )
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            raise InputError(f"Task {number} of '{path}': annotations is not a list.")
        chosen = _latest_choice(annotations, path, number)
        given = data.get("given_label")
        rows.append((str(data["id"]), chosen, None if given is None else str(given),
                     _suggestion(task)))  # fmt: skip
    text = pl.String
    frame = pl.DataFrame(
        rows, schema={"id": text, "label": text, "given": text, "suggested": text}, orient="row"
    )
    return frame.select(
        "id",
        pl.when(pl.col("label").is_not_null()).then(pl.lit("class")).alias("kind"),
        "label",
        "given",
        "suggested",
    )


def _latest_choice(annotations: list[Any], path: str, number: int) -> str | None:
    done = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
    if not done:
        return None
    latest = max(done, key=_when)
    for region in latest.get("result") or []:
        if not isinstance(region, dict) or "choices" not in (region.get("value") or {}):
            continue  # another kind of result (a comment, a rating): not a label
        choices = region["value"]["choices"]
        if region.get("from_name") != CONTROL:
            raise InputError(
                f"Task {number} of '{path}' holds choices of the control "
                f"'{region.get('from_name')}', not '{CONTROL}' (the one `review export` "
                "configures): the labeling config was changed, so the choice is not a label."
            )
        if not isinstance(choices, list) or len(choices) != 1:
            raise InputError(
                f"Task {number} of '{path}' chose {choices!r}: a review gives one class."
            )
        return str(choices[0])
    return None  # an empty result: skipped


def _when(annotation: dict[str, Any]) -> tuple[float, float, float, str]:
    """An annotation's recency: updated_at, then created_at (as times, any offset), then its id
    (as a number when it is one)."""
    ident = annotation.get("id")
    number = float(ident) if isinstance(ident, int | float) or str(ident).isdigit() else 0.0
    return (_time(annotation.get("updated_at")), _time(annotation.get("created_at")), number,
            str(ident))  # fmt: skip


def _time(text: Any) -> float:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("-inf")


def _suggestion(task: dict[str, Any]) -> str | None:
    for prediction in task.get("predictions") or []:
        for region in prediction.get("result") or []:
            choices = (region.get("value") or {}).get("choices")
            if choices:
                return str(choices[0])
    return None


def _write_labels(
    source: str,
    output: str,
    fmt: str,
    labels: pl.DataFrame,
    label_col: str,
    changing: list[tuple[int, str]],
) -> None:
    """The labels file with those rows' labels replaced. CSV and TSV: every other line copied
    byte for byte; other formats: the table written again in its format."""
    if fmt in ("csv", "tsv"):
        raw = Path(source).read_bytes()
        lines = raw.split(b"\n")
        body = len(lines) - 1 - (1 if lines[-1] == b"" else 0)
        if body == labels.height:  # one line a row (no line breaks inside a cell)
            delimiter = "," if fmt == "csv" else "\t"
            header = next(
                csv.reader([lines[0].decode("utf-8-sig").rstrip("\r")], delimiter=delimiter)
            )
            position = header.index(label_col)
            for row, label in changing:  # the changed rows only
                lines[row + 1] = _relabeled_line(lines[row + 1], position, label, delimiter)
            write_atomically(output, lambda target: Path(target).write_bytes(b"\n".join(lines)))
            return
    if fmt == "ndjson":
        lines = Path(source).read_bytes().split(b"\n")
        filled = [i for i, line in enumerate(lines) if line.strip()]
        if len(filled) == labels.height:  # one object a line: only the changed lines rewritten
            for row, label in changing:
                lines[filled[row]] = _relabeled_json(lines[filled[row]], label_col, label)
            write_atomically(output, lambda target: Path(target).write_bytes(b"\n".join(lines)))
            return
    column = labels[label_col]
    values = column.cast(pl.String).to_list()
    for row, label in changing:
        values[row] = label
    new = pl.Series(label_col, values, dtype=pl.String)
    if column.dtype != pl.String:  # integers, categoricals, enums keep their type
        new = new.cast(column.dtype)
    frame = labels.with_columns(new)
    writers = {
        "parquet": lambda t: frame.write_parquet(t),
        "ndjson": lambda t: frame.write_ndjson(t),
        "ipc": lambda t: frame.write_ipc(t),
        "csv": lambda t: frame.write_csv(t),
        "tsv": lambda t: frame.write_csv(t, separator="\t"),
    }
    write_atomically(output, writers.get(fmt, writers["parquet"]))


def _relabeled_json(line: bytes, label_col: str, label: str) -> bytes:
    """One NDJSON line with its label replaced (an integer label stays an integer)."""
    ending = b"\r" if line.endswith(b"\r") else b""
    record = json.loads(line)
    record[label_col] = int(label) if isinstance(record.get(label_col), int) else label
    return json.dumps(record, ensure_ascii=False).encode("utf-8") + ending


def _relabeled_line(line: bytes, position: int, label: str, delimiter: str) -> bytes:
    """One CSV line with one field replaced, written back with minimal quoting."""
    ending = b"\r" if line.endswith(b"\r") else b""
    fields = next(csv.reader([line.rstrip(b"\r").decode("utf-8")], delimiter=delimiter))
    fields[position] = label
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(fields)
    return out.getvalue().encode("utf-8") + ending
