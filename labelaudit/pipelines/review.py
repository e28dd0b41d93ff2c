"""`labelaudit review`: send the suspects of an issues file to people (Label Studio tasks, or a
CSV with a decision column), and apply their verdicts to the labels file. docs/review.md
documents the formats and every rule."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import polars as pl

from labelaudit._text import count
from labelaudit.config import ScanConfig
from labelaudit.errors import InputError, SchemaError
from labelaudit.io.labels import describe_ids
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
    chosen = issues.sort("rank")
    chosen = chosen.head(top) if top is not None else chosen.filter(pl.col("is_suspect"))
    if media_col:
        chosen = _with_media(chosen, media_col, labels_path, config)
    classes = sorted(
        set(issues["given_label"].cast(pl.String).drop_nulls().to_list())
        | set(issues["suggested_label"].cast(pl.String).drop_nulls().to_list())
    )
    if to == "csv":
        evidence = [c for c in EVIDENCE if c in chosen.columns]
        table = chosen.select(
            "id", "given_label", "suggested_label", *evidence, *([media_col] if media_col else [])
        ).with_columns(decision=pl.lit(None, dtype=pl.String))
        return Exported(table.write_csv(), None, table.height)
    tasks = [_task(row, media_col) for row in chosen.iter_rows(named=True)]  # the N shown
    return Exported(
        json.dumps(tasks, indent=1, default=str) + "\n",
        label_config(classes, media_col),
        len(tasks),
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
    verdicts, counts = _verdicts(review_path)
    fmt = detect_format(labels_path, None, "labels")
    labels = read_table(labels_path, "labels", None, ids=(config.id_col,), label=config.label_col)
    for column in (config.id_col, config.label_col):
        if column not in labels.columns:
            raise SchemaError(f"The labels '{labels_path}' have no column '{column}'.")
    ids = labels[config.id_col].cast(pl.String)
    known = verdicts.filter(pl.col("id").is_in(ids.implode()))
    unknown = verdicts.height - known.height
    if unknown and not ignore_unknown:
        strays = verdicts.filter(~pl.col("id").is_in(ids.implode()))["id"]
        raise InputError(
            f"The review '{review_path}' decides {count(unknown, 'id')} that '{labels_path}' "
            f"does not have (e.g. {describe_ids(strays)}). Check that it reviews these labels, "
            "or pass --ignore-unknown to apply the rest."
        )
    vocabulary = (
        set(classes) if classes else set(labels[config.label_col].cast(pl.String).drop_nulls())
    )
    vocabulary |= set(known["suggested"].drop_nulls())
    strange = sorted(set(known["label"].drop_nulls()) - vocabulary)
    if strange:
        raise InputError(
            f"The review '{review_path}' relabels to {count(len(strange), 'class')} the labels do "
            f"not have: {', '.join(strange[:10])}. Fix the decisions, or pass --classes FILE with "
            "every class."
        )
    new_label = dict(zip(known["id"].to_list(), known["label"].to_list(), strict=True))
    rows = np.flatnonzero(ids.is_in(list(new_label)).to_numpy())
    targets = [new_label[i] for i in ids.gather(rows).to_list()]  # the reviewed rows only
    current = labels[config.label_col].cast(pl.String).gather(rows).to_list()
    changing = [
        (r, t) for r, t, c in zip(rows, targets, current, strict=True) if t is not None and t != c
    ]
    _write_labels(labels_path, output, fmt, labels, config.label_col, changing)
    return Applied(
        accepted=counts["accepted"],
        kept=counts["kept"],
        relabeled_other=counts["other"],
        unchanged=counts["unchanged"],
        unknown_ids=unknown,
        changed=len(changing),
    )


def _verdicts(path: str) -> tuple[pl.DataFrame, dict[str, int]]:
    """id, label (the decided class; None: keep the given one) and suggested, from a Label
    Studio JSON export or a filled review CSV."""
    if Path(path).suffix.lower() == ".json":
        return _from_label_studio(path)
    return _from_csv(path)


def _from_csv(path: str) -> tuple[pl.DataFrame, dict[str, int]]:
    frame = read_table(path, "review", None, ids=("id",))
    for column in ("id", "given_label", "suggested_label", "decision"):
        if column not in frame.columns:
            raise SchemaError(
                f"The review '{path}' has no column '{column}': give the CSV that `labelaudit "
                "review export --to csv` wrote, with its decision column filled."
            )
    decision = frame["decision"].cast(pl.String).str.strip_chars().fill_null("")
    lowered = decision.str.to_lowercase()
    given = frame["given_label"].cast(pl.String)
    suggested = frame["suggested_label"].cast(pl.String)
    label = (
        pl.when(lowered == ACCEPT).then(suggested)
        .when(lowered == KEEP).then(given)
        .when(decision == "").then(None)
        .otherwise(decision)
    )  # fmt: skip
    out = pl.DataFrame(
        {"id": frame["id"].cast(pl.String), "given": given, "suggested": suggested}
    ).with_columns(label=label)
    return out.select("id", "label", "suggested"), _tally(out)


def _tally(out: pl.DataFrame) -> dict[str, int]:
    """How many decisions accept the suggestion, keep the given label, choose another class,
    or decide nothing."""
    label, given, suggested = out["label"], out["given"], out["suggested"]
    return {
        "accepted": int((label == suggested).sum()),
        "kept": int(((label == given) & (label != suggested)).sum()),
        "other": int(((label != suggested) & (label != given)).sum()),
        "unchanged": int(label.is_null().sum()),
    }


def _from_label_studio(path: str) -> tuple[pl.DataFrame, dict[str, int]]:
    """Each task's most recent annotation that was not cancelled (by updated_at, then
    created_at, then its id); a task without one, or whose choice is empty, changes nothing."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"The review '{path}' could not be read as JSON: {exc}.") from exc
    if not isinstance(tasks, list):
        raise InputError(
            f"The review '{path}' is not a Label Studio JSON export (a list of tasks)."
        )
    ids, labels, suggested = [], [], []
    for task in tasks:  # tasks reviewed by people: thousands at most
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or "id" not in data:
            raise InputError(
                f"The review '{path}' has a task without data.id (the sample's id that "
                "`labelaudit review export` put there)."
            )
        ids.append(str(data["id"]))
        labels.append(_latest_choice(task.get("annotations") or []))
        suggested.append(_suggestion(task))
    given = [str(t["data"].get("given_label")) for t in tasks]
    text = pl.String
    out = pl.DataFrame(
        {"id": ids, "label": labels, "suggested": suggested, "given": given},
        schema={"id": text, "label": text, "suggested": text, "given": text},
    )
    return out.select("id", "label", "suggested"), _tally(out)


