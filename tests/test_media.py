"""--media-col thumbnails embed only images inside the media root (the labels file's folder, or
--media-root): a report is shared, so nothing from elsewhere on the disk goes into it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from labelaudit.io.media import media_cells, media_root

from .conftest import FIXTURES, CliRun

MULTI = FIXTURES / "synthetic-multiclass"
THUMB = re.compile(r'<img class="thumb" src="data:image/jpeg;base64,[^"]+" width="64" '
                   r'height="64" alt="([^"]*)">')  # fmt: skip


def image(path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (30, 20), (200, 40, 40)).save(path)
    return path


@pytest.fixture
def tree(cli: CliRun, tmp_path: Path) -> Path:
    """tmp/data/labels.csv whose top suspects name images inside data/ and outside it."""
    data = tmp_path / "data"
    image(data / "img" / "inside.png")
    image(tmp_path / "secret.png")
    image(tmp_path / "other" / "secret2.png")
    (data / "img" / "link.png").symlink_to(tmp_path / "other" / "secret2.png")
    (data / "img" / "inner-link.png").symlink_to(data / "img" / "inside.png")
    values = [
        "img/inside.png",  # relative, inside
        str(data / "img" / "inside.png"),  # absolute, inside
        "img/inner-link.png",  # a symlink that stays inside
        str(tmp_path / "secret.png"),  # absolute, outside
        "img/../../secret.png",  # .. out of the folder
        "img/link.png",  # a symlink pointing outside
    ]
    top = json.loads(
        cli("scan", str(MULTI / "labels.csv"), "--preds", str(MULTI / "preds.parquet"),
            "--format", "json", "--top", "6", cwd=tmp_path).stdout
    )["label_issues"]["top_suspects"]  # fmt: skip
    media = dict(zip([s["id"] for s in top], values, strict=True))
    labels = pl.read_csv(MULTI / "labels.csv")
    paths = [media.get(i, "") for i in labels["id"]]
    labels.with_columns(pl.Series("path", paths)).write_csv(data / "labels.csv")
    return tmp_path


def page(cli: CliRun, tree: Path, *extra: str, cwd: Path | None = None):
    labels = str(tree / "data" / "labels.csv")
    options = ["--top", "6", "--media-col", "path", "--format", "html", "-o", "r.html"]
    return cli("scan", labels, "--preds", str(MULTI / "preds.parquet"), *options, *extra,
               cwd=cwd or tree)  # fmt: skip


def test_only_images_inside_the_labels_folder_are_embedded(cli: CliRun, tree: Path) -> None:
    result = page(cli, tree)
    assert result.exit_code == 0, result.output
    html = (tree / "r.html").read_text()
    embedded = THUMB.findall(html)
    assert sorted(embedded) == sorted(
        ["img/inside.png", str(tree / "data" / "img" / "inside.png"), "img/inner-link.png"]
    )
    for outside in (str(tree / "secret.png"), "img/../../secret.png", "img/link.png"):
        assert f"{outside} <small>(outside the media root: not embedded)</small>" in html
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: 3 media")]
    assert len(warnings) == 1, result.stderr
    assert "--media-root" in warnings[0]


def test_relative_paths_from_another_working_folder(cli: CliRun, tree: Path) -> None:
    elsewhere = tree / "elsewhere"
    elsewhere.mkdir()
    result = page(cli, tree, cwd=elsewhere)
    assert result.exit_code == 0, result.output
    assert len(THUMB.findall((elsewhere / "r.html").read_text())) == 3


def test_media_root_widens_the_folder(cli: CliRun, tree: Path) -> None:
    result = page(cli, tree, "--media-root", str(tree))
    assert result.exit_code == 0, result.output
    assert len(THUMB.findall((tree / "r.html").read_text())) == 6
    assert "outside" not in result.stderr


def test_media_root_narrows_the_folder(cli: CliRun, tree: Path) -> None:
    result = page(cli, tree, "--media-root", str(tree / "other"))
    assert result.exit_code == 0, result.output
    assert THUMB.findall((tree / "r.html").read_text()) == ["img/link.png"]
    assert "warning: 5 media file(s)" in result.stderr


def test_media_root_that_is_not_a_folder(cli: CliRun, tree: Path) -> None:
    for root in ("nope", str(tree / "secret.png")):
        result = page(cli, tree, "--media-root", root)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"Error: --media-root '{root}' is not a folder")
        assert "Traceback" not in result.output
        assert not (tree / "r.html").exists()


def test_media_cells_never_read_urls_and_judge_resolved_paths(tmp_path: Path) -> None:
    image(tmp_path / "in" / "a.png")
    image(tmp_path / "out.png")
    root = media_root(None, tmp_path / "in")
    values = {1: "a.png", 2: "https://example.org/a.png", 3: "../out.png", 4: "missing.png",
              5: "s3://bucket/a.png", 6: "not-an-image.txt"}  # fmt: skip
    (tmp_path / "in" / "not-an-image.txt").write_text("text")
    cells, warning = media_cells(values, tmp_path / "in", root)
    assert cells[1].thumbnail and not cells[1].outside
    assert [cells[k].thumbnail for k in (2, 3, 4, 5, 6)] == [None] * 5
    assert cells[3].outside and not any(cells[k].outside for k in (2, 4, 5, 6))
    assert warning is not None and warning.startswith("1 media file(s)")


def test_gate_page_confines_media_too(cli: CliRun, tree: Path) -> None:
    labels = str(tree / "data" / "labels.csv")
    args = ["--media-col", "path", "--format", "html", "-o", "g.html"]
    result = cli("gate", labels, "--preds", str(MULTI / "preds.parquet"), *args, cwd=tree)
    assert result.exit_code in (0, 1), result.output
    assert len(THUMB.findall((tree / "g.html").read_text())) == 3
    assert "warning: 3 media file(s)" in result.stderr
