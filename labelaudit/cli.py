"""The command line: parse options, call the API, render, choose the exit code. Nothing else."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from labelaudit import __version__
from labelaudit.config import INPUT_FORMATS
from labelaudit.errors import ISSUE_TRACKER, ExitCode, Interrupted, LabelAuditError
from labelaudit.pipelines.gate_rules import SEVERITIES
from labelaudit.report.render import FORMATS
from labelaudit.scoring.choices import PRECISIONS, PROBES


class LabelAuditGroup(click.Group):
    """A click group that owns the exit codes: 2 for bad usage or input, 3 for a bug, 130/143
    for an interrupt (after removing every temporary file)."""

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:
        """In-process use (click's CliRunner, Python): exit with the code; the caller's signal
        handlers are restored. The executable goes through `run(executable=True)` (`main()`)."""
        sys.exit(self.run(args, prog_name, **extra))

    def run(
        self,
        args: Any = None,
        prog_name: str | None = None,
        *,
        executable: bool = False,
        **extra: Any,
    ) -> int:
        """Run the command and return its exit code. A signal raises while the command runs (so
        `finally` blocks remove temporary files) and only once; one that arrives later, while
        the outcome is reported, click tears down or the process ends, still makes the exit code
        the signal's, with its one message (docs/exit-codes.md)."""
        argv = list(sys.argv[1:] if args is None else args)
        extra.pop("standalone_mode", None)
        previous: dict[int, Any] = {}
        try:
            _install_signal_handlers(previous)
            _ON_FAILURE.clear()
            try:
                done = super().main(argv, prog_name or "labelaudit", standalone_mode=False, **extra)
                code = ExitCode.OK if done is None else int(done)
            except BaseException as stopped:
                code = _exit_code_for(stopped, argv)
            _SignalState.raising = False  # from here a signal is recorded, not raised
        except BaseException:  # the signal's one raise, while the outcome above was reported
            _SignalState.raising = False
            if not _RECEIVED_SIGNAL:
                _restore_signal_handlers(previous)
                _forget_outputs()
                raise
            code = _interrupted(_signal_exit_code())
        _ON_FAILURE.clear()
        if executable:  # a signal from now until the process ends: `_late_signal`
            _install_late_handlers()
            return _settle_signal(code)
        _restore_signal_handlers(previous)
        code = _settle_signal(code)  # recorded before the handlers were restored
        _forget_outputs()
        return code


def _exit_code_for(stopped: BaseException, argv: list[str]) -> int:
    """The exit code (and message) of a command that raised `stopped`. Once a signal was received,
    whatever reaches here is the interrupt (a library may wrap the signal's exception)."""
    if _RECEIVED_SIGNAL and not isinstance(stopped, GeneratorExit):
        return _interrupted(_signal_exit_code())
    if isinstance(stopped, click.exceptions.Exit):
        return stopped.exit_code
    if isinstance(stopped, click.exceptions.Abort | KeyboardInterrupt):  # Abort: click's form
        return _interrupted(ExitCode.SIGINT)
    if isinstance(stopped, Interrupted):
        return _interrupted(stopped.exit_code)
    if isinstance(stopped, click.ClickException):
        _to_stderr(stopped.show)
        return _failed(stopped.format_message(), ExitCode.BAD_INPUT)
    if isinstance(stopped, LabelAuditError):
        _to_stderr(functools.partial(click.echo, f"Error: {stopped.message}", err=True))
        return _failed(stopped.message, stopped.exit_code)
    if isinstance(stopped, MemoryError):  # the inputs, not a bug: say so (exit 2)
        if "--debug" in argv:
            traceback.print_exception(stopped)
        message = (
            f"labelaudit ran out of memory ({stopped or 'an allocation failed'}): these inputs "
            "need more than this machine has. docs/performance.md says what each command holds "
            "per row and per class; give fewer rows or classes, or run on a machine with more "
            "memory."
        )
        click.echo(f"Error: {message}", err=True)
        return _failed(message, ExitCode.BAD_INPUT)
    if isinstance(stopped, Exception):  # the one place that turns a bug into exit 3
        if "--debug" in argv:
            traceback.print_exception(stopped)
        message = (
            f"Internal error: {type(stopped).__name__}: {stopped}. This is a bug in labelaudit; "
            f"please report it at {ISSUE_TRACKER} (run again with --debug for the traceback)."
        )
        click.echo(message, err=True)
        return _failed(message, ExitCode.INTERNAL)
    if isinstance(stopped, SystemExit):  # sys.exit() inside a command
        if stopped.code is None or isinstance(stopped.code, int):
            return stopped.code or ExitCode.OK
        click.echo(str(stopped.code), err=True)
        return ExitCode.INTERNAL
    if isinstance(stopped, GeneratorExit):
        raise stopped
    # e.g. pyo3's PanicException, which is not an Exception
    message = f"Internal error: {type(stopped).__name__}: {stopped}."
    click.echo(message, err=True)
    return _failed(message, ExitCode.INTERNAL)


# What the running command asked to be done should it stop with exit 2 or 3 (the gate: a JUnit
# file and a GitHub annotation that say why), each called with the message and the exit code.
_ON_FAILURE: list[Callable[[str, int], None]] = []


def _failed(message: str, code: int) -> int:
    """Run the command's failure hooks after its error message, and return its exit code: a
    hook that fails only warns (the error stays the one reported); an interrupt during one is
    the interrupt's exit code."""
    hooks = list(_ON_FAILURE)
    _ON_FAILURE.clear()
    for hook in hooks:
        try:
            hook(message, code)
        except KeyboardInterrupt:
            return _interrupted(ExitCode.SIGINT)
        except Interrupted as stop:
            return _interrupted(stop.exit_code)
        except LabelAuditError as error:  # e.g. the disk that failed the run fails this too
            if error.message != message:
                click.echo(f"warning: {error.message}", err=True)
        except Exception as bug:
            click.echo(f"warning: {type(bug).__name__}: {bug}", err=True)
    return code


def _forget_outputs() -> None:
    """End the ledger of this run's outputs (kept by io.writers, if the run imported it)."""
    writers = sys.modules.get("labelaudit.io.writers")
    if writers is not None:
        writers.forget_outputs()


# Signals received by this run (the exception they raise may reach main wrapped by a library).
_RECEIVED_SIGNAL: list[int] = []


class _SignalState:
    """Whether a signal raises now (the command runs; once a run) or is only recorded, and the
    exit code of the interrupt already reported (None until then; one message a run)."""

    raising = False
    reported: int | None = None


def _install_signal_handlers(previous: dict[int, Any]) -> None:
    """SIGINT and SIGTERM raise in the main thread, so `finally` blocks remove temporary files;
    a second signal during that clean-up is ignored. The handlers replaced go into `previous`,
    to restore (filled as each is replaced, so an interrupt part-way restores what it must)."""
    import signal
    import threading

    _RECEIVED_SIGNAL.clear()
    _SignalState.reported = None
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signal_number: int, _frame: Any) -> None:
        first = not _RECEIVED_SIGNAL
        _RECEIVED_SIGNAL.append(signal_number)
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(OSError, ValueError):  # a second signal racing this one
                signal.signal(number, signal.SIG_IGN)
        if first and _SignalState.raising:
            _SignalState.raising = False
            if signal_number == signal.SIGINT:
                raise KeyboardInterrupt
            raise Interrupted(signal_number)

    _SignalState.raising = True
    for number in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(number)
        signal.signal(number, stop)
        previous[number] = handler if handler is not None else signal.SIG_DFL


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    import signal

    for number, handler in previous.items():
        with contextlib.suppress(OSError, ValueError):
            signal.signal(number, handler)


