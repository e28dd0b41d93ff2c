"""`labelaudit score` with a model or weights file it cannot use: exit 2 and one short paragraph
naming the file and what to do; none of torch's tracebacks, log lines or advice."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from labelaudit.cli import cli

from .conftest import ROOT

torch = pytest.importorskip("torch")

FACTORY = """
import torch


def build():
    return torch.nn.Sequential(torch.nn.Linear(8, 3))


def wide():
    return torch.nn.Sequential(torch.nn.Linear(9, 3))
"""
TORCH_NOISE = (
    "Traceback",
    "weights_only=False",
    "weights_only` set to `False",
    "torch/",
    "W1",
    "\x1b",
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Features, a factory module, and model or weights files broken as people break them."""
    folder = tmp_path_factory.mktemp("score-errors")
    rng = np.random.default_rng(0)
    features = rng.normal(size=(20, 8)).astype(np.float32)
    frame = {"id": np.arange(20), **{f"f{j}": features[:, j] for j in range(8)}}
    pl.DataFrame(frame).write_parquet(folder / "feat.parquet")
    (folder / "score_factory.py").write_text(FACTORY)
    model = torch.nn.Sequential(torch.nn.Linear(8, 3))
    (folder / "corrupt.pt2").write_bytes(b"PK\x03\x04 not really a zip archive")
    (folder / "random.pt").write_bytes(rng.bytes(4096))
    torch.save(model, folder / "module.pt")  # a pickled nn.Module
    torch.save(model, folder / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(model.state_dict(), folder / "state.pt")
    torch.jit.script(model).save(str(folder / "script.pt"))
    example = (torch.zeros(2, 8),)  # no dynamic batch dimension: only 2 rows a batch run
    torch.export.save(torch.export.export(model, example), str(folder / "static.pt2"))
    (folder / "folder.pt").mkdir()
    return folder


CASES = {
    "corrupt .pt2": (["--model", "corrupt.pt2"], "as a torch.export program", "not a zip archive"),
    "random bytes as TorchScript": (
        ["--model", "random.pt"],
        "could not be loaded as TorchScript",
        "not a zip archive",
    ),
    "pickled module as --weights": (
        ["--model", "score_factory:build", "--weights", "module.pt"],
        "could not be read as a state_dict",
        "pickled Python objects besides tensors",
    ),
    "legacy pickled module as --weights": (
        ["--model", "score_factory:build", "--weights", "legacy.pt"],
        "could not be read as a state_dict",
        "pickled Python objects besides tensors",
    ),
    "random bytes as --weights": (
        ["--model", "score_factory:build", "--weights", "random.pt"],
        "could not be read as a state_dict",
        "not a zip archive",
    ),
    "TorchScript as --weights": (
        ["--model", "score_factory:build", "--weights", "script.pt"],
        "could not be read as a state_dict",
        "give it as --model instead",
    ),
    "missing --weights": (
        ["--model", "score_factory:build", "--weights", "nope.pt"],
        "'nope.pt' could not be read",
        "does not exist",
    ),
    "pickled module as --model": (
        ["--model", "module.pt"],
        "could not be loaded as TorchScript",
        "written by torch.save",
    ),
    "state_dict as --model": (
        ["--model", "state.pt"],
        "could not be loaded as TorchScript",
        "written by torch.save",
    ),
    "TorchScript named .pt2": (["--model", "renamed.pt2"], "torch.export", "TorchScript model"),
    "folder as --model": (["--model", "folder.pt"], "is a folder", "module:factory"),
    "model failing on the data": (
        ["--model", "score_factory:wide"],
        "The model failed on a batch of shape (20, 8)",
        "the number of features",
    ),
    "export without a dynamic batch": (
        ["--model", "static.pt2"],
        "The model failed on a batch",
        "dynamic batch dimension",
    ),
}


def run(folder: Path, *args: str):
    old = os.getcwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(cli, ["score", *args])
    finally:
        os.chdir(old)


class Recorder(logging.Handler):
    """Collects the records torch's loggers let through."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def assert_one_clear_paragraph(stderr: str, *phrases: str) -> None:
    assert stderr.startswith("Error: ") and stderr.count("\n") == 1, stderr
    for noise in TORCH_NOISE:
        assert noise not in stderr, noise
    for phrase in phrases:
        assert phrase in stderr, phrase


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_unusable_model_or_weights(files: Path, case: str) -> None:
    if not (files / "renamed.pt2").exists():
        (files / "renamed.pt2").write_bytes((files / "script.pt").read_bytes())
    args, *phrases = CASES[case]
    recorder = Recorder()
    loggers = [logging.getLogger(name) for name in ("torch", "torch.export", "torch._export")]
    for logger in loggers:
        logger.addHandler(recorder)
    try:
        result = run(files, *args, "--data", "feat.parquet", "-o", "out.parquet")
    finally:
        for logger in loggers:
            logger.removeHandler(recorder)
    assert result.exit_code == 2, result.output
    assert_one_clear_paragraph(result.stderr, *phrases)
    assert result.stdout == ""
    assert recorder.records == []
    assert not (files / "out.parquet").exists()


def test_corrupt_pt2_in_a_real_process_prints_one_paragraph(files: Path) -> None:
    """torch's log handlers write to the process's own stderr, which only a subprocess shows."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["score", "--model", "corrupt.pt2", "--data", "feat.parquet", "-o", "o.parquet"]
    done = subprocess.run([sys.executable, "-m", "labelaudit", *args], cwd=files, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert_one_clear_paragraph(done.stderr, "'corrupt.pt2'", "not a zip archive")


def test_torch_loggers_and_warnings_are_restored() -> None:
    from labelaudit.scoring.quiet import torch_silenced

    export = logging.getLogger("torch.export")
    before = (logging.getLogger("torch").level, export.level, list(warnings.filters))
    with torch_silenced():
        assert not export.isEnabledFor(logging.CRITICAL)
        warnings.warn("hidden", UserWarning, stacklevel=1)
    after = (logging.getLogger("torch").level, export.level, list(warnings.filters))
    assert after == before
