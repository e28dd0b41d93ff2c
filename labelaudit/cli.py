"""The command line: parse options, call the API, render, choose the exit code. Nothing else."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from labelaudit import __version__
from labelaudit.config import (
    INPUT_FORMATS,
    ON_MISSING,
    QUALITY_SCORES,
    SCORE_MODES,
    SUSPECT_RULES,
    WEIGHTING_METHODS,
)
from labelaudit.errors import (
    EXIT_BAD_INPUT,
    EXIT_FINDINGS,
    EXIT_INTERNAL,
    EXIT_OK,
    ISSUE_TRACKER,
    LabelAuditError,
)
from labelaudit.report.render import FORMATS


class LabelAuditGroup(click.Group):
    """A click group that owns the exit codes: 2 for bad usage or input, 3 for a bug."""

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        extra.pop("standalone_mode", None)
        try:
            code = super().main(argv, prog_name or "labelaudit", standalone_mode=False, **extra)
        except click.exceptions.Exit as done:
            code = done.exit_code
        except click.ClickException as usage:
            usage.show()
            code = EXIT_BAD_INPUT
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            code = EXIT_BAD_INPUT
        except LabelAuditError as error:
            click.echo(f"Error: {error.message}", err=True)
            code = error.exit_code
        except Exception as bug:  # the one place that turns a bug into exit 3
            if "--debug" in argv:
                traceback.print_exc()
            click.echo(
                f"Internal error: {type(bug).__name__}: {bug}. This is a bug in labelaudit; "
                f"please report it at {ISSUE_TRACKER} (run again with --debug for the "
                "traceback).",
                err=True,
            )
            code = EXIT_INTERNAL
        sys.exit(EXIT_OK if code is None else code)


def debug_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--debug: show the traceback of an internal error (read by LabelAuditGroup.main)."""
    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        help="On an internal error, print the full traceback.",
    )(command)


@click.group(cls=LabelAuditGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labelaudit")
def cli() -> None:
    """Audit classification labels and a model's out-of-sample scores.

    Exit codes: 0 success, 1 the gate found violations, 2 bad usage, input or configuration,
    3 internal error.
    """


def input_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say how to read labels and predictions, shared by every command."""
    options = [
        click.option(
            "--preds",
            "preds",
            metavar="PATH",
            help="Model scores: a table with one column per class (or --probs-col), or a .npy "
            "array; a quoted glob reads shards as one table.",
        ),
        click.option(
            "--classes",
            metavar="FILE",
            help="Class vocabulary and order: one class name a line.",
        ),
        click.option("--id-col", metavar="NAME", help="Id column (default: id; else row number)."),
        click.option("--label-col", metavar="NAME", help="Label column (default: label)."),
        click.option(
            "--label-sep",
            metavar="SEP",
            help="Multi-label: split string labels on SEP (e.g. '|').",
        ),
        click.option(
            "--probs-col",
            metavar="NAME",
            help="Predictions hold one list column of scores; order from --classes.",
        ),
        click.option(
            "--scores",
            type=click.Choice(SCORE_MODES),
            help="Whether scores are probabilities or logits (default: auto, detected).",
        ),
        click.option(
            "--on-missing",
            type=click.Choice(ON_MISSING),
            help="Ids in only one of labels / predictions: error (default) or drop them.",
        ),
        click.option(
            "--input-format",
            type=click.Choice(INPUT_FORMATS),
            help="Read inputs as this format whatever their extension.",
        ),
        click.option(
            "--config",
            "config_file",
            metavar="FILE",
            help="Settings file (pyproject.toml or labelaudit.toml); default: found upward "
            "from the current folder.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def analysis_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """How labels and scores are analyzed, shared by scan and gate (which runs a scan)."""
    options = [
        click.option(
            "--min-support",
            type=int,
            help="Classes with fewer samples are reported as rare (default: 10).",
        ),
        click.option(
            "--threshold",
            type=float,
            help="Multi-label: a class is predicted when its probability is >= this "
            "(default: 0.5).",
        ),
        click.option(
            "--quality-score",
            type=click.Choice(QUALITY_SCORES),
            help="Per-sample label quality used to rank suspects (default: normalized_margin).",
        ),
        click.option(
            "--suspects",
            type=click.Choice((*SUSPECT_RULES, "none")),
            help="Rule that decides the flagged set of suspected label errors (default: "
            "prune_by_noise_rate; none: skip detection, metrics only); see docs/detection.md.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--format and -o, shared by every command that writes a report."""
    command = click.option(
        "-o",
        "--output",
        metavar="FILE",
        help="Write the report to FILE (atomically) instead of stdout.",
    )(command)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="text",
        show_default=True,
        help="Report format: text for people, json for machines, markdown for pull requests.",
    )(command)


