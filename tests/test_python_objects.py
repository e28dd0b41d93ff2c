"""Reports as Python objects (a readable repr, a scoped notebook view) and tables from other
libraries as inputs (pandas, pyarrow, Hugging Face datasets, read through Arrow)."""

from __future__ import annotations

import polars as pl
import pytest

import labelaudit

from .conftest import FIXTURES

CIFAR = FIXTURES / "cifar10-test"
SYNTH = FIXTURES / "synthetic-multiclass"


def test_every_report_has_a_one_line_repr_and_a_notebook_view(tmp_path) -> None:
    reports = {
        "ScanReport": labelaudit.scan(CIFAR / "labels.csv", CIFAR / "preds.parquet"),
        "DiffReport": labelaudit.diff(SYNTH / "labels.csv", SYNTH / "labels_v2.csv"),
        "GateReport": labelaudit.gate(CIFAR / "labels.csv"),
        "ThresholdsReport": labelaudit.tune_thresholds(
            CIFAR / "labels.csv", CIFAR / "preds.parquet"
        ),
    }
    pl.DataFrame(
        {"id": [1, 1, 2, 2, 3, 3], "annotator": list("ababab"), "label": list("xyxxyy")}
    ).write_csv(tmp_path / "ann.csv")
    from labelaudit.config import ScanConfig
    from labelaudit.pipelines.annotators import run_annotators

    reports["AnnotatorsReport"] = run_annotators(str(tmp_path / "ann.csv"), None, ScanConfig())
    for name, report in reports.items():
        line = repr(report)
        assert line.startswith(f"<{name}: ") and "\n" not in line and len(line) < 300
        view = report._repr_html_()
        assert view.startswith('<div class="labelaudit"><style>.labelaudit{')
        assert "<script" not in view and "http" not in view.split("</style>")[0]


class _FakeHuggingFace:
    """Stands for `datasets.Dataset` (not a test dependency): recognized by its module, read
    through its Arrow table (`.data.table`)."""

    __module__ = "datasets.arrow_dataset"

    def __init__(self, table) -> None:
        self.data = type("ArrowWrapper", (), {"table": table})()


_FakeHuggingFace.__name__ = "Dataset"


def test_pandas_arrow_and_datasets_inputs() -> None:
    labels = pl.read_csv(CIFAR / "labels.csv")
    preds = pl.read_parquet(CIFAR / "preds.parquet")
    expected = labelaudit.scan(labels, preds).label_issues.n_suspects
    arrow = labelaudit.scan(labels.to_arrow(), preds.to_arrow())
    assert arrow.label_issues.n_suspects == expected
    fake = labelaudit.scan(_FakeHuggingFace(labels.to_arrow()), preds)
    assert fake.label_issues.n_suspects == expected
    pytest.importorskip("pandas", reason="pandas is not installed")
    frames = labelaudit.scan(labels.to_pandas(), preds.to_pandas())
    assert frames.label_issues.n_suspects == expected
