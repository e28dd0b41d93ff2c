"""Wide parquet predictions are streamed from disk batch by batch: the same report as a whole
read, whatever the row order, the shards, the row groups or the rows left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from labelaudit.core.candidates import CandidateNote
from labelaudit.io.predictions import ScoreMatrix, load_predictions

from .conftest import assert_reports_equal, labels_frame, preds_frame

CLASSES = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu"]


@pytest.fixture(autouse=True)
def small_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every parquet file streamed, in chunks smaller than the row groups, not aligned with them."""
    monkeypatch.setattr("labelaudit.io.predictions.STREAM_ABOVE_BYTES", 0)  # Python calls
    (tmp_path / "labelaudit.toml").write_text("chunk_rows = 700\nstream_above_mib = 0\n")


def problem(n: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(CLASSES), n)
    given = np.where(rng.random(n) < 0.1, rng.integers(0, len(CLASSES), n), truth)
    logits = rng.normal(size=(n, len(CLASSES))).astype(np.float32)
    logits[np.arange(n), truth] += 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = labels_frame(np.array(CLASSES)[given])
    return labels, preds_frame(probs.astype(np.float32), CLASSES)


@pytest.fixture
def read_whole(monkeypatch: pytest.MonkeyPatch):
    """Call to make every later read of predictions whole (the reference for streaming)."""

    def switch() -> None:
        monkeypatch.setattr("labelaudit.io.predictions._lazy_table", lambda *args: None)

    return switch


