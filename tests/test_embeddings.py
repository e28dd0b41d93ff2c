"""`scan --embeddings`: near-duplicate sets (conflicts, leakage), outliers, neighbour evidence,
the neighbours' labels as scores without --preds, gate rules, and bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from .conftest import CliRun, preds_frame

pytest.importorskip("faiss", reason="the [embeddings] extra is not installed")

CLASSES = ["ant", "bee", "cat", "dog"]
N, DIM = 1200, 16


def write_problem(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded Gaussian classes: rows 1 and 2 copies of row 0 (2 with another label and in the
    test split), row 3 far from everything, 5% of the other labels flipped."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(CLASSES), DIM)) * 2
    truth = rng.integers(0, len(CLASSES), N)
    vectors = (centres[truth] + rng.normal(size=(N, DIM))).astype(np.float32)
    vectors[1] = vectors[0] + 1e-4
    vectors[2] = vectors[0]
    truth[1] = truth[2] = truth[0]
    vectors[3] = rng.normal(size=DIM) * 30
    given = truth.copy()
    flipped = (rng.random(N) < 0.05) & (np.arange(N) > 3)
    given[flipped] = (truth[flipped] + 1) % len(CLASSES)
    given[2] = (truth[0] + 2) % len(CLASSES)
    split = np.where(np.arange(N) % 5 == 0, "test", "train")
    split[2] = "test" if split[0] == "train" else "train"
    pl.DataFrame(
        {"id": [f"r{i}" for i in range(N)], "label": np.array(CLASSES)[given], "split": split}
    ).write_csv(folder / "labels.csv")
    pl.DataFrame({"id": [f"r{i}" for i in range(N)], "embedding": vectors}).write_parquet(
        folder / "emb.parquet"
    )
    return {"vectors": vectors, "truth": truth, "given": given, "flipped": flipped}


def scan_json(cli: CliRun, *args: str) -> dict:
    result = cli("scan", "labels.csv", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_embeddings_alone_give_duplicates_leakage_outliers_and_suspects(
    cli: CliRun, tmp_path: Path
) -> None:
    problem = write_problem(tmp_path)
    report = scan_json(cli, "--embeddings", "emb.parquet", "--issues-out", "issues.parquet")
    near = report["near_duplicates"]
    assert near["sets"] == 1 and near["rows_in_sets"] == 3 and near["conflicting_sets"] == 1
    assert near["leakage"] == [{"column": "split", "sets": 1, "rows": 3}]
    example = near["examples"][0]
    assert sorted(example["ids"]) == ["r0", "r1", "r2"] and example["conflicting"]
    assert example["leaks"] == ["split"] and example["groups"]["split"] == ["test", "train"]
    assert (
        report["outliers"]["worst"][0]["id"] == "r3"
        and report["outliers"]["worst"][0]["is_outlier"]
    )
    assert report["neighbours"]["search"] == "exact" and report["neighbours"]["k"] == 10
    assert report["dataset"]["predictions"].startswith("the 10 nearest neighbours' labels")
    codes = {f["code"] for f in report["findings"]}
    assert {"duplicate_leakage", "conflicting_near_duplicates", "outliers"} <= codes
    issues = pl.read_parquet(tmp_path / "issues.parquet").sort(
        pl.col("id").str.slice(1).cast(pl.Int64)
    )
    assert issues["near_duplicate_set"].to_list()[:4] == [0, 0, 0, None]
    assert issues["is_outlier"][3] and issues["outlier_score"][3] > 3
    flipped = problem["flipped"]
    suspects = issues["is_suspect"].to_numpy()
    recall = (suspects & flipped).sum() / flipped.sum()
    precision = (suspects & flipped).sum() / suspects.sum()
    assert recall > 0.8 and precision > 0.6
    agreement = issues["knn_agreement"].to_numpy()
    assert agreement[flipped].mean() < 0.3 < agreement[~flipped].mean()


def test_knn_scores_are_the_neighbours_smoothed_votes(cli: CliRun, tmp_path: Path) -> None:
    """The metrics of the kNN classifier: its predictions are the weighted neighbours' vote."""
    from labelaudit.core import neighbourhood as nb
    from labelaudit.engines.vector_search import nearest_neighbours

    problem = write_problem(tmp_path, seed=1)
    report = scan_json(cli, "--embeddings", "emb.parquet")
    found = nearest_neighbours(problem["vectors"], 10, "cosine", "exact")
    weights = nb.closeness(found.distances)
    votes = nb.neighbour_votes(found.indices, problem["given"], len(CLASSES), weights)
    prior = np.bincount(problem["given"], minlength=len(CLASSES)) / N
    probs = (votes + prior) / (weights.sum(axis=1)[:, None] + 1)
    accuracy = float(np.mean(probs.argmax(axis=1) == problem["given"]))
    assert report["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1 / N)


def test_with_preds_the_neighbours_are_evidence_beside_the_model(
    cli: CliRun, tmp_path: Path
) -> None:
    problem = write_problem(tmp_path, seed=2)
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(N, len(CLASSES)))
    logits[np.arange(N), problem["truth"]] += 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    frame = preds_frame(probs.astype(np.float32), CLASSES, ids=np.arange(N))
    frame.with_columns(pl.format("r{}", pl.col("id")).alias("id")).write_parquet(
        tmp_path / "p.parquet"
    )
    plain = scan_json(cli, "--preds", "p.parquet")
    both = scan_json(cli, "--preds", "p.parquet", "--embeddings", "emb.parquet",
                     "--issues-out", "i.parquet", "--group-col", "split")  # fmt: skip
    assert both["metrics"] == plain["metrics"] and both["label_issues"] == plain["label_issues"]
    issues = pl.read_parquet(tmp_path / "i.parquet")
    assert {"knn_agreement", "outlier_score", "is_outlier", "near_duplicate_set"} <= set(
        issues.columns
    )
    assert both["near_duplicates"]["leaking_sets"] == 1


