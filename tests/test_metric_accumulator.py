"""MetricAccumulator: batch sums give exactly the metrics `scan` gives on the whole dataset."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import labelaudit
from labelaudit import MetricAccumulator
from labelaudit.errors import InputError
from labelaudit.report.schema import to_jsonable

from .conftest import ROOT, assert_reports_equal

K = 12
CLASSES = [f"c{i}" for i in range(K)]


def make_data(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices, float32 probabilities and float32 logits of a seeded K-class problem."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, n)
    logits = rng.normal(size=(n, K)).astype(np.float32) * 2
    logits[np.arange(n), labels] += 2.5
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
    return labels, probs, logits


def write(tmp_path: Path, labels: np.ndarray, scores: np.ndarray) -> tuple[Path, Path]:
    ids = np.arange(labels.size)
    labels_path, preds_path = tmp_path / "labels.parquet", tmp_path / "preds.parquet"
    pl.DataFrame({"id": ids, "label": [CLASSES[i] for i in labels]}).write_parquet(labels_path)
    columns = {name: scores[:, i] for i, name in enumerate(CLASSES)}
    pl.DataFrame({"id": ids, **columns}).write_parquet(preds_path)
    return labels_path, preds_path


def batches(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def accumulate(labels: Any, values: Any, size: int = 256, **options: Any) -> MetricAccumulator:
    accumulator = MetricAccumulator(CLASSES, **options)
    for part in batches(len(labels), size):
        accumulator.update(labels[part], values[part])
    return accumulator


def test_batches_equal_the_scan(tmp_path: Path) -> None:
    labels, probs, _ = make_data()
    scanned = labelaudit.scan(*write(tmp_path, labels, probs), suspects="none").metrics
    names = np.array(CLASSES)[labels]
    for given_labels in (labels, names, names.tolist()):
        computed = accumulate(given_labels, probs).compute()
        assert_reports_equal(to_jsonable(computed), to_jsonable(scanned))
    assert computed.top_5_accuracy is not None and computed.n_scored == labels.size


def test_logits_equal_the_scan_of_logits(tmp_path: Path) -> None:
    labels, _, logits = make_data(seed=1)
    scanned = labelaudit.scan(
        *write(tmp_path, labels, logits), suspects="none", scores="logits"
    ).metrics
    computed = accumulate(labels, logits, scores="logits").compute()
    assert_reports_equal(to_jsonable(computed), to_jsonable(scanned))
    assert computed.score_mode == "logits"


def test_slightly_off_probabilities_are_renormalized_as_scan_does(tmp_path: Path) -> None:
    labels, probs, _ = make_data(seed=2)
    rounded = np.round(probs, 3)  # rows sum to 0.995..1.005
    scanned = labelaudit.scan(*write(tmp_path, labels, rounded), suspects="none").metrics
    computed = accumulate(labels, rounded).compute()
    assert_reports_equal(to_jsonable(computed), to_jsonable(scanned))


def test_merge_of_parts_equals_the_whole() -> None:
    labels, probs, _ = make_data(seed=3)
    whole = accumulate(labels, probs).compute()
    first, second = accumulate(labels[:1000], probs[:1000]), accumulate(labels[1000:], probs[1000:])
    first.merge(second)
    assert_reports_equal(to_jsonable(first.compute()), to_jsonable(whole))


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=8), seed=st.integers(0, 2**16))
def test_any_batching_gives_the_same_metrics(cuts: list[int], seed: int) -> None:
    labels, probs, _ = make_data(n=400, seed=seed)
    whole = MetricAccumulator(CLASSES)
    whole.update(labels, probs)
    parts = MetricAccumulator(CLASSES)
    edges = [0, *sorted(cuts), 400]
    for start, stop in itertools.pairwise(edges):
        parts.update(labels[start:stop], probs[start:stop])
    assert_reports_equal(to_jsonable(parts.compute()), to_jsonable(whole.compute()))


def test_against_a_direct_computation() -> None:
    labels, probs, _ = make_data(n=500, seed=4)
    section = accumulate(labels, probs, size=77).compute()
    predicted = probs.argmax(axis=1)
    assert section.accuracy == pytest.approx(float((predicted == labels).mean()), abs=1e-15)
    given_p = probs[np.arange(labels.size), labels].astype(np.float64)
    assert section.log_loss == pytest.approx(float(-np.log(given_p).mean()), rel=1e-12)
    top5 = np.argsort(-probs, axis=1, kind="stable")[:, :5]
    assert section.top_5_accuracy == pytest.approx(float((top5 == labels[:, None]).any(1).mean()))


def test_per_class_thresholds_are_applied() -> None:
    labels, probs, _ = make_data(n=600, seed=5)
    thresholds = np.full(K, 1.0)
    thresholds[3] = 0.05  # class 3 predicted whenever it reaches 5%
    section = accumulate(labels, probs, thresholds=thresholds).compute()
    cleared = probs[:, 3] >= 0.05
    predicted = np.where(cleared, 3, probs.argmax(axis=1))
    assert section.accuracy == pytest.approx(float((predicted == labels).mean()), abs=1e-15)
    assert section.fallback_rows == int((~cleared).sum())
    assert section.decision == "per-class thresholds"


def test_inputs_are_not_changed() -> None:
    labels, probs, _ = make_data(n=300, seed=6)
    probs[0] *= 1.01  # a row the accumulator renormalizes
    before = probs.copy()
    accumulate(labels, probs).compute()
    assert np.array_equal(probs, before)


def test_multilabel_equals_the_scan(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n, k = 800, 5
    names = [f"t{i}" for i in range(k)]
    truth = rng.random((n, k)) < 0.3
    truth[np.arange(n), rng.integers(0, k, n)] = True  # every row holds a label
    probs = np.clip(truth * 0.6 + rng.random((n, k)) * 0.5, 0, 1).astype(np.float32)
    ids = np.arange(n)
    sets = ["|".join(names[j] for j in np.flatnonzero(row)) for row in truth]
    pl.DataFrame({"id": ids, "label": sets}).write_parquet(tmp_path / "l.parquet")
    pl.DataFrame({"id": ids, **{m: probs[:, j] for j, m in enumerate(names)}}).write_parquet(
        tmp_path / "p.parquet"
    )
    scanned = labelaudit.scan(
        tmp_path / "l.parquet",
        tmp_path / "p.parquet",
        classes=names,
        suspects="none",
        label_sep="|",
    ).metrics
    matrix = MetricAccumulator(names, multi_label=True)
    listed = MetricAccumulator(names, multi_label=True)
    for part in batches(n, 100):
        matrix.update(truth[part].astype(np.int8), probs[part])
        listed.update([[names[j] for j in np.flatnonzero(r)] for r in truth[part]], probs[part])
    assert_reports_equal(to_jsonable(matrix.compute()), to_jsonable(scanned))
    assert_reports_equal(to_jsonable(listed.compute()), to_jsonable(scanned))


def test_torch_tensors_equal_numpy() -> None:
    torch = pytest.importorskip("torch")
    labels, probs, logits = make_data(seed=8)
    expected = to_jsonable(accumulate(labels, probs).compute())
    got = accumulate(torch.from_numpy(labels), torch.from_numpy(probs)).compute()
    assert_reports_equal(to_jsonable(got), expected)
    names = np.array(CLASSES)[labels].tolist()
    got = accumulate(names, torch.from_numpy(probs)).compute()
    assert_reports_equal(to_jsonable(got), expected)
    expected = to_jsonable(accumulate(labels, logits, scores="logits").compute())
    got = accumulate(torch.from_numpy(labels), torch.from_numpy(logits), scores="logits").compute()
    assert_reports_equal(to_jsonable(got), expected)


def test_torch_tensors_with_requires_grad_and_half_precision() -> None:
    torch = pytest.importorskip("torch")
    labels, probs, _ = make_data(n=200, seed=9)
    tensor = torch.from_numpy(probs).requires_grad_(True)
    section = accumulate(torch.from_numpy(labels), tensor).compute()
    assert section.n_scored == 200
    half = torch.from_numpy(probs).to(torch.bfloat16)
    assert accumulate(torch.from_numpy(labels), half).compute().n_scored == 200


def test_cuda_tensors_equal_numpy() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here")
    labels, probs, _ = make_data(seed=10)
    expected = to_jsonable(accumulate(labels, probs).compute())
    got = accumulate(torch.from_numpy(labels).cuda(), torch.from_numpy(probs).cuda()).compute()
    assert_reports_equal(to_jsonable(got), expected)


@pytest.mark.parametrize(
    ("labels", "scores", "options", "message"),
    [
        ([0, 1], np.full((2, K - 1), 1 / (K - 1)), {}, "expected (rows, 12)"),
        (["c0", "dog"], np.full((2, K), 1 / K), {}, "'dog'"),
        ([0, 12], np.full((2, K), 1 / K), {}, "index 12"),
        ([0, -1], np.full((2, K), 1 / K), {}, "index -1"),
        ([0], np.full((2, K), 1 / K), {}, "1 label for 2 rows"),
        ([0.0, 1.0], np.full((2, K), 1 / K), {}, "float64 values"),
        ([0, 1], np.full((2, K), np.nan), {}, "NaN"),
        ([0, 1], np.full((2, K), 0.5), {}, "scores='logits'"),
        ([0, 1], np.full((2, K), 3.0), {}, "not probabilities"),
    ],
)
def test_bad_batches_are_clear_errors(
    labels: Any, scores: np.ndarray, options: dict[str, Any], message: str
) -> None:
    accumulator = MetricAccumulator(CLASSES, **options)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        accumulator.update(np.asarray(labels), scores)
    assert accumulator.n_seen == 0


def test_bad_settings_and_merges() -> None:
    with pytest.raises(InputError, match="twice"):
        MetricAccumulator(["a", "a"])
    with pytest.raises(InputError, match="scores="):
        MetricAccumulator(CLASSES, scores="percent")
    with pytest.raises(InputError, match="thresholds"):
        MetricAccumulator(CLASSES, thresholds=[0.5])
    for threshold in ("high", float("nan"), 1.5, None):
        with pytest.raises(InputError, match="threshold="):
            MetricAccumulator(CLASSES, multi_label=True, threshold=threshold)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="merged"):
        MetricAccumulator(CLASSES).merge(MetricAccumulator(CLASSES[:-1]))
    assert MetricAccumulator(3).classes == ["0", "1", "2"]


def test_an_empty_accumulator_has_no_metrics() -> None:
    accumulator = MetricAccumulator(CLASSES)
    accumulator.update(np.array([], dtype=np.int64), np.zeros((0, K)))  # an empty batch: fine
    accumulator.update([], np.zeros((0, K)))
    with pytest.raises(InputError, match="nothing to measure"):
        accumulator.compute()


def test_more_bad_settings_and_labels() -> None:
    for classes in ("abc", True, 2.5, None):
        with pytest.raises(InputError, match="classes"):
            MetricAccumulator(classes)  # type: ignore[arg-type]
    accumulator = MetricAccumulator(CLASSES)
    with pytest.raises(InputError, match="another MetricAccumulator"):
        accumulator.merge(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="twice"):
        accumulator.merge(accumulator)
    with pytest.raises(InputError, match="init_process_group"):
        accumulator.all_reduce()
    multi = MetricAccumulator(["a", "b", "c"], multi_label=True)
    scores = np.full((3, 3), 0.5)
    with pytest.raises(InputError, match="1-D array"):
        multi.update(np.array([0, 1, 2]), scores)
    with pytest.raises(InputError, match="one list of class names per row"):
        multi.update(["a", "b", "c"], scores)
    multi.update(np.array([["a"], ["b", "c"], []], dtype=object), scores)
    assert multi.n_seen == 3


def test_thresholds_from_a_mapping_or_a_thresholds_file(cli, tmp_path: Path) -> None:
    labels, probs, _ = make_data(n=600, seed=13)
    chosen = {name: 0.3 + 0.01 * i for i, name in enumerate(CLASSES)}
    by_list = accumulate(labels, probs, thresholds=list(chosen.values())).compute()
    by_mapping = accumulate(labels, probs, thresholds=chosen).compute()
    assert to_jsonable(by_list) == to_jsonable(by_mapping)
    with pytest.raises(InputError, match="missing"):
        MetricAccumulator(CLASSES, thresholds={"c0": 0.5})
    write(tmp_path, labels, probs)
    result = cli("thresholds", "labels.parquet", "--preds", "preds.parquet", "-o", "t.json")
    assert result.exit_code == 0, result.output
    from_file = accumulate(labels, probs, thresholds=str(tmp_path / "t.json")).compute()
    thresholds_file = str(tmp_path / "t.json")
    scanned = labelaudit.scan(
        tmp_path / "labels.parquet",
        tmp_path / "preds.parquet",
        thresholds=thresholds_file,
        suspects="none",
    ).metrics
    assert_reports_equal(
        {k: v for k, v in to_jsonable(from_file).items() if k != "decision"},
        {k: v for k, v in to_jsonable(scanned).items() if k != "decision"},
    )


def test_log_to_tensorboard_writes_scalars_and_the_confusion_figure() -> None:
    class Writer:
        def __init__(self) -> None:
            self.scalars: dict[str, tuple[float, int]] = {}
            self.figures: list[str] = []

        def add_scalar(self, tag: str, value: float, step: int) -> None:
            self.scalars[tag] = (value, step)

        def add_figure(self, tag: str, figure: Any, step: int) -> None:
            self.figures.append(tag)

    labels, probs, _ = make_data(n=300, seed=11)
    accumulator = accumulate(labels, probs)
    writer = Writer()
    accumulator.log_to_tensorboard(writer, step=7)
    section = accumulator.compute()
    assert writer.scalars["labelaudit/accuracy"] == (section.accuracy, 7)
    assert writer.scalars["labelaudit/macro_f1"] == (section.macro.f1, 7)
    assert writer.figures == ["labelaudit/confusion_matrix"]


def _distributed_worker(rank: int, world: int, init: str, results: Any) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    labels, probs, _ = make_data(n=1000, seed=12)
    mine = slice(rank * 500, (rank + 1) * 500)
    accumulator = MetricAccumulator(CLASSES)
    accumulator.update(labels[mine], probs[mine])
    accumulator.all_reduce()
    multi = MetricAccumulator(CLASSES, multi_label=True)
    multi.update((probs[mine] > 0.3).astype(np.int8), probs[mine])
    multi.all_reduce()
    import labelaudit.core.accumulators as accumulators

    accumulators.DENSE_PAIR_CELLS = 0  # the confusion kept by cell, as with very many classes
    by_cell = MetricAccumulator(CLASSES)
    by_cell.update(labels[mine], probs[mine])
    by_cell.all_reduce()
    results.put(
        (
            rank,
            to_jsonable(accumulator.compute()),
            to_jsonable(multi.compute()),
            to_jsonable(by_cell.compute()),
        )
    )
    dist.destroy_process_group()


def test_all_reduce_across_two_ranks(tmp_path: Path) -> None:
    mp = pytest.importorskip("torch.multiprocessing")
    context = mp.get_context("spawn")
    results = context.Queue()
    init = f"file://{tmp_path / 'rendezvous'}"
    processes = [
        context.Process(target=_distributed_worker, args=(rank, 2, init, results))
        for rank in range(2)
    ]
    for process in processes:
        process.start()
    got = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    labels, probs, _ = make_data(n=1000, seed=12)
    whole = to_jsonable(accumulate(labels, probs).compute())
    multi = MetricAccumulator(CLASSES, multi_label=True)
    multi.update((probs > 0.3).astype(np.int8), probs)
    for _, single, several, by_cell in got:
        assert_reports_equal(single, whole)
        assert_reports_equal(several, to_jsonable(multi.compute()))
        assert_reports_equal(by_cell, whole)


def test_no_batches_after_all_reduce() -> None:
    accumulator = MetricAccumulator(CLASSES)
    accumulator._reduced = True
    with pytest.raises(InputError, match="reset"):
        accumulator.update([0], np.full((1, K), 1 / K))
    accumulator.reset()
    accumulator.update([0], np.full((1, K), 1 / K))
    assert accumulator.n_seen == 1


def test_the_documented_training_loop_runs(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")

    text = (ROOT / "docs" / "training.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/training.md", "exec"), {})
    assert "accuracy" in capsys.readouterr().out
