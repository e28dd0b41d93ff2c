"""Fuzzing the CLI with malformed tables and option values (hypothesis): whatever comes in, the
exit code is 0 or 2, there is no traceback, the inputs are unchanged and no stray file is left.

Derandomized, so CI runs the same cases every time; locally, FUZZ_EXAMPLES=3000 explores further
and FUZZ_RANDOM=1 draws new cases each run.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelaudit.cli import cli

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"

HEADER_NAMES = ["id", "label", "cat", "dog", "emu", "fold", "Unnamed: 0", "", "a|b", "x y", "é"]
CELLS = [
    "0", "1", "2", "-1", "1.0", "0.5", "0.25", "1e309", "nan", "NaN", "inf", "", " ", "cat",
    "dog", "emu", "cat|dog", "|", "true", "False", '"quoted, comma"', "é", "\t", "$x^$", "a\\b",
    "::error::x", "null",
]  # fmt: skip


@st.composite
def csv_text(draw: st.DrawFn, core: tuple[str, ...]) -> bytes:
    """A small CSV: usually the core columns, plus random, repeated or missing ones."""
    names = list(core) if draw(st.booleans()) else []
    names += draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=4))
    if not names:
        names = [draw(st.sampled_from(HEADER_NAMES))]
    rows = draw(st.lists(st.lists(st.sampled_from(CELLS), min_size=len(names),
                                  max_size=len(names) + draw(st.sampled_from([0, 0, 1]))),
                         max_size=8))  # fmt: skip
    lines = [",".join(names)] + [",".join(row) for row in rows]
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "latin-1"]))
    return text.encode(encoding, errors="replace")


OPTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("--scores"), st.sampled_from(["auto", "probs", "logits"])),
        st.tuples(st.just("--suspects"), st.sampled_from(["none", "argmax", "confident_joint"])),
        st.tuples(st.just("--label-sep"), st.sampled_from(["|", "", " ", ","])),
        st.tuples(st.just("--max-weight"), st.sampled_from(["nan", "0", "2", "-1", "inf"])),
        st.tuples(st.just("--min-support"), st.sampled_from(["0", "3", "-2"])),
        st.tuples(st.just("--threshold"), st.sampled_from(["0.5", "2", "nan"])),
        st.tuples(st.just("--top"), st.sampled_from(["0", "1", "-1"])),
        st.tuples(st.just("--format"), st.sampled_from(["text", "json", "markdown", "html"])),
        st.tuples(st.just("--id-col"), st.sampled_from(["id", "fold", "nope"])),
        st.tuples(st.just("--label-col"), st.sampled_from(["label", "cat", "nope"])),
        st.tuples(st.just("--ignore-cols"), st.sampled_from(["fold", "Unnamed: 0", "nope"])),
        st.tuples(st.just("--on-missing"), st.sampled_from(["error", "drop"])),
        st.tuples(st.just("--stream-above-mib"), st.sampled_from(["0", "512", "-1"])),
        st.tuples(st.just("-o"), st.sampled_from(["report.out", "labels.csv", "sub"])),
        st.tuples(st.just("--issues-out"), st.sampled_from(["issues.csv", "report.out", "x.txt"])),
        st.tuples(st.just("--weights-out"), st.sampled_from(["weights.parquet", "preds.csv"])),
    ),
    max_size=5,
)


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()
    }


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    command=st.sampled_from(["scan", "scan", "scan", "gate", "diff", "thresholds"]),
    labels=csv_text(("id", "label")),
    preds=st.one_of(st.none(), csv_text(("id", "cat", "dog"))),
    options=OPTIONS,
)
def test_malformed_input_never_crashes(command, labels, preds, options) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "labels.csv").write_bytes(labels)
        (root / "sub").mkdir()
        args = [command, "labels.csv"] + (["labels.csv"] if command == "diff" else [])
        if preds is not None:
            (root / "preds.csv").write_bytes(preds)
            args += ["--preds", "preds.csv"]
        for option, value in options:
            if command in ("diff", "thresholds") and option in (
                "--suspects", "--max-weight", "--min-support", "--threshold", "--top",
                "--issues-out", "--weights-out", "--format",
            ):  # fmt: skip
                continue
            if command == "gate" and option in ("--max-weight", "--weights-out", "--issues-out"):
                continue
            args += [option, value]
        before = digest(root)
        old = Path.cwd()
        os.chdir(root)
        try:
            result = CliRunner().invoke(cli, args)
        finally:
            os.chdir(old)
        described = f"{args}\n{result.output}"
        allowed = {0, 2} | ({1} if command == "gate" else set())
        assert result.exit_code in allowed, described
        assert "Traceback" not in result.output, described
        assert "Internal error" not in result.output, described
        after = digest(root)
        assert {name: after.get(name) for name in before} == before, described
        assert not [p for p in root.iterdir() if p.name.endswith(".tmp")], described


COLUMN_VALUES = st.sampled_from(
    [
        [0, 1, 2, 1],
        [0.0, 1.0, float("nan"), 2.0],
        [0.5, 0.25, 0.25, 1.5],
        [-1.0, 3.0, 0.1, 0.2],
        [True, False, True, None],
        ["cat", "dog", None, "cat"],
        [" cat", "dog ", "", "emu"],
        [["cat"], ["dog", "cat"], [], None],
        [["", "cat"], ["dog"], ["emu"], ["cat"]],
        [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}],
        [None, None, None, None],
        [1, 1, 2, 2],
        [[0.9], [0.5, 0.5], [], None],
        [[0.7, 0.2], [1.2], [0.1, float("nan")], [0.3]],
        [[0, 1], [1], [2, 0], [1, 1]],
    ]
)


@settings(
    max_examples=max(EXAMPLES // 3, 50),
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    label_columns=st.dictionaries(
        st.sampled_from(["id", "label", "fold"]), COLUMN_VALUES, min_size=1
    ),
    pred_columns=st.dictionaries(
        st.sampled_from(
            [
                "id",
                "cat",
                "dog",
                "emu",
                "0",
                "1",
                "2",
                "fold",
                "label",
                "topk_classes",
                "topk_probs",
            ]
        ),
        COLUMN_VALUES,
        max_size=5,
    ),
    options=OPTIONS,
)
def test_parquet_of_any_dtype_never_crashes(label_columns, pred_columns, options) -> None:
    import polars as pl

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        try:
            pl.DataFrame(label_columns, strict=False).write_parquet(root / "labels.parquet")
            if pred_columns:
                pl.DataFrame(pred_columns, strict=False).write_parquet(root / "preds.parquet")
        except Exception:  # a frame polars itself cannot build or write: nothing to read
            return
        args = ["scan", "labels.parquet"]
        if pred_columns:
            args += ["--preds", "preds.parquet"]
        for option, value in options:
            args += [option, value]
        before = digest(root)
        old = Path.cwd()
        os.chdir(root)
        try:
            result = CliRunner().invoke(cli, args)
        finally:
            os.chdir(old)
        described = f"{args}\n{label_columns}\n{pred_columns}\n{result.output}"
        assert result.exit_code in (0, 2), described
        assert "Traceback" not in result.output, described
        after = digest(root)
        assert {name: after.get(name) for name in before} == before, described
        assert not [p for p in root.iterdir() if p.name.endswith(".tmp")], described
