"""The Python API: `scan`, `diff`, `gate`, `tune_thresholds`, `score`, `cross_validate`, and
`MetricAccumulator` (scan's metrics inside a training loop).

Each reads its settings (defaults < a configuration file < keyword options, as the CLI does)
and runs its pipeline; all are importable from `labelaudit` itself.
"""

from __future__ import annotations

import os
from typing import Any

from labelaudit import __all__ as PUBLIC
from labelaudit.config import ScanConfig, build_scan_config, load_config_file
from labelaudit.errors import LabelAuditWarning
from labelaudit.io.frames import as_polars, as_polars_all
from labelaudit.io.load import ScoreSources, Source
from labelaudit.metric_accumulator import MetricAccumulator as MetricAccumulator
from labelaudit.report.schema import DiffReport, GateReport, ScanReport, ThresholdsReport

# The facade's names are listed once, in labelaudit/__init__.py.
__all__ = [name for name in PUBLIC if name != "__version__"]

PathLike = str | os.PathLike[str]


def settings(
    config: ScanConfig | None, config_file: PathLike | None, options: dict[str, Any], caller: str
) -> ScanConfig:
    """`config` as given, else the defaults < `config_file` < `options` (ScanConfig fields)."""
    if config is not None:
        return config
    loaded = load_config_file(config_file, discover=False)
    return build_scan_config(loaded.values, options, source=f"{caller}() options")


def scan(
    labels: Source,
    preds: ScoreSources = None,
    *,
    classes: list[str] | None = None,
    config: ScanConfig | None = None,
    config_file: PathLike | None = None,
    **options: Any,
) -> ScanReport:
    """Audit `labels` (and a model's out-of-sample `preds`) and return the report.

    `labels` and `preds` are paths, or tables: polars, pandas, pyarrow or Hugging Face
    `datasets` (read through Arrow); `preds` may also be a NumPy array.
    `preds` is one model's scores, or a list of several models' scores for the same rows (they
    are combined; see docs/detection.md). `options` are ScanConfig fields (min_support=20,
    scores="logits", ...); they override `config_file`'s [tool.labelaudit] settings, which
    override the defaults. `classes` fixes the class vocabulary and its order, like
    `--classes FILE`: a list of class names, or the path of such a file.
    """
    from labelaudit.pipelines.scan import run_scan

    labels, preds = as_polars(labels), as_polars_all(preds)
    return _warned(run_scan(labels, preds, settings(config, config_file, options, "scan"), classes))


def diff(
    old: Source,
    new: Source,
    preds: ScoreSources = None,
    *,
    config: ScanConfig | None = None,
    config_file: PathLike | None = None,
    **options: Any,
) -> DiffReport:
    """Compare two versions of a labels table joined on id; `preds` scores NEW's rows."""
    from labelaudit.pipelines.diff import run_diff

    old, new, preds = as_polars(old), as_polars(new), as_polars_all(preds)
    return _warned(run_diff(old, new, preds, settings(config, config_file, options, "diff")))


def gate(
    labels: Source,
    preds: ScoreSources = None,
    *,
    rules: dict[str, Any] | None = None,
    baseline: Source | None = None,
    accept: PathLike | None = None,
    fail_on: str = "error",
    config: ScanConfig | None = None,
    config_file: PathLike | None = None,
    **options: Any,
) -> GateReport:
    """Check `labels` against gate rules (a `[gate]`-style table, e.g. {"max_suspect_rate":
    0.05}; default: `config_file`'s [gate] table, else the default rules)."""
    from labelaudit.pipelines.gate import run_gate
    from labelaudit.pipelines.gate_rules import parse_rules

    if rules is None and config_file is not None:
        loaded = load_config_file(config_file, discover=False)
        rules, source = loaded.sections.get("gate"), f"[gate] of '{loaded.path}'"
    else:
        source = "gate() rules"
    labels, preds, baseline = as_polars(labels), as_polars_all(preds), as_polars(baseline)
    return _warned(run_gate(
        labels, preds, rules=parse_rules(rules, source),
        config=settings(config, config_file, options, "gate"), baseline=baseline, accept=accept,
        fail_on=fail_on,
    ))  # fmt: skip