def _signal_exit_code() -> int:
    """128 + the number of the first signal this run received."""
    return Interrupted(_RECEIVED_SIGNAL[0]).exit_code


def _settle_signal(code: int) -> int:
    """The run's exit code, once its outcome is reported: a signal recorded but not raised (it
    came after the command's work, every output written) still makes it the signal's, with
    the interrupt's message (which then says each output was written in full)."""
    if _RECEIVED_SIGNAL and _SignalState.reported is None:
        return _interrupted(_signal_exit_code())
    return code


def _install_late_handlers() -> None:
    """The executable's handlers from the run's end until the process ends (`_end_process`):
    the run is over, so a signal is reported at once and ends the process with its code."""
    import signal

    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(OSError, ValueError):
            signal.signal(number, _late_signal)


def _late_signal(signal_number: int, _frame: Any) -> None:
    """A signal after the run's outcome: in click's teardown, an atexit callback, the process's
    end. Never raises (an exception in an atexit callback is ignored, and the exit code with
    it): reports the interrupt (unless one was reported already) and leaves with its code."""
    import signal

    for number in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(OSError, ValueError):
            signal.signal(number, signal.SIG_IGN)
    if _SignalState.reported is not None:  # a second signal: the first one's code stands
        return
    _RECEIVED_SIGNAL.append(signal_number)
    _leave_now(_interrupted(Interrupted(signal_number).exit_code))


def _end_process(code: int) -> None:
    """End the executable with `code`: the atexit callbacks run now (with `_late_signal` as the
    handlers), then the process leaves at once (os._exit). Left to Python, the interpreter's
    shutdown runs code no handler can turn into an exit code: an exception raised in an atexit
    callback is ignored (the exit code stays 0), and part-way through it Python restores the
    default handlers (killed by the signal, without a message)."""
    import atexit

    run_callbacks = getattr(atexit, "_run_exitfuncs", None)  # CPython's; runs each once
    if run_callbacks is not None:
        run_callbacks()
    _leave_now(code)


