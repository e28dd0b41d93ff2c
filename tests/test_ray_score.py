"""`score --engine ray`: a pool of Ray actors scores shards of the rows into a folder of parquet
files holding, together, the local engine's table; bad input is exit 2 and leaves nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from .conftest import CliRun
from .test_score import N_ROWS, make_workdir

pytestmark = pytest.mark.usefixtures("local_ray")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Features, a scripted model and a factory module (test_score's)."""
    return make_workdir(tmp_path)


@pytest.mark.parametrize(
    "model_args",
    [["--model", "model.pt"], ["--model", "tiny_models:build", "--weights", "weights.pt"]],
    ids=["torchscript", "factory"],
)
def test_ray_shards_hold_the_local_table(
    cli: CliRun,
    workdir: Path,
    model_args: list[str],
) -> None:
    local = cli("score", *model_args, "--data", "feat.parquet", "-o", "p.parquet", cwd=workdir)
    assert local.exit_code == 0, local.output
    result = cli("score", *model_args, "--data", "feat.parquet", "-o", "shards",
                 "--engine", "ray", "--workers", "2", cwd=workdir)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{N_ROWS:,} rows" in result.output
    files = sorted((workdir / "shards").glob("part-*.parquet"))
    assert len(files) > 1
    on_ray = pl.concat([pl.read_parquet(f) for f in files]).sort("id")
    expected = pl.read_parquet(workdir / "p.parquet").sort("id")
    assert on_ray.columns == expected.columns
    assert on_ray["id"].to_list() == expected["id"].to_list()
    np.testing.assert_array_equal(on_ray.drop("id").to_numpy(), expected.drop("id").to_numpy())
    scan = cli("scan", "feat.parquet", "--preds", "shards/*.parquet", cwd=workdir)
    assert scan.exit_code == 0, scan.output  # the shards scan as one table


def test_bad_input_on_ray_is_exit_2_and_leaves_nothing(cli: CliRun, workdir: Path) -> None:
    result = cli("score", "--model", "missing.pt", "--data", "feat.parquet", "-o", "out",
                 "--engine", "ray", cwd=workdir)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "missing.pt" in result.output and "Traceback" not in result.output
    assert not (workdir / "out").exists()
    assert not [p for p in workdir.iterdir() if p.name.startswith(".out.")]
    (workdir / "full").mkdir()
    (workdir / "full" / "x.parquet").write_text("")
    busy = cli("score", "--model", "model.pt", "--data", "feat.parquet", "-o", "full",
               "--engine", "ray", cwd=workdir)  # fmt: skip
    assert busy.exit_code == 2 and "not empty" in busy.output
    shard = cli("score", "--model", "model.pt", "--data", "feat.parquet", "-o", "x",
                "--engine", "ray", "--shard", "0/2", cwd=workdir)  # fmt: skip
    assert shard.exit_code == 2 and "--shard" in shard.output


def test_a_ray_address_that_does_not_answer_is_exit_2_at_once(cli: CliRun, workdir: Path) -> None:
    """Ray would wait minutes for an address that does not answer (a session's Ray, as in these
    tests, is reused and never dials one: the check is tested directly)."""
    from labelaudit.engines.ray_engine import _reachable
    from labelaudit.errors import InputError

    with pytest.raises(InputError, match="nothing answers"):
        _reachable("127.0.0.1:1")
    _reachable("auto")  # other forms are Ray's to read
    workers = cli("score", "--model", "model.pt", "--data", "feat.parquet", "-o", "w",
                  "--engine", "ray", "--workers", "-1", cwd=workdir)  # fmt: skip
    assert workers.exit_code == 2 and "--workers" in workers.output
    gpus = cli("score", "--model", "model.pt", "--data", "feat.parquet", "-o", "g",
               "--engine", "ray", "--num-gpus-per-worker", "1", cwd=workdir)  # fmt: skip
    assert gpus.exit_code == 2 and "has 0 GPUs" in gpus.output, gpus.output
    assert not (workdir / "g").exists()
