"""A review's verdicts read back: a Label Studio JSON export (the latest annotation of each
task that was not cancelled) or the CSV `review export --to csv` wrote, its decisions filled.
docs/review.md has the rules."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from labelaudit.errors import InputError, SchemaError
from labelaudit.io.labels import class_name_text
from labelaudit.io.tables import read_table

CONTROL = "label"  # the Choices control's name in the labeling config `review export` writes
ACCEPT, KEEP = "accept", "keep"


def read_verdicts(path: str) -> pl.DataFrame:
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
