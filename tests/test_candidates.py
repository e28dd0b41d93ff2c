"""Pass 1's note of each row's contenders (core.candidates): the confident classes it settles
equal the second pass's, whatever the bounds, the cap or the ties; rows it cannot vouch for
are read again, and only those."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelaudit.core import candidates
from labelaudit.core.candidates import CandidateNote, in_row_blocks
from labelaudit.core.noise import detect, in_memory_chunks


def _counting(chunks, asked: list[int]):
    """The same chunks, counting the rows a second pass asks for."""

    def counted(needed=None):
        for block, rows in chunks(needed):
            if needed is not None:
                asked.append(int(needed[rows].sum()))
            yield block, rows

    return counted


def _both(probs: np.ndarray, labels: np.ndarray, chunk_rows: int):
    k = probs.shape[1]
    plain = detect(in_memory_chunks(probs.copy(), chunk_rows), labels, k)
    asked: list[int] = []
    chunks = _counting(in_memory_chunks(probs.copy(), chunk_rows), asked)
    noted = detect(chunks, labels, k, with_candidates=True)
    return plain, noted, sum(asked)


def _assert_same(plain, noted) -> None:
    np.testing.assert_array_equal(noted.confident.confident_class, plain.confident.confident_class)
    np.testing.assert_array_equal(
        noted.confident.confident_probability, plain.confident.confident_probability
    )
    np.testing.assert_array_equal(noted.flagged, plain.flagged)
    np.testing.assert_array_equal(noted.suggested, plain.suggested)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 400),
    k=st.integers(1, 9),
    chunk_rows=st.integers(1, 120),
    ties=st.booleans(),
    share=st.sampled_from([0.5, 1.0, 3.0]),
    cap=st.sampled_from([2, 0]),
)
def test_the_note_settles_rows_as_the_second_pass_does(
    seed: int, n: int, k: int, chunk_rows: int, ties: bool, share: float, cap: int
) -> None:
    """Equal to the full rule for any data; a share above 1 (bounds over the thresholds) and a
    cap of 0 (nothing kept) send chunks to the second read instead, still exact."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k) * 0.5, size=n)
    if ties:  # coarse values: ties between classes and with the thresholds
        probs = np.round(probs * 4) / 4
    labels = rng.integers(0, k, n)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(candidates, "BOUND_SHARE", share)
        patch.setattr(candidates, "MAX_ENTRIES_PER_ROW", cap)
        plain, noted, _ = _both(probs, labels, chunk_rows)
    _assert_same(plain, noted)


def test_a_well_behaved_model_needs_no_second_read(rng: np.random.Generator) -> None:
    n, k = 20_000, 12
    truth = rng.integers(0, k, n)
    labels = np.where(rng.random(n) < 0.1, rng.integers(0, k, n), truth)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += 2.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    plain, noted, asked = _both(probs, labels, 1_000)
    _assert_same(plain, noted)
    assert asked == 0


def test_a_rare_class_whose_threshold_falls_late_sends_its_chunks_back(
    rng: np.random.Generator,
) -> None:
    """Class 3 is labeled on few rows, confidently, until the last chunk labels it on many rows
    the model gives it little: its threshold ends below the bound the earlier chunks used, and
    the chunks holding an entry between the two are read again (their unsettled rows only)."""
    n, k = 6_000, 4
    probs = rng.dirichlet(np.ones(k), size=n)
    labels = probs[:, :3].argmax(axis=1)  # thresholds near 0.5: many rows unsettled
    early = np.arange(0, 40)
    late = np.arange(n - 400, n)
    labels[early] = labels[late] = 3
    probs[early] = [0.02, 0.02, 0.02, 0.94]
    probs[late] = [0.3, 0.3, 0.39, 0.01]
    plain, noted, asked = _both(probs, labels, 500)
    _assert_same(plain, noted)
    assert 0 < asked < n


def test_a_chunk_past_the_cap_is_not_kept(rng: np.random.Generator) -> None:
    note = CandidateNote(n_samples=10, n_classes=3)
    probs = np.full((10, 3), 1 / 3)
    bounds = np.zeros(3)
    note.record(probs, np.zeros(10, dtype=int), np.ones(10, dtype=int), np.arange(10), bounds)
    assert note._entries == 10  # one class besides the given and the best other, per row
    note.record(probs, np.zeros(10, dtype=int), np.ones(10, dtype=int), np.arange(10), bounds)
    assert note._entries == 20
    note.record(probs, np.zeros(10, dtype=int), np.ones(10, dtype=int), np.arange(10), bounds)
    assert note._entries == 20 and np.isinf(note._chunks[-1].largest_left).all()


def test_row_blocks_cover_every_row_once() -> None:
    seen = np.zeros(candidates.RESOLVE_ROWS * 2 + 5, dtype=int)

    def mark(rows: slice) -> None:
        seen[rows] += 1

    in_row_blocks(seen.size, mark)
    assert (seen == 1).all()
