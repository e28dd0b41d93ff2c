"""labelaudit diff: counts against a direct join, shift figures against scipy, model verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

from labelaudit.api import diff
from labelaudit.core.diff import distribution_shift

from .conftest import FIXTURES, CliRun

SYNTH = FIXTURES / "synthetic-multiclass"
OLD, NEW, PREDS = SYNTH / "labels.csv", SYNTH / "labels_v2.csv", SYNTH / "preds_v2.parquet"


def test_counts_and_transitions_match_a_direct_join() -> None:
    report = diff(OLD, NEW).to_dict()
    old, new = pl.read_csv(OLD), pl.read_csv(NEW)
    joined = old.join(new, on="id", suffix="_new")
    relabeled = int((joined["label"] != joined["label_new"]).sum())
    assert report["summary"] == {
        "n_old": 3000,
        "n_new": 2990,
        "unchanged": joined.height - relabeled,
        "relabeled": relabeled,
        "added": 40,
        "removed": 50,
        "relabel_rate": relabeled / joined.height,
        "removed_rate": 50 / 3000,
        "added_rate": 40 / 3000,
    }
    transitions = report["transitions"]
    assert sum(t["count"] for t in transitions if t["from"] is None) == 40
    assert sum(t["count"] for t in transitions if t["to"] is None) == 50
    pairs = joined.group_by("label", "label_new").len()
    for row in pairs.iter_rows(named=True):
        match = [t for t in transitions if (t["from"], t["to"]) == (row["label"], row["label_new"])]
        assert match[0]["count"] == row["len"]
    top = report["top_relabels"][0]
    assert (top["from"], top["to"]) == ("ant", "bee")  # half the planted bee->ant flips fixed
    for s in report["support"]:
        assert s["delta"] == s["new"] - s["old"]


def test_shift_figures_against_scipy(rng: np.random.Generator) -> None:
    old = rng.integers(0, 50, 12)
    new = rng.integers(0, 50, 12)
    old[3] = 0  # a class absent before
    shift = distribution_shift(old, new)
    p, q = old / old.sum(), new / new.sum()
    assert shift.tvd == pytest.approx(0.5 * np.abs(p - q).sum())
    assert shift.js == pytest.approx(jensenshannon(p, q, base=2))
    pf, qf = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    assert shift.psi == pytest.approx(((qf - pf) * np.log(qf / pf)).sum())
    table = np.vstack([old, new])
    table = table[:, table.sum(axis=0) > 0]
    expected_p = chi2_contingency(table, correction=False)[1]
    assert shift.chi2_p == pytest.approx(expected_p, rel=1e-9)


def test_relabels_are_judged_by_the_model() -> None:
    verdict = diff(OLD, NEW, PREDS).to_dict()["relabels_vs_model"]
    old, new = pl.read_csv(OLD), pl.read_csv(NEW)
    preds = pl.read_parquet(PREDS)
    joined = (
        old.join(new, on="id", suffix="_new")
        .filter(pl.col("label") != pl.col("label_new"))
        .join(preds, on="id")
    )
    classes = preds.columns[1:]
    probs = joined.select(classes).to_numpy()
    at = np.arange(joined.height)
    old_p = probs[at, [classes.index(c) for c in joined["label"]]]
    new_p = probs[at, [classes.index(c) for c in joined["label_new"]]]
    assert verdict["checked"] == joined.height
    assert verdict["agree"] == int((new_p > old_p).sum())
    assert verdict["disagree"] == 20  # the 20 planted regressions
    assert all(v["new_label"] == "hen" for v in verdict["worst_regressions"])


def test_row_order_does_not_matter(tmp_path: Path) -> None:
    shuffled = pl.read_csv(NEW).sample(fraction=1.0, shuffle=True, seed=3)
    shuffled.write_csv(tmp_path / "new.csv")
    a, b = diff(OLD, NEW).to_dict(), diff(OLD, tmp_path / "new.csv").to_dict()
    assert a["summary"] == b["summary"]
    assert a["support"] == b["support"]
    assert sorted(map(json.dumps, a["transitions"])) == sorted(map(json.dumps, b["transitions"]))


def test_multilabel_tags_added_and_removed() -> None:
    old = pl.DataFrame({"id": [1, 2, 3], "label": [["a"], ["a", "b"], ["c"]]})
    new = pl.DataFrame({"id": [1, 2, 4], "label": [["a", "b"], ["b"], ["c"]]})
    report = diff(old, new).to_dict()
    assert report["dataset"]["task"] == "multilabel"
    tags = {t["class"]: (t["added"], t["removed"]) for t in report["tag_changes"]}
    assert tags == {"a": (0, 1), "b": (1, 0), "c": (0, 0)}
    assert report["summary"]["relabeled"] == 2
    assert (report["summary"]["added"], report["summary"]["removed"]) == (1, 1)


def test_new_and_vanished_classes() -> None:
    old = pl.DataFrame({"id": [1, 2, 3], "label": ["a", "b", "b"]})
    new = pl.DataFrame({"id": [1, 2, 3], "label": ["a", "c", "c"]})
    report = diff(old, new).to_dict()
    assert report["new_classes"] == ["c"]
    assert report["vanished_classes"] == ["b"]


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_cli_formats(cli: CliRun, fmt: str) -> None:
    result = cli("diff", str(OLD), str(NEW), "--preds", str(PREDS), "--format", fmt)
    assert result.exit_code == 0, result.stderr
    assert "ant" in result.stdout


def test_repeated_ids_are_an_error(cli: CliRun) -> None:
    malformed = FIXTURES / "malformed"
    result = cli("diff", str(malformed / "duplicate_ids.csv"), str(malformed / "labels.csv"))
    assert result.exit_code == 2
    assert "repeats 2 ids on 4 rows (e.g. 1, 2)" in result.stderr


def test_multiclass_against_multilabel_is_an_error(cli: CliRun, tmp_path: Path) -> None:
    pl.DataFrame({"id": [1], "label": [["a"]]}).write_parquet(tmp_path / "ml.parquet")
    result = cli("diff", str(OLD), str(tmp_path / "ml.parquet"))
    assert result.exit_code == 2
    assert "both versions must be read the same way" in result.stderr


def test_no_chi_square_p_value_on_a_table_too_sparse_for_it() -> None:
    """Cochran's rule: with many rare classes the chi-square approximation does not hold, so
    no p-value is given (a p of 1.0 next to a large TVD misleads)."""
    from labelaudit.core.diff import homogeneity_p_value

    rare_old = np.array([1, 0, 2, 1, 0, 1, 3, 1, 0, 2])
    rare_new = np.array([0, 2, 1, 0, 1, 2, 0, 1, 3, 0])
    assert homogeneity_p_value(rare_old, rare_new) is None
    p = homogeneity_p_value(np.array([500, 300, 200]), np.array([480, 330, 190]))
    assert p is not None and 0 < p < 1


def test_relabel_examples_belong_to_their_pair(cli, tmp_path) -> None:
    import polars as pl

    pl.DataFrame({"id": [1, 2, 3, 4, 5, 6], "label": list("aabbcc")}).write_csv(tmp_path / "o.csv")
    pl.DataFrame({"id": [1, 2, 3, 4, 5, 6], "label": list("bacbac")}).write_csv(tmp_path / "n.csv")
    result = cli("diff", "o.csv", "n.csv", "--format", "json")
    pairs = {(p["from"], p["to"]): p for p in json.loads(result.stdout)["top_relabels"]}
    assert pairs[("a", "b")]["example_ids"] == [1]
    assert pairs[("b", "c")]["example_ids"] == [3]
    assert pairs[("c", "a")]["example_ids"] == [5]


def test_a_relabel_the_model_cannot_tell_apart_is_tied_not_a_regression(cli, tmp_path) -> None:
    """Both labels equally probable (neither in the row's top-k list): no evidence either way."""
    import polars as pl

    classes = ["a", "b", "c", "d"]
    pl.DataFrame({"id": [1, 2, 3], "label": ["a", "b", "c"]}).write_csv(tmp_path / "o.csv")
    pl.DataFrame({"id": [1, 2, 3], "label": ["b", "c", "d"]}).write_csv(tmp_path / "n.csv")
    (tmp_path / "classes.txt").write_text("\n".join(classes) + "\n")
    pl.DataFrame(
        {
            "id": [1, 2, 3],
            "topk_classes": [["d"], ["a"], ["c"]],
            "topk_probs": [[0.7], [0.7], [0.7]],
        }
    ).write_parquet(tmp_path / "p.parquet")
    result = cli("diff", "o.csv", "n.csv", "--preds", "p.parquet", "--classes", "classes.txt",
                 "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)["relabels_vs_model"]
    assert (verdict["agree"], verdict["disagree"], verdict["tied"]) == (0, 1, 2)
    assert [v["id"] for v in verdict["worst_regressions"]] == [3]
