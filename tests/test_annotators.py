"""`labelaudit annotators`: the EM against a direct computation, agreement against the
krippendorff package and the formulas, the simulation targets, the CLI and its bad input.
(tests/test_annotators_consensus.py: the consensus's own properties and oracles.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelaudit.core import annotators as ann
from labelaudit.core import consensus as cons

from .conftest import CliRun, preds_frame


def simulate(
    n: int = 20_000, k: int = 8, m: int = 30, per: int = 3, seed: int = 0
) -> tuple[ann.Annotations, np.ndarray, np.ndarray]:
    """Annotators with accuracies 0.45 to 0.95 whose errors go mostly to one other class per
    true class (their own): the issue's simulation."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    accuracy = np.linspace(0.45, 0.95, m)
    confusion = np.empty((m, k, k))
    for a in range(m):
        for c in range(k):
            row = np.full(k, (1 - accuracy[a]) * 0.3 / (k - 1))
            row[(c + 1 + rng.integers(0, k - 1)) % k] += (1 - accuracy[a]) * 0.7
            row[c] = accuracy[a]
            confusion[a, c] = row / row.sum()
    item = np.repeat(np.arange(n), per)
    annotator = np.argsort(rng.random((n, m)), axis=1)[:, :per].ravel()
    cdf = confusion[annotator, truth[item]].cumsum(axis=1)
    label = (rng.random(item.size)[:, None] > cdf).sum(axis=1)
    return ann.Annotations(item, annotator, label, n, m, k), truth, accuracy


def test_simulation_targets() -> None:
    """Consensus at least 0.02 more accurate than the majority vote; estimated annotator
    quality ranks the annotators as their true accuracy does (Spearman >= 0.90)."""
    a, truth, accuracy = simulate()
    majority = ann.majority_vote(a)
    consensus = cons.fit(a)
    gain = np.mean(consensus.label == truth) - np.mean(majority == truth)
    assert gain >= 0.02, gain
    quality = cons.annotator_quality(a, consensus).quality
    ranks = np.argsort(np.argsort(quality))
    spearman = np.corrcoef(ranks, np.argsort(np.argsort(accuracy)))[0, 1]
    assert spearman >= 0.90 and consensus.converged


