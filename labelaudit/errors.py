"""The exceptions labelaudit raises on purpose; each carries the exit code the CLI uses."""

from __future__ import annotations

from labelaudit._text import human_line

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_SIGINT = 130  # 128 + SIGINT, the shell's convention for Ctrl-C
EXIT_SIGTERM = 143  # 128 + SIGTERM

ISSUE_TRACKER = "https://github.com/labelaudit/labelaudit/issues"


class LabelAuditError(Exception):
    """A problem with the user's input, options or environment: exit code 2, no traceback."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str) -> None:
        # One paragraph on one line: a name quoted from the data cannot break it or forge a line.
        message = human_line(message)
        super().__init__(message)
        self.message = message


class InputError(LabelAuditError):
    """A data file is missing, unreadable, or holds values labelaudit cannot use."""


class SchemaError(InputError):
    """A table lacks a column, or a column has the wrong shape or type."""


class ConfigError(LabelAuditError):
    """A configuration file or option is invalid (unknown key, wrong type, bad value)."""


class MissingDependencyError(LabelAuditError):
    """An optional dependency (an extra) is needed for this command but is not installed."""


class Interrupted(BaseException):
    """The run was stopped by a signal (SIGTERM); like KeyboardInterrupt, not an Exception."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.exit_code = 128 + signal_number