def _latest_choice(annotations: list[Any]) -> str | None:
    done = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
    if not done:
        return None
    latest = max(done, key=_when)
    for region in latest.get("result") or []:
        if not isinstance(region, dict):
            continue
        choices = (region.get("value") or {}).get("choices")
        if region.get("from_name", CONTROL) == CONTROL and choices:
            return str(choices[0])
    return None  # an empty result: skipped


def _when(annotation: dict[str, Any]) -> tuple[str, ...]:
    """An annotation's recency: updated_at, then created_at, then its id (ISO times sort)."""
    return tuple(str(annotation.get(k) or "") for k in ("updated_at", "created_at", "id"))


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
    column = labels[label_col]
    values = column.cast(pl.String).to_list()
    for row, label in changing:
        values[row] = label
    new = pl.Series(label_col, values, dtype=pl.String)
    if column.dtype.is_integer():
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


def _relabeled_line(line: bytes, position: int, label: str, delimiter: str) -> bytes:
    """One CSV line with one field replaced, written back with minimal quoting."""
    ending = b"\r" if line.endswith(b"\r") else b""
    fields = next(csv.reader([line.rstrip(b"\r").decode("utf-8")], delimiter=delimiter))
    fields[position] = label
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(fields)
    return out.getvalue().encode("utf-8") + ending