def scan_json(cli, *args: str) -> dict:
    result = cli("scan", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    report.pop("config", None)
    report["dataset"].pop("predictions")
    return report


def test_only_large_scores_are_streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, preds = problem(50)
    preds.write_parquet(tmp_path / "p.parquet")
    monkeypatch.setattr("labelaudit.io.predictions.STREAM_ABOVE_BYTES", 50 * 7 * 4)
    assert load_predictions(tmp_path / "p.parquet").lazy is None  # fits: read whole
    monkeypatch.setattr("labelaudit.io.predictions.STREAM_ABOVE_BYTES", 50 * 7 * 4 - 1)
    assert load_predictions(tmp_path / "p.parquet").lazy is not None


def test_a_parquet_file_is_read_lazily(tmp_path: Path) -> None:
    _, preds = problem(50)
    preds.write_parquet(tmp_path / "p.parquet")
    matrix = load_predictions(tmp_path / "p.parquet")
    assert matrix.lazy is not None and matrix.frame is None and matrix.n_rows == 50
    assert matrix.columns == CLASSES and matrix.ids.to_list() == list(range(50))
    starts = [start for start, _ in matrix.stream(np.arange(len(CLASSES)), 20)]
    assert starts[0] == 0 and sum(b.shape[0] for _, b in matrix.stream(np.arange(7), 20)) == 50


@pytest.mark.parametrize("layout", ["same order", "shuffled", "shards", "extra rows"])
def test_streamed_equals_a_whole_read(cli, read_whole, tmp_path: Path, layout: str) -> None:
    labels, preds = problem(5000)
    labels.write_csv(tmp_path / "labels.csv")
    extra: list[str] = []
    if layout == "shuffled":
        preds = preds.sample(fraction=1.0, shuffle=True, seed=3)
    if layout == "extra rows":  # predictions for ids the labels lack, dropped with a warning
        more = preds.head(40).with_columns(pl.col("id") + 100_000)
        preds = pl.concat([preds.sample(fraction=1.0, shuffle=True, seed=4), more])
        extra = ["--on-missing", "drop"]
    if layout == "shards":
        for i, part in enumerate(preds.iter_slices(1800)):
            part.write_parquet(tmp_path / f"p-{i}.parquet", row_group_size=500)
        source = "p-*.parquet"
    else:
        preds.write_parquet(tmp_path / "p.parquet", row_group_size=900)
        source = "p.parquet"
    issues = ["--issues-out"]
    streamed = scan_json(cli, "labels.csv", "--preds", source, *extra, *issues, "s.parquet")
    read_whole()
    whole = scan_json(cli, "labels.csv", "--preds", source, *extra, *issues, "w.parquet")
    assert_reports_equal(streamed, whole)
    assert pl.read_parquet(tmp_path / "s.parquet").equals(pl.read_parquet(tmp_path / "w.parquet"))


def test_other_commands_read_streamed_scores(cli, read_whole, tmp_path: Path) -> None:
    labels, preds = problem(3000, seed=1)
    labels.write_csv(tmp_path / "labels.csv")
    preds.sample(fraction=1.0, shuffle=True, seed=2).write_parquet(
        tmp_path / "p.parquet", row_group_size=400
    )
    commands = (["thresholds"], ["gate"], ["diff", "labels.csv"])
    streamed = [cli(*c, "labels.csv", "--preds", "p.parquet", "--format", "json") for c in commands]
    read_whole()
    whole = [cli(*c, "labels.csv", "--preds", "p.parquet", "--format", "json") for c in commands]
    for one, other in zip(streamed, whole, strict=True):
        assert one.exit_code == other.exit_code, one.output
        assert_reports_equal(json.loads(one.stdout), json.loads(other.stdout))


def test_several_streamed_models(cli, tmp_path: Path) -> None:
    labels, preds = problem(2000, seed=2)
    labels.write_csv(tmp_path / "labels.csv")
    preds.write_parquet(tmp_path / "a.parquet")
    preds.sample(fraction=1.0, shuffle=True, seed=1).write_parquet(tmp_path / "b.parquet")
    result = cli("scan", "labels.csv", "--preds", "a.parquet", "--preds", "b.parquet")
    assert result.exit_code == 0, result.output


def test_a_damaged_file_is_bad_input(cli, tmp_path: Path) -> None:
    labels, preds = problem(3000, seed=5)
    labels.write_csv(tmp_path / "labels.csv")
    preds.write_parquet(tmp_path / "p.parquet", row_group_size=300)
    data = bytearray((tmp_path / "p.parquet").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = bytes(4000)  # zero a stretch of pages, keep the footer
    (tmp_path / "p.parquet").write_bytes(bytes(data))
    result = cli("scan", "labels.csv", "--preds", "p.parquet", "--issues-out", "i.csv")
    assert result.exit_code == 2, result.output
    assert "p.parquet" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "i.csv").exists()


def test_null_scores_in_a_streamed_file_name_their_ids(cli, tmp_path: Path) -> None:
    labels, preds = problem(2000, seed=6)
    labels.write_csv(tmp_path / "labels.csv")
    preds = preds.with_columns(
        pl.when(pl.col("id") == 1500).then(None).otherwise(pl.col("cat")).alias("cat")
    )
    preds.write_parquet(tmp_path / "p.parquet", row_group_size=300)
    result = cli("scan", "labels.csv", "--preds", "p.parquet")
    assert result.exit_code == 2 and "1500" in result.output, result.output


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_the_issues_file_written_in_pieces_equals_the_table(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    import labelaudit

    labels, preds = problem(2500, seed=7)
    labels.write_csv(tmp_path / "labels.csv")
    preds.write_parquet(tmp_path / "p.parquet")
    monkeypatch.setattr("labelaudit.pipelines.label_issues.WRITE_ROWS", 333)
    result = cli("scan", "labels.csv", "--preds", "p.parquet", "--issues-out", f"i.{suffix}")
    assert result.exit_code == 0, result.output
    table = labelaudit.scan(tmp_path / "labels.csv", tmp_path / "p.parquet").issues
    read = pl.read_csv if suffix == "csv" else pl.read_parquet
    written = read(tmp_path / f"i.{suffix}")
    if suffix == "csv":
        table = pl.read_csv(table.write_csv().encode())
    assert written.equals(table)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def _write_text(preds: pl.DataFrame, path: Path) -> None:
    if path.suffix == ".ndjson":
        preds.write_ndjson(path)
    else:
        preds.write_csv(path, separator="\t" if path.suffix == ".tsv" else ",")


@pytest.mark.parametrize("name", ["p.csv", "p.tsv", "p.ndjson", "p-*.csv"])
def test_text_predictions_stream_like_parquet(cli, read_whole, tmp_path: Path, name: str) -> None:
    """CSV, TSV and NDJSON files larger than stream_above_mib stream batch by batch (shards one
    after the other), with the report and issues file of a whole read."""
    labels, preds = problem(4000, seed=7)
    labels.write_csv(tmp_path / "labels.csv")
    preds = preds.sample(fraction=1.0, shuffle=True, seed=8)
    if "*" in name:
        for i, part in enumerate(preds.iter_slices(1500)):
            _write_text(part, tmp_path / f"p-{i}.csv")
        first = tmp_path / "p-0.csv"
    else:
        _write_text(preds, tmp_path / name)
        first = tmp_path / name
    matrix = load_predictions(str(tmp_path / name), stream_above=0)
    assert matrix.lazy is not None and matrix.ids.dtype == pl.Int64
    assert load_predictions(first, stream_above=first.stat().st_size).lazy is None  # fits
    streamed = scan_json(cli, "labels.csv", "--preds", name, "--issues-out", "s.csv")
    read_whole()
    whole = scan_json(cli, "labels.csv", "--preds", name, "--issues-out", "w.csv")
    assert_reports_equal(streamed, whole)
    assert (tmp_path / "s.csv").read_text() == (tmp_path / "w.csv").read_text()


def test_text_ids_keep_their_text_when_streamed(cli, tmp_path: Path) -> None:
    labels, preds = problem(300, seed=9)
    text_ids = [f"{i:04d}" for i in range(300)]  # "0007" is not 7
    labels.with_columns(pl.Series("id", text_ids)).write_csv(tmp_path / "labels.csv")
    preds.with_columns(pl.Series("id", text_ids)).write_csv(tmp_path / "p.csv")
    matrix = load_predictions(str(tmp_path / "p.csv"), stream_above=0)
    assert matrix.lazy is not None and matrix.ids.to_list()[:2] == ["0000", "0001"]
    scan_json(cli, "labels.csv", "--preds", "p.csv")


@pytest.mark.parametrize("rows", [12_000, 150_000])
def test_a_bad_value_in_a_late_batch_of_a_csv_is_bad_input(cli, tmp_path: Path, rows: int) -> None:
    """A value that is not a number past the rows types are read from (10,000), near them or
    batches later: exit 2 naming the file and its line, nothing written."""
    labels, preds = problem(rows, seed=10)
    labels.write_csv(tmp_path / "labels.csv")
    bad = rows - 500
    text = preds.with_columns(pl.col("cat").cast(pl.String))
    text = text.with_columns(
        pl.when(pl.col("id") == bad).then(pl.lit("oops")).otherwise(pl.col("cat")).alias("cat")
    )
    text.write_csv(tmp_path / "p.csv")
    line = f"line {bad + 2}"  # the header, then rows from id 0
    result = cli("scan", "labels.csv", "--preds", "p.csv", "--issues-out", "i.csv")
    assert result.exit_code == 2, result.output
    assert line in result.output and "`oops`" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "i.csv").exists()
    (tmp_path / "labelaudit.toml").unlink()  # the whole read names the line too
    whole = cli("scan", "labels.csv", "--preds", "p.csv")
    assert whole.exit_code == 2 and line in whole.output, whole.output


def test_scores_written_as_text_are_read_whole(tmp_path: Path) -> None:
    """`NA` among a CSV's first rows: the whole read converts the column (not streamed)."""
    _, preds = problem(200, seed=11)
    text = preds.with_columns(pl.col("cat").cast(pl.String))
    text = text.with_columns(
        pl.when(pl.col("id") == 3).then(pl.lit("NA")).otherwise(pl.col("cat")).alias("cat")
    )
    text.write_csv(tmp_path / "p.csv")
    matrix = load_predictions(str(tmp_path / "p.csv"), stream_above=0)
    assert matrix.lazy is None and "cat" in matrix.columns


def test_a_score_column_of_integers_at_first_reads_its_decimals(cli, read_whole, tmp_path) -> None:
    """A one-hot-like column written `0` for the rows types are read from, decimals later: the
    scores are floats, streamed or whole."""
    labels, preds = problem(12_500, seed=12)
    labels.write_csv(tmp_path / "labels.csv")
    text = preds.with_columns(
        pl.when(pl.col("id") < 11_000).then(pl.lit("0")).otherwise(pl.col("cat").cast(pl.String))
        .alias("cat")
    )  # fmt: skip
    text.write_csv(tmp_path / "p.csv")
    streamed = scan_json(cli, "labels.csv", "--preds", "p.csv", "--scores", "probs")
    read_whole()
    whole = scan_json(cli, "labels.csv", "--preds", "p.csv", "--scores", "probs")
    assert_reports_equal(streamed, whole)


@pytest.mark.parametrize(
    ("name", "row", "damage"),
    [
        ("p.csv", 12_001, lambda line: line + ",0.5"),  # a field too many
        ("p.ndjson", 11_000, lambda line: line[:-5]),  # a broken record
    ],
)
def test_a_damaged_line_late_in_a_text_file_is_named(
    cli, tmp_path: Path, name: str, row: int, damage
) -> None:
    """Streamed or whole: a damaged line past the rows types are read from names its line."""
    labels, preds = problem(15_000, seed=13)
    labels.write_csv(tmp_path / "labels.csv")
    _write_text(preds, tmp_path / name)
    lines = (tmp_path / name).read_text().splitlines()
    lines[row] = damage(lines[row])
    (tmp_path / name).write_text("\n".join(lines) + "\n")
    line = f"line {row + 1}"
    result = cli("scan", "labels.csv", "--preds", name)
    assert result.exit_code == 2 and line in result.output, result.output
    (tmp_path / "labelaudit.toml").unlink()
    whole = cli("scan", "labels.csv", "--preds", name)
    assert whole.exit_code == 2 and line in whole.output, whole.output


@pytest.mark.parametrize("layout", ["same order", "shuffled"])
def test_rows_read_again_come_from_their_chunks_only(
    cli, read_whole, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    """Pass 1's note cannot vouch for some chunks (here every third it records is dropped, as
    past its cap): the second pass reads only the file rows around their unsettled rows, and
    the report and the issues file equal a whole read's."""
    labels, preds = problem(5000, seed=5)
    labels.write_csv(tmp_path / "labels.csv")
    if layout == "shuffled":
        preds = preds.sample(fraction=1.0, shuffle=True, seed=6)
    preds.write_parquet(tmp_path / "p.parquet", row_group_size=900)
    record = CandidateNote.record

    def forget_some(self, *args) -> None:
        record(self, *args)
        if len(self._chunks) % 3 == 0:
            self._chunks[-1].largest_left[:] = np.inf

    monkeypatch.setattr(CandidateNote, "record", forget_some)
    asked: list[list[tuple[int, int]] | None] = []
    stream = ScoreMatrix.stream

    def spy(self, positions, chunk_rows, ranges=None):
        asked.append(ranges)
        return stream(self, positions, chunk_rows, ranges)

    monkeypatch.setattr(ScoreMatrix, "stream", spy)
    issues = ["--issues-out"]
    streamed = scan_json(cli, "labels.csv", "--preds", "p.parquet", *issues, "s.parquet")
    assert len(asked) == 2 and asked[0] is None and asked[1]  # pass 1 whole, pass 2 in ranges
    assert sum(stop - start for start, stop in asked[1]) < 5000
    read_whole()
    whole = scan_json(cli, "labels.csv", "--preds", "p.parquet", *issues, "w.parquet")
    assert_reports_equal(streamed, whole)
    assert pl.read_parquet(tmp_path / "s.parquet").equals(pl.read_parquet(tmp_path / "w.parquet"))


def multilabel_problem(n: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Tags with flipped bits and a model that mostly sees the true ones; ties included (scores
    rounded to 1/8)."""
    rng = np.random.default_rng(seed)
    truth = rng.random((n, len(CLASSES))) < 0.3
    given = truth ^ (rng.random(truth.shape) < 0.05)
    given[:, 0] |= ~given.any(axis=1)  # every row carries a tag
    scores = np.clip(truth * 0.7 + rng.normal(0.15, 0.2, truth.shape), 0, 1)
    scores[: n // 4] = np.round(scores[: n // 4] * 8) / 8
    names = np.array(CLASSES)
    tags = ["|".join(names[row]) for row in given]
    labels = pl.DataFrame({"id": np.arange(n), "label": tags})
    return labels, preds_frame(scores.astype(np.float32), CLASSES)


@pytest.mark.parametrize("layout", ["same order", "shuffled", "logits"])
def test_multilabel_scores_stream_in_two_passes(
    cli, read_whole, tmp_path: Path, layout: str
) -> None:
    """Streamed multi-label scores never make the (N, K) probabilities: the metrics (mAP to
    scikit-learn's rule, the CP..OF1 family), detection and the issues file equal a whole
    read's; logits that show only in a late chunk send pass 1 round again."""
    labels, preds = multilabel_problem(4000, seed=7)
    if layout == "shuffled":
        preds = preds.sample(fraction=1.0, shuffle=True, seed=8)
    if layout == "logits":  # probabilities-looking early rows, logits later: all are logits
        late = pl.col(CLASSES[0]).cum_count() > 2500
        preds = preds.with_columns(
            [pl.when(late).then(pl.col(c) * 6 - 3).otherwise(pl.col(c)).alias(c) for c in CLASSES]
        )
    labels.write_csv(tmp_path / "labels.csv")
    preds.write_parquet(tmp_path / "p.parquet", row_group_size=900)
    args = ["labels.csv", "--preds", "p.parquet", "--label-sep", "|", "--issues-out"]
    streamed = scan_json(cli, *args, "s.parquet")
    assert streamed["dataset"]["task"] == "multilabel"
    read_whole()
    whole = scan_json(cli, *args, "w.parquet")
    assert_reports_equal(streamed, whole)
    assert pl.read_parquet(tmp_path / "s.parquet").equals(pl.read_parquet(tmp_path / "w.parquet"))


def test_ndjson_with_blank_lines_is_read_again_whole(cli, read_whole, tmp_path: Path) -> None:
    """A second read of NDJSON goes through the whole file: a slice would count the blank lines
    a whole read skips and hand a row another row's scores (a fresh-eyes review's case)."""
    n, k = 7000, 4
    labels = np.arange(n) % 3
    probs = np.full((n, k), 0.125)
    probs[np.arange(n), labels] = 0.625
    labels[:100] = 3
    probs[:100] = [0.0, 0.0625, 0.0, 0.9375]  # class d confident early ...
    labels[6300:] = 3
    probs[6300:] = [0.96875, 0.0, 0.0, 0.03125]  # ... its threshold falls late
    labels[3600] = 0
    probs[3600] = [0.5, 0.25, 0.0, 0.25]  # top class a misses its threshold; d clears
    names = np.array(list("abcd"))
    pl.DataFrame({"id": np.arange(n), "label": names[labels]}).write_csv(tmp_path / "labels.csv")
    frame = pl.DataFrame({"id": np.arange(n), **{c: probs[:, j] for j, c in enumerate(names)}})
    lines = frame.write_ndjson().splitlines()
    text = "\n\n".join(lines[:31]) + "\n" + "\n".join(lines[31:]) + "\n"  # 30 blank lines
    (tmp_path / "p.ndjson").write_text(text)
    args = ["labels.csv", "--preds", "p.ndjson", "--issues-out"]
    streamed = scan_json(cli, *args, "s.csv")
    read_whole()
    whole = scan_json(cli, *args, "w.csv")
    assert_reports_equal(streamed, whole)
    assert pl.read_csv(tmp_path / "s.csv").equals(pl.read_csv(tmp_path / "w.csv"))
    assert pl.read_csv(tmp_path / "s.csv").row(3600, named=True)["suggested_label"] == "d"


@pytest.mark.parametrize("case", ["extra last row", "last label empty"])
def test_a_last_file_row_without_a_labeled_row(cli, read_whole, tmp_path: Path, case: str) -> None:
    """The join is explicit when the file's last rows have no labeled row (a new user's case:
    the streamed read took file row i for dataset row i and ran past the end, exit 3)."""
    labels, preds = problem(100, seed=9)
    extra: list[str] = []
    if case == "extra last row":
        preds = pl.concat(
            [preds, preds.tail(1).with_columns(pl.lit(100).cast(preds["id"].dtype).alias("id"))]
        )
        extra = ["--on-missing", "drop"]
    else:
        labels = labels.with_columns(
            pl.when(pl.col("id") == 99).then(None).otherwise(pl.col("label")).alias("label")
        )
    labels.write_csv(tmp_path / "labels.csv")
    preds.write_parquet(tmp_path / "p.parquet")
    args = ["labels.csv", "--preds", "p.parquet", *extra, "--issues-out"]
    streamed = scan_json(cli, *args, "s.parquet")
    read_whole()
    whole = scan_json(cli, *args, "w.parquet")
    assert_reports_equal(streamed, whole)
    assert pl.read_parquet(tmp_path / "s.parquet").equals(pl.read_parquet(tmp_path / "w.parquet"))


@pytest.mark.parametrize("streamed", [True, False])
def test_the_same_command_gives_the_same_bytes(cli, read_whole, tmp_path: Path, streamed) -> None:
    """Chunks' sums are added in chunk order whichever thread finished first: float64 logits
    over many chunks give the same JSON on every run (they differed in the last digit)."""
    rng = np.random.default_rng(11)
    n, k = 20_000, 12
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += 2
    names = [f"c{j}" for j in range(k)]
    labels_frame(np.array(names)[truth]).write_csv(tmp_path / "labels.csv")
    preds_frame(logits, names).write_parquet(tmp_path / "p.parquet")
    if not streamed:
        read_whole()
    runs = {cli("scan", "labels.csv", "--preds", "p.parquet", "--format", "json").stdout
            for _ in range(4)}  # fmt: skip
    assert len(runs) == 1


def test_a_csv_shard_with_a_header_only(cli, read_whole, tmp_path: Path) -> None:
    """A shard with a header and no rows adds nothing, streamed as read whole (a new user's
    case: streamed, its columns read as text and the scores were 'not numeric')."""
    labels, preds = problem(600, seed=12)
    labels.write_csv(tmp_path / "labels.csv")
    for i, part in enumerate(preds.iter_slices(300)):
        part.write_csv(tmp_path / f"p-{i}.csv")
    preds.head(0).write_csv(tmp_path / "p-9.csv")
    streamed = scan_json(cli, "labels.csv", "--preds", "p-*.csv")
    read_whole()
    assert_reports_equal(streamed, scan_json(cli, "labels.csv", "--preds", "p-*.csv"))