@cli.command()
@click.argument("labels", metavar="LABELS")
@input_options
@analysis_options
@click.option(
    "--top",
    type=int,
    help="How many suspects the report lists, most suspect first (default: 20).",
)
@click.option(
    "--thresholds",
    metavar="FILE",
    help="Apply the per-class thresholds of FILE (from `labelaudit thresholds`) to the metrics.",
)
@click.option(
    "--weighting",
    type=click.Choice(WEIGHTING_METHODS),
    help="Class weighting behind --weights-out (default: the recommended one; see "
    "docs/remedies.md).",
)
@click.option(
    "--max-weight",
    type=float,
    help="Cap every class and sample weight at this value (default: uncapped).",
)
@click.option(
    "--weights-out",
    metavar="FILE",
    help="Write one row per sample (id, weight) to FILE (.csv or .parquet), ready for a "
    "weighted sampler.",
)
@click.option(
    "--issues-out",
    metavar="FILE",
    help="Write one row per scored sample (id, given_label, suggested_label, label_quality, "
    "is_suspect, rank, ...) to FILE (.csv or .parquet).",
)
@output_options
@debug_option
def scan(
    labels: str,
    fmt: str,
    output: str | None,
    config_file: str | None,
    issues_out: str | None,
    weights_out: str | None,
    **flags: Any,
) -> int:
    """Report support, imbalance, duplicates and (with --preds) model metrics and suspected
    label errors for LABELS.

    LABELS is a csv, tsv, parquet, ndjson or arrow table with an id and a label column.
    """
    from labelaudit.api import scan as run_scan
    from labelaudit.config import build_scan_config, load_config_file
    from labelaudit.io.writers import check_table_path, write_frame

    for path in (issues_out, weights_out):
        if path:
            check_table_path(path)
    loaded = load_config_file(config_file)
    preds = flags.pop("preds")
    config = build_scan_config(loaded.values, flags, source="the command line")
    report = run_scan(labels, preds, config=config)
    if issues_out:
        if report.suspects is None:
            raise LabelAuditError("--issues-out needs --preds: label errors are found from scores.")
        write_frame(issues_out, report.suspects)
    if weights_out:
        write_frame(weights_out, report.weights)
    emit(report, fmt, output)
    return EXIT_OK


@cli.command()
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@input_options
@click.option(
    "--min-support",
    type=int,
    help="Share changes are listed for classes with at least this many samples in either "
    "version (default: 10).",
)
@output_options
@debug_option
def diff(
    old: str, new: str, fmt: str, output: str | None, config_file: str | None, **flags: Any
) -> int:
    """Compare two versions of a labels table, joined on id: relabels, additions, removals,
    per-class support and distribution shift.

    With --preds (scores for NEW's rows), each relabel is judged: the model agrees when the new
    label is more probable than the old one.
    """
    from labelaudit.config import build_scan_config, load_config_file
    from labelaudit.diffing import diff as run_diff

    loaded = load_config_file(config_file)
    preds = flags.pop("preds")
    config = build_scan_config(loaded.values, flags, source="the command line")
    emit(run_diff(old, new, preds, config=config), fmt, output)
    return EXIT_OK


