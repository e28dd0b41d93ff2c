"""The consensus of core/consensus.py: more labels never hurt (a property test), each score
against a direct computation, the model's learned weight, and crowd-kit as an oracle of the
plain methods where it is installed (a dev-only oracle: skipped without it)."""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelaudit.core import annotators as ann
from labelaudit.core import consensus as cons


def crowd(seed: int, n: int, k: int, m: int, per: int, skill: float = 0.7):
    """A small seeded crowd: one-coin annotators around `skill`, `per` labels an item."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    accuracy = np.clip(rng.normal(skill, 0.15, m), 1.2 / k, 0.98)
    item = np.repeat(np.arange(n), per)
    annotator = np.argsort(rng.random((n, m)), axis=1)[:, :per].ravel()
    right = rng.random(item.size) < accuracy[annotator]
    wrong = (truth[item] + rng.integers(1, k, item.size)) % k
    label = np.where(right, truth[item], wrong)
    return ann.Annotations(item, annotator, label, n, m, k), truth, accuracy


def add(a: ann.Annotations, item: int, annotator: int, label: int) -> ann.Annotations:
    return ann.Annotations(
        np.r_[a.item, item], np.r_[a.annotator, annotator], np.r_[a.label, label],
        a.n_items, a.n_annotators, a.n_classes,
    )  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    k=st.integers(2, 4),
    per=st.integers(1, 3),
    pick=st.integers(0, 10_000),
    with_model=st.booleans(),
)
def test_a_correct_label_never_makes_the_consensus_wrong(
    seed: int, k: int, per: int, pick: int, with_model: bool
) -> None:
    """Add a correct label (from an annotator who had not labeled the item) to an item whose
    consensus was right: the refitted consensus of that item is still right. Holds at fixed
    parameters by construction (the cap: a label is never evidence against its own class); the
    refit moves the parameters little, as one label among hundreds should."""
    m = 6
    a, truth, _ = crowd(seed, n=120, k=k, m=m, per=per)
    rng = np.random.default_rng(pick)
    models = None
    if with_model:
        logits = rng.normal(size=(120, k))
        logits[np.arange(120), truth] += 1.0
        models = [np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)]
    before = cons.fit(a, models)
    right = np.flatnonzero(before.label == truth)
    if right.size == 0:
        return
    item = int(right[pick % right.size])
    free = np.setdiff1d(np.arange(m), a.annotator[a.item == item])
    if free.size == 0:
        return
    annotator = int(free[pick % free.size])
    after = cons.fit(add(a, item, annotator, int(truth[item])), models)
    assert after.label[item] == truth[item]


def test_a_correct_label_raises_the_class_at_fixed_parameters() -> None:
    """The cap's guarantee, directly: with the fitted tables, every (annotator, label) row's
    evidence is highest at the label's own class, even for an annotator fitted as adversarial."""
    a, _, _ = crowd(3, n=400, k=3, m=5, per=3)
    flipped = np.where(a.annotator == 0, (a.label + 1) % 3, a.label)  # annotator 0 is adversarial
    b = ann.Annotations(a.item, a.annotator, flipped, a.n_items, a.n_annotators, 3)
    fitted = cons.fit(b)
    table = fitted.table.reshape(5, 3, 3)  # (annotator, label given, true class)
    for label in range(3):
        assert (table[:, label, label][:, None] >= table[:, label, :] - 1e-12).all()


def test_more_labels_an_item_raise_the_accuracy() -> None:
    """The benchmark's curve in miniature: 1, 2, 3 labels an item, with a mid-strength model."""
    a, truth, _ = crowd(5, n=3000, k=5, m=40, per=3, skill=0.65)
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(3000, 5))
    logits[np.arange(3000), truth] += 1.5
    model = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    rank = np.tile(np.arange(3), 3000)
    accuracy = []
    for per in (1, 2, 3):
        keep = rank < per
        sub = ann.Annotations(a.item[keep], a.annotator[keep], a.label[keep], 3000, 40, 5)
        accuracy.append(np.mean(cons.fit(sub, [model]).label == truth))
    assert accuracy[0] < accuracy[1] < accuracy[2], accuracy


