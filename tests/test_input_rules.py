"""Inputs read by documented rules, never into silently wrong figures: how scores are read, which
columns are classes, what a label is, and the bad inputs around them (exit 2, clear message)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from labelaudit.api import scan
from labelaudit.core.scores import check_scores, reading, rounding_decimals, sum_tolerance
from labelaudit.errors import InputError, SchemaError

from .conftest import FIXTURES, CliRun, labels_frame, preds_frame

CIFAR = FIXTURES / "cifar10-test"
CLASSES = (CIFAR / "classes.txt").read_text().split()


@pytest.fixture(scope="module")
def cifar() -> tuple[pl.DataFrame, pl.DataFrame]:
    return pl.read_csv(CIFAR / "labels.csv"), pl.read_parquet(CIFAR / "preds.parquet")


def metrics(labels: pl.DataFrame, preds, **options) -> tuple[dict, list[str]]:
    report = scan(labels, preds, **options)
    return report.to_dict()["metrics"], report.warnings


# --- how scores are read --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "transform"),
    [
        ("rounded to 3 decimals", lambda c: pl.col(c).round(3)),
        ("rounded to 2 decimals", lambda c: pl.col(c).round(2)),
        ("rows summing to 1.001", lambda c: pl.col(c) * 1.001),
        ("rows summing to 0.995", lambda c: pl.col(c) * 0.995),
        ("float32", lambda c: pl.col(c).cast(pl.Float32)),
    ],
)
def test_probabilities_that_sum_to_about_1_stay_probabilities(name, transform, cifar) -> None:
    labels, preds = cifar
    exact, _ = metrics(labels, preds)
    changed = preds.with_columns(transform(c) for c in CLASSES)
    got, warnings = metrics(labels, changed)
    assert got["score_mode"] == "probs", name
    assert got["accuracy"] == pytest.approx(exact["accuracy"], abs=2e-3)
    # Rounding to d decimals costs log loss only on the rows whose probability rounds to 0.
    assert got["log_loss"] < 2 * exact["log_loss"] + 0.3
    if name != "float32":
        assert any("renormalized" in w and "--scores logits" in w for w in warnings)
    if name == "rounded to 3 decimals":
        assert any("rounded to 3 decimals" in w for w in warnings)


def test_float16_npy_is_read_as_probabilities(tmp_path: Path, cifar, cli: CliRun) -> None:
    labels, preds = cifar
    np.save(tmp_path / "p.npy", preds.select(CLASSES).to_numpy().astype(np.float16))
    shutil.copy(CIFAR / "labels.csv", tmp_path / "labels.csv")
    shutil.copy(CIFAR / "classes.txt", tmp_path / "classes.txt")
    result = cli("scan", "labels.csv", "--preds", "p.npy", "--classes", "classes.txt", "--format",
                 "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["metrics"]["score_mode"] == "probs"
    assert report["metrics"]["log_loss"] == pytest.approx(metrics(labels, preds)[0]["log_loss"],
                                                          rel=1e-2)  # fmt: skip


def test_values_in_range_that_are_not_distributions_stop_with_exit_2(
    tmp_path: Path, cli: CliRun
) -> None:
    """One-vs-rest scores: in [0, 1], rows summing to 0.3..2. Neither reading is safe: ask."""
    rng = np.random.default_rng(0)
    probs = rng.random((50, 3))
    preds_frame(probs, ["a", "b", "c"]).write_csv(tmp_path / "p.csv")
    labels_frame(np.array(["a", "b", "c"])[rng.integers(0, 3, 50)]).write_csv(tmp_path / "l.csv")
    result = cli("scan", "l.csv", "--preds", "p.csv")
    assert result.exit_code == 2
    assert "do not sum to 1" in result.stderr
    assert "--scores probs" in result.stderr and "--scores logits" in result.stderr
    forced = cli("scan", "l.csv", "--preds", "p.csv", "--scores", "probs", "--format", "json")
    assert forced.exit_code == 0
    assert json.loads(forced.stdout)["metrics"]["score_mode"] == "probs"
    assert "renormalized" in forced.stderr
    as_logits = cli("scan", "l.csv", "--preds", "p.csv", "--scores", "logits")
    assert as_logits.exit_code == 0


def test_forced_probabilities_equal_dividing_each_row_by_its_sum() -> None:
    rng = np.random.default_rng(1)
    probs = rng.random((200, 4)) * 0.9 + 0.01
    labels = rng.integers(0, 4, 200)
    classes = ["0", "1", "2", "3"]
    forced, _ = metrics(labels_frame(labels), preds_frame(probs, classes), scores="probs")
    normalized = probs / probs.sum(axis=1, keepdims=True)
    direct, _ = metrics(labels_frame(labels), preds_frame(normalized, classes))
    assert forced["log_loss"] == pytest.approx(direct["log_loss"], rel=1e-12)


def test_tiny_negative_noise_is_clipped_and_said() -> None:
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(3), 100)
    probs[0] = [1.0002, -0.0002, 0.0]
    _, warnings = metrics(
        labels_frame(rng.integers(0, 3, 100)), preds_frame(probs, ["0", "1", "2"])
    )
    assert any("clipped" in w for w in warnings)


def test_logits_are_still_logits() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, (100, 3))
    got, _ = metrics(labels_frame(rng.integers(0, 3, 100)), preds_frame(logits, ["0", "1", "2"]))
    assert got["score_mode"] == "logits"


def test_rounding_tolerance_follows_the_rule() -> None:
    rounded = np.round(np.random.default_rng(4).dirichlet(np.ones(100), 50), 2)
    assert rounding_decimals(rounded) == 2
    assert rounding_decimals(np.random.default_rng(5).random((5, 5))) is None
    assert sum_tolerance(100, 2) == pytest.approx(0.05 + 100 * 0.005)
    assert reading(check_scores(rounded, expect_row_sum=True), multi_label=False) == "probs"


# --- which columns are classes ----------------------------------------------------------------


@pytest.mark.parametrize("extra", ["fold", "Unnamed: 0", "index", "__index_level_0__"])
def test_a_numeric_column_that_is_no_class_is_an_error(extra: str, tmp_path: Path, cli) -> None:
    labels, preds = pl.read_csv(CIFAR / "labels.csv"), pl.read_parquet(CIFAR / "preds.parquet")
    labels.write_csv(tmp_path / "labels.csv")
    preds.with_columns(pl.int_range(pl.len()).mod(5).alias(extra)).write_csv(tmp_path / "p.csv")
    result = cli("scan", "labels.csv", "--preds", "p.csv")
    assert result.exit_code == 2
    assert f"'{extra}'" in result.stderr and "--ignore-cols" in result.stderr
    ok = cli("scan", "labels.csv", "--preds", "p.csv", "--ignore-cols", extra, "--format", "json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["metrics"]["accuracy"] == pytest.approx(0.9294)


def test_ignore_cols_naming_an_absent_column_is_an_error(tmp_path: Path, cli: CliRun) -> None:
    shutil.copy(CIFAR / "labels.csv", tmp_path)
    shutil.copy(CIFAR / "preds.parquet", tmp_path)
    result = cli("scan", "labels.csv", "--preds", "preds.parquet", "--ignore-cols", "fold")
    assert result.exit_code == 2
    assert "--ignore-cols names 'fold'" in result.stderr


def test_ignore_cols_from_the_config_file(tmp_path: Path, cli: CliRun) -> None:
    shutil.copy(CIFAR / "labels.csv", tmp_path)
    pl.read_parquet(CIFAR / "preds.parquet").with_columns(fold=pl.lit(1)).write_parquet(
        tmp_path / "p.parquet"
    )
    (tmp_path / "labelaudit.toml").write_text('ignore_cols = ["fold"]\n')
    assert cli("scan", "labels.csv", "--preds", "p.parquet").exit_code == 0


def test_a_class_without_labels_needs_the_classes_file(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("id,label\n1,cat\n2,dog\n3,cat\n")
    (tmp_path / "p.csv").write_text("id,cat,dog,emu\n1,0.8,0.1,0.1\n2,0.1,0.8,0.1\n3,0.7,0.2,0.1\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\nemu\n")
    refused = cli("scan", "l.csv", "--preds", "p.csv")
    assert refused.exit_code == 2 and "1 numeric column that is not a class" in refused.stderr
    result = cli("scan", "l.csv", "--preds", "p.csv", "--classes", "classes.txt", "--format",
                 "json")  # fmt: skip
    assert result.exit_code == 0
    assert json.loads(result.stdout)["imbalance"]["zero_support_classes"] == ["emu"]


def test_a_repeated_column_name_is_an_error(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("id,label\n1,cat\n2,dog\n")
    (tmp_path / "p.csv").write_text("id,cat,cat,dog\n1,0.5,0.3,0.2\n2,0.1,0.1,0.8\n")
    result = cli("scan", "l.csv", "--preds", "p.csv")
    assert result.exit_code == 2
    assert "names the column 'cat' more than once" in result.stderr


# --- what a label is ---------------------------------------------------------------------------


def test_integer_valued_float_labels_match_integer_columns() -> None:
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 3, 100)
    probs = np.eye(3)[labels] * 0.9 + 0.1 / 3
    got, _ = metrics(labels_frame(labels.astype(float)), preds_frame(probs, ["0", "1", "2"]))
    assert got["accuracy"] == 1.0


def test_nan_in_a_float_label_column_is_a_missing_label() -> None:
    labels = labels_frame(np.array([0.0, 1.0, np.nan, 1.0]))
    report = scan(labels).to_dict()
    assert report["dataset"]["null_labels"] == 1
    assert report["dataset"]["classes"] == ["0", "1"]


def test_fractional_labels_are_an_error() -> None:
    from labelaudit.errors import SchemaError

    for bad in (0.5, np.inf, -np.inf, 1e300):
        with pytest.raises(SchemaError, match="numbers that are not integers"):
            scan(labels_frame(np.array([bad, 1.0])))


@pytest.mark.parametrize("names", [("False", "True"), ("false", "true"), ("0", "1")])
def test_boolean_labels_match_their_score_columns(names: tuple[str, str]) -> None:
    rng = np.random.default_rng(7)
    truth = rng.random(100) < 0.4
    probs = np.stack([~truth, truth], axis=1) * 0.8 + 0.1
    got, _ = metrics(labels_frame(truth), preds_frame(probs, list(names)))
    assert got["accuracy"] == 1.0
    assert [c["class"] for c in got["per_class"]] == list(names)


def test_struct_labels_are_an_error(tmp_path: Path, cli: CliRun) -> None:
    pl.DataFrame({"id": [1, 2], "label": [{"a": 1}, {"a": 2}]}).write_parquet(tmp_path / "l.pq")
    result = cli("scan", "l.pq")
    assert result.exit_code == 2 and "holds Struct" in result.stderr


def test_multiclass_labels_are_stripped_like_multilabel_ones() -> None:
    report = scan(pl.DataFrame({"label": [" cat", "cat ", "dog", "  "]})).to_dict()
    assert report["dataset"]["classes"] == ["cat", "dog"]
    assert report["dataset"]["null_labels"] == 1


def test_empty_elements_of_multilabel_values_are_dropped() -> None:
    as_text = scan(pl.DataFrame({"label": ["a||b", "a| ", "b"]}), label_sep="|").to_dict()
    as_list = scan(pl.DataFrame({"label": [["a", "", "b"], ["a", " "], ["b"]]})).to_dict()
    for report in (as_text, as_list):
        assert report["dataset"]["classes"] == ["a", "b"]


@pytest.mark.parametrize("sep", ["", " "])
def test_a_blank_label_separator_is_an_error(sep: str, tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("id,label\n1,a|b\n")
    result = cli("scan", "l.csv", "--label-sep", sep)
    assert result.exit_code == 2 and "--label-sep" in result.stderr


# --- files ----------------------------------------------------------------------------------------


def test_gzipped_labels_pair_with_parquet_predictions(tmp_path: Path, cli: CliRun) -> None:
    with gzip.open(tmp_path / "labels.csv.gz", "wb") as handle:
        handle.write((CIFAR / "labels.csv").read_bytes())
    shutil.copy(CIFAR / "preds.parquet", tmp_path)
    result = cli("scan", "labels.csv.gz", "--preds", "preds.parquet", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["accuracy"] == pytest.approx(0.9294)


def test_gzipped_jsonl_and_tsv(tmp_path: Path, cli: CliRun) -> None:
    with gzip.open(tmp_path / "l.jsonl.gz", "wt") as handle:
        handle.write('{"id": 1, "label": "a"}\n{"id": 2, "label": "b"}\n')
    with gzip.open(tmp_path / "l.tsv.gz", "wt") as handle:
        handle.write("id\tlabel\n1\ta\n2\tb\n")
    for name in ("l.jsonl.gz", "l.tsv.gz"):
        result = cli("scan", name, "--format", "json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["dataset"]["n_samples"] == 2


def test_parquet_gz_is_not_a_known_extension(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.parquet.gz").write_bytes(b"x")
    result = cli("scan", "l.parquet.gz")
    assert result.exit_code == 2 and "'.parquet.gz'" in result.stderr


def test_a_semicolon_csv_gets_a_delimiter_hint(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("id;label\n1;cat\n2;dog\n")
    result = cli("scan", "l.csv")
    assert result.exit_code == 2
    assert "looks separated by semicolons" in result.stderr


def test_csv_and_jsonl_parse_errors_give_the_line(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("id,label\n1,cat\n2,dog\n3,dog,extra\n4,cat\n")
    (tmp_path / "l.jsonl").write_text('{"id": 1, "label": "a"}\n{"id": 2, "label":\n')
    csv_result = cli("scan", "l.csv")
    assert csv_result.exit_code == 2
    assert "line 4 (expected 2 fields, found 3)" in csv_result.stderr
    jsonl_result = cli("scan", "l.jsonl")
    assert jsonl_result.exit_code == 2
    assert "line 2" in jsonl_result.stderr


@pytest.mark.parametrize("dtype", [np.complex128, np.bool_])
def test_a_npy_that_is_not_real_numbers_is_an_error(dtype, tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("label\n0\n1\n")
    np.save(tmp_path / "p.npy", np.ones((2, 2), dtype=dtype))
    result = cli("scan", "l.csv", "--preds", "p.npy")
    assert result.exit_code == 2
    assert "real numbers" in result.stderr


def test_max_weight_nan_is_an_error(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("label\na\nb\n")
    for value in ("nan", "inf", "-1", "0"):
        result = cli("scan", "l.csv", "--max-weight", value)
        assert result.exit_code == 2, value
        assert "--max-weight" in result.stderr


# --- messages ------------------------------------------------------------------------------------


def test_warnings_reach_stderr_in_text_mode_too(tmp_path: Path, cli: CliRun) -> None:
    (tmp_path / "l.csv").write_text("id,label\n1,cat\n2,dog\n3,cat\n")
    (tmp_path / "p.csv").write_text("id,cat\n1,0.8\n2,0.1\n3,0.7\n")
    result = cli("scan", "l.csv", "--preds", "p.csv", "--scores", "probs")
    assert result.exit_code == 0, result.stderr
    assert "warning: 1 class in the labels has no score column" in result.stderr


def test_counts_agree_with_their_nouns() -> None:
    from labelaudit._text import count

    assert count(1, "class") == "1 class"
    assert count(2, "class") == "2 classes"
    assert count(1, "row") == "1 row"
    assert count(12_345, "row") == "12,345 rows"


def test_percentages_are_read_as_percentages(cifar) -> None:
    labels, preds = cifar
    exact, _ = metrics(labels, preds)
    got, warnings = metrics(labels, preds.with_columns(pl.col(c) * 100 for c in CLASSES))
    assert got["score_mode"] == "percent"
    assert got["log_loss"] == pytest.approx(exact["log_loss"], rel=1e-6)
    assert any("read as percentages" in w for w in warnings)


def test_multilabel_percentages() -> None:
    rng = np.random.default_rng(23)
    tags = rng.random((100, 3)) < 0.4
    probs = np.clip(tags * 0.7 + rng.random((100, 3)) * 0.3, 0, 1)
    labels = pl.DataFrame({"label": [[f"t{j}" for j in np.flatnonzero(r)] for r in tags]})
    names = ["t0", "t1", "t2"]
    as_probs = scan(labels, preds_frame(probs, names)).to_dict()["metrics"]
    as_percent = scan(labels, preds_frame(probs * 100, names)).to_dict()["metrics"]
    assert as_percent["score_mode"] == "percent"
    assert as_percent["mean_average_precision"] == pytest.approx(as_probs["mean_average_precision"])


def test_a_value_just_below_0_in_rows_summing_to_1_is_clipped(cifar) -> None:
    labels, preds = cifar
    first = pl.int_range(pl.len()) == 0
    nudged = preds.with_columns(
        pl.when(first).then(pl.col("airplane") - 0.0011).otherwise(pl.col("airplane")),
        pl.when(first).then(pl.col("automobile") + 0.0011).otherwise(pl.col("automobile")),
    )
    got, warnings = metrics(labels, nudged)
    assert got["score_mode"] == "probs"
    assert any("clipped" in w for w in warnings)


def test_logits_just_outside_the_unit_interval_are_a_close_call() -> None:
    rng = np.random.default_rng(24)
    values = rng.random((200, 3)) * 1.04 - 0.02  # logits? They lie almost in [0, 1]
    got, warnings = metrics(labels_frame(rng.integers(0, 3, 200)), preds_frame(values, list("012")))
    assert got["score_mode"] == "logits"
    assert any("if they are probabilities, pass --scores probs" in w for w in warnings)


def test_a_file_mixing_percentages_and_probabilities_is_an_error() -> None:
    from labelaudit.errors import InputError

    rng = np.random.default_rng(25)
    probs = rng.dirichlet(np.ones(3), 200)
    probs[100:] *= 100
    with pytest.raises(InputError, match=r"probabilities .* and rows of percentages"):
        scan(labels_frame(rng.integers(0, 3, 200)), preds_frame(probs, list("012")), chunk_rows=100)


@pytest.mark.parametrize("suffix", ["csv", "parquet", "ndjson"])
def test_labels_read_only_their_id_and_label(tmp_path: Path, suffix: str) -> None:
    """A labels table's other columns (paths, metadata) are not read; a missing label column
    still names every column the file has."""
    from labelaudit.io.labels import load_labels
    from labelaudit.io.tables import read_table

    frame = pl.DataFrame(
        {"path": ["a.png", "b.png"], "id": [1, 2], "note": ["x", "y"], "label": ["cat", "dog"]}
    )
    path = tmp_path / f"labels.{suffix}"
    getattr(frame, f"write_{suffix}")(path)
    read = read_table(path, "labels", keep=("id", "label"))
    assert read.columns == ["id", "label"]
    table = load_labels(path)
    assert table.values.to_list() == ["cat", "dog"] and table.ids.to_list() == [1, 2]
    with pytest.raises(SchemaError, match="Columns found: path, id, note, label"):
        load_labels(path, label_col="class")


def test_a_repeated_label_column_is_refused_when_others_are_skipped(tmp_path: Path) -> None:
    from labelaudit.io.labels import load_labels

    (tmp_path / "labels.csv").write_text("id,label,note,label\n1,cat,x,dog\n")
    with pytest.raises(InputError, match="more than once"):
        load_labels(tmp_path / "labels.csv")


def test_a_classes_file_may_be_a_pipe(tmp_path: Path) -> None:
    """`--classes <(seq 0 9)` is a pipe, not a missing file."""
    import os
    import threading

    from labelaudit.io.predictions import read_class_file

    pipe = tmp_path / "classes"
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_text("a\nb\n"))
    writer.start()
    assert read_class_file(pipe) == ["a", "b"]
    writer.join()


def test_a_class_column_with_text_is_exit_2_not_a_missing_class(cli, tmp_path: Path) -> None:
    """`abc` in a class column: the column is not a class without scores (taken as 0, every
    figure wrong) but scores with a value that is not a number."""
    rng = np.random.default_rng(0)
    n = 300
    labels = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3))
    pl.DataFrame({"id": np.arange(n), "label": [f"c{i}" for i in labels]}).write_csv(
        tmp_path / "l.csv"
    )
    cells = {f"c{j}": logits[:, j].astype(str) for j in range(3)}
    cells["c2"][3] = "abc"
    pl.DataFrame({"id": np.arange(n), **cells}).write_csv(tmp_path / "p.csv")
    result = cli("scan", "l.csv", "--preds", "p.csv")
    assert result.exit_code == 2, result.output
    assert "'c2'" in result.output and "not numbers" in result.output


def test_labels_errors_list_every_column(cli, tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("filename,class\na.png,cat\nb.png,dog\n")
    result = cli("scan", "l.csv")
    assert result.exit_code == 2 and "Columns found: filename, class" in result.output
    pl.DataFrame({"id": [1, 2], "label": ["a", "b"], "path": ["x", "y"]}).write_parquet(
        tmp_path / "l.parquet"
    )
    result = cli("scan", "l.parquet", "--id-col", "nope")
    assert result.exit_code == 2 and "Columns found: id, label, path" in result.output


def test_a_damaged_row_in_a_column_not_used_is_still_found(cli, tmp_path: Path) -> None:
    """Only the id and label are needed, but a CSV row with a field too many is damage."""
    rows = "\n".join(f"{i},img/{i}.png,c{i % 3}" for i in range(50))
    (tmp_path / "l.csv").write_text(f"id,path,label\n{rows}\n7,img/a,b.png,c1\n")
    result = cli("scan", "l.csv")
    assert result.exit_code == 2, result.output
    assert "line 52" in result.output


def test_ndjson_keys_first_seen_late_are_read_and_columns_keep_the_files_order(
    tmp_path: Path,
) -> None:
    """Every record's keys count (not the first lines'), in the first record's order."""
    from labelaudit.io.tables import read_table

    lines = [json.dumps({"id": i, "z": 0.5, "a": 0.5}) for i in range(300)]
    lines += [json.dumps({"id": 300, "z": 0.2, "a": 0.3, "m": 0.5})]
    (tmp_path / "p.ndjson").write_text("\n".join(lines) + "\n")
    frame = read_table(tmp_path / "p.ndjson", "predictions")
    assert frame.columns == ["id", "z", "a", "m"]
    assert frame["m"].null_count() == 300 and frame["m"][300] == 0.5


def test_shards_with_their_columns_in_another_order_stack_by_name(tmp_path: Path) -> None:
    from labelaudit.io.tables import read_table

    pl.DataFrame({"id": [1], "a": [0.2], "b": [0.8]}).write_csv(tmp_path / "p-0.csv")
    pl.DataFrame({"b": [0.6], "id": [2], "a": [0.4]}).write_csv(tmp_path / "p-1.csv")
    frame = read_table(tmp_path / "p-*.csv", "predictions")
    assert frame.columns == ["id", "a", "b"] and frame["b"].to_list() == [0.8, 0.6]
    pl.DataFrame({"id": [3], "a": [0.4], "c": [0.6]}).write_csv(tmp_path / "p-2.csv")
    with pytest.raises(InputError, match=r"p-2\.csv' lacks b and adds c"):
        read_table(tmp_path / "p-*.csv", "predictions")
