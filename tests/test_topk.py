"""Top-k predictions: with k = K the report equals the dense one; with k < K the rest of each
row's mass is spread evenly over its other classes; every bad list is exit 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from labelaudit.io.topk import TopK

from .conftest import CliRun, assert_reports_equal

K = 8
CLASSES = [f"c{i}" for i in range(K)]


def problem(n: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, n)
    logits = rng.normal(size=(n, K))
    logits[np.arange(n), labels] += 2.0
    noisy = np.where(rng.random(n) < 0.1, rng.integers(0, K, n), labels)
    return noisy, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def write_topk(path: Path, probs: np.ndarray, k: np.ndarray | int, names=CLASSES) -> None:
    order = np.argsort(-probs, axis=1, kind="stable")
    ks = np.broadcast_to(np.asarray(k), probs.shape[:1])
    pl.DataFrame(
        {
            "id": np.arange(probs.shape[0]),
            "topk_classes": [[names[j] for j in row[:m]] for row, m in zip(order, ks, strict=True)],
            "topk_probs": [
                [float(probs[i, j]) for j in row[:m]]
                for i, (row, m) in enumerate(zip(order, ks, strict=True))
            ],
        }
    ).write_parquet(path)


def report(cli: CliRun, *args: str) -> dict:
    result = cli("scan", "labels.parquet", "--preds", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    data.pop("config")
    data["dataset"].pop("predictions")
    return data


@pytest.fixture
def data(tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    labels, probs = problem()
    pl.DataFrame(
        {"id": np.arange(labels.size), "label": [CLASSES[i] for i in labels]}
    ).write_parquet(tmp_path / "labels.parquet")
    columns = {c: probs[:, i] for i, c in enumerate(CLASSES)}
    pl.DataFrame({"id": np.arange(labels.size), **columns}).write_parquet(
        tmp_path / "dense.parquet"
    )
    return labels, probs


def test_full_lists_equal_the_dense_report(
    cli: CliRun, data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, probs = data
    write_topk(tmp_path / "top.parquet", probs, K)
    dense = report(cli, "dense.parquet", "--issues-out", "dense.csv")
    top = report(cli, "top.parquet", "--issues-out", "top.csv")
    assert_reports_equal(top, dense)
    assert pl.read_csv(tmp_path / "top.csv").equals(pl.read_csv(tmp_path / "dense.csv"))
    monkeypatch.setattr("labelaudit.io.topk.DENSE_CHUNK_BYTES", 8 * K * 100)  # 100-row chunks
    assert_reports_equal(report(cli, "top.parquet"), report(cli, "dense.parquet"))


def test_the_rest_of_the_mass_is_spread_over_the_other_classes(
    cli: CliRun, data, tmp_path: Path
) -> None:
    labels, probs = data
    ks = np.random.default_rng(1).integers(1, K + 1, labels.size)  # k varies by row
    write_topk(tmp_path / "top.parquet", probs, ks)
    order = np.argsort(-probs, axis=1, kind="stable")
    expected = np.empty_like(probs)
    for i, (row, m) in enumerate(zip(order, ks, strict=True)):  # the rule, row by row
        rest = max(0.0, 1.0 - probs[i, row[:m]].sum())
        expected[i] = rest / (K - m) if m < K else 0.0
        expected[i, row[:m]] = probs[i, row[:m]]
    top = report(cli, "top.parquet")
    log_loss = float(-np.log(np.clip(expected[np.arange(labels.size), labels], 1e-300, 1)).mean())
    assert math.isclose(top["metrics"]["log_loss"], log_loss, rel_tol=1e-9)
    accuracy = float((expected.argmax(axis=1) == labels).mean())
    assert top["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-12)


def test_short_lists_equal_their_dense_rows(cli: CliRun, data, tmp_path: Path) -> None:
    """k < K, varying by row, probabilities rounded so that listed entries tie with each other
    and with the shared rest: the metrics and every per-row figure of detection (computed from
    the lists' entries) equal those of the same rows written dense; where a class outside a row's
    list would be its confident class, the lists' rule leaves the row without one (tested
    below), so the detection figures are compared with the rule's count."""
    labels, probs = data
    rng = np.random.default_rng(2)
    ks = rng.integers(0, K, labels.size)
    rounded = np.floor(probs * 8) / 8  # at most the row, many ties
    write_topk(tmp_path / "top.parquet", rounded, ks)
    read = pl.read_parquet(tmp_path / "top.parquet")
    index = {c: i for i, c in enumerate(CLASSES)}
    lengths = read["topk_classes"].list.len().to_numpy()
    topk = TopK(
        np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        np.array([index[c] for c in read["topk_classes"].explode().drop_nulls()], dtype=np.int32),
        read["topk_probs"].explode().drop_nulls().to_numpy(),
    )
    dense = topk.dense(slice(None), np.arange(K))
    columns = {c: dense[:, i] for i, c in enumerate(CLASSES)}
    pl.DataFrame({"id": np.arange(labels.size), **columns}).write_parquet(tmp_path / "as.parquet")
    for rule in ("weighted_count", "prune_by_noise_rate"):
        extra = ["--suspects", rule]
        top = report(cli, "top.parquet", *extra, "--issues-out", "top.csv")
        expected = report(cli, "as.parquet", *extra, "--issues-out", "as.csv")
        assert_reports_equal(top["metrics"], expected["metrics"])
        assert_reports_equal(top["support"], expected["support"])
        got, want = pl.read_csv(tmp_path / "top.csv"), pl.read_csv(tmp_path / "as.csv")
        for column in ("id", "given_label", "given_probability"):
            assert got[column].equals(want[column])