def test_the_model_weight_follows_the_models_worth() -> None:
    """A useless sharp model gets a weight near 0; an informative one a clear weight; the
    weight maximizes the marginal likelihood (a direct search over a grid agrees)."""
    a, truth, _ = crowd(7, n=2000, k=4, m=10, per=2)
    rng = np.random.default_rng(8)
    noise = rng.dirichlet(np.full(4, 0.3), size=2000)
    logits = rng.normal(size=(2000, 4))
    logits[np.arange(2000), truth] += 2.0
    good = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    useless = cons.fit(a, [noise], cons.Settings())
    useful = cons.fit(a, [good], cons.Settings())
    assert useless.weights.max() < 0.15 < 0.5 < useful.weights.min()
    evidence = cons.evidence_of(a, useful.table)
    log_p = np.log(
        np.clip(good, cons.FLOOR, None) / np.clip(good, cons.FLOOR, None).sum(1)[:, None]
    )

    def likelihood(w: float) -> float:
        joint = w * log_p + max(1 - w, 0) * np.log(useful.prior)[None, :]
        joint -= np.log(np.exp(joint).sum(axis=1, keepdims=True))
        total = joint + evidence
        return float(np.log(np.exp(total).sum(axis=1)).sum())

    grid = np.linspace(0, cons.MAX_WEIGHT, 401)
    best = grid[np.argmax([likelihood(w) for w in grid])]
    found = cons._golden(likelihood, 0.0, cons.MAX_WEIGHT)
    assert abs(found - best) < 0.02


