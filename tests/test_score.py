"""`labelaudit score`: model inference (TorchScript, torch.export, factory) and sharding, on CPU."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from .conftest import CliRun

torch = pytest.importorskip("torch")

N_ROWS, N_FEATURES, N_CLASSES = 300, 8, 3
FACTORY_SOURCE = """
import torch


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
    )


class HungryModel(torch.nn.Module):
    '''Raises out-of-memory on batches above 16 rows, as a GPU would.'''

    def __init__(self):
        super().__init__()
        self.inner = build()

    def forward(self, x):
        if x.shape[0] > 16:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner(x)


def hungry():
    return HungryModel()


def not_a_module():
    return 42
"""


def build_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, 16), torch.nn.ReLU(), torch.nn.Linear(16, N_CLASSES)
    ).eval()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Features (string ids), a scripted model, an exported model and a factory module."""
    return make_workdir(tmp_path)


def make_workdir(tmp_path: Path) -> Path:
    """`workdir`'s files in `tmp_path` (other test modules make them too)."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(N_ROWS, N_FEATURES)).astype(np.float32)
    labels = rng.integers(0, N_CLASSES, size=N_ROWS)
    columns = {f"f{j}": features[:, j] for j in range(N_FEATURES)}
    ids = [f"row-{i}" for i in range(N_ROWS)]
    pl.DataFrame({"id": ids, "label": labels, **columns}).write_parquet(tmp_path / "feat.parquet")
    model = build_model()
    torch.jit.script(model).save(str(tmp_path / "model.pt"))
    example = (torch.zeros(4, N_FEATURES),)
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, example, dynamic_shapes=({0: batch},))
    torch.export.save(program, str(tmp_path / "model.pt2"))
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "tiny_models.py").write_text(FACTORY_SOURCE)
    np.save(tmp_path / "features.npy", features)
    with torch.no_grad():
        logits = model(torch.from_numpy(features)).numpy()
    np.save(tmp_path / "logits.npy", logits)
    return tmp_path


def scores_of(path: Path) -> tuple[list, np.ndarray]:
    frame = pl.read_parquet(path)
    return frame["id"].to_list(), frame.drop("id").to_numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    "model_args",
    [
        ["--model", "model.pt"],
        ["--model", "model.pt2"],
        ["--model", "tiny_models:build", "--weights", "weights.pt"],
    ],
    ids=["torchscript", "export", "factory"],
)
def test_probabilities_equal_the_models_own(
    cli: CliRun, workdir: Path, model_args: list[str]
) -> None:
    result = cli("score", *model_args, "--data", "feat.parquet", "-o", "p.parquet", cwd=workdir)
    assert result.exit_code == 0, result.output
    ids, probs = scores_of(workdir / "p.parquet")
    assert ids == [f"row-{i}" for i in range(N_ROWS)]
    np.testing.assert_allclose(probs, softmax(np.load(workdir / "logits.npy")), atol=1e-6)
    assert f"{N_ROWS:,} rows x {N_CLASSES} classes" in result.output


def test_logits_sigmoid_class_names_and_npy_input(cli: CliRun, workdir: Path) -> None:
    logits = np.load(workdir / "logits.npy")
    (workdir / "classes.txt").write_text("cat\ndog\nbird\n")
    common = ["--model", "model.pt", "--data", "features.npy", "--classes", "classes.txt"]
    assert cli("score", *common, "--logits", "-o", "l.parquet", cwd=workdir).exit_code == 0
    frame = pl.read_parquet(workdir / "l.parquet")
    assert frame.columns == ["id", "cat", "dog", "bird"]
    assert frame["id"].to_list() == list(range(N_ROWS))
    np.testing.assert_allclose(frame.drop("id").to_numpy(), logits, atol=1e-6)
    assert cli("score", *common, "--multi-label", "-o", "s.csv", cwd=workdir).exit_code == 0
    sigmoid = pl.read_csv(workdir / "s.csv").drop("id").to_numpy()
    np.testing.assert_allclose(sigmoid, 1 / (1 + np.exp(-logits)), atol=1e-6)


def test_bf16_autocast_on_cpu_stays_close(cli: CliRun, workdir: Path) -> None:
    args = ["--model", "model.pt", "--data", "feat.parquet", "-o", "b.parquet"]
    result = cli("score", *args, "--precision", "bf16", cwd=workdir)
    assert result.exit_code == 0, result.output
    assert "bf16" in result.output
    _, probs = scores_of(workdir / "b.parquet")
    np.testing.assert_allclose(probs, softmax(np.load(workdir / "logits.npy")), atol=2e-2)


def test_batch_size_halves_on_out_of_memory(cli: CliRun, workdir: Path) -> None:
    args = ["--model", "tiny_models:hungry", "--data", "feat.parquet", "-o", "h.parquet"]
    result = cli("score", *args, cwd=workdir)
    assert result.exit_code == 0, result.output
    assert "batch 16)" in result.output
    _, probs = scores_of(workdir / "h.parquet")
    np.testing.assert_allclose(probs, softmax(np.load(workdir / "logits.npy")), atol=1e-6)
    fixed = cli("score", *args, "--batch-size", "64", cwd=workdir)
    assert fixed.exit_code == 2
    assert "ran out of memory at batch size 64" in fixed.output


def test_shards_cover_every_id_once_and_scan_reads_them_as_one(cli: CliRun, workdir: Path) -> None:
    for shard in range(3):
        args = ["--model", "model.pt", "--data", "feat.parquet", "--shard", f"{shard}/3"]
        result = cli("score", *args, "-o", f"preds-{shard}.parquet", cwd=workdir)
        assert result.exit_code == 0, result.output
    parts = [pl.read_parquet(workdir / f"preds-{s}.parquet")["id"].to_list() for s in range(3)]
    assert all(parts)
    assert sorted(i for part in parts for i in part) == sorted(f"row-{i}" for i in range(N_ROWS))
    assert cli("score", "--model", "model.pt", "--data", "feat.parquet", "-o", "whole.parquet",
               cwd=workdir).exit_code == 0  # fmt: skip
    sharded = cli("scan", "feat.parquet", "--preds", "preds-*.parquet", "--format", "json",
                  cwd=workdir)  # fmt: skip
    whole = cli("scan", "feat.parquet", "--preds", "whole.parquet", "--format", "json",
                cwd=workdir)  # fmt: skip
    assert sharded.exit_code == 0, sharded.output

    a, b = json.loads(sharded.stdout), json.loads(whole.stdout)
    for key, value in b["metrics"].items():  # summed in another row order: floats to 1e-12
        assert a["metrics"][key] == (pytest.approx(value) if isinstance(value, float) else value)
    assert a["dataset"]["n_samples"] == N_ROWS


def test_shard_depends_on_the_id_alone() -> None:
    from labelaudit.scoring.shards import id_hashes, shard_mask

    ids = pl.Series("id", ["a", "row-1", "ünïcode", "", "x" * 40, "42"])
    expected = []
    for text in ids.to_list():
        value = 0xCBF29CE484222325
        for byte in text.encode():
            value = ((value ^ byte) * 0x100000001B3) % 2**64
        expected.append(value)
    assert id_hashes(ids).tolist() == expected
    rng = np.random.default_rng(0)
    many = pl.Series("id", rng.integers(0, 10**9, size=5000))
    order = rng.permutation(5000)
    for shard in range(4):
        mask = shard_mask(many, shard, 4)
        assert np.array_equal(shard_mask(many.gather(order), shard, 4), mask[order])
    integer_and_text = shard_mask(pl.Series([7, 8, 9]), 1, 3)
    assert np.array_equal(integer_and_text, shard_mask(pl.Series(["7", "8", "9"]), 1, 3))


def make_image_folder(root: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, count in (("cat", 3), ("dog", 2)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(20 + i, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    (root / "dog" / "broken.jpg").write_bytes(b"not an image")
    (root / "dog" / "notes.txt").write_text("ignored: not an image")


IMAGE_MODEL = """
import torch