def test_an_em_round_equals_a_direct_computation() -> None:
    """Plain Dawid-Skene's M step, the pooled prior mean, the capped evidence and the E step,
    each against a loop over annotations."""
    a, _, _ = simulate(n=300, k=3, m=5, per=2, seed=1)
    posterior = np.random.default_rng(2).dirichlet(np.ones(3), size=300)
    plain = cons.Settings(method="dawid_skene", cap=False)
    confusion, prior = cons.m_step(a, posterior, plain)
    counts = np.zeros((5, 3, 3))
    for i, j, label in zip(a.item, a.annotator, a.label, strict=True):
        counts[j, :, label] += posterior[i]
    direct = (counts + cons.SMOOTHING) / (counts + cons.SMOOTHING).sum(axis=2, keepdims=True)
    np.testing.assert_allclose(confusion, direct)
    pp = cons.PRIOR_PSEUDO
    np.testing.assert_allclose(prior, (posterior.sum(axis=0) + pp) / (300 + 3 * pp))
    pooled = cons.Settings(row_strength=8.0, accuracy_strength=4.0)
    shrunk, _ = cons.m_step(a, posterior, pooled)
    pseudo = np.where(np.eye(3, dtype=bool), 0.75, 0.125) * 2.0
    total = counts.sum(axis=0)
    overall = np.trace(total + pseudo) / (total + pseudo).sum()
    # per-class accuracy shrunk toward the overall one; errors plus uniform pseudo-errors
    diag = (np.diagonal(total) + cons.CLASS_PSEUDO * overall) / (total.sum(1) + cons.CLASS_PSEUDO)
    errors_shown = total.sum() - np.trace(total)
    crowd = total + cons.ERROR_PSEUDO / (1 + errors_shown / cons.ERROR_FADE)
    crowd[np.arange(3), np.arange(3)] = diag
    for j in range(5):
        own = (np.trace(counts[j]) + 4.0 * overall) / (counts[j].sum() + 4.0)
        shift = np.log(own / (1 - own)) - np.log(overall / (1 - overall))
        mean = np.zeros((3, 3))
        for c in range(3):
            base = np.log(crowd[c, c] / (1 - crowd[c, c])) + shift
            mean[c, c] = 1 / (1 + np.exp(-base))
            others = [x for x in range(3) if x != c]
            for x in others:
                mean[c, x] = (1 - mean[c, c]) * crowd[c, x] / crowd[c, others].sum()
        expected = (counts[j] + 8.0 * mean) / (counts[j].sum(axis=1, keepdims=True) + 8.0)
        np.testing.assert_allclose(shrunk[j], expected, rtol=1e-10)
    table = cons.log_table(shrunk, cap=True)
    evidence = cons.evidence_of(a, table)
    direct = np.zeros((300, 3))
    for i, j, label in zip(a.item, a.annotator, a.label, strict=True):
        row = np.log(shrunk[j, :, label])
        direct[i] += np.minimum(row, row[label])  # no class above the label's own
    np.testing.assert_allclose(evidence, direct, rtol=1e-10)
    fitted = cons.fit(a, settings=pooled)
    joint = fitted.log_joint
    np.testing.assert_allclose(
        fitted.posterior, np.exp(joint) / np.exp(joint).sum(axis=1, keepdims=True), rtol=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=6, max_size=6),
        min_size=2,
        max_size=5,
    )
)
def test_krippendorff_alpha_equals_the_package(matrix: list[list[int | None]]) -> None:
    """Rows annotators, columns items, None missing: as the krippendorff package takes them."""
    krippendorff = pytest.importorskip("krippendorff", reason="a test-only dependency")
    data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    annotator, item = np.nonzero(~np.isnan(data))
    label = data[annotator, item].astype(np.int64)
    a = ann.Annotations(item, annotator, label, data.shape[1], data.shape[0], 4)
    ours = ann.krippendorff_alpha(a)
    values = np.unique(label)
    pairable = np.bincount(item, minlength=data.shape[1]) >= 2
    if values.size < 2 or not pairable.any() or np.unique(label[pairable[item]]).size < 2:
        return  # undefined: every pairable value the same (the package divides by zero)
    theirs = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def test_fleiss_kappa_and_pairwise_agreement_by_their_formulas() -> None:
    a, _, _ = simulate(n=500, k=4, m=6, per=3, seed=3)
    counts = a.counts()
    r = 3
    p_item = ((counts**2).sum(axis=1) - r) / (r * (r - 1))
    shares = counts.sum(axis=0) / counts.sum()
    expected = (p_item.mean() - (shares**2).sum()) / (1 - (shares**2).sum())
    assert ann.fleiss_kappa(a) == pytest.approx(expected)
    pairs = agreeing = 0
    for i in range(a.n_items):
        labels = a.label[a.item == i]
        for x in range(labels.size):
            for y in range(labels.size):
                if x != y:
                    pairs += 1
                    agreeing += labels[x] == labels[y]
    assert ann.pairwise_agreement(a) == pytest.approx(agreeing / pairs)
    uneven = ann.Annotations(a.item[1:], a.annotator[1:], a.label[1:], a.n_items, 6, 4)
    assert ann.fleiss_kappa(uneven) is None  # not every item has as many annotations


def write_annotations(folder: Path, seed: int = 0) -> np.ndarray:
    a, truth, _ = simulate(n=1500, k=4, m=10, per=3, seed=seed)
    names = np.array(["ant", "bee", "cat", "dog"])
    pl.DataFrame(
        {
            "id": [f"item{i}" for i in a.item],
            "annotator": [f"w{j}" for j in a.annotator],
            "label": names[a.label],
        }
    ).write_csv(folder / "ann.csv")
    return truth


