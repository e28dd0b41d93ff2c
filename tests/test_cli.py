"""The CLI's happy paths: formats, -o, config precedence, globs, and the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

from .conftest import FIXTURES, ROOT, CliRun

CIFAR = FIXTURES / "cifar10-test"


def test_scan_json_contract(cli: CliRun) -> None:
    result = cli(
        "scan",
        str(CIFAR / "labels.csv"),
        "--preds",
        str(CIFAR / "preds.parquet"),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema_version"] == "1.0"
    assert set(report["dataset"]) >= {"n_samples", "n_classes", "classes", "task"}
    assert report["dataset"]["n_samples"] == 10_000
    assert report["support"]["per_class"][0] == {"class": "airplane", "count": 1000, "share": 0.1}
    assert set(report["imbalance"]) >= {
        "ratio",
        "normalized_entropy",
        "effective_classes",
        "rare_classes",
        "zero_support_classes",
    }
    metrics = report["metrics"]
    assert set(metrics["per_class"][0]) >= {"class", "precision", "recall", "f1", "support"}
    for name in ("micro", "macro", "weighted"):
        assert set(metrics[name]) == {"precision", "recall", "f1"}
    assert metrics["confusion_matrix"]["classes"][0] == "airplane"
    assert len(metrics["confusion_matrix"]["counts"]) == 10
    assert metrics["accuracy"] == 0.9294
    assert report["config"]["min_support"] == 10
    assert report["warnings"] == []


def test_every_format_renders_and_exit_code_does_not_depend_on_it(cli: CliRun) -> None:
    for fmt in ("text", "json", "markdown"):
        result = cli("scan", str(CIFAR / "labels.csv"), "--format", fmt)
        assert result.exit_code == 0
        assert "airplane" in result.stdout
    markdown = cli("scan", str(CIFAR / "labels.csv"), "--format", "markdown").stdout
    assert markdown.startswith("# labelaudit scan")
    assert "| class | count | share |" in markdown


def test_text_report_reads_like_a_classification_report(cli: CliRun) -> None:
    text = cli("scan", str(CIFAR / "labels.csv"), "--preds", str(CIFAR / "preds.parquet")).stdout
    assert "precision" in text and "recall" in text and "support" in text
    assert "macro avg" in text and "weighted avg" in text
    assert "expected calibration error (15 bins)" in text
    assert "Confusion matrix (rows: given label, columns: predicted class)" in text


def test_output_file_is_written_and_report_goes_nowhere_else(cli: CliRun, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    result = cli("scan", str(CIFAR / "labels.csv"), "--format", "json", "-o", str(target))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert json.loads(target.read_text())["dataset"]["n_samples"] == 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_config_file_and_flag_precedence(cli: CliRun, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.labelaudit]\nmin_support = 2000\n")
    labels = str(CIFAR / "labels.csv")
    from_file = json.loads(cli("scan", labels, "--format", "json", cwd=tmp_path).stdout)
    from_flag = json.loads(
        cli("scan", labels, "--format", "json", "--min-support", "5", cwd=tmp_path).stdout
    )
    assert from_file["config"]["min_support"] == 2000
    assert len(from_file["imbalance"]["rare_classes"]) == 10
    assert from_flag["config"]["min_support"] == 5
    assert from_flag["imbalance"]["rare_classes"] == []


def test_unknown_config_key_suggests_the_nearest(cli: CliRun, tmp_path: Path) -> None:
    config = tmp_path / "labelaudit.toml"
    config.write_text("min_suport = 3\n")
    result = cli("scan", str(CIFAR / "labels.csv"), "--config", str(config))
    assert result.exit_code == 2
    assert "Unknown setting 'min_suport'" in result.stderr
    assert "Did you mean 'min_support'?" in result.stderr


def test_bad_config_value_type(cli: CliRun, tmp_path: Path) -> None:
    config = tmp_path / "labelaudit.toml"
    config.write_text('min_support = "ten"\n')
    result = cli("scan", str(CIFAR / "labels.csv"), "--config", str(config))
    assert result.exit_code == 2
    assert "must be an integer" in result.stderr


def test_glob_reads_prediction_shards_as_one(cli: CliRun, tmp_path: Path) -> None:
    preds = pl.read_parquet(CIFAR / "preds.parquet")
    for i, start in enumerate(range(0, preds.height, 3000)):
        preds.slice(start, 3000).write_parquet(tmp_path / f"preds-{i}.parquet")
    whole = json.loads(
        cli(
            "scan",
            str(CIFAR / "labels.csv"),
            "--preds",
            str(CIFAR / "preds.parquet"),
            "--format",
            "json",
        ).stdout
    )
    shards = json.loads(
        cli(
            "scan",
            str(CIFAR / "labels.csv"),
            "--preds",
            str(tmp_path / "preds-*.parquet"),
            "--format",
            "json",
        ).stdout
    )
    assert shards["metrics"]["confusion_matrix"] == whole["metrics"]["confusion_matrix"]


def test_every_input_format_gives_the_same_report(cli: CliRun, tmp_path: Path) -> None:
    labels = pl.read_csv(CIFAR / "labels.csv").head(500)
    preds = pl.read_parquet(CIFAR / "preds.parquet").head(500)
    writers = {
        "csv": lambda f, p: f.write_csv(p),
        "tsv": lambda f, p: f.write_csv(p, separator="\t"),
        "parquet": lambda f, p: f.write_parquet(p),
        "jsonl": lambda f, p: f.write_ndjson(p),
        "feather": lambda f, p: f.write_ipc(p),
    }
    reports = []
    for ext, write in writers.items():
        write(labels, tmp_path / f"labels.{ext}")
        write(preds, tmp_path / f"preds.{ext}")
        result = cli(
            "scan",
            str(tmp_path / f"labels.{ext}"),
            "--preds",
            str(tmp_path / f"preds.{ext}"),
            "--format",
            "json",
        )
        assert result.exit_code == 0, (ext, result.stderr)
        reports.append(json.loads(result.stdout)["metrics"]["confusion_matrix"])
    np.save(tmp_path / "preds.npy", preds.drop("id").to_numpy())
    (tmp_path / "classes.txt").write_text("\n".join(preds.columns[1:]) + "\n")
    result = cli(
        "scan",
        str(tmp_path / "labels.csv"),
        "--preds",
        str(tmp_path / "preds.npy"),
        "--classes",
        str(tmp_path / "classes.txt"),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    reports.append(json.loads(result.stdout)["metrics"]["confusion_matrix"])
    assert all(r == reports[0] for r in reports)


def test_list_column_predictions_with_classes(cli: CliRun, tmp_path: Path) -> None:
    preds = pl.read_parquet(CIFAR / "preds.parquet")
    classes = preds.columns[1:]
    listed = preds.select("id", pl.concat_list(classes).alias("probs"))
    listed.write_parquet(tmp_path / "listed.parquet")
    result = cli(
        "scan",
        str(CIFAR / "labels.csv"),
        "--preds",
        str(tmp_path / "listed.parquet"),
        "--probs-col",
        "probs",
        "--classes",
        str(CIFAR / "classes.txt"),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["metrics"]["accuracy"] == 0.9294
    without_classes = cli(
        "scan",
        str(CIFAR / "labels.csv"),
        "--preds",
        str(tmp_path / "listed.parquet"),
        "--probs-col",
        "probs",
    )
    assert without_classes.exit_code == 2
    assert "need the class order" in without_classes.stderr


def test_installed_entry_point_and_python_dash_m() -> None:
    bin_dir = Path(sys.executable).parent
    for command in ([str(bin_dir / "labelaudit")], [sys.executable, "-m", "labelaudit"]):
        ok = subprocess.run(
            [*command, "scan", str(CIFAR / "labels.csv"), "--format", "json"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["dataset"]["n_classes"] == 10
        bad = subprocess.run(
            [*command, "scan", "missing.csv"], capture_output=True, text=True, cwd=ROOT
        )
        assert bad.returncode == 2
        assert bad.stderr.startswith("Error: The labels file 'missing.csv' does not exist")
        assert bad.stdout == ""


def test_import_labelaudit_is_light() -> None:
    code = "import sys, labelaudit; print('polars' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_scan_does_not_import_torch_or_matplotlib() -> None:
    code = (
        "import sys; from labelaudit.cli import cli\n"
        "try:\n    cli.main(['scan', {!r}, '--format', 'json'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'matplotlib' in sys.modules, file=sys.stderr)"
    ).format(str(CIFAR / "labels.csv"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stderr.split()[-2:] == ["False", "False"]