def _leave_now(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or full stream: nothing more to say
            if stream is not None:
                stream.flush()
    os._exit(int(code))


def _interrupted(code: int) -> int:
    """Remove temporary files, say so on stderr (and which of the run's outputs were written in
    full before the interrupt), and return the interrupt's exit code."""
    from labelaudit.io.writers import remove_pending

    _SignalState.reported = code
    remove_pending()
    _to_stderr(functools.partial(click.echo, _interrupt_message(), err=True))
    return code


def _interrupt_message() -> str:
    """'Interrupted; no output was left half-written.', then, for a run that planned files,
    which were written in full and which were not (their earlier files, if any, unchanged)."""
    from labelaudit._text import human_line

    writers = sys.modules.get("labelaudit.io.writers")  # not imported: nothing was planned
    status = writers.output_status() if writers is not None else {}
    if not any(status.values()):
        return "Interrupted; no output was left half-written."

    def listed(outputs: list[tuple[str, str]]) -> str:
        return ", ".join(f"{option} '{path}'" for option, path in outputs)

    parts = ["Interrupted; no output was left half-written."]
    if status["written"]:
        parts.append(f"Written in full before the interrupt: {listed(status['written'])}.")
    if status["partly"]:
        parts.append(
            f"Partly written (some of its files replaced, the others not): "
            f"{listed(status['partly'])}."
        )
    if status["not written"]:
        parts.append(
            f"Not written (any earlier file there is unchanged): {listed(status['not written'])}."
        )
    # Two runs mix only where an output not written still holds an earlier run's file.
    earlier = [path for _, path in status["not written"] if writers.holds_earlier_output(path)]
    if status["partly"] or (status["written"] and earlier):
        parts.append("The outputs now come from two runs: rerun before using them together.")
    return human_line(" ".join(parts))


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


def setting_option(name: str, metavar: str | None = None) -> Callable[..., Any]:
    """A click option for ScanConfig setting `name`: its flag, help, default and choices come
    from the setting's one declaration in config.py (the flag's value is None unless given)."""
    from labelaudit.config import SETTINGS, choices_of, external_key, help_of

    meta = SETTINGS[name].metadata
    choices = choices_of(name)
    kind = meta["kind"]
    option_type: Any = click.Choice(choices) if choices else kind if kind in (int, float) else None
    flag = "--" + external_key(name).replace("_", "-")
    if kind is tuple:  # repeatable, each value comma-separated too; None unless given
        return click.option(flag, external_key(name), metavar=metavar, help=help_of(name),
                            multiple=True, callback=lambda _c, _p, v: v or None)  # fmt: skip
    return click.option(flag, external_key(name), type=option_type, metavar=metavar,
                        help=help_of(name))  # fmt: skip


def choice_option(flag: str, choices: tuple[str, ...], default: str, help: str) -> Any:
    """An option with fixed choices and a default shown in --help."""
    return click.option(
        flag, type=click.Choice(choices), default=default, show_default=True, help=help
    )


def input_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say how to read labels and predictions, shared by every command."""
    options = [
        click.option(
            "--preds",
            "preds",
            metavar="PATH",
            multiple=True,
            help="Model scores: a table with one column per class (or --probs-col), or a .npy "
            "array; a quoted glob reads shards as one table. Repeat for several models' scores "
            "of the same rows: they are combined (docs/detection.md).",
        ),
        setting_option("classes", "FILE"),
        setting_option("id_col", "NAME"),
        setting_option("label_col", "NAME"),
        setting_option("label_sep", "SEP"),
        setting_option("probs_col", "NAME"),
        setting_option("topk_classes_col", "NAME"),
        setting_option("topk_probs_col", "NAME"),
        setting_option("ignore_cols", "NAMES"),
        setting_option("scores"),
        setting_option("on_missing"),
        setting_option("input_format"),
        setting_option("stream_above_mib", "MIB"),
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
    for name in reversed(("min_support", "threshold", "quality_score", "suspect_rule")):
        command = setting_option(name)(command)
    return command


def embedding_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--embeddings and how rows are compared (docs/embeddings.md), and --group-col; shared by
    scan and gate."""
    names = ("embeddings", "embeddings_col", "knn", "distance", "knn_index",
             "duplicate_threshold", "group_cols")  # fmt: skip
    metavars = {"embeddings": "FILE", "embeddings_col": "NAME", "knn": "K",
                "duplicate_threshold": "F", "group_cols": "COL"}  # fmt: skip
    for name in reversed(names):
        command = setting_option(name, metavars.get(name))(command)
    return command


def output_options(
    default_format: str = "text",
    output_help: str = "Write the report to FILE (atomically) instead of stdout.",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--format and -o, shared by every command that writes a report (one list of formats)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option("-o", "--output", metavar="FILE", help=output_help)(command)
        return click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            default=default_format,
            show_default=True,
            help="Report format: text for people, json for machines, markdown for pull "
            "requests, html for one self-contained page with figures.",
        )(command)

    return decorate


def figure_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--plots-dir, shared by the commands whose report has figures."""
    return click.option(
        "--plots-dir",
        metavar="DIR",
        help="Also write each figure of the HTML report as DIR/<name>.png (any --format).",
    )(command)


def media_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--media-col and --media-root: thumbnails of the suspects in the HTML report."""
    command = click.option(
        "--media-root",
        metavar="DIR",
        help="HTML: embed only images inside DIR (default: the labels file's folder); images "
        "elsewhere are shown as text.",
    )(command)
    return click.option(
        "--media-col",
        metavar="NAME",
        help="HTML: a labels column with each sample's image path (or URL, shown as a link); "
        "the suspects table shows thumbnails.",
    )(command)


@cli.command()
@click.argument("labels", metavar="LABELS")
@input_options
@analysis_options
@embedding_options
@setting_option("top")
@setting_option("thresholds", "FILE")
@setting_option("weighting")
@setting_option("max_weight")
@setting_option("engine")
@setting_option("ray_address", "ADDRESS")
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
@output_options()
@figure_options
@media_option
@debug_option
def scan(
    labels: str,
    fmt: str,
    output: str | None,
    config_file: str | None,
    issues_out: str | None,
    weights_out: str | None,
    plots_dir: str | None,
    media_col: str | None,
    media_root: str | None,
    **flags: Any,
) -> int:
    """Report support, imbalance, duplicates and (with --preds) model metrics and suspected
    label errors for LABELS.

    LABELS is a csv, tsv, parquet, ndjson or arrow table with an id and a label column.
    """
    from labelaudit.io.writers import write_pieces
    from labelaudit.pipelines.scan import run_scan

    loaded, preds, config = _settings(config_file, flags)
    if issues_out and preds is None and not config.embeddings:
        raise LabelAuditError(
            "--issues-out needs --preds or --embeddings: label errors are found from scores, or "
            "from the nearest neighbours' labels."
        )
    if issues_out and config.suspect_rule == "none":
        raise LabelAuditError(
            "--issues-out needs label-error detection, which --suspects none turns off. Drop "
            "one of the two."
        )
    _check_paths(
        loaded,
        config,
        inputs=[labels, preds, config.embeddings],
        outputs={"-o": output, "--issues-out": issues_out, "--weights-out": weights_out},
        tables=("--issues-out", "--weights-out"),
        plots_dir=plots_dir,
        media=(labels, media_col, media_root),
    )
    report = run_scan(labels, preds, config=config)
    if issues_out:  # piece by piece: a large table is never whole in memory
        write_pieces(issues_out, report.issues_table.pieces())
    if weights_out:
        write_pieces(weights_out, report.weights_table.pieces())
    media = _media(labels, config, media_col, media_root, report.to_dict()) if media_col else None
    emit(report, fmt, output, plots_dir=plots_dir, media=media)
    return ExitCode.OK


def _settings(config_file: str | None, flags: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The settings file, the --preds value and the merged ScanConfig of a data command."""
    from labelaudit.config import build_scan_config, load_config_file

    loaded = load_config_file(config_file)
    given = list(flags.pop("preds") or ())
    preds = None if not given else given[0] if len(given) == 1 else given
    config = build_scan_config(loaded.values, flags, source="the command line")
    return loaded, preds, config


def _check_paths(
    loaded: Any,
    config: Any,
    inputs: list[Any],
    outputs: dict[str, str | None],
    tables: tuple[str, ...] = (),
    plots_dir: str | None = None,
    media: tuple[str, str | None, str | None] | None = None,
    step_summary: bool = False,
) -> None:
    """Every output (the figures --plots-dir will hold and a GitHub step summary included)
    checked against every input (settings files, and the images --media-col names) before any
    work; a --media-root that is not a folder too."""
    from labelaudit.io.paths import check_outputs
    from labelaudit.report.figures import FIGURE_NAMES

    flat = [f for item in inputs for f in (item if isinstance(item, list) else [item])]
    files = [*flat, loaded.path, config.classes, config.thresholds]
    if media is not None and media[1] is not None:
        files += _media_files(media[0], config, media[1], media[2])
    figures = {"--plots-dir": (plots_dir, [f"{name}.png" for name in FIGURE_NAMES])}
    extra = _step_summary() if step_summary else {}
    check_outputs(outputs | extra, files, tables, figures)
    _plan_outputs(outputs | {"--plots-dir": plots_dir})


def _plan_outputs(outputs: dict[str, Any]) -> None:
    """The files (and --plots-dir) this run will write, for the message of an interrupt."""
    from labelaudit.io.writers import plan_outputs

    plan_outputs(outputs)


def _step_summary() -> dict[str, str | None]:
    """GitHub's step summary file, an output of `gate` on GitHub Actions."""
    import os

    if os.environ.get("GITHUB_ACTIONS") != "true":
        return {}
    return {"GITHUB_STEP_SUMMARY": os.environ.get("GITHUB_STEP_SUMMARY") or None}


def _media_files(labels: str, config: Any, media_col: str, root: str | None) -> list[str]:
    """The local files --media-col names (inputs a figure or a report must never replace)."""
    from pathlib import Path

    from labelaudit.io.media import media_paths, media_root

    base = Path(labels).absolute().parent
    media_root(root, base)  # a --media-root that is not a folder: exit 2 before any work
    return media_paths(labels, media_col, base, config.input_format)


@cli.command()
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@input_options
@setting_option("engine")
@setting_option("ray_address", "ADDRESS")
@click.option(
    "--min-support",
    type=int,
    help="Share changes are listed for classes with at least this many samples in either "
    "version (default: 10).",
)
@output_options()
@figure_options
@debug_option
def diff(
    old: str,
    new: str,
    fmt: str,
    output: str | None,
    config_file: str | None,
    plots_dir: str | None,
    **flags: Any,
) -> int:
    """Compare two versions of a labels table, joined on id: relabels, additions, removals,
    per-class support and distribution shift.

    With --preds (scores for NEW's rows), each relabel is judged: the model agrees when the new
    label is more probable than the old one.
    """
    from labelaudit.pipelines.diff import run_diff

    loaded, preds, config = _settings(config_file, flags)
    _check_paths(loaded, config, [old, new, preds], {"-o": output}, plots_dir=plots_dir)
    emit(run_diff(old, new, preds, config), fmt, output, plots_dir=plots_dir)
    return ExitCode.OK


class GateCommand(click.Command):
    """`gate`: from the moment its arguments are read, a stop with exit 2 or 3 is also reported
    where CI looks: in the --junit file (one testcase whose <error> holds the message) and, on
    GitHub Actions, as an `::error` annotation."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        _ON_FAILURE.append(functools.partial(_gate_not_run, list(args)))
        return super().parse_args(ctx, args)


def _gate_not_run(args: list[str], message: str, code: int) -> None:
    """The gate stopped with exit 2 or 3 (`message` is what stderr says): an annotation on GitHub
    Actions, and the JUnit file of --junit when its path is one the gate may write."""
    from labelaudit._text import human_line
    from labelaudit.report.ci import github_error_annotation, render_junit_error

    if os.environ.get("GITHUB_ACTIONS") == "true":
        click.echo(github_error_annotation(message), err=True)
    junit, others = _split_option(args, "--junit")
    if not junit:
        return
    refusal = _junit_refusal(junit, others)
    if refusal is not None:
        if refusal != message:  # the error itself may be about --junit: said once
            click.echo(human_line(f"warning: no JUnit file was written: {refusal}"), err=True)
        return
    from labelaudit.io.writers import write_text

    write_text(junit, render_junit_error(message, code))


def _split_option(args: list[str], flag: str) -> tuple[str | None, list[str]]:
    """The value of `flag` in raw arguments (the last given, as click takes it; `FLAG VALUE` or
    `FLAG=VALUE`), and the other arguments."""
    value, rest, i = None, [], 0
    while i < len(args):
        if args[i] == flag and i + 1 < len(args):
            value, i = args[i + 1], i + 2
            continue
        if args[i].startswith(flag + "="):
            value = args[i][len(flag) + 1 :]
        else:
            rest.append(args[i])
        i += 1
    return value, rest


def _junit_refusal(junit: str, others: list[str]) -> str | None:
    """Why the gate must not write `junit` after stopping (None: it may), judged from the raw
    arguments, since the stop may come before they were all read: no other argument names the
    same file (an input, another output), nor does the settings file; it passes the output
    checks of io.paths (not a folder, not read-only, in a writable folder)."""
    from labelaudit.config import find_config_file
    from labelaudit.io.paths import check_outputs

    values = [part for arg in others for part in (arg, arg.partition("=")[2]) if part]
    settings = _split_option(others, "--config")[0] or find_config_file()
    try:
        check_outputs({"--junit": junit}, [*values, settings, *_step_summary().values()])
    except LabelAuditError as refusal:
        return refusal.message
    real = os.path.realpath(junit)
    same = next((v for v in values if os.path.realpath(v) == real), None)
    if same is not None:
        return f"--junit '{junit}' is also named by another argument ('{same}')."
    return None


@cli.command(cls=GateCommand)
@click.argument("labels", metavar="LABELS")
@input_options
@click.option(
    "--baseline",
    metavar="OLD",
    help="The previous version of the labels: enables the rules that compare versions.",
)
@choice_option(
    "--fail-on",
    SEVERITIES,
    "error",
    "Lowest severity of a failing rule that fails the gate (exit 1).",
)
@click.option(
    "--exit-zero",
    is_flag=True,
    help="Exit 0 even when rules fail (bad input and internal errors still exit 2 and 3).",
)
@click.option("--junit", metavar="FILE", help="Also write JUnit XML, one testcase per rule.")
@analysis_options
@embedding_options
@setting_option("engine")
@setting_option("ray_address", "ADDRESS")
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
@output_options()
@figure_options
@media_option
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
    plots_dir: str | None,
    media_col: str | None,
    media_root: str | None,
    **flags: Any,
) -> int:
    """Check LABELS against the rules in [tool.labelaudit.gate] (or [gate] in
    labelaudit.toml, or --config): exit 0 when it passes, 1 when rules fail, 2 on bad input or
    configuration.
    """
    import os

    from labelaudit.io.writers import write_frame, write_text
    from labelaudit.pipelines.gate import current_suspects, run_gate
    from labelaudit.pipelines.gate_rules import parse_rules
    from labelaudit.report.ci import github_annotations, render_junit, summary_line
    from labelaudit.report.render import render

    loaded, preds, config = _settings(config_file, flags)
    source = f"[gate] of '{loaded.path}'" if loaded.path else "the configuration"
    rules = parse_rules(loaded.sections.get("gate"), source)
    if (write_baseline or accept) and preds is None:
        raise LabelAuditError(
            "--write-baseline and --accept need --preds: suspects are found from scores."
        )
    _check_paths(
        loaded,
        config,
        inputs=[labels, preds, baseline, accept],
        outputs={"-o": output, "--junit": junit, "--write-baseline": write_baseline},
        tables=("--write-baseline",),
        plots_dir=plots_dir,
        media=(labels, media_col, media_root),
        step_summary=True,
    )
    report = run_gate(
        labels, preds, rules=rules, config=config, baseline=baseline, accept=accept,
        fail_on=fail_on,
    )  # fmt: skip
    if write_baseline:
        write_frame(write_baseline, current_suspects(report.scan))
    data = report.to_dict()
    media = _media(labels, config, media_col, media_root, data["scan"]) if media_col else None
    emit(report, fmt, output, plots_dir=plots_dir, media=media)
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
            try:
                with open(step_summary, "a", encoding="utf-8") as handle:
                    handle.write(render(report, "markdown"))
            except OSError as exc:  # the verdict stands; the summary is a courtesy
                click.echo(
                    f"warning: could not append to GITHUB_STEP_SUMMARY '{step_summary}': "
                    f"{exc.strerror or exc}.",
                    err=True,
                )
    failed = data["summary"]["verdict"] == "fail"
    return ExitCode.FINDINGS if failed and not exit_zero else ExitCode.OK


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
@output_options(
    default_format="json",
    output_help="Write the report to FILE (atomically) instead of stdout; as json (the default) "
    "it is the thresholds.json that `scan --thresholds` applies.",
)
@click.option(
    "--html",
    "html_out",
    metavar="FILE",
    help="Deprecated (use --format html -o FILE): also write the HTML page to FILE.",
)
@figure_options
@debug_option
def thresholds(
    labels: str,
    fmt: str,
    output: str | None,
    config_file: str | None,
    metric: str,
    holdout: float | None,
    folds: int | None,
    seed: int,
    html_out: str | None,
    plots_dir: str | None,
    **flags: Any,
) -> int:
    """Tune per-class decision thresholds on part of the rows and measure the gain on rows that
    did not choose them; write thresholds.json for `scan --thresholds`.
    """
    from labelaudit.io.writers import write_text
    from labelaudit.pipelines.thresholds import run_thresholds
    from labelaudit.report.render import render_page

    loaded, preds, config = _settings(config_file, flags)
    _check_paths(
        loaded, config, [labels, preds], {"-o": output, "--html": html_out}, plots_dir=plots_dir
    )
    report = run_thresholds(
        labels, preds, config, metric=metric, holdout=holdout, folds=folds, seed=seed,
        curves=fmt == "html" or bool(html_out or plots_dir),
    )  # fmt: skip
    if html_out:
        click.echo("warning: --html is deprecated; use --format html -o FILE.", err=True)
        write_text(html_out, render_page(report)[0])
    emit(report, fmt, output, plots_dir=plots_dir)
    ev = report.evaluation
    click.echo(
        f"labelaudit thresholds ({report.metric}, {ev.method}): macro F1 {ev.before:.4f} -> "
        f"{ev.after:.4f} on {ev.n_evaluation:,} rows that did not choose the thresholds",
        err=True,
    )
    return ExitCode.OK


@cli.command()
@click.argument("annotations", metavar="ANNOTATIONS")
@input_options
@setting_option("annotator_col", "NAME")
@click.option(
    "--consensus-out",
    metavar="FILE",
    help="Write one row per item (id, consensus_label, consensus_quality, n_annotations, "
    "agreement, majority_label) to FILE (.csv or .parquet); `scan FILE --label-col "
    "consensus_label` reads it as labels.",
)
@output_options()
@figure_options
@debug_option
def annotators(
    annotations: str,
    fmt: str,
    output: str | None,
    config_file: str | None,
    consensus_out: str | None,
    plots_dir: str | None,
    **flags: Any,
) -> int:
    """Consensus labels, annotator quality and agreement from ANNOTATIONS: one row an annotation
    (the item's id, the annotator, the label); --preds adds a model's scores of the items.
    """
    from labelaudit.io.writers import write_frame
    from labelaudit.pipelines.annotators import run_annotators

    loaded, preds, config = _settings(config_file, flags)
    _check_paths(
        loaded,
        config,
        inputs=[annotations, preds],
        outputs={"-o": output, "--consensus-out": consensus_out},
        tables=("--consensus-out",),
        plots_dir=plots_dir,
    )
    report = run_annotators(annotations, preds, config)
    if consensus_out:
        write_frame(consensus_out, report.consensus_table)
    emit(report, fmt, output, plots_dir=plots_dir)
    return ExitCode.OK


@cli.group()
def review() -> None:
    """Send suspects to people and apply their verdicts (docs/review.md)."""


@review.command("export")
@click.argument("issues", metavar="ISSUES")
@click.option("--to", "to", type=click.Choice(("label-studio", "csv")), required=True,
              help="label-studio: tasks to import (JSON) and their labeling config; csv: a sheet "
              "with an empty decision column.")  # fmt: skip
@click.option("--top", type=click.IntRange(min=1), help="The N most suspect rows by rank "
              "(default: every flagged suspect).")  # fmt: skip
@click.option("--media-col", metavar="COL", help="Show each sample's image (a path or URL) from "
              "this column of ISSUES, or of --labels.")  # fmt: skip
@click.option("--labels", "labels_path", metavar="LABELS", help="The labels file that holds "
              "--media-col, joined on the id.")  # fmt: skip
@click.option("--print-config", is_flag=True, help="Label Studio: print the labeling config "
              "instead of writing it beside -o.")  # fmt: skip
@click.option("-o", "--output", metavar="FILE", required=True, help="The file to write.")
@setting_option("id_col", "NAME")
@debug_option
def review_export(
    issues: str, to: str, top: int | None, media_col: str | None, labels_path: str | None,
    print_config: bool, output: str, id_col: str | None,
) -> int:  # fmt: skip
    """Write the suspects of ISSUES (from `scan --issues-out`) for review."""
    from labelaudit._text import count
    from labelaudit.config import ScanConfig
    from labelaudit.io.paths import check_outputs
    from labelaudit.io.writers import write_text
    from labelaudit.pipelines.review import (
        check_export_arguments,
        export_review,
        label_config_path,
    )

    check_export_arguments(to, top, media_col, labels_path, output)
    config = ScanConfig(id_col=id_col or ScanConfig.id_col)
    config_path = None
    if to == "label-studio" and not print_config:
        config_path = label_config_path(output)
    check_outputs({"-o": output, "the labeling config": config_path}, inputs=[issues, labels_path])
    _plan_outputs({"-o": output, "the labeling config": config_path})
    exported = export_review(issues, to, top, media_col, labels_path, config)
    write_text(output, exported.text)
    if exported.label_config is not None:
        if print_config:
            click.echo(exported.label_config, nl=False)
        else:
            write_text(config_path, exported.label_config)
    for warning in exported.warnings:
        click.echo(f"warning: {warning}", err=True)
    where = f"; labeling config {config_path}" if config_path else ""
    click.echo(
        f"labelaudit review export: {count(exported.rows, 'row')} -> {output}{where}", err=True
    )
    return ExitCode.OK


@review.command("apply")
@click.argument("review_file", metavar="REVIEW")
@click.argument("labels", metavar="LABELS")
@click.option("-o", "--output", metavar="NEW_LABELS", required=True,
              help="The new labels file (never LABELS itself).")  # fmt: skip
@click.option("--ignore-unknown", is_flag=True, help="Skip reviewed ids LABELS does not have "
              "(default: exit 2).")  # fmt: skip
@setting_option("id_col", "NAME")
@setting_option("label_col", "NAME")
@setting_option("classes", "FILE")
@debug_option
def review_apply(
    review_file: str, labels: str, output: str, ignore_unknown: bool, id_col: str | None,
    label_col: str | None, classes: str | None,
) -> int:  # fmt: skip
    """Apply the verdicts of REVIEW (a Label Studio JSON export, or the filled CSV) to LABELS,
    written as NEW_LABELS in the same format."""
    from labelaudit._text import count
    from labelaudit.config import ScanConfig
    from labelaudit.io.paths import check_outputs
    from labelaudit.io.predictions import read_class_file
    from labelaudit.pipelines.review import apply_review

    config = ScanConfig(
        id_col=id_col or ScanConfig.id_col, label_col=label_col or ScanConfig.label_col
    )
    check_outputs({"-o": output}, inputs=[review_file, labels, classes])
    _plan_outputs({"-o": output})
    fixed = read_class_file(classes) if classes else None
    done = apply_review(review_file, labels, output, config, ignore_unknown, fixed)
    for warning in done.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"labelaudit review apply: {done.accepted:,} accepted, {done.kept:,} kept, "
        f"{done.relabeled_other:,} relabeled to another class, {done.unchanged:,} not decided"
        + (f", {done.unknown_ids:,} unknown ids skipped" if done.unknown_ids else "")
        + f"; {count(done.changed, 'label')} changed -> {output}",
        err=True,
    )
    return ExitCode.OK


def _parse_floats(text: str | None, option: str, count: int | None = None) -> tuple[float, ...]:
    """'0.5,0.5,0.5' -> (0.5, 0.5, 0.5), with a clear error for anything else."""
    try:
        values = tuple(float(v) for v in (text or "").split(","))
    except ValueError:
        values = ()
    if not values or (count is not None and len(values) != count):
        size = f"{count} " if count else ""
        raise LabelAuditError(f"{option} '{text}' should be {size}comma-separated numbers.")
    return values


@cli.command()
@click.option(
    "--data",
    required=True,
    metavar="DATA",
    help="Features table (csv, parquet, ...; every numeric column but id and label, or "
    "--features-col), a .npy array (rows first), or an image folder root/<class>/<file>.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="FILE",
    help="Write the predictions (id + one column per class) to FILE (.csv or .parquet).",
)
@click.option(
    "--model",
    metavar="MODEL",
    help="TorchScript file, torch.export program (.pt2), or package.module:factory returning an "
    "nn.Module.",
)
@click.option("--weights", metavar="FILE", help="A state_dict to load into the model (torch.save).")
@click.option(
    "--cv",
    type=int,
    metavar="K",
    help="Instead of a model: train K probes on the labeled features, each predicting the fold "
    "it did not see.",
)
@choice_option(
    "--probe",
    PROBES,
    "linear",
    "With --cv: the probe (mlp: one hidden ReLU layer of --hidden units).",
)
@click.option("--hidden", type=int, default=256, show_default=True, help="With --probe mlp.")
@click.option(
    "--epochs",
    type=int,
    default=100,
    show_default=True,
    help="With --cv: most epochs a probe trains.",
)
@click.option(
    "--patience",
    type=int,
    default=5,
    show_default=True,
    help="With --cv: stop after this many epochs without a better loss on the inner split.",
)
@click.option("--lr", type=float, default=1e-3, show_default=True, help="With --cv: AdamW rate.")
@click.option(
    "--weight-decay", type=float, default=1e-4, show_default=True, help="With --cv: AdamW decay."
)
@click.option("--seed", type=int, default=0, show_default=True, help="With --cv: folds and init.")
@click.option("--id-col", default=None, metavar="NAME", help="Id column (default: id).")
@click.option("--label-col", default=None, metavar="NAME", help="Label column (default: label).")
@click.option("--features-col", metavar="NAME", help="Features in one list column.")
@click.option(
    "--input-shape",
    metavar="C,H,W",
    help="Reshape each row's features to this shape before the model (e.g. 3,32,32).",
)
@click.option(
    "--input-format",
    type=click.Choice(INPUT_FORMATS),
    help="Read DATA as this format whatever its extension.",
)
@click.option(
    "--classes",
    metavar="FILE",
    help="Class names, one a line, in the model's output order (default: the image folders, "
    "else 0..K-1; with --cv: the sorted labels).",
)
@click.option("--multi-label", is_flag=True, help="Sigmoid per class instead of softmax.")
@click.option("--logits", is_flag=True, help="Write the raw model outputs (logits).")
@click.option(
    "--top-k",
    "top_k",
    type=int,
    metavar="K",
    help="Write each row's K most probable classes and their probabilities as two list columns "
    "(topk_classes, topk_probs) instead of one column per class (docs/inputs.md).",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto|cpu|cuda|cuda:N|mps; auto takes CUDA when present.",
)
@choice_option(
    "--precision",
    PRECISIONS,
    "auto",
    "Autocast precision; auto: bf16 on a GPU that supports it, else fp32.",
)
@click.option(
    "--batch-size",
    type=int,
    help="Rows a batch (default: auto: 1024 on a GPU, halved on out-of-memory, 256 on the CPU; "
    "with --cv about 20 steps an epoch, 0 for full-batch).",
)
@click.option(
    "--workers",
    type=int,
    help="DataLoader processes decoding images (default: up to 8).",
)
@click.option("--compile", "compile_model", is_flag=True, help="torch.compile the model first.")
@click.option(
    "--shard",
    metavar="I/N",
    help="Score only shard I of N (by a stable hash of the id); 'scan --preds' reads a quoted "
    "glob of the shards as one table.",
)
@click.option("--image-size", type=int, default=224, show_default=True, help="Images: crop side.")
@click.option("--mean", default="0.485,0.456,0.406", show_default=True, help="Images: RGB mean.")
@click.option("--std", default="0.229,0.224,0.225", show_default=True, help="Images: RGB std.")
@click.option(
    "--strict", is_flag=True, help="Images: stop at an undecodable image instead of skipping it."
)
@click.option(
    "--labels-out",
    metavar="FILE",
    help="Also write the labels that came with DATA (id, label; e.g. the image folders) to FILE.",
)
@click.option("--quiet", is_flag=True, help="No progress bar (none is drawn off a terminal).")
@choice_option(
    "--engine",
    ("local", "ray"),
    "local",
    "ray: a pool of Ray actors scores shards of the rows, -o a new folder of parquet shards "
    "(docs/scale.md).",
)
@click.option("--ray-address", metavar="ADDRESS", help="--engine ray: the cluster (RAY_ADDRESS).")
@click.option(
    "--num-gpus-per-worker",
    type=float,
    metavar="G",
    help="--engine ray: GPUs each worker takes (default: 1 when the cluster has GPUs, else 0).",
)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    help="Settings file for id_col / label_col (default: found upward).",
)
@debug_option
def score(
    data: str,
    output: str,
    model: str | None,
    weights: str | None,
    cv: int | None,
    probe: str,
    hidden: int,
    epochs: int,
    patience: int,
    lr: float,
    weight_decay: float,
    seed: int,
    id_col: str | None,
    label_col: str | None,
    features_col: str | None,
    input_shape: str | None,
    input_format: str | None,
    classes: str | None,
    multi_label: bool,
    logits: bool,
    top_k: int | None,
    device: str,
    precision: str,
    batch_size: int | None,
    workers: int | None,
    compile_model: bool,
    shard: str | None,
    image_size: int,
    mean: str,
    std: str,
    strict: bool,
    labels_out: str | None,
    quiet: bool,
    engine: str,
    ray_address: str | None,
    num_gpus_per_worker: float | None,
    config_file: str | None,
) -> int:
    """Produce out-of-sample scores for `scan --preds`: run MODEL over DATA (on a GPU when there
    is one), or train cross-validated probes on labeled features (--cv K).
    """
    from labelaudit._deps import import_optional
    from labelaudit.config import load_config_file
    from labelaudit.io.paths import check_outputs
    from labelaudit.io.writers import write_frame

    if model is not None and cv is not None:
        raise LabelAuditError(
            "Give --model MODEL to run a model or --cv K to train probes, not both."
        )
    if model is None and cv is None:
        raise LabelAuditError("Give --model MODEL to run a model, or --cv K to train probes.")
    if cv is not None and (weights or shard or logits or multi_label):
        raise LabelAuditError(
            "--weights, --shard, --logits and --multi-label apply to --model, not to --cv."
        )
    if top_k is not None and top_k < 1:
        raise LabelAuditError(f"--top-k must be at least 1; found {top_k}.")
    if top_k is not None and (logits or multi_label):
        raise LabelAuditError(
            "--top-k K writes the K most probable classes of one distribution a row: not with "
            "--logits or --multi-label."
        )
    if engine == "ray" and (cv is not None or shard or labels_out):
        raise LabelAuditError(
            "--engine ray scores with --model into a folder of shards: not with --cv, --shard "
            "(it makes its own shards) or --labels-out."
        )
    if num_gpus_per_worker is not None and num_gpus_per_worker < 0:
        raise LabelAuditError(f"--num-gpus-per-worker must be >= 0; found {num_gpus_per_worker}.")
    loaded = load_config_file(config_file)
    values = loaded.values
    if engine == "ray":  # -o is a folder of shards: a new one, or an empty one (checked later)
        if not os.path.isdir(output):
            check_outputs({"-o": output}, [data, model, weights, classes, loaded.path], tables=())
    else:
        check_outputs(
            {"-o": output, "--labels-out": labels_out},
            [data, model, weights, classes, loaded.path],
            tables=("-o", "--labels-out"),
        )
        _plan_outputs({"-o": output, "--labels-out": labels_out})
    shape = _parse_floats(input_shape, "--input-shape") if input_shape else None
    if shape is not None and any(v < 1 or v != int(v) for v in shape):
        raise LabelAuditError(f"--input-shape '{input_shape}' should be positive integers.")
    import_optional("torch")
    from labelaudit.scoring import run

    data_options = run.DataOptions(
        id_col=id_col or values.get("id_col") or "id",
        label_col=label_col or values.get("label_col") or "label",
        features_col=features_col,
        input_shape=tuple(int(v) for v in shape) if shape else None,
        input_format=input_format,
        classes_file=classes,
        image_size=image_size,
        mean=_parse_floats(mean, "--mean", 3),
        std=_parse_floats(std, "--std", 3),
        strict=strict,
    )
    if cv is not None:
        settings = run.ProbeSettings(
            kind=probe, hidden=hidden, max_epochs=epochs, lr=lr, weight_decay=weight_decay,
            patience=patience, seed=seed, batch_size=batch_size,
        )  # fmt: skip
        result = run.cross_validate(
            data, cv, settings=settings, data_options=data_options, device=device, quiet=quiet,
            report=lambda line: click.echo(line, err=True), top_k=top_k,
        )  # fmt: skip
    else:
        assert model is not None
        run_options = run.RunOptions(
            device=device, precision=precision, batch_size=batch_size, workers=workers,
            compile=compile_model, shard=shard, multi_label=multi_label, logits=logits,
            quiet=quiet, top_k=top_k,
        )  # fmt: skip
        if engine == "ray":
            from dataclasses import replace

            from labelaudit.scoring.ray_score import score_on_ray

            summary = score_on_ray(
                data, model, weights, data_options, replace(run_options, workers=None), output,
                ray_address, workers, num_gpus_per_worker,
            )  # fmt: skip
            for warning in summary.pop("warnings"):
                click.echo(f"warning: {warning}", err=True)
            click.echo(_score_summary(summary, output), err=True)
            return ExitCode.OK
        result = run.score(
            data, model, weights=weights, data_options=data_options, run_options=run_options
        )
    write_frame(output, result.predictions)
    if labels_out:
        if result.labels is None:
            raise LabelAuditError(f"--labels-out: '{data}' has no labels to write.")
        write_frame(labels_out, result.labels)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(_score_summary(result.summary, output), err=True)
    return ExitCode.OK


def _score_summary(summary: dict[str, Any], output: str) -> str:
    """One line for people: what was scored, where, how fast; for --cv, out-of-fold quality."""
    if summary["mode"] == "cv":
        return (
            f"labelaudit score: {summary['folds']}-fold {summary['probe']} probes on "
            f"{summary['rows']:,} rows x {summary['features']:,} features, {summary['classes']:,} "
            f"classes ({summary['device']}, {summary['seconds']:.1f} s): out-of-fold accuracy "
            f"{summary['out_of_fold_accuracy']:.4f}, log loss {summary['out_of_fold_log_loss']:.4f}"
            f" -> {output}"
        )
    skipped = f", {summary['skipped']:,} skipped" if summary["skipped"] else ""
    where = summary.get("ray") or f"shard {summary['shard']}"
    return (
        f"labelaudit score: {summary['rows']:,} rows{skipped} x {summary['classes']:,} classes "
        f"({where}, {summary['device']}, {summary['precision']}, batch "
        f"{summary['batch_size']}): {summary['rows_per_second']:,.0f} rows/s -> {output}"
    )


def _render_with_figures(
    report: Any, fmt: str, plots_dir: str | None, media: dict[Any, Any] | None = None
) -> str:
    """The report in `fmt`; the HTML figures are drawn when the page or --plots-dir needs them."""
    from labelaudit.io.writers import write_pngs
    from labelaudit.report.render import render, render_page

    if fmt != "html" and not plots_dir:
        return render(report, fmt)
    page, images = render_page(report, media=media)
    if plots_dir:
        write_pngs(plots_dir, images)
        click.echo(f"{len(images)} figures written to {plots_dir}", err=True)
    return page if fmt == "html" else render(report, fmt)


def _media(
    labels: str, config: Any, media_col: str, root: str | None, scan_data: dict[str, Any]
) -> dict[Any, Any]:
    """Each top suspect's --media-col value, with a thumbnail when it is an image inside the
    media root (--media-root, else the labels file's folder); one warning for those outside."""
    from pathlib import Path

    from labelaudit.io.media import lookup_media, media_cells, media_root

    issues = scan_data.get("label_issues") or {}
    ids = [s["id"] for s in issues.get("top_suspects", [])]
    values = lookup_media(labels, config.id_col, media_col, ids, config.input_format)
    folder = Path(labels).absolute().parent
    cells, warning = media_cells(values, folder, media_root(root, folder))
    if warning:
        click.echo(f"warning: {warning}", err=True)
    return cells


def emit(
    report: Any,
    fmt: str,
    output: str | None,
    plots_dir: str | None = None,
    media: dict[Any, Any] | None = None,
) -> None:
    """Write the rendered report to -o (atomically) or stdout; warnings go to stderr whatever
    the format, so a person sees them even when the report goes to a file or a pipe."""
    from labelaudit.io.writers import write_text

    text = _render_with_figures(report, fmt, plots_dir, media)
    if output and output != "-":
        write_text(output, text)
        click.echo(f"Report written to {output}", err=True)
    else:
        _to_stdout(text)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)


def _to_stdout(text: str) -> None:
    """The report on stdout; a closed or full stdout is an error (exit 2), not a lost report."""
    if sys.stdout is None or sys.stdout.closed:
        raise LabelAuditError("stdout is closed, so the report has nowhere to go. Pass -o FILE.")
    try:
        _write_all(text)
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # the reader left (`| head`): say so, exit 2 (not click's 1)
            # Python would try (and fail) to flush stdout again at exit.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit
            raise LabelAuditError(
                "The reader of stdout closed it before the whole report was written (e.g. "
                "`| head`). Pass -o FILE to keep the whole report."
            ) from exc
        raise LabelAuditError(
            f"Could not write the report to stdout: {exc.strerror or exc}. Pass -o FILE."
        ) from exc


def _write_all(text: str) -> None:
    """Write `text` to stdout in full or raise: on a file descriptor, os.write in a loop that
    checks each count (a reader that closes after the first 64 KiB left Python's buffered
    write silently short, exit 0); on a stream without one (a test's capture), click.echo."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None:
        click.echo(text, nl=False)
        sys.stdout.flush()
        return
    sys.stdout.flush()  # whatever was echoed before goes first
    data = text.encode(sys.stdout.encoding or "utf-8", sys.stdout.errors or "strict")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _to_stderr(say: Any) -> None:
    """Write a message to stderr; a reader that left (`2>&1 | head`) does not change the exit
    code (Python would exit 1 on the broken pipe, or report it again at exit)."""
    try:
        say()
        sys.stderr.flush()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit


def main() -> None:
    """The executable, once labelaudit/_console.py (the first instants) hands over: run, then
    end the process with the exit code, whatever signal comes late (`_end_process`)."""
    _end_process(cli.run(executable=True))