def test_a_class_outside_a_rows_list_is_never_its_confident_class(
    cli: CliRun, tmp_path: Path
) -> None:
    """A rare class whose few samples are all mislabeled has a threshold below every row's
    shared rest; with the rest counted as evidence it would be the confident class of every
    row that leaves it out (the lowest index wins the tie) and make false pairs."""
    rng = np.random.default_rng(4)
    n, k = 3000, 40
    names = [f"c{i:02d}" for i in range(k)]
    truth = rng.integers(1, k, n)
    given = np.where(rng.random(n) < 0.05, rng.integers(1, k, n), truth)
    given[:3] = 0  # class c00: three samples, all of them mislabeled
    probs = np.full((n, k), 1e-4)
    unsure = rng.random(n) < 0.3  # rows whose listed classes all miss their thresholds
    probs[np.arange(n), truth] = np.where(unsure, 0.45, 0.85)
    others = (truth + rng.integers(1, k - 1, n)) % k
    others = np.where(others == 0, 1, others)
    probs[np.arange(n), others] = np.where(others == truth, probs[np.arange(n), truth], 0.08)
    probs /= probs.sum(axis=1, keepdims=True)
    pl.DataFrame({"id": np.arange(n), "label": [names[i] for i in given]}).write_parquet(
        tmp_path / "labels.parquet"
    )
    write_topk(tmp_path / "top.parquet", probs, 2, names)  # c00 is in no list
    data = report(cli, "top.parquet", "--issues-out", "issues.csv")
    suspects = pl.read_csv(tmp_path / "issues.csv").filter(pl.col("is_suspect"))
    assert (suspects["suggested_label"] == "c00").sum() == 0
    assert all("c00" not in (p["source"], p["target"]) for p in data["label_issues"]["pairs"])
    assert data["label_issues"]["estimated_noise_rate"] < 0.2