def test_cli_report_consensus_file_and_scan_of_it(cli: CliRun, tmp_path: Path) -> None:
    truth = write_annotations(tmp_path)
    result = cli("annotators", "ann.csv", "--format", "json", "--consensus-out", "c.csv")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dataset"]["n_items"] == 1500 and report["dataset"]["n_annotators"] == 10
    qualities = [q["quality"] for q in report["annotators"]]
    assert qualities == sorted(qualities)  # worst first
    assert report["agreement"]["fleiss_kappa"] is not None
    consensus = pl.read_csv(tmp_path / "c.csv")
    assert consensus.columns == ["id", "consensus_label", "consensus_quality", "n_annotations",
                                 "agreement", "majority_label"]  # fmt: skip
    order = consensus["id"].str.slice(4).cast(pl.Int64).to_numpy()
    names = np.array(["ant", "bee", "cat", "dog"])
    correct = consensus["consensus_label"].to_numpy() == names[truth[order]]
    majority = consensus["majority_label"].to_numpy() == names[truth[order]]
    assert correct.mean() >= majority.mean()
    scan = cli("scan", "c.csv", "--label-col", "consensus_label")
    assert scan.exit_code == 0, scan.output
    for fmt in ("text", "markdown", "html"):
        shown = cli("annotators", "ann.csv", "--format", fmt)
        assert shown.exit_code == 0 and "Krippendorff" in shown.stdout


def test_a_model_joins_the_consensus(cli: CliRun, tmp_path: Path) -> None:
    truth = write_annotations(tmp_path, seed=4)
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(1500, 4))
    logits[np.arange(1500), truth] += 2.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    frame = preds_frame(probs.astype(np.float32), ["ant", "bee", "cat", "dog"], ids=np.arange(1500))
    frame.with_columns(pl.format("item{}", pl.col("id")).alias("id")).write_parquet(
        tmp_path / "p.parquet"
    )
    plain = json.loads(cli("annotators", "ann.csv", "--format", "json").stdout)
    result = cli("annotators", "ann.csv", "--preds", "p.parquet", "--format", "json",
                 "--consensus-out", "c.parquet")  # fmt: skip
    assert result.exit_code == 0, result.output
    with_model = json.loads(result.stdout)
    assert with_model["consensus"]["method"] == "pooled_dawid_skene_with_model"
    assert plain["consensus"]["method"] == "pooled_dawid_skene"
    weights = with_model["consensus"]["model_weights"]
    assert len(weights) == 1 and all(w > 0.3 for w in next(iter(weights.values())))
    consensus = pl.read_parquet(tmp_path / "c.parquet")
    order = consensus["id"].str.slice(4).cast(pl.Int64).to_numpy()
    names = np.array(["ant", "bee", "cat", "dog"])
    assert (consensus["consensus_label"].to_numpy() == names[truth[order]]).mean() > 0.9