def pooled():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(12, 2)
    )
"""


@pytest.mark.parametrize("workers", ["0", "2"])
def test_image_folder_scores_labels_and_skipped_images(
    cli: CliRun, tmp_path: Path, workers: str
) -> None:
    from labelaudit.io.images import IMAGENET_MEAN, IMAGENET_STD, decode_image

    make_image_folder(tmp_path / "images")
    (tmp_path / "image_models.py").write_text(IMAGE_MODEL)
    args = ["--model", "image_models:pooled", "--data", "images", "--image-size", "16"]
    result = cli("score", *args, "--workers", workers, "-o", "p.parquet", "--labels-out", "l.csv",
                 cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 image(s) could not be decoded and were skipped" in result.output
    assert "dog/broken.jpg" in result.output
    frame = pl.read_parquet(tmp_path / "p.parquet")
    assert frame.columns == ["id", "cat", "dog"]
    expected_ids = ["cat/0.png", "cat/1.png", "cat/2.png", "dog/0.png", "dog/1.png"]
    assert frame["id"].to_list() == expected_ids
    labels = pl.read_csv(tmp_path / "l.csv")
    assert labels["label"].to_list() == ["cat"] * 3 + ["dog"] * 2
    mean = np.array(IMAGENET_MEAN, dtype=np.float32).reshape(1, 1, 3)
    std = np.array(IMAGENET_STD, dtype=np.float32).reshape(1, 1, 3)
    pixels = np.stack([decode_image(tmp_path / "images" / i, 16, mean, std) for i in expected_ids])
    assert pixels.shape == (5, 3, 16, 16)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(12, 2)
    )
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(pixels)), dim=1).numpy()
    np.testing.assert_allclose(frame.drop("id").to_numpy(), expected, atol=1e-6)
    strict = cli("score", *args, "--workers", workers, "--strict", "-o", "s.parquet", cwd=tmp_path)
    assert strict.exit_code == 2
    assert "broken.jpg" in strict.output
    assert not (tmp_path / "s.parquet").exists()


def test_progress_bar_draws_only_when_wanted() -> None:
    import io

    from labelaudit.scoring.progress import Progress, wanted

    stream = io.StringIO()
    bar = Progress(100, "score", enabled=True, stream=stream)
    bar.update(100)
    bar.close()
    assert "100/100 rows" in stream.getvalue()
    assert "rows/s" in stream.getvalue()
    assert not wanted(quiet=False, stream=io.StringIO())  # not a terminal: no bar
    silent = io.StringIO()
    Progress(10, "score", enabled=False, stream=silent).close()
    assert silent.getvalue() == ""


BAD = {
    "model that does not load": (["--model", "garbage.pt"], "could not be loaded as TorchScript"),
    "export that does not load": (["--model", "garbage.pt2"], "as a torch.export program"),
    "factory module missing": (["--model", "no_such_module:build"], "could not be imported"),
    "factory function missing": (["--model", "tiny_models:nope"], "has no function 'nope'"),
    "factory returns no module": (["--model", "tiny_models:not_a_module"], "not a torch.nn.Module"),
    "weights that do not fit": (
        ["--model", "tiny_models:build", "--weights", "wrong_weights.pt"],
        "do not fit the model",
    ),
    "model neither file nor factory": (["--model", "missing.pt"], "neither an existing file"),
    "width not matching classes": (
        ["--model", "model.pt", "--classes", "two_classes.txt"],
        "returns 3 scores a row, but there are 2 classes",
    ),
    "bad shard": (["--model", "model.pt", "--shard", "3/3"], "should be i/n with 0 <= i < n"),
    "input shape not fitting": (
        ["--model", "model.pt", "--input-shape", "3,2,2"],
        "holds 12 values, but each row",
    ),
    "no model and no cv": ([], "Give --model MODEL to run a model, or --cv K"),
    "fp16 on the cpu": (["--model", "model.pt", "--device", "cpu", "--precision", "fp16"], "GPU"),
}


@pytest.fixture
def bad_files(workdir: Path) -> Path:
    (workdir / "garbage.pt").write_bytes(b"\x00not a model")
    (workdir / "garbage.pt2").write_bytes(b"PK\x03\x04 broken zip")
    (workdir / "two_classes.txt").write_text("a\nb\n")
    torch.save({"weight": torch.zeros(2, 2)}, workdir / "wrong_weights.pt")
    return workdir


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_model_input_exits_2_with_a_clear_message(
    cli: CliRun, bad_files: Path, case: str
) -> None:
    args, message = BAD[case]
    result = cli("score", *args, "--data", "feat.parquet", "-o", "out.parquet", cwd=bad_files)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (bad_files / "out.parquet").exists()


def test_features_that_are_not_numbers_or_not_finite(cli: CliRun, tmp_path: Path) -> None:
    model = build_model()
    torch.jit.script(model).save(str(tmp_path / "model.pt"))
    frame = {"id": [1, 2], "f0": [0.1, 0.2], "f1": ["x", "y"]}
    pl.DataFrame(frame).write_csv(tmp_path / "text.csv")
    pl.DataFrame({"id": [1, 2], "f0": [0.1, float("nan")]}).write_csv(tmp_path / "nan.csv")
    pl.DataFrame({"id": [1, 2], "f0": [0.1, None]}).write_parquet(tmp_path / "null.parquet")
    for data, message in (
        ("text.csv", "columns that are not numbers: 'f1' (String)"),
        ("nan.csv", "NaN, infinite or empty values in 1 rows (ids 2)"),
        ("null.parquet", "NaN, infinite or empty values in 1 rows (ids 2)"),
    ):
        result = cli("score", "--model", "model.pt", "--data", data, "-o", "o.csv", cwd=tmp_path)
        assert result.exit_code == 2, result.output
        assert message in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_but_absent(cli: CliRun, workdir: Path) -> None:
    args = ["--model", "model.pt", "--data", "feat.parquet", "-o", "o.parquet"]
    result = cli("score", *args, "--device", "cuda", cwd=workdir)
    assert result.exit_code == 2
    assert "CUDA is not available here" in result.output


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_scores_equal_the_cpu_scores(cli: CliRun, workdir: Path) -> None:
    common = ["--model", "model.pt", "--data", "feat.parquet", "--precision", "fp32"]
    assert cli("score", *common, "--device", "cpu", "-o", "c.parquet", cwd=workdir).exit_code == 0
    result = cli("score", *common, "--device", "cuda", "-o", "g.parquet", cwd=workdir)
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(
        scores_of(workdir / "g.parquet")[1], scores_of(workdir / "c.parquet")[1], atol=1e-5
    )


@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile needs a C compiler")
def test_compiled_model_gives_the_same_probabilities(cli: CliRun, workdir: Path) -> None:
    args = ["--model", "tiny_models:build", "--data", "feat.parquet", "--compile"]
    result = cli("score", *args, "-o", "c.parquet", cwd=workdir)
    assert result.exit_code == 0, result.output
    _, probs = scores_of(workdir / "c.parquet")
    np.testing.assert_allclose(probs, softmax(np.load(workdir / "logits.npy")), atol=1e-5)


def test_top_k_lists_hold_the_most_probable_classes(cli: CliRun, workdir: Path) -> None:
    """`score --top-k 2` writes each row's two most probable classes, first the most probable;
    scan reads them (the third class gets the rest of the mass)."""
    result = cli("score", "--model", "model.pt", "--data", "feat.parquet", "--top-k", "2",
                 "-o", "top.parquet", cwd=workdir)  # fmt: skip
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(workdir / "top.parquet")
    assert frame.columns == ["id", "topk_classes", "topk_probs"]
    probs = softmax(np.load(workdir / "logits.npy"))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :2]
    assert frame["topk_classes"].to_list() == [[str(j) for j in row] for row in order]
    got = np.array(frame["topk_probs"].to_list())
    np.testing.assert_allclose(got, np.take_along_axis(probs, order, axis=1), atol=1e-6)
    bad = cli("score", "--model", "model.pt", "--data", "feat.parquet", "--top-k", "2",
              "--logits", "-o", "x.parquet", cwd=workdir)  # fmt: skip
    assert bad.exit_code == 2 and "--top-k" in bad.output