def test_sparse_pair_tables_give_the_same_report(
    cli: CliRun, data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """K x K tables past DENSE_PAIR_CELLS keep their cells only: the same report."""
    _, probs = data
    write_topk(tmp_path / "top.parquet", probs, 3)
    dense_tables = report(cli, "top.parquet")
    monkeypatch.setattr("labelaudit.core.accumulators.DENSE_PAIR_CELLS", 0)
    assert_reports_equal(report(cli, "top.parquet"), dense_tables)
    assert_reports_equal(report(cli, "dense.parquet"), report(cli, "dense.parquet"))


def test_dense_rows_from_compressed_entries() -> None:
    topk = TopK(
        offsets=np.array([0, 2, 3, 3]),
        column=np.array([1, 0, 2], dtype=np.int32),
        probability=np.array([0.6, 0.3, 1.0]),
    )
    block = topk.dense(slice(0, 3), np.array([0, 1, 2, -1]))  # a 4th class no list names
    assert np.allclose(block[0], [0.3, 0.6, 0.05, 0.05])
    assert np.allclose(block[1], [0.0, 0.0, 1.0, 0.0])
    assert np.allclose(block[2], [0.25, 0.25, 0.25, 0.25])  # an empty list: uniform
    assert np.allclose(topk.dense(np.array([2, 0]), np.array([0, 1, 2, -1]))[1], block[0])


def test_classes_no_label_has_need_the_class_list(cli: CliRun, data, tmp_path: Path) -> None:
    _, probs = data
    write_topk(tmp_path / "top.parquet", probs, 3, names=[*CLASSES[:-1], "zebra"])
    result = cli("scan", "labels.parquet", "--preds", "top.parquet")
    assert result.exit_code == 2 and "zebra" in result.output and "--classes" in result.output
    (tmp_path / "classes.txt").write_text("\n".join([*CLASSES, "zebra"]) + "\n")
    top = report(cli, "top.parquet", "--classes", "classes.txt")
    assert top["dataset"]["classes"] == [*CLASSES, "zebra"]


def test_lists_that_share_no_class_with_the_labels_are_refused(
    cli: CliRun, data, tmp_path: Path
) -> None:
    _, probs = data
    write_topk(tmp_path / "top.parquet", probs, 3, names=[str(i) for i in range(K)])
    result = cli("scan", "labels.parquet", "--preds", "top.parquet")
    assert result.exit_code == 2 and "No class of the top-k lists" in result.output


def test_class_names_follow_the_label_rules(cli: CliRun, tmp_path: Path) -> None:
    pl.DataFrame({"id": [1, 2, 3], "label": [0, 1, 1]}).write_parquet(tmp_path / "labels.parquet")
    floats = {"id": [1, 2, 3], "topk_classes": [[0.0], [1.0], [1.0, 0.0]],
              "topk_probs": [[0.9], [0.8], [0.6, 0.4]]}  # fmt: skip
    pl.DataFrame(floats).write_parquet(tmp_path / "top.parquet")
    assert report(cli, "top.parquet")["metrics"]["accuracy"] == 1.0
    pl.DataFrame({"id": [1, 2], "label": ["a", "b"]}).write_parquet(tmp_path / "labels.parquet")
    blanks = {"id": [1, 2], "topk_classes": [[" a "], ["b "]], "topk_probs": [[0.9], [0.8]]}
    pl.DataFrame(blanks).write_parquet(tmp_path / "top.parquet")
    assert report(cli, "top.parquet")["metrics"]["accuracy"] == 1.0
    fractions = {"id": [1, 2], "topk_classes": [[0.5], [1.0]], "topk_probs": [[0.9], [0.8]]}
    pl.DataFrame(fractions).write_parquet(tmp_path / "top.parquet")
    result = cli("scan", "labels.parquet", "--preds", "top.parquet")
    assert result.exit_code == 2 and "not integers" in result.output


def test_complete_lists_must_sum_to_one(cli: CliRun, tmp_path: Path) -> None:
    pl.DataFrame({"id": [1, 2], "label": ["a", "b"]}).write_parquet(tmp_path / "labels.parquet")
    lists = {"id": [1, 2], "topk_classes": [["a", "b"], ["b", "a"]],
             "topk_probs": [[0.4, 0.2], [0.9, 0.1]]}  # fmt: skip
    pl.DataFrame(lists).write_parquet(tmp_path / "top.parquet")
    result = cli("scan", "labels.parquet", "--preds", "top.parquet")
    assert (
        result.exit_code == 2 and "name every class" in result.output and "ids 1" in result.output
    )


def test_named_columns_that_are_missing_are_named(cli: CliRun, data, tmp_path: Path) -> None:
    _, probs = data
    write_topk(tmp_path / "top.parquet", probs, 3)
    result = cli("scan", "labels.parquet", "--preds", "top.parquet", "--topk-classes-col", "nope")
    assert result.exit_code == 2 and "'nope'" in result.output
    pl.read_parquet(tmp_path / "top.parquet").select(
        "id",
        pl.col("topk_classes").list.join(" "),
        pl.col("topk_probs").cast(pl.List(pl.String)).list.join(" "),
    ).write_csv(tmp_path / "top.csv")
    result = cli("scan", "labels.parquet", "--preds", "top.csv")
    assert result.exit_code == 2 and "CSV" in result.output


def test_integer_classes_and_custom_column_names(cli: CliRun, tmp_path: Path) -> None:
    pl.DataFrame({"id": [1, 2, 3, 4], "label": [0, 1, 1, 0]}).write_parquet(
        tmp_path / "labels.parquet"
    )
    pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "cls": [[0, 1], [1], [1, 0], [0]],
            "p": [[0.8, 0.2], [0.9], [0.6, 0.4], [1.0]],
        }
    ).write_parquet(tmp_path / "top.parquet")
    top = report(cli, "top.parquet", "--topk-classes-col", "cls", "--topk-probs-col", "p")
    assert top["metrics"]["accuracy"] == 1.0 and top["dataset"]["classes"] == ["0", "1"]


