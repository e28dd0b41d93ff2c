"""docs/python.md runs as written: every ```python block, in order, in one namespace, in a
folder holding the CIFAR-10 fixture."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from .conftest import FIXTURES

DOC = Path(__file__).resolve().parent.parent / "docs" / "python.md"


def test_the_walkthrough_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("labels.csv", "preds.parquet"):
        shutil.copy(FIXTURES / "cifar10-test" / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)
    report = namespace["report"]
    assert repr(report).startswith("<ScanReport: labels.csv: 10,000 samples")
    html = report._repr_html_()
    assert html.startswith('<div class="labelaudit">') and "<script" not in html
    assert "body{" not in html  # every style scoped to the div