def bad(cli: CliRun, tmp_path: Path, frame: pl.DataFrame, *args: str) -> str:
    frame.write_csv(tmp_path / "bad.csv")
    result = cli("annotators", "bad.csv", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


def test_bad_annotations(cli: CliRun, tmp_path: Path) -> None:
    good = pl.DataFrame(
        {"id": [1, 1, 2, 2, 3], "annotator": ["a", "b", "a", "b", "a"],
         "label": ["x", "y", "x", "x", "y"]}
    )  # fmt: skip
    assert "--annotator-col" in bad(cli, tmp_path, good.drop("annotator"))
    conflicting = pl.concat([good, pl.DataFrame({"id": [1], "annotator": ["a"], "label": ["y"]})])
    assert "several different labels" in bad(cli, tmp_path, conflicting)
    (tmp_path / "classes.txt").write_text("x\n")
    assert "not in --classes" in bad(cli, tmp_path, good, "--classes", "classes.txt")
    repeated = pl.concat([good, good.head(1)])
    repeated.write_csv(tmp_path / "rep.csv")
    result = cli("annotators", "rep.csv", "--format", "json")
    assert result.exit_code == 0 and "counted once" in result.stderr
    nameless = good.with_columns(
        pl.when(pl.col("id") == 3).then(None).otherwise(pl.col("annotator")).alias("annotator")
    )
    nameless.write_csv(tmp_path / "nameless.csv")
    result = cli("annotators", "nameless.csv", "--format", "json")
    assert result.exit_code == 0 and "no annotator" in result.stderr
    assert json.loads(result.stdout)["dataset"]["n_items"] == 2
    single = cli("annotators", "bad.csv", "--format", "json")  # item 3 has one annotation
    report = json.loads(single.stdout)
    assert single.exit_code == 0 and report["dataset"]["items_with_one_annotation"] == 1


def test_a_million_annotations_run_vectorized() -> None:
    """No timing here (docs/performance.md has it): the EM's rounds are bincounts and sums over
    annotations, so a large input finishes; this checks it runs and settles on real structure."""
    a, truth, _ = simulate(n=100_000, k=5, m=50, per=3, seed=6)
    consensus = cons.fit(a)
    assert consensus.posterior.shape == (100_000, 5) and np.mean(consensus.label == truth) > 0.8


def test_review_findings_null_labels_roles_and_unestimable_quality(
    cli: CliRun, tmp_path: Path
) -> None:
    good = pl.DataFrame(
        {"id": [1, 1, 2, 2, 3, 3], "annotator": ["a", "b", "a", "b", "a", "b"],
         "label": ["x", "y", "x", None, "y", "y"]}
    )  # fmt: skip
    good.write_csv(tmp_path / "null.csv")
    result = cli("annotators", "null.csv", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "no label" in result.stderr
    assert json.loads(result.stdout)["dataset"]["n_annotations"] == 5
    clash = cli("annotators", "null.csv", "--annotator-col", "label")
    assert clash.exit_code == 2 and "three different columns" in clash.output
    assert "not supported" in bad(cli, tmp_path, good.drop_nulls(), "--label-sep", "|")
    alone = pl.DataFrame({"id": [1, 2, 3], "annotator": ["a", "b", "c"], "label": ["x", "y", "x"]})
    alone.write_csv(tmp_path / "alone.csv")
    report = json.loads(cli("annotators", "alone.csv", "--format", "json").stdout)
    assert all(q["quality"] is None for q in report["annotators"])


def test_a_confident_wrong_model_does_not_take_over(cli: CliRun, tmp_path: Path) -> None:
    """The model's weight is learned from the annotations: random, sharp probabilities weigh
    little."""
    truth = write_annotations(tmp_path, seed=8)
    rng = np.random.default_rng(9)
    sharp = rng.dirichlet(np.full(4, 0.3), size=1500).astype(np.float32)
    frame = preds_frame(sharp, ["ant", "bee", "cat", "dog"], ids=np.arange(1500))
    frame.with_columns(pl.format("item{}", pl.col("id")).alias("id")).write_parquet(
        tmp_path / "sharp.parquet"
    )
    names = np.array(["ant", "bee", "cat", "dog"])
    accuracy = {}
    for label, extra in (("alone", []), ("model", ["--preds", "sharp.parquet"])):
        result = cli("annotators", "ann.csv", *extra, "--consensus-out", f"{label}.csv")
        assert result.exit_code == 0, result.output
        consensus = pl.read_csv(tmp_path / f"{label}.csv")
        order = consensus["id"].str.slice(4).cast(pl.Int64).to_numpy()
        accuracy[label] = (consensus["consensus_label"].to_numpy() == names[truth[order]]).mean()
    assert accuracy["model"] >= accuracy["alone"] - 0.01
    two = cli("annotators", "ann.csv", "--preds", "sharp.parquet", "--preds", "sharp.parquet",
              "--format", "json")  # fmt: skip
    assert two.exit_code == 0, two.output
    listed = [q["annotator"] for q in json.loads(two.stdout)["annotators"]]
    assert sum(name.startswith("(model") for name in listed) == 2


def test_one_label_an_item_is_reported_unchecked(cli: CliRun, tmp_path: Path) -> None:
    """The trial: 3,000 items, one annotation each, no model. The qualities are the crowd
    prior's accuracy, not ~1, and a warning says how many items nothing checks."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 10, 3000)
    label = np.where(rng.random(3000) < 0.82, truth, (truth + rng.integers(1, 10, 3000)) % 10)
    pl.DataFrame({"id": np.arange(3000), "annotator": rng.integers(0, 30, 3000).astype(str),
                  "label": label}).write_csv(tmp_path / "one.csv")  # fmt: skip
    result = cli("annotators", str(tmp_path / "one.csv"), "--format", "json",
                 "--consensus-out", str(tmp_path / "c.csv"))  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    quality = pl.read_csv(tmp_path / "c.csv")["consensus_quality"].to_numpy()
    assert quality.max() < 0.8 and abs(report["consensus"]["mean_quality"] - 0.75) < 0.03
    found = {f["code"]: f for f in report["findings"]}
    assert found["unchecked_single_labels"]["count"] == 3000
    assert found["unchecked_single_labels"]["severity"] == "warning"