def test_rows_without_a_label_keep_their_embedding_quietly(cli: CliRun, tmp_path: Path) -> None:
    write_problem(tmp_path, seed=9)
    labels = pl.read_csv(tmp_path / "labels.csv")
    labels.with_columns(
        pl.when(pl.int_range(pl.len()) < 7).then(None).otherwise(pl.col("label")).alias("label")
    ).write_csv(tmp_path / "labels.csv")
    report = scan_json(cli, "--embeddings", "emb.parquet")
    assert report["dataset"]["null_labels"] == 7 and report["neighbours"]["rows"] == N - 7
    assert not any("embedding" in w for w in report["warnings"])


def test_multilabel_embeddings(cli: CliRun, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    tags = rng.random((600, 3)) < 0.4
    tags[:, 0] |= ~tags.any(axis=1)
    vectors = (tags @ rng.normal(size=(3, 8)) * 3 + rng.normal(size=(600, 8))).astype(np.float32)
    vectors[1] = vectors[0]
    text = ["|".join(np.array(CLASSES[:3])[t]) for t in tags]
    pl.DataFrame({"id": np.arange(600), "label": text}).write_csv(tmp_path / "labels.csv")
    np.save(tmp_path / "emb.npy", vectors)
    report = scan_json(cli, "--label-sep", "|", "--embeddings", "emb.npy", "--issues-out",
                       "i.parquet")  # fmt: skip
    assert report["dataset"]["task"] == "multilabel" and report["near_duplicates"]["sets"] >= 1
    assert report["metrics"]["micro"]["f1"] > 0.6
    issues = pl.read_parquet(tmp_path / "i.parquet")
    assert issues["knn_agreement"].is_between(0, 1).all()


@pytest.mark.parametrize(
    ("rule", "passing", "failing"),
    [
        ("max_duplicate_sets", 1, 0),
        ("max_conflicting_duplicate_sets", 1, 0),
        ("max_leaking_duplicate_sets", 1, 0),
        ("max_outlier_share", 0.5, 0.0),
    ],
)
def test_gate_rules_on_embeddings(
    cli: CliRun, tmp_path: Path, rule: str, passing: float, failing: float
) -> None:
    write_problem(tmp_path, seed=5)
    for limit, status, code in ((passing, "pass", 0), (failing, "fail", 1)):
        (tmp_path / "labelaudit.toml").write_text(f"[gate]\n{rule} = {limit}\n")
        result = cli("gate", "labels.csv", "--embeddings", "emb.parquet", "--format", "json")
        assert result.exit_code == code, result.output
        assert json.loads(result.stdout)["findings"][0]["status"] == status
    missing = cli("gate", "labels.csv", "--format", "json")
    assert missing.exit_code == 1 and "--embeddings" in missing.stdout


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_every_format_shows_the_embeddings(cli: CliRun, tmp_path: Path, fmt: str) -> None:
    write_problem(tmp_path, seed=6)
    result = cli("scan", "labels.csv", "--embeddings", "emb.parquet", "--format", fmt)
    assert result.exit_code == 0, result.output
    assert "near-duplicates: 1 set of 3 rows" in result.stdout
    assert "across split values" in result.stdout
    if fmt == "html":
        assert 'id="fig-embeddings"' in result.stdout


def bad(cli: CliRun, *args: str) -> str:
    result = cli("scan", "labels.csv", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


def test_bad_embeddings_are_exit_2(cli: CliRun, tmp_path: Path) -> None:
    problem = write_problem(tmp_path, seed=7)
    ids = [f"r{i}" for i in range(N)]
    vectors = problem["vectors"]
    ragged = [list(v) for v in vectors]
    ragged[5] = ragged[5][:-1]
    pl.DataFrame({"id": ids, "e": ragged}).write_parquet(tmp_path / "ragged.parquet")
    assert "different lengths" in bad(cli, "--embeddings", "ragged.parquet")
    nan = vectors.copy()
    nan[7, 3] = np.nan
    pl.DataFrame({"id": ids, "e": nan}).write_parquet(tmp_path / "nan.parquet")
    assert "NaN" in bad(cli, "--embeddings", "nan.parquet") and "r7" in bad(
        cli, "--embeddings", "nan.parquet"
    )
    zero = vectors.copy()
    zero[9] = 0
    pl.DataFrame({"id": ids, "e": zero}).write_parquet(tmp_path / "zero.parquet")
    assert "r9" in bad(cli, "--embeddings", "zero.parquet") and "--distance l2" in bad(
        cli, "--embeddings", "zero.parquet"
    )
    assert (
        cli("scan", "labels.csv", "--embeddings", "zero.parquet", "--distance", "l2").exit_code == 0
    )
    pl.DataFrame({"id": ids[:-10], "e": vectors[:-10]}).write_parquet(tmp_path / "short.parquet")
    assert "--on-missing drop" in bad(cli, "--embeddings", "short.parquet")
    dropped = cli("scan", "labels.csv", "--embeddings", "short.parquet", "--on-missing", "drop",
                  "--format", "json")  # fmt: skip
    assert dropped.exit_code == 0, dropped.output
    assert json.loads(dropped.stdout)["neighbours"]["rows"] == N - 10
    assert any("no embedding" in w for w in json.loads(dropped.stdout)["warnings"])
    np.save(tmp_path / "rows.npy", vectors[:-1])
    assert "row-aligned" in bad(cli, "--embeddings", "rows.npy")
    pl.DataFrame({"id": ids, "e": vectors, "note": ["x"] * N, "f": vectors}).write_parquet(
        tmp_path / "two.parquet"
    )
    assert "--embeddings-col" in bad(cli, "--embeddings", "two.parquet")
    assert (
        cli("scan", "labels.csv", "--embeddings", "two.parquet", "--embeddings-col", "f").exit_code
        == 0
    )
    assert "no column 'nope'" in bad(cli, "--embeddings", "emb.parquet", "--embeddings-col", "nope")
    assert "--group-col" in bad(cli, "--embeddings", "emb.parquet", "--group-col", "batch")
    assert "does not exist" in bad(cli, "--embeddings", "missing.parquet")


def test_the_extra_is_named_when_faiss_is_missing(
    cli: CliRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    write_problem(tmp_path, seed=8)
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    assert "labelaudit[embeddings]" in bad(cli, "--embeddings", "emb.parquet")


def test_a_table_without_the_id_column_is_refused(cli: CliRun, tmp_path: Path) -> None:
    """Row numbers would join the vectors to the wrong rows: exit 2, never a silent misjoin."""
    problem = write_problem(tmp_path, seed=10)
    pl.DataFrame({"sample_id": np.arange(N), "e": problem["vectors"]}).write_parquet(
        tmp_path / "key.parquet"
    )
    assert "no id column 'id'" in bad(cli, "--embeddings", "key.parquet")


def test_the_scale_of_the_vectors_changes_nothing(cli: CliRun, tmp_path: Path) -> None:
    problem = write_problem(tmp_path, seed=11)
    ids = [f"r{i}" for i in range(N)]
    reference = scan_json(cli, "--embeddings", "emb.parquet", "--distance", "l2")
    for factor in (1e-30, 1e30):
        vectors = (problem["vectors"].astype(np.float64) * factor).astype(np.float32)
        pl.DataFrame({"id": ids, "e": vectors}).write_parquet(tmp_path / "scaled.parquet")
        for distance in ("cosine", "l2"):
            report = scan_json(cli, "--embeddings", "scaled.parquet", "--distance", distance)
            assert report["near_duplicates"]["sets"] == 1
            assert report["outliers"]["worst"][0]["id"] == "r3"
        assert report["outliers"]["flagged"] == reference["outliers"]["flagged"]
        assert report["label_issues"]["n_suspects"] == reference["label_issues"]["n_suspects"]


def test_tight_clusters_are_not_duplicates(cli: CliRun, tmp_path: Path) -> None:
    """Rows as close as their neighbours usually are are not near-duplicates, whatever k is."""
    rng = np.random.default_rng(12)
    vectors = np.repeat(rng.normal(size=(5, 8)) * 10, 10, axis=0) + rng.normal(size=(50, 8))
    pl.DataFrame({"id": np.arange(50), "label": np.repeat(list("abcde"), 10)}).write_csv(
        tmp_path / "labels.csv"
    )
    pl.DataFrame({"id": np.arange(50), "e": vectors.astype(np.float32)}).write_parquet(
        tmp_path / "emb.parquet"
    )
    for k in ("10", "40"):
        report = scan_json(cli, "--embeddings", "emb.parquet", "--knn", k)
        assert report["near_duplicates"]["sets"] == 0


def test_degenerate_embeddings_are_refused(cli: CliRun, tmp_path: Path) -> None:
    write_problem(tmp_path, seed=13)
    ids = [f"r{i}" for i in range(N)]
    pl.DataFrame({"id": ids, "e": np.ones((N, 4), dtype=np.float32)}).write_parquet(
        tmp_path / "same.parquet"
    )
    assert "same vector" in bad(cli, "--embeddings", "same.parquet")
    line = np.random.default_rng(0).normal(size=(N, 1)).astype(np.float32)
    pl.DataFrame({"id": ids, "e": line}).write_parquet(tmp_path / "line.parquet")
    assert "one dimension" in bad(cli, "--embeddings", "line.parquet")
    assert (
        cli("scan", "labels.csv", "--embeddings", "line.parquet", "--distance", "l2").exit_code == 0
    )


def test_messages_name_the_right_rows_and_columns(cli: CliRun, tmp_path: Path) -> None:
    problem = write_problem(tmp_path, seed=14)
    vectors = problem["vectors"].copy()
    vectors[8, 0] = np.nan
    np.save(tmp_path / "nan.npy", vectors)
    assert "r8" in bad(cli, "--embeddings", "nan.npy")  # the labels' id of row 8
    assert "split" in bad(cli, "--embeddings", "emb.parquet", "--group-col", "batch")
    labels = pl.read_csv(tmp_path / "labels.csv")
    pl.concat([labels, labels.head(2)]).write_csv(tmp_path / "labels.csv")
    message = bad(cli, "--embeddings", "emb.parquet")
    assert "repeat ids" in message and "labels" in message


def test_leaks_are_listed_beside_conflicts_and_nulls_leak_nothing(
    cli: CliRun, tmp_path: Path
) -> None:
    problem = write_problem(tmp_path, seed=15)
    vectors = problem["vectors"].copy()
    labels = pl.read_csv(tmp_path / "labels.csv")
    given, split = labels["label"].to_list(), labels["split"].to_list()
    for pair in range(12):  # 12 conflicting pairs in one split, 2 agreeing pairs across splits
        a, b = 100 + 2 * pair, 101 + 2 * pair
        vectors[b] = vectors[a]
        given[b] = CLASSES[(CLASSES.index(given[a]) + 1) % 4] if pair < 10 else given[a]
        split[b] = split[a] if pair < 10 else ("test" if split[a] == "train" else "train")
    split[1] = None  # set 0 (rows 0, 1, 2): its leak now rests on row 2 alone... and row 0
    pl.DataFrame({"id": labels["id"], "label": given, "split": split}).write_csv(
        tmp_path / "labels.csv"
    )
    pl.DataFrame({"id": labels["id"], "e": vectors}).write_parquet(tmp_path / "emb.parquet")
    report = scan_json(cli, "--embeddings", "emb.parquet")
    shown = report["near_duplicates"]["examples"]
    assert any(s["leaks"] for s in shown) and any(s["conflicting"] for s in shown)
    assert report["near_duplicates"]["leaking_sets"] == 3  # the two pairs and set 0 (rows 0, 2)
    labels2 = pl.read_csv(tmp_path / "labels.csv").with_columns(
        pl.when(pl.col("id") == "r2").then(None).otherwise(pl.col("split")).alias("split")
    )
    labels2.write_csv(tmp_path / "labels.csv")
    report = scan_json(cli, "--embeddings", "emb.parquet")
    assert report["near_duplicates"]["leaking_sets"] == 2  # set 0's others are in one split


def test_is_outlier_is_null_without_an_embedding(cli: CliRun, tmp_path: Path) -> None:
    problem = write_problem(tmp_path, seed=16)
    ids = [f"r{i}" for i in range(N)]
    pl.DataFrame({"id": ids[5:], "e": problem["vectors"][5:]}).write_parquet(
        tmp_path / "short.parquet"
    )
    probs = np.full((N, 4), 0.25, dtype=np.float32)
    preds_frame(probs, CLASSES, ids=np.arange(N)).with_columns(
        pl.format("r{}", pl.col("id")).alias("id")
    ).write_parquet(tmp_path / "p.parquet")
    result = cli("scan", "labels.csv", "--preds", "p.parquet", "--embeddings", "short.parquet",
                 "--on-missing", "drop", "--issues-out", "i.parquet")  # fmt: skip
    assert result.exit_code == 0, result.output
    issues = pl.read_parquet(tmp_path / "i.parquet").filter(pl.col("id").is_in(ids[:5]))
    assert issues["is_outlier"].null_count() == 5 and issues["knn_agreement"].null_count() == 5


def test_the_leak_rule_needs_a_group_column(cli: CliRun, tmp_path: Path) -> None:
    write_problem(tmp_path, seed=17)
    pl.read_csv(tmp_path / "labels.csv").drop("split").write_csv(tmp_path / "labels.csv")
    (tmp_path / "labelaudit.toml").write_text("[gate]\nmax_leaking_duplicate_sets = 0\n")
    result = cli("gate", "labels.csv", "--embeddings", "emb.parquet", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["findings"][0]["status"] == "error"