@cli.command()
@click.argument("labels", metavar="LABELS")
@input_options
@click.option(
    "--baseline",
    metavar="OLD",
    help="The previous version of the labels: enables the rules that compare versions.",
)
@click.option(
    "--fail-on",
    type=click.Choice(("warning", "error")),
    default="error",
    show_default=True,
    help="Lowest severity of a failing rule that fails the gate (exit 1).",
)
@click.option(
    "--exit-zero",
    is_flag=True,
    help="Exit 0 even when rules fail (bad input and internal errors still exit 2 and 3).",
)
@click.option("--junit", metavar="FILE", help="Also write JUnit XML, one testcase per rule.")
@analysis_options
@click.option(
    "--write-baseline",
    metavar="FILE",
    help="Record today's suspects (id, given label) to FILE (.csv or .parquet) for --accept.",
)
@click.option(
    "--accept",
    metavar="FILE",
    help="Known suspects (from --write-baseline): only new suspects count against "
    "max_suspect_rate; entries that no longer apply are reported.",
)
@output_options
@debug_option
def gate(
    labels: str,
    fmt: str,
    output: str | None,
    config_file: str | None,
    baseline: str | None,
    fail_on: str,
    exit_zero: bool,
    junit: str | None,
    write_baseline: str | None,
    accept: str | None,
    **flags: Any,
) -> int:
    """Check LABELS against the rules in [tool.labelaudit.gate] (or [gate] in
    labelaudit.toml, or --config): exit 0 when it passes, 1 when rules fail, 2 on bad input or
    configuration.
    """
    import os

    from labelaudit.config import build_scan_config, load_config_file
    from labelaudit.gate import parse_rules
    from labelaudit.gating import current_suspects
    from labelaudit.gating import gate as run_gate
    from labelaudit.io.writers import check_table_path, write_frame, write_text
    from labelaudit.report.render import render
    from labelaudit.report.render_gate import github_annotations, render_junit, summary_line

    if write_baseline:
        check_table_path(write_baseline)
    loaded = load_config_file(config_file)
    source = f"[gate] of '{loaded.path}'" if loaded.path else "the configuration"
    rules = parse_rules(loaded.sections.get("gate"), source)
    preds = flags.pop("preds")
    config = build_scan_config(loaded.values, flags, source="the command line")
    report = run_gate(
        labels, preds, rules=rules, config=config, baseline=baseline, accept=accept,
        fail_on=fail_on,
    )  # fmt: skip
    if write_baseline:
        write_frame(write_baseline, current_suspects(report.scan_report))
    data = report.to_dict()
    text = render(report, fmt)
    if output:
        write_text(output, text)
    else:
        click.echo(text, nl=False)
    if junit:
        write_text(junit, render_junit(data))
    click.echo(summary_line(data), err=True)
    for finding in data["findings"]:
        if finding["status"] in ("fail", "error"):
            click.echo(f"  [{finding['severity']}] {finding['message']}", err=True)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(data):
            click.echo(line, err=True)
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(render(report, "markdown"))
    failed = data["summary"]["verdict"] == "fail"
    return EXIT_FINDINGS if failed and not exit_zero else EXIT_OK


@cli.command()
@click.argument("labels", metavar="LABELS")
@input_options
@click.option(
    "--metric",
    default="f1",
    show_default=True,
    help="What each class's threshold maximizes: f1, precision@recall=R (highest precision with "
    "recall >= R) or recall@precision=P.",
)
@click.option(
    "--holdout",
    type=float,
    help="Tune on the rest, measure on this stratified fraction (default: 0.5).",
)
@click.option(
    "--folds",
    type=int,
    help="Cross-fit instead: each of K folds is judged by thresholds tuned on the others.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Write thresholds.json to FILE (atomically); default: stdout.",
)
@debug_option
def thresholds(
    labels: str,
    output: str | None,
    config_file: str | None,
    metric: str,
    holdout: float | None,
    folds: int | None,
    seed: int,
    **flags: Any,
) -> int:
    """Tune per-class decision thresholds on part of the rows and measure the gain on rows that
    did not choose them; write thresholds.json for `scan --thresholds`.
    """
    import json

    from labelaudit.config import build_scan_config, load_config_file
    from labelaudit.io.writers import write_text
    from labelaudit.thresholding import tune_thresholds

    loaded = load_config_file(config_file)
    preds = flags.pop("preds")
    config = build_scan_config(loaded.values, flags, source="the command line")
    result = tune_thresholds(
        labels, preds, config=config, metric=metric, holdout=holdout, folds=folds, seed=seed
    )
    text = json.dumps(result, indent=2) + "\n"
    if output:
        write_text(output, text)
    else:
        click.echo(text, nl=False)
    ev = result["evaluation"]
    click.echo(
        f"labelaudit thresholds ({result['metric']}, {ev['method']}): macro F1 {ev['before']:.4f} "
        f"-> {ev['after']:.4f} on {ev['n_evaluation']:,} rows that did not choose the thresholds",
        err=True,
    )
    return EXIT_OK


def emit(report: Any, fmt: str, output: str | None) -> None:
    """Write the rendered report to -o (atomically) or stdout; warnings also go to stderr."""
    from labelaudit.io.writers import write_text
    from labelaudit.report.render import render

    text = render(report, fmt)
    if output:
        write_text(output, text)
        click.echo(f"Report written to {output}", err=True)
    else:
        click.echo(text, nl=False)
    if output or fmt != "text":
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)


def main() -> None:
    """Console-script entry point."""
    cli.main()
