"""`labelaudit review export | apply`: Label Studio tasks and config, the review CSV, applying a
Label Studio export (fixtures/label-studio) and a filled CSV, and bad input."""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import polars as pl
import pytest

from .conftest import FIXTURES, CliRun

STUDIO = FIXTURES / "label-studio"
CIFAR = FIXTURES / "cifar10-test"


def issues_file(cli: CliRun, folder: Path) -> Path:
    shutil.copy(CIFAR / "labels.csv", folder / "labels.csv")
    result = cli("scan", "labels.csv", "--preds", str(CIFAR / "preds.parquet"),
                 "--issues-out", "issues.parquet")  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder / "issues.parquet"


def test_export_to_label_studio_and_csv(cli: CliRun, tmp_path: Path) -> None:
    issues = pl.read_parquet(issues_file(cli, tmp_path))
    result = cli("review", "export", "issues.parquet", "--to", "label-studio", "--top", "5",
                 "-o", "tasks.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    top = issues.sort("rank").head(5)
    assert [t["data"]["id"] for t in tasks] == top["id"].to_list()
    first = tasks[0]["predictions"][0]
    assert first["model_version"] == "labelaudit"
    assert first["result"][0]["value"]["choices"] == [top["suggested_label"][0]]
    assert first["result"][0]["from_name"] == "label" and first["result"][0]["type"] == "choices"
    xml = (tmp_path / "tasks.label_config.xml").read_text()
    assert '<Choices name="label" toName="text"' in xml and '<Choice value="truck"/>' in xml
    printed = cli("review", "export", "issues.parquet", "--to", "label-studio", "--print-config",
                  "-o", "t2.json")  # fmt: skip
    assert printed.stdout.startswith("<View>") and not (tmp_path / "t2.label_config.xml").exists()
    sheet = cli("review", "export", "issues.parquet", "--to", "csv", "-o", "review.csv")
    assert sheet.exit_code == 0, sheet.output
    review = pl.read_csv(tmp_path / "review.csv")
    assert review.height == int(issues["is_suspect"].sum())  # every flagged suspect
    assert review.columns[:3] == ["id", "given_label", "suggested_label"]
    assert review.columns[-1] == "decision" and review["decision"].null_count() == review.height


def test_media_from_the_labels_file(cli: CliRun, tmp_path: Path) -> None:
    pl.DataFrame(
        {"id": ["a1", "a2"], "given_label": ["cat", "dog"], "suggested_label": ["dog", "cat"],
         "rank": [1, 2], "is_suspect": [True, True], "suggested_probability": [0.9, 0.8]}
    ).write_csv(tmp_path / "issues.csv")  # fmt: skip
    result = cli("review", "export", "issues.csv", "--to", "label-studio", "--media-col", "path",
                 "--labels", str(STUDIO / "labels.csv"), "-o", "tasks.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert tasks[0]["data"]["image"] == "img/a1.jpg"
    assert tasks[0]["predictions"][0]["result"][0]["to_name"] == "image"
    assert (
        '<Image name="image" value="$image"/>' in (tmp_path / "tasks.label_config.xml").read_text()
    )
    missing = cli("review", "export", "issues.csv", "--to", "csv", "--media-col", "path",
                  "-o", "r.csv")  # fmt: skip
    assert missing.exit_code == 2 and "--labels" in missing.output


def test_apply_a_label_studio_export(cli: CliRun, tmp_path: Path) -> None:
    shutil.copy(STUDIO / "labels.csv", tmp_path / "labels.csv")
    strict = cli("review", "apply", str(STUDIO / "export.json"), "labels.csv", "-o", "new.csv")
    assert strict.exit_code == 2 and "fish" in strict.output  # a class the labels do not have
    (tmp_path / "classes.txt").write_text("bird\ncat\ndog\nfish\n")
    result = cli("review", "apply", str(STUDIO / "export.json"), "labels.csv", "-o", "new.csv",
                 "--classes", "classes.txt")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 accepted, 1 kept, 1 relabeled to another class, 1 not decided" in result.stderr
    old = (tmp_path / "labels.csv").read_bytes().split(b"\n")
    new = (tmp_path / "new.csv").read_bytes().split(b"\n")
    assert new[1] == b"a1,dog,img/a1.jpg" and new[4] == b"a4,fish,img/a4.jpg"
    assert [n for i, n in enumerate(new) if i not in (1, 4)] == [
        o for i, o in enumerate(old) if i not in (1, 4)
    ]  # every other line byte for byte


def test_apply_a_filled_csv_to_parquet_labels(cli: CliRun, tmp_path: Path) -> None:
    labels = pl.read_csv(STUDIO / "labels.csv")
    labels.write_parquet(tmp_path / "labels.parquet")
    pl.DataFrame(
        {"id": ["a1", "a2", "a3", "a5"], "given_label": ["cat", "dog", "cat", "dog"],
         "suggested_label": ["dog", "cat", "bird", "cat"],
         "decision": ["accept", "keep", "bird", None]}
    ).write_csv(tmp_path / "review.csv")  # fmt: skip
    result = cli("review", "apply", "review.csv", "labels.parquet", "-o", "new.parquet")
    assert result.exit_code == 0, result.output
    new = pl.read_parquet(tmp_path / "new.parquet")
    assert new["label"].to_list() == ["dog", "dog", "bird", "bird", "dog"]
    assert new.drop("label").equals(labels.drop("label"))


def test_bad_review_input(cli: CliRun, tmp_path: Path) -> None:
    shutil.copy(STUDIO / "labels.csv", tmp_path / "labels.csv")
    pl.DataFrame({"id": ["zz"], "given_label": ["cat"], "suggested_label": ["dog"],
                  "decision": ["accept"]}).write_csv(tmp_path / "stray.csv")  # fmt: skip
    unknown = cli("review", "apply", "stray.csv", "labels.csv", "-o", "new.csv")
    assert (
        unknown.exit_code == 2 and "zz" in unknown.output and "--ignore-unknown" in unknown.output
    )
    skipped = cli("review", "apply", "stray.csv", "labels.csv", "-o", "new.csv", "--ignore-unknown")
    assert (
        skipped.exit_code == 0
        and (tmp_path / "new.csv").read_bytes() == (tmp_path / "labels.csv").read_bytes()
    )
    pl.DataFrame({"id": ["a1"], "given_label": ["cat"]}).write_csv(tmp_path / "nodecision.csv")
    no_column = cli("review", "apply", "nodecision.csv", "labels.csv", "-o", "n2.csv")
    assert no_column.exit_code == 2 and "decision" in no_column.output
    (tmp_path / "broken.json").write_text("[{")
    broken = cli("review", "apply", "broken.json", "labels.csv", "-o", "n3.csv")
    assert broken.exit_code == 2 and "JSON" in broken.output
    over = cli("review", "apply", str(STUDIO / "export.json"), "labels.csv", "-o", "labels.csv")
    assert over.exit_code == 2 and "never writes over an input" in over.output
    not_issues = cli("review", "export", "labels.csv", "--to", "csv", "-o", "r.csv")
    assert not_issues.exit_code == 2 and "issues file" in not_issues.output
    for result in (unknown, no_column, broken, over, not_issues):
        assert "Traceback" not in result.output


def _studio_task(item: str, given: str, *annotations: dict) -> dict:
    return {"id": 1, "data": {"id": item, "given_label": given},
            "annotations": list(annotations), "predictions": []}  # fmt: skip


def _choice(label: str, when: str, ident: int = 1, control: str = "label", choices=None) -> dict:
    value = {"choices": [label] if choices is None else choices}
    return {"id": ident, "updated_at": when, "created_at": when, "was_cancelled": False,
            "result": [{"from_name": control, "to_name": "image", "type": "choices",
                        "value": value}]}  # fmt: skip


def test_review_edge_cases_never_write_a_wrong_file(cli: CliRun, tmp_path: Path) -> None:
    shutil.copy(STUDIO / "labels.csv", tmp_path / "labels.csv")

    def apply(tasks: list, *extra: str):
        (tmp_path / "export.json").write_text(json.dumps(tasks))
        return cli("review", "apply", "export.json", "labels.csv", "-o", "new.csv", *extra)

    # The latest annotation by time (offsets and fractions read as times), then by numeric id.
    done = apply([
        _studio_task("a1", "cat", _choice("bird", "2026-01-01T10:00:00Z"),
                     _choice("dog", "2026-01-01T11:00:00+02:00")),
        _studio_task("a2", "dog", _choice("cat", "2026-01-01T10:00:00.5Z"),
                     _choice("bird", "2026-01-01T10:00:00Z")),
        _studio_task("a3", "cat", _choice("dog", "2026-01-01T10:00:00Z", ident=10),
                     _choice("bird", "2026-01-01T10:00:00Z", ident=9)),
    ])  # fmt: skip
    assert done.exit_code == 0, done.output
    new = pl.read_csv(tmp_path / "new.csv")["label"].to_list()
    assert new[:3] == ["bird", "cat", "dog"]
    other = apply([_studio_task("a1", "cat", _choice("dog", "2026-01-01", control="class"))])
    assert other.exit_code == 2 and "'class'" in other.output
    two = apply([_studio_task("a1", "cat", _choice("x", "2026-01-01", choices=["dog", "cat"]))])
    assert two.exit_code == 2 and "one class" in two.output
    stale = apply([_studio_task("a1", "dog", _choice("cat", "2026-01-01"))])  # a1 is cat now
    assert stale.exit_code == 2 and "changed since the export" in stale.output
    twice = apply([_studio_task("a1", "cat", _choice("dog", "2026-01-01")),
                   _studio_task("a1", "cat", _choice("bird", "2026-01-01"))])  # fmt: skip
    assert twice.exit_code == 2 and "more than once" in twice.output
    pl.read_csv(STUDIO / "labels.csv").vstack(pl.read_csv(STUDIO / "labels.csv").head(1)).write_csv(
        tmp_path / "labels.csv"
    )
    repeated = apply([_studio_task("a2", "dog", _choice("cat", "2026-01-01"))])
    assert repeated.exit_code == 2 and "repeat ids" in repeated.output


def test_keep_never_changes_and_accept_is_checked(cli: CliRun, tmp_path: Path) -> None:
    shutil.copy(STUDIO / "labels.csv", tmp_path / "labels.csv")
    review = {
        "id": ["a1", "a2", "zz"],
        "given_label": ["cat", "dog", "cat"],
        "suggested_label": ["dog", "eel", "dog"],
        "decision": ["keep", "accept", "accept"],
    }
    pl.DataFrame(review).write_csv(tmp_path / "r.csv")
    strange = cli("review", "apply", "r.csv", "labels.csv", "-o", "n.csv", "--ignore-unknown")
    assert strange.exit_code == 2 and "eel" in strange.output  # an accepted class is checked too
    (tmp_path / "classes.txt").write_text("bird\ncat\ndog\neel\n")
    done = cli("review", "apply", "r.csv", "labels.csv", "-o", "n.csv", "--ignore-unknown",
               "--classes", "classes.txt")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "1 accepted, 1 kept, 0 relabeled to another class, 0 not decided, 1 unknown" in (
        done.stderr
    )
    assert pl.read_csv(tmp_path / "n.csv")["label"].to_list()[:2] == ["cat", "eel"]


def test_ndjson_categorical_and_row_number_ids(cli: CliRun, tmp_path: Path) -> None:
    lines = ['{"id":"a1","label":"cat","n":9007199254740993}', '{"id":"a2","label":"dog","n":1}']
    (tmp_path / "labels.ndjson").write_text("\n".join(lines) + "\n")
    pl.DataFrame({"id": ["a1"], "given_label": ["cat"], "suggested_label": ["dog"],
                  "decision": ["accept"]}).write_csv(tmp_path / "r.csv")  # fmt: skip
    done = cli("review", "apply", "r.csv", "labels.ndjson", "-o", "n.ndjson")
    assert done.exit_code == 0, done.output
    written = (tmp_path / "n.ndjson").read_text().split("\n")
    assert written[1] == lines[1] and json.loads(written[0])["n"] == 9007199254740993
    assert written[0] == '{"id":"a1","label":"dog","n":9007199254740993}'  # compact, as the file
    frame = pl.read_csv(STUDIO / "labels.csv").with_columns(pl.col("label").cast(pl.Categorical))
    frame.write_parquet(tmp_path / "cat.parquet")
    done = cli("review", "apply", "r.csv", "cat.parquet", "-o", "n.parquet")
    assert done.exit_code == 0 and pl.read_parquet(tmp_path / "n.parquet")["label"].dtype == (
        pl.Categorical
    )
    pl.DataFrame({"label": ["cat", "dog"]}).write_csv(tmp_path / "noid.csv")
    pl.DataFrame({"id": [1], "given_label": ["dog"], "suggested_label": ["cat"],
                  "decision": ["accept"]}).write_csv(tmp_path / "r2.csv")  # fmt: skip
    done = cli("review", "apply", "r2.csv", "noid.csv", "-o", "n2.csv")
    assert done.exit_code == 0, done.output
    assert (tmp_path / "n2.csv").read_text() == "label\ncat\ncat\n"


def test_labels_compare_by_the_naming_rule_every_command_uses(cli: CliRun, tmp_path: Path) -> None:
    """Trailing blanks and NFD text ("café" typed on a Mac) are the class scan read: the review
    exported from scan's issues applies, and the rows nobody changed stay byte for byte."""
    nfd = unicodedata.normalize("NFD", "café")
    lines = ["id,label", f"1,{nfd}", "2,tea ", f"3,{nfd}", "4,tea", "5, tea", f"6,{nfd} "]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    probs = {"café": [0.1, 0.9, 0.8, 0.1, 0.2, 0.9], "tea": [0.9, 0.1, 0.2, 0.9, 0.8, 0.1]}
    pl.DataFrame({"id": range(1, 7), **probs}).write_parquet(tmp_path / "preds.parquet")
    scanned = cli("scan", "labels.csv", "--preds", "preds.parquet", "--issues-out", "i.csv")
    assert scanned.exit_code == 0, scanned.output
    exported = cli("review", "export", "i.csv", "--to", "csv", "--top", "6", "-o", "r.csv")
    assert exported.exit_code == 0, exported.output
    review = pl.read_csv(tmp_path / "r.csv", infer_schema=False)
    decisions = {"1": "accept", "2": "accept", "3": "keep", "4": "café", "5": "tea", "6": "keep"}
    review = review.with_columns(decision=pl.col("id").replace_strict(decisions))
    review.write_csv(tmp_path / "r.csv")
    done = cli("review", "apply", "r.csv", "labels.csv", "-o", "new.csv")
    assert done.exit_code == 0, done.output
    new = (tmp_path / "new.csv").read_text(encoding="utf-8").split("\n")
    assert new[1] == "1,tea" and new[2] == "2,café" and new[4] == "4,café"
    assert [new[i] for i in (0, 3, 5, 6, 7)] == [lines[i] for i in (0, 3, 5, 6)] + [""]
    # The Label Studio side reads the same way: a decomposed choice names the composed class.
    choice = {"from_name": "label", "to_name": "text", "type": "choices",
              "value": {"choices": [nfd]}}  # fmt: skip
    tasks = [{"data": {"id": "2", "given_label": "tea"}, "annotations": [{"result": [choice]}]}]
    (tmp_path / "export.json").write_text(json.dumps(tasks), encoding="utf-8")
    done = cli("review", "apply", "export.json", "labels.csv", "-o", "new2.csv")
    assert done.exit_code == 0, done.output
    assert (tmp_path / "new2.csv").read_text(encoding="utf-8").split("\n")[2] == "2,café"


def _review_csv(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    """A filled review CSV of (id, given_label, suggested_label, decision) rows, all as text."""
    lines = ["id,given_label,suggested_label,decision", *(",".join(r) for r in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_api_checks_its_arguments_as_the_cli_does(cli: CliRun, tmp_path: Path) -> None:
    """One check for both: a bad `to` or `top` is exit 2 / ConfigError and writes nothing."""
    import labelaudit
    from labelaudit.cli import review_export as export_command
    from labelaudit.errors import ConfigError, InputError
    from labelaudit.pipelines.review import TARGETS

    issues = tmp_path / "issues.csv"
    pl.DataFrame(
        {"id": ["a1", "a2", "a3"], "given_label": ["cat", "dog", "cat"],
         "suggested_label": ["dog", "cat", "dog"], "rank": [1, 2, 3],
         "is_suspect": [True, True, False]}
    ).write_csv(issues)  # fmt: skip
    to_option = next(p for p in export_command.params if p.name == "to")
    assert tuple(to_option.type.choices) == TARGETS
    bad = [{"to": "xlsx"}, {"top": -5}, {"top": 0}, {"top": 2.5}, {"top": True},
           {"media_col": ""}, {"to": "label-studio"}]  # fmt: skip  # the last: JSON in x.csv
    for arguments in bad:
        with pytest.raises(ConfigError):
            labelaudit.review_export(issues, tmp_path / "x.csv", **arguments)
    assert not list(tmp_path.glob("x.*"))
    assert labelaudit.review_export(issues, tmp_path / "x.csv", top=2) == 2
    assert labelaudit.review_export(issues, tmp_path / "t.json", to="label-studio", top=1) == 1
    with pytest.raises(InputError, match="never writes over an input"):
        labelaudit.review_export(issues, issues)
    misnamed = cli("review", "export", "issues.csv", "--to", "csv", "-o", "r.json")
    assert misnamed.exit_code == 2 and "Traceback" not in misnamed.output
    assert not (tmp_path / "r.json").exists()

    shutil.copy(STUDIO / "labels.csv", tmp_path / "labels.csv")
    _review_csv(tmp_path / "r.csv", [("a1", "cat", "dog", "accept")])
    paths = (tmp_path / "r.csv", tmp_path / "labels.csv", tmp_path / "new.csv")
    for arguments in [{"classes": "bird"}, {"classes": []}, {"classes": ["dog", "dog "]},
                      {"classes": [1, 2]}, {"ignore_unknown": "yes"}]:  # fmt: skip
        with pytest.raises(ConfigError):
            labelaudit.review_apply(*paths, **arguments)
    assert not (tmp_path / "new.csv").exists()
    done = labelaudit.review_apply(*paths, classes=["bird ", "cat", "dog"])  # names by the rule
    assert done.changed == 1


def test_gzip_labels_are_copied_line_for_line(cli: CliRun, tmp_path: Path) -> None:
    """A gzip labels file (a .csv that is gzip inside, or a .csv.gz) is decompressed and copied
    byte for byte (CRLF kept); the output is gzip when its name ends in .gz, else plain text."""
    import gzip

    text = b'id,label,note\r\na1,cat,"x, y"\r\na2,dog,n\r\na3,cat,n\r\n'
    (tmp_path / "labels_gz.csv").write_bytes(gzip.compress(text))
    (tmp_path / "labels.csv.gz").write_bytes(gzip.compress(text))
    _review_csv(tmp_path / "r.csv", [("a2", "dog", "cat", "accept"), ("a3", "cat", "dog", "")])
    expected = text.replace(b"a2,dog,n", b"a2,cat,n")
    for source in ("labels_gz.csv", "labels.csv.gz"):
        plain = cli("review", "apply", "r.csv", source, "-o", "out.csv")
        assert plain.exit_code == 0, plain.output
        assert (tmp_path / "out.csv").read_bytes() == expected
        packed = cli("review", "apply", "r.csv", source, "-o", "out.csv.gz")
        assert packed.exit_code == 0, packed.output
        assert gzip.decompress((tmp_path / "out.csv.gz").read_bytes()) == expected
    # NDJSON the same way.
    lines = b'{"id":"a2","label":"dog"}\r\n{"id":"a3","label":"cat"}\r\n'
    (tmp_path / "labels.jsonl.gz").write_bytes(gzip.compress(lines))
    done = cli("review", "apply", "r.csv", "labels.jsonl.gz", "-o", "out.jsonl")
    assert done.exit_code == 0, done.output
    new = (tmp_path / "out.jsonl").read_bytes().split(b"\n")
    assert json.loads(new[0])["label"] == "cat" and new[1] == b'{"id":"a3","label":"cat"}\r'
    # A name that says another format is exit 2, not a file misnamed.
    for wrong in ("out.parquet", "out.tsv", "out.parquet.gz"):
        refused = cli("review", "apply", "r.csv", "labels_gz.csv", "-o", wrong)
        assert refused.exit_code == 2 and "format" in refused.output, wrong
        assert not (tmp_path / wrong).exists()
    shutil.copy(STUDIO / "labels.csv", tmp_path / "labels.csv")
    pl.read_csv(STUDIO / "labels.csv").write_parquet(tmp_path / "labels.parquet")
    _review_csv(tmp_path / "r2.csv", [("a1", "cat", "dog", "accept")])
    gz = cli("review", "apply", "r2.csv", "labels.parquet", "-o", "new.parquet.gz")
    assert gz.exit_code == 2 and not (tmp_path / "new.parquet.gz").exists()
    # A glob of shards: exit 2 (one labels file in, one out), not a crash.
    (tmp_path / "s").mkdir()
    for i in (1, 2):
        shutil.copy(STUDIO / "labels.csv", tmp_path / "s" / f"{i}.csv")
    shards = cli("review", "apply", "r2.csv", "s/*.csv", "-o", "new.csv")
    assert shards.exit_code == 2 and "2 files" in shards.output


def test_an_accept_of_the_rows_own_label_is_refused(cli: CliRun, tmp_path: Path) -> None:
    """A spreadsheet turned the suggestion "007" into "7", the row's own label: the accept would
    change nothing, silently. Exit 2 naming the rows; nothing written."""
    lines = ["id,label", "s1,7", "s2,007", "s3,cat"]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    _review_csv(tmp_path / "r.csv", [("s1", "7", "7", "accept"), ("s3", "cat", "007", "accept")])
    own = cli("review", "apply", "r.csv", "labels.csv", "-o", "new.csv")
    assert own.exit_code == 2 and "'s1'" in own.output and "spreadsheet" in own.output
    assert "'s3'" not in own.output and not (tmp_path / "new.csv").exists()
    # The same decision spelled as the class is a keep, not an error.
    _review_csv(tmp_path / "r.csv", [("s1", "7", "007", "7"), ("s3", "cat", "007", "accept")])
    done = cli("review", "apply", "r.csv", "labels.csv", "-o", "new.csv")
    assert done.exit_code == 0, done.output
    assert "1 accepted, 1 kept" in done.stderr
    # A given label that lost its zeros is stale, and the message says why it may be.
    _review_csv(tmp_path / "r.csv", [("s2", "7", "cat", "accept")])
    stale = cli("review", "apply", "r.csv", "labels.csv", "-o", "new2.csv")
    assert stale.exit_code == 2 and "leading zeros" in stale.output


def test_ids_that_lost_their_leading_zeros_are_named(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("id,label\n007,cat\n010,dog\n011,cat\n")
    _review_csv(tmp_path / "r.csv", [("7", "cat", "dog", "accept"), ("11", "cat", "dog", "keep")])
    unknown = cli("review", "apply", "r.csv", "labels.csv", "-o", "new.csv")
    assert unknown.exit_code == 2 and "leading zeros" in unknown.output
    assert "review '7', labels '007'" in unknown.output and "Traceback" not in unknown.output
    skipped = cli("review", "apply", "r.csv", "labels.csv", "-o", "new.csv", "--ignore-unknown")
    assert skipped.exit_code == 0 and "warning:" in skipped.stderr
    assert "leading zeros" in skipped.stderr
    _review_csv(tmp_path / "r.csv", [("zz", "cat", "dog", "accept")])
    plain = cli("review", "apply", "r.csv", "labels.csv", "-o", "new.csv")
    assert plain.exit_code == 2 and "leading zeros" not in plain.output


def test_rows_nobody_decided_are_not_checked(cli: CliRun, tmp_path: Path) -> None:
    """A row left empty (or a Label Studio task without an annotation) changes nothing, so its
    label having changed since the export (or its id being unknown) does not block the rest."""
    (tmp_path / "labels.csv").write_text("id,label\na1,7\na2,dog\na3,cat\n")  # a1 was 007
    _review_csv(tmp_path / "r.csv", [("a1", "007", "dog", ""), ("a2", "dog", "cat", "accept"),
                                     ("zz", "cat", "dog", "")])  # fmt: skip
    done = cli("review", "apply", "r.csv", "labels.csv", "-o", "new.csv")
    assert done.exit_code == 0, done.output
    assert "1 accepted, 0 kept, 0 relabeled to another class, 2 not decided" in done.stderr
    assert (tmp_path / "new.csv").read_text() == "id,label\na1,7\na2,cat\na3,cat\n"
    tasks = [_studio_task("a1", "007"),
             _studio_task("a2", "dog", _choice("cat", "2026-01-01"))]  # fmt: skip
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    studio = cli("review", "apply", "export.json", "labels.csv", "-o", "new2.csv")
    assert studio.exit_code == 0, studio.output
    assert (tmp_path / "new2.csv").read_text() == "id,label\na1,7\na2,cat\na3,cat\n"
    # A decided row is still checked: the stale keep is exit 2.
    _review_csv(tmp_path / "r.csv", [("a1", "007", "dog", "keep")])
    stale = cli("review", "apply", "r.csv", "labels.csv", "-o", "new3.csv")
    assert stale.exit_code == 2 and "1 decided row" in stale.output