@pytest.mark.parametrize(
    ("classes", "probs", "message"),
    [
        ([["c0", "c1"]], [[0.5]], "different lengths"),
        ([["c0"]], [[1.5]], "not a number in [0, 1]"),
        ([["c0"]], [[-0.1]], "not a number in [0, 1]"),
        ([["c0"]], [[float("nan")]], "not a number in [0, 1]"),
        ([["c0", "c1"]], [[0.7, 0.7]], "summing to more than 1.05"),
        ([["c0", "c0"]], [[0.5, 0.2]], "a class twice"),
        ([["c0", None]], [[0.5, 0.2]], "null class"),
    ],
)
def test_bad_lists_are_exit_2_naming_the_ids(
    cli: CliRun, tmp_path: Path, classes: list, probs: list, message: str
) -> None:
    pl.DataFrame({"id": [1, 2], "label": ["c0", "c1"]}).write_parquet(tmp_path / "labels.parquet")
    pl.DataFrame(
        {"id": [1, 2], "topk_classes": [["c1"], *classes], "topk_probs": [[0.9], *probs]}
    ).write_parquet(tmp_path / "top.parquet")
    result = cli("scan", "labels.parquet", "--preds", "top.parquet")
    assert result.exit_code == 2, result.output
    assert message in result.output and "ids 2" in result.output


@pytest.mark.parametrize(
    ("classes", "probs", "message"),
    [
        ([[["c0"]], [["c1"]]], [[0.5], [0.5]], "lists of List(String)"),
        ([["c0"], ["c1"]], [[True], [False]], "lists of Boolean"),
        ([["c0"], ["c1"]], [["0.5"], ["0.6"]], "lists of String"),
        ([["c0"], ["c1"]], ["0.5", "0.6"], "CSV and TSV cannot hold lists"),
    ],
)
def test_lists_of_the_wrong_type_are_exit_2(
    cli: CliRun, tmp_path: Path, classes: list, probs: list, message: str
) -> None:
    pl.DataFrame({"id": [1, 2], "label": ["c0", "c1"]}).write_parquet(tmp_path / "labels.parquet")
    frame = pl.DataFrame({"id": [1, 2], "topk_classes": classes, "topk_probs": probs})
    frame.write_ndjson(tmp_path / "top.ndjson")
    result = cli("scan", "labels.parquet", "--preds", "top.ndjson")
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_lists_naming_no_class_at_all_are_exit_2(cli: CliRun, tmp_path: Path) -> None:
    pl.DataFrame({"id": [1, 2], "label": ["c0", "c1"]}).write_parquet(tmp_path / "labels.parquet")
    pl.DataFrame(
        {"id": [1, 2], "topk_classes": [[], []], "topk_probs": [[], []]},
        schema={"id": pl.Int64, "topk_classes": pl.List(pl.String),
                "topk_probs": pl.List(pl.Float64)},
    ).write_parquet(tmp_path / "top.parquet")  # fmt: skip
    result = cli("scan", "labels.parquet", "--preds", "top.parquet")
    assert result.exit_code == 2 and "no class at all" in result.output, result.output


