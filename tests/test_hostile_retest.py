"""Cases from the second hostile run from a fresh clone (about 110 cases): each is right, or
exit 2 with a clear message; never a silent wrong figure, a misleading hint or exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from .conftest import CliRun

LABELS = "id,label\n1,a\n2,b\n3,c\n4,a\n5,b\n6,c\n"
PREDS = "id,a,b,c\n1,.7,.2,.1\n2,.1,.8,.1\n3,.1,.1,{}\n4,.6,.3,.1\n5,.2,.7,.1\n6,.2,.2,.6\n"


@pytest.mark.parametrize("missing", ["nan", "NA", "null", ""])
@pytest.mark.parametrize("scores", [[], ["--scores", "probs"]])
def test_a_missing_score_written_as_text_is_reported_with_its_id(
    cli: CliRun, tmp_path: Path, missing: str, scores: list[str]
) -> None:
    (tmp_path / "l.csv").write_text(LABELS)
    (tmp_path / "p.csv").write_text(PREDS.format(missing))
    result = cli("scan", "l.csv", "--preds", "p.csv", *scores)
    assert result.exit_code == 2, result.output
    assert "NaN" in result.output and "ids 3" in result.output


def test_a_reader_closing_stdout_is_exit_2_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text(LABELS)
    command = f"'{sys.executable}' -m labelaudit scan l.csv | true; exit ${{PIPESTATUS[0]}}"
    done = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "closed it" in done.stderr and "Traceback" not in done.stderr


def test_a_reader_closing_stdout_after_the_first_bytes_is_exit_2(tmp_path: Path) -> None:
    """A report far over the pipe's 64 KiB, read 10 bytes then closed (`| head -c 10`): exit
    2 with the message (Python's buffered write had dropped the rest silently, exit 0)."""
    n = 3000
    ids = np.arange(n)
    labels = np.where(ids % 3 == 0, "a", np.where(ids % 3 == 1, "b", "c"))
    pl.DataFrame({"id": ids, "label": labels}).write_csv(tmp_path / "l.csv")
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=n)
    pl.DataFrame({"id": ids, "a": probs[:, 0], "b": probs[:, 1], "c": probs[:, 2]}).write_csv(
        tmp_path / "p.csv"
    )
    command = (
        f"'{sys.executable}' -m labelaudit scan l.csv --preds p.csv --top {n} --format json "
        "| head -c 10 >/dev/null; exit ${PIPESTATUS[0]}"
    )
    done = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "closed it" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args", ["scan l.csv --top abc", "scan missing.csv"])
def test_a_reader_closing_stderr_keeps_exit_2(tmp_path: Path, args: str) -> None:
    """A usage error or bad input whose message meets a closed stderr (`2>&1 | true`) is
    still exit 2: only `gate` exits 1."""
    (tmp_path / "l.csv").write_text(LABELS)
    command = f"'{sys.executable}' -m labelaudit {args} 2>&1 | true; exit ${{PIPESTATUS[0]}}"
    done = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2


def test_diff_refuses_one_version_with_ids_and_one_without(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "old.csv").write_text("label\na\nb\n")
    (tmp_path / "new.csv").write_text("id,label\n1,a\n2,b\n3,c\n")
    result = cli("diff", "old.csv", "new.csv")
    assert result.exit_code == 2 and "row number is not an id" in result.output


