"""The exit codes, and the exceptions labelaudit raises on purpose (each knows its exit code).

Messages are written for the command line (`--classes FILE`); read from Python, `str(error)`
names the keyword parameters instead (`classes=...`), by one mapping: `python_wording`.
"""

from __future__ import annotations

import json
import re
import shlex
from enum import IntEnum

from labelaudit._text import human_line


class ExitCode(IntEnum):
    """Every exit code labelaudit uses; a contract (docs/exit-codes.md), never changed."""

    OK = 0
    FINDINGS = 1  # the gate found violations
    BAD_INPUT = 2  # bad usage, input or configuration
    INTERNAL = 3  # a bug
    SIGINT = 130  # 128 + SIGINT, the shell's convention for Ctrl-C
    SIGTERM = 143  # 128 + SIGTERM


ISSUE_TRACKER = "https://github.com/labelaudit/labelaudit/issues"


class LabelAuditError(Exception):
    """A problem with the user's input, options or environment: exit code 2, no traceback."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str) -> None:
        # One paragraph on one line: a name quoted from the data cannot break it or forge a line.
        message = human_line(message)
        super().__init__(message)
        self.message = message  # the command line's wording, shown by the CLI

    def __str__(self) -> str:
        return python_wording(self.message)


# Flags whose Python keyword is not the flag's own name with dashes as underscores.
_KEYWORD_OF = {"config": "config_file", "suspects": "suspects"}
# Flags naming a file whose Python argument is the file's contents (a list of class names).
_LIST_ARGUMENTS = {"classes"}
# A shell word: single-quoted pieces (shlex.quote's form) or plain characters.
_SHELL_WORD = r"(?:'[^']*'(?:\"'\"'[^']*')*|[^\s'\"]+?)(?=[.;:)]?(?:\s|$))"
# Flags whose value is a comma-separated list: a Python list of names.
_LIST_FLAG = re.compile(r"(?<![\w-])--(ignore-cols) (" + _SHELL_WORD + ")")
_QUOTED_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*) ('[^']*'(?:\"'\"'[^']*')*)")
_FLAG = re.compile(
    r"(?<![\w-])--([a-z][a-z0-9-]*)(?: ([a-z][a-z0-9_]*|[A-Z][A-Z0-9_,/]*)(?=[ .,;:)'\"]|$))?"
)


def python_wording(message: str) -> str:
    """A CLI message for a Python caller: `--label-col` becomes `label_col`, a flag with a
    value (`--scores logits`) becomes `scores="logits"`, one with a placeholder (`--output
    FILE`) becomes `output=FILE`, and `--classes FILE` becomes `classes=[...]` (the API takes
    the class names as a list). A whole command line in backticks (`labelaudit ...`) stays as
    it is: it is meant for a shell."""

    def keyword_of(flag: str) -> str:
        name = flag.replace("-", "_")
        return _KEYWORD_OF.get(name, name)

    def keyword(match: re.Match[str]) -> str:
        name = keyword_of(match.group(1))
        value = match.group(2)
        if not value:
            return name
        if name in _LIST_ARGUMENTS and value.isupper():
            return f"{name}=[...]"  # the API takes the names themselves, not a file
        return f"{name}={value}" if value.isupper() else f'{name}="{value}"'

    def listed(match: re.Match[str]) -> str:
        names = shlex.split(match.group(2))[0].split(",")
        return f"{match.group(1).replace('-', '_')}={names!r}"

    def quoted(match: re.Match[str]) -> str:
        name = keyword_of(match.group(1))
        return f"{name}={json.dumps(shlex.split(match.group(2))[0], ensure_ascii=False)}"

    def python(part: str) -> str:
        part = _LIST_FLAG.sub(listed, part)
        part = _QUOTED_FLAG.sub(quoted, part)
        return _FLAG.sub(keyword, part)

    parts = re.split(r"(`labelaudit [^`]*`)", message)
    return "".join(part if part.startswith("`labelaudit ") else python(part) for part in parts)


class InputError(LabelAuditError):
    """A data file is missing, unreadable, or holds values labelaudit cannot use."""


class SchemaError(InputError):
    """A table lacks a column, or a column has the wrong shape or type."""


class ConfigError(LabelAuditError):
    """A configuration file or option is invalid (unknown key, wrong type, bad value)."""


class MissingDependencyError(LabelAuditError):
    """An optional dependency (an extra) is needed for this command but is not installed."""


class LabelAuditWarning(UserWarning):
    """A report's warning, raised by the Python API (the CLI prints it on stderr)."""


class Interrupted(BaseException):
    """The run was stopped by a signal (SIGTERM); like KeyboardInterrupt, not an Exception."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.exit_code = ExitCode.SIGINT if signal_number == 2 else ExitCode.SIGTERM