def tune_thresholds(
    labels: Source,
    preds: ScoreSources,
    *,
    metric: str = "f1",
    holdout: float | None = None,
    folds: int | None = None,
    seed: int = 0,
    config: ScanConfig | None = None,
    config_file: PathLike | None = None,
    **options: Any,
) -> ThresholdsReport:
    """Per-class decision thresholds tuned on part of the rows and judged on the others."""
    from labelaudit.pipelines.thresholds import run_thresholds

    labels, preds = as_polars(labels), as_polars_all(preds)
    return _warned(run_thresholds(
        labels, preds, settings(config, config_file, options, "tune_thresholds"),
        metric=metric, holdout=holdout, folds=folds, seed=seed,
    ))  # fmt: skip


def review_export(
    issues: Source,
    path: PathLike,
    *,
    to: str = "csv",
    top: int | None = None,
    media_col: str | None = None,
    labels: PathLike | None = None,
) -> int:
    """Write the suspects of an issues table (`report.issues`, or the --issues-out file) for
    review: a CSV with a decision column, or Label Studio tasks (`to="label-studio"`; the
    labeling config beside them). Returns the number of rows written."""
    from labelaudit.io.paths import check_outputs
    from labelaudit.io.writers import write_text
    from labelaudit.pipelines.review import (
        check_export_arguments,
        export_review,
        label_config_path,
    )

    kind = "label-studio" if to == "label_studio" else to
    check_export_arguments(kind, top, media_col, labels, path)  # the CLI's rules, first
    config_path = label_config_path(path) if kind == "label-studio" else None
    check_outputs({"path": str(path), "the labeling config": config_path},
                  inputs=[issues, labels])  # fmt: skip
    exported = export_review(as_polars(issues), kind, top, media_col, labels, ScanConfig())
    write_text(path, exported.text)
    if config_path is not None and exported.label_config is not None:
        write_text(config_path, exported.label_config)
    return exported.rows


def review_apply(
    review: PathLike,
    labels: PathLike,
    output: PathLike,
    *,
    ignore_unknown: bool = False,
    classes: list[str] | None = None,
    **options: Any,
) -> Any:
    """Apply a review (a Label Studio JSON export, or the filled CSV) to `labels`, writing
    `output` (never `labels` itself); returns what was accepted, kept and changed."""
    from labelaudit.io.paths import check_outputs
    from labelaudit.pipelines.review import apply_review

    check_outputs({"output": str(output)}, inputs=[str(review), str(labels)])
    config = settings(None, None, options, "review_apply")
    return apply_review(str(review), str(labels), str(output), config, ignore_unknown, classes)


def score(*args: Any, **kwargs: Any) -> Any:
    """Out-of-sample scores from a model (torch); see `labelaudit.scoring.run.score`."""
    return _scoring().score(*args, **kwargs)


def cross_validate(*args: Any, **kwargs: Any) -> Any:
    """Out-of-fold probabilities of probes (torch); see `labelaudit.scoring.run.cross_validate`."""
    return _scoring().cross_validate(*args, **kwargs)


def _warned(report: Any) -> Any:
    """The report, its warnings raised as LabelAuditWarning: what the CLI prints on stderr
    (misaligned rows, a model at chance, renormalized scores) reaches a notebook too."""
    import warnings

    for message in getattr(report, "warnings", None) or []:
        warnings.warn(message, LabelAuditWarning, stacklevel=3)
    return report


def _scoring() -> Any:
    """The torch-backed scoring module, imported only when asked for."""
    from labelaudit._deps import import_optional

    import_optional("torch")
    from labelaudit.scoring import run

    return run