def test_labels_without_ids_join_scores_on_their_row_numbers(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("label\na\nb\na\nb\n")
    ordered = pl.DataFrame({"id": [0, 1, 2, 3], "a": [0.9, 0.2, 0.8, 0.3]})
    ordered = ordered.with_columns(b=1 - pl.col("a"))
    ordered.write_csv(tmp_path / "ordered.csv")
    ordered.reverse().write_csv(tmp_path / "reversed.csv")
    reports = [
        json.loads(cli("scan", "l.csv", "--preds", p, "--format", "json").stdout)["metrics"]
        for p in ("ordered.csv", "reversed.csv")
    ]
    assert reports[0] == reports[1] and reports[0]["accuracy"] == 1.0
    (tmp_path / "other.csv").write_text("id,a,b\n7,.5,.5\n8,.5,.5\n9,.5,.5\n10,.5,.5\n")
    result = cli("scan", "l.csv", "--preds", "other.csv")
    assert result.exit_code == 2 and "its row numbers" in result.output


def test_ignore_cols_may_be_absent_from_some_models(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text(LABELS)
    with_fold = pl.read_csv(PREDS.format(".8").encode()).with_columns(fold=pl.lit(0))
    with_fold.write_csv(tmp_path / "m1.csv")
    (tmp_path / "m2.csv").write_text(PREDS.format(".8"))
    both = ["scan", "l.csv", "--preds", "m1.csv", "--preds", "m2.csv"]
    assert cli(*both, "--ignore-cols", "fold").exit_code == 0
    result = cli(*both, "--ignore-cols", "folds")
    assert result.exit_code == 2 and "'folds'" in result.output


def test_an_unnamed_index_column_is_ignored_and_said(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("id,label\n1,a\n2,b\n3,a\n")
    (tmp_path / "p.csv").write_text(",id,a,b\n0,1,.9,.1\n1,2,.2,.8\n2,3,.7,.3\n")
    result = cli("scan", "l.csv", "--preds", "p.csv", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dataset"]["classes"] == ["a", "b"]
    assert "unnamed numeric column" in result.stderr


def test_score_column_names_are_stripped_like_labels(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("id,label\n1,  spaced  \n2,b\n3,b\n")
    (tmp_path / "p.csv").write_text("id,  spaced  ,b\n1,.9,.1\n2,.2,.8\n3,.3,.7\n")
    result = cli("scan", "l.csv", "--preds", "p.csv", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["accuracy"] == 1.0


def test_a_record_among_json_lines_labels_is_bad_input(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "l.jsonl").write_text('{"id":1,"label":"a"}\n{"id":2,"label":{"x":1}}\n')
    result = cli("scan", "l.jsonl")
    assert result.exit_code == 2 and "records" in result.output


def test_more_folds_than_rows_is_bad_input(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text(LABELS)
    (tmp_path / "p.csv").write_text(PREDS.format(".8"))
    result = cli("thresholds", "l.csv", "--preds", "p.csv", "--folds", "7")
    assert result.exit_code == 2 and "every fold needs a row" in result.output


def test_the_same_file_twice_as_two_models_is_said(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text(LABELS)
    (tmp_path / "p.csv").write_text(PREDS.format(".8"))
    result = cli("scan", "l.csv", "--preds", "p.csv", "--preds", "./p.csv")
    assert result.exit_code == 0 and "the same file twice" in result.stderr


def test_an_output_matching_an_input_glob_is_refused(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text(LABELS)
    (tmp_path / "preds-1.csv").write_text(PREDS.format(".8"))
    result = cli("scan", "l.csv", "--preds", "preds-*.csv", "--issues-out", "preds-9.csv")
    assert result.exit_code == 2 and "matches the input pattern" in result.output
    assert not (tmp_path / "preds-9.csv").exists()


def test_multilabel_diff_shares_are_of_samples_as_in_scan(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "old.csv").write_text("id,label\n1,a|b\n2,a\n3,b\n4,a|b\n")
    (tmp_path / "new.csv").write_text("id,label\n1,a|b\n2,a\n3,a\n4,a|b\n")
    diff = cli("diff", "old.csv", "new.csv", "--label-sep", "|", "--format", "json")
    scan = cli("scan", "new.csv", "--label-sep", "|", "--format", "json")
    after = {r["class"]: r["new_share"] for r in json.loads(diff.stdout)["support"]}
    shares = {r["class"]: r["share"] for r in json.loads(scan.stdout)["support"]["per_class"]}
    assert after == shares == {"a": 1.0, "b": 0.5}


def test_huge_scores_leave_no_numpy_warning(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("id,label\n1,a\n2,b\n3,a\n")
    (tmp_path / "p.csv").write_text("id,a,b\n1,1e308,-1e308\n2,-1e308,1e308\n3,1e308,-1e308\n")
    result = cli("scan", "l.csv", "--preds", "p.csv", "-o", "r.txt")
    assert result.exit_code == 0, result.output
    assert "RuntimeWarning" not in result.stderr


def _mixed_scores(tmp_path: Path, logit_rows: int, scattered: bool = False) -> None:
    """4,000 rows: probabilities, `logit_rows` of them log-probabilities (the last ones, or
    scattered among the others); chunks of 500 rows."""
    rng = np.random.default_rng(0)
    n, k = 4000, 4
    labels = rng.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k), n)
    rows = rng.choice(n, logit_rows, replace=False) if scattered else np.arange(n - logit_rows, n)
    probs[rows] = np.log(probs[rows])
    pl.DataFrame({"id": np.arange(n), "label": labels}).write_csv(tmp_path / "l.csv")
    columns = {str(j): probs[:, j] for j in range(k)}
    pl.DataFrame({"id": np.arange(n), **columns}).write_csv(tmp_path / "p.csv")
    (tmp_path / "labelaudit.toml").write_text("chunk_rows = 500\n")


@pytest.mark.parametrize(
    "command",
    [["scan"], ["thresholds"], ["scan", "--preds", "p.csv"]],
    ids=["scan", "thresholds", "two models"],
)
def test_a_file_mixing_probabilities_and_logits_is_bad_input(
    cli: CliRun, tmp_path: Path, command: list[str]
) -> None:
    _mixed_scores(tmp_path, logit_rows=2000)
    result = cli(command[0], "l.csv", "--preds", "p.csv", *command[1:])
    assert result.exit_code == 2, result.output
    assert "read as distributions" in result.output and "logits" in result.output


@pytest.mark.parametrize("logit_rows", [10, 1000, 3000])
def test_logits_scattered_among_probabilities_are_found_inside_chunks(
    cli: CliRun, tmp_path: Path, logit_rows: int
) -> None:
    _mixed_scores(tmp_path, logit_rows, scattered=True)
    (tmp_path / "labelaudit.toml").unlink()  # one chunk holds every row
    result = cli("scan", "l.csv", "--preds", "p.csv")
    assert result.exit_code == 2, result.output
    assert f"{4000 - logit_rows:,} rows that read as distributions" in result.output


def test_logits_are_logits_in_every_chunk(cli: CliRun, tmp_path: Path) -> None:
    _mixed_scores(tmp_path, logit_rows=4000)  # all logits: read as logits, no complaint
    result = cli("scan", "l.csv", "--preds", "p.csv", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["score_mode"] == "logits"


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_class_named_like_the_label_column_is_not_silently_dropped(
    cli: CliRun, tmp_path: Path, suffix: str
) -> None:
    (tmp_path / "l.csv").write_text("id,label\n1,label\n2,b\n3,b\n")
    preds = pl.DataFrame({"id": [1, 2, 3], "label": [0.9, 0.2, 0.3], "b": [0.1, 0.8, 0.7]})
    getattr(preds, f"write_{suffix}")(tmp_path / f"p.{suffix}")
    (tmp_path / "labelaudit.toml").write_text("stream_above_mib = 0\n")
    result = cli("scan", "l.csv", "--preds", f"p.{suffix}")
    assert result.exit_code == 2 and "also a class" in result.output, result.output
    (tmp_path / "l2.csv").write_text("id,y\n1,label\n2,b\n3,b\n")
    result = cli("scan", "l2.csv", "--preds", f"p.{suffix}", "--label-col", "y", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["metrics"]["accuracy"] == 1.0