def test_settings_that_cannot_apply_are_exit_2(cli: CliRun, data, tmp_path: Path) -> None:
    _, probs = data
    write_topk(tmp_path / "top.parquet", probs, 3)
    result = cli("scan", "labels.parquet", "--preds", "top.parquet", "--scores", "logits")
    assert result.exit_code == 2 and "top-k" in result.output
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES[:4]) + "\n")
    result = cli("scan", "labels.parquet", "--preds", "top.parquet", "--classes", "classes.txt")
    assert result.exit_code == 2
    pl.DataFrame({"id": [0, 1], "label": [["c0"], ["c1"]]}).write_parquet(tmp_path / "ml.parquet")
    result = cli("scan", "ml.parquet", "--preds", "top.parquet", "--on-missing", "drop")
    assert result.exit_code == 2 and "multi-label" in result.output


def test_topk_table_round_trips_through_scan(cli: CliRun, data, tmp_path: Path) -> None:
    from labelaudit.io.topk import topk_table

    dense = pl.read_parquet(tmp_path / "dense.parquet")
    table = topk_table(dense, 3)
    first = table.row(0, named=True)
    row = dense.row(0)[1:]
    best = sorted(range(K), key=lambda j: (-row[j], j))[:3]
    assert first["topk_classes"] == [CLASSES[j] for j in best]
    tied = topk_table(pl.DataFrame({"id": [0], "a": [0.4], "b": [0.4], "c": [0.2]}), 2)
    assert tied["topk_classes"].to_list() == [["a", "b"]]  # ties: the earlier column first
    topk_table(dense, 50).write_parquet(tmp_path / "all.parquet")  # k above K keeps them all
    assert_reports_equal(report(cli, "all.parquet"), report(cli, "dense.parquet"))


def test_thresholds_beyond_memory_is_exit_2(
    cli: CliRun, data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`thresholds` holds N x K scores: past the machine's memory it says so, before reading."""
    _, probs = data
    write_topk(tmp_path / "top.parquet", probs, 3)
    monkeypatch.setattr("labelaudit.pipelines.thresholds.available_memory", lambda: 4096)
    result = cli("thresholds", "labels.parquet", "--preds", "top.parquet")
    assert result.exit_code == 2, result.output
    assert "1,500 x 8" in result.output and "sample of the rows" in result.output


def test_running_out_of_memory_is_exit_2_not_a_bug(
    cli: CliRun, data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exhausted(*args: object, **kwargs: object) -> None:
        raise MemoryError("Unable to allocate 6.73 GiB")

    monkeypatch.setattr("labelaudit.pipelines.scan.build_report", exhausted)
    result = cli("scan", "labels.parquet", "--preds", "dense.parquet")
    assert result.exit_code == 2, result.output
    assert "ran out of memory" in result.output and "Internal error" not in result.output


def test_ties_at_the_cut_go_to_the_earlier_classes() -> None:
    """`score --top-k`: a tie at the k-th probability keeps the earlier columns, whatever the
    partition does; each list is most probable first, ties in column order."""
    from labelaudit.io.topk import topk_lists

    rng = np.random.default_rng(0)
    scores = np.round(rng.random((300, 9)) * 4) / 4  # many ties
    table = topk_lists(pl.Series("id", np.arange(300)), scores, [f"c{j}" for j in range(9)], 3)
    for i, (names, probs) in enumerate(table.select("topk_classes", "topk_probs").iter_rows()):
        expected = sorted(range(9), key=lambda j: (-scores[i, j], j))[:3]
        assert names == [f"c{j}" for j in expected]
        assert probs == [scores[i, j] for j in expected]