def test_annotator_quality_and_its_interval_by_direct_computation() -> None:
    a, _, _ = crowd(9, n=300, k=3, m=8, per=2)
    single = ann.Annotations(np.r_[a.item, 300], np.r_[a.annotator, 7], np.r_[a.label, 0],
                             301, 8, 3)  # fmt: skip  # item 300: one label, not checkable
    fitted = cons.fit(single)
    q = cons.annotator_quality(single, fitted)
    for j in range(8):
        mine = [(i, y) for i, w, y in zip(single.item, single.annotator, single.label, strict=True)
                if w == j and i != 300]  # fmt: skip
        value = np.mean([fitted.posterior[i, y] for i, y in mine])
        assert q.quality[j] == pytest.approx(value) and q.checked[j] == len(mine)
        z, n = 1.96, len(mine)
        centre = (value + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(value * (1 - value) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        assert q.low[j] == pytest.approx(centre - half) and q.high[j] == pytest.approx(
            centre + half
        )
    few = cons.annotator_quality(ann.Annotations(a.item[:6], a.annotator[:6], a.label[:6],
                                                 3, 8, 3), fitted)  # fmt: skip
    assert not few.known.any()  # fewer than MIN_CHECKED checkable labels: n/a


def test_empirical_bayes_strength_and_lgamma_by_direct_computation() -> None:
    x = np.array([1e-6, 0.01, 0.5, 1.0, 2.5, 10.0, 100.0, 1e5])
    np.testing.assert_allclose(cons._lgamma(x), [math.lgamma(v) for v in x], atol=1e-9)
    rng = np.random.default_rng(10)
    counts = rng.integers(0, 20, size=(6, 3, 3)).astype(float)
    mean = rng.dirichlet(np.ones(3), size=(6, 3))

    def score(s: float) -> float:
        total = 0.0
        for j in range(6):
            for c in range(3):
                n = counts[j, c].sum()
                total += math.lgamma(s) - math.lgamma(n + s)
                total += sum(math.lgamma(counts[j, c, x] + s * mean[j, c, x])
                             - math.lgamma(s * mean[j, c, x]) for x in range(3))  # fmt: skip
        return total

    best = cons.STRENGTHS[np.argmax([score(s) for s in cons.STRENGTHS])]
    assert cons._row_strength(counts, mean) == best


CROWDKIT = Path(os.environ.get("LABELAUDIT_CROWDKIT_PYTHON", "/tmp/crowdkit-venv/bin/python"))


def test_plain_methods_agree_with_crowd_kit(tmp_path: Path) -> None:
    """Plain Dawid-Skene and one-coin against crowd-kit's on a small seeded crowd (crowd-kit runs
    in its own venv, benchmarks/crowd_real.py; skipped where it is absent)."""
    if not CROWDKIT.exists():
        pytest.skip(f"crowd-kit's venv is absent ({CROWDKIT}; benchmarks/crowd_real.py makes it)")
    a, truth, _ = crowd(11, n=1500, k=4, m=12, per=3, skill=0.65)
    source, target = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(source, item=a.item, annotator=a.annotator, label=a.label, n_items=a.n_items,
             n_annotators=a.n_annotators, n_classes=a.n_classes)  # fmt: skip
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "crowd_anchors.py"
    done = subprocess.run([str(CROWDKIT), str(script), str(source), str(target), "ds",
                           "onecoin"], capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        pytest.skip(f"crowd-kit did not run: {done.stderr[-300:]}")
    theirs = np.load(target)
    plain = cons.fit(
        a, settings=cons.Settings(method="dawid_skene", cap=False, warm=False, leave_one_out="none")
    )
    assert np.mean(plain.label == theirs["ds_labels"]) >= 0.99
    one = cons.fit(a, settings=cons.Settings(method="one_coin", row_strength=float("inf")))
    assert np.mean(one.label == theirs["onecoin_labels"]) >= 0.98
    ours = cons.fit(a)
    assert np.mean(ours.label == truth) >= np.mean(theirs["ds_labels"] == truth) - 0.005


def one_label_each(seed: int, n: int = 3000, k: int = 10, m: int = 30, skill: float = 0.82):
    """The trial's first input: n items, one annotation each (annotators ~82% accurate)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    right = rng.random(n) < skill
    label = np.where(right, truth, (truth + rng.integers(1, k, n)) % k)
    return ann.Annotations(np.arange(n), rng.integers(0, m, n), label, n, m, k), truth


def test_a_lone_label_is_as_sure_as_its_annotator() -> None:
    """One label an item and no model: nothing checks a label, so it cannot vouch for itself
    (before: every quality >= 0.9992). Its quality is the crowd prior's accuracy (0.75) when
    nothing is checkable, and its annotator's shrunk accuracy when it is checked elsewhere."""
    a, truth = one_label_each(0)
    fitted = cons.fit(a)
    assert np.array_equal(fitted.label, a.label)  # the consensus is the label, unchecked
    assert abs(fitted.quality.mean() - cons.CROWD_ACCURACY) < 0.03 and fitted.quality.max() < 0.8
    # 300 more items with three labels each: the same annotators become checkable.
    b, _, _ = crowd(1, n=300, k=10, m=30, per=3, skill=0.82)
    both = ann.Annotations(np.r_[a.item, b.item + a.n_items], np.r_[a.annotator, b.annotator],
                           np.r_[a.label, b.label], a.n_items + 300, 30, 10)  # fmt: skip
    fitted = cons.fit(both)
    lone = fitted.quality[: a.n_items]
    accuracy = fitted.annotator_accuracy()[a.annotator]
    assert np.corrcoef(lone, accuracy)[0, 1] > 0.9 and lone.max() <= accuracy.max() + 0.02
    assert abs(lone.mean() - np.mean(a.label == truth)) < 0.08


def three_by_ten(seed: int, k: int = 10, skill: float = 0.7):
    """The trial's second input: 10 items, 3 annotators who each label every item."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, 10)
    item, annotator = np.repeat(np.arange(10), 3), np.tile(np.arange(3), 10)
    right = rng.random(30) < skill
    label = np.where(right, truth[item], (truth[item] + rng.integers(1, k, 30)) % k)
    return ann.Annotations(item, annotator, label, 10, 3, k)


def test_a_tiny_crowd_is_not_overconfident() -> None:
    """30 labels, 10 items, 3 annotators: a few errors must not become "the crowd's confusions"
    that then explain themselves (before: three different labels gave 0.99+, an annotator
    0.998 from 10 labels). The pooled error pattern, per-class accuracy and class prior carry
    pseudo-counts that outweigh a handful of labels."""
    split, rated = [], []
    for seed in range(6):
        a = three_by_ten(seed)
        fitted = cons.fit(a)
        split += list(fitted.quality[(a.counts() > 0).sum(axis=1) == 3])
        q = cons.annotator_quality(a, fitted)
        assert (q.checked == 10).all() and (q.low < 0.72).all()  # an interval of 10 labels
        rated += list(q.quality)
    assert max(split) < 0.95 and np.median(split) < 0.85, split
    assert max(rated) < 0.99, rated


def test_majority_vote_ties_go_to_the_lowest_class_index() -> None:
    """A tie goes to the lowest class index (as crowd-kit's MajorityVote), whatever the overall
    label shares: here class 2 is the most common label, and still loses every tie."""
    item = np.array([0, 0, 1, 1, 2, 2, 2, 3, 3, 3])
    label = np.array([2, 1, 0, 2, 2, 2, 1, 2, 2, 2])
    a = ann.Annotations(item, np.arange(10) % 5, label, 4, 5, 3)
    assert ann.majority_vote(a).tolist() == [1, 0, 2, 2]
