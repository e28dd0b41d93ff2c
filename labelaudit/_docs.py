"""Generate docs/cli.md from the commands' --help, so the reference cannot drift from the code.

Run `python -m labelaudit._docs > docs/cli.md` (or `make docs`); a test fails when it is stale.
"""

from __future__ import annotations

import click

from labelaudit.cli import cli


def _help_text(command: click.Command, name: str, parent: click.Context | None) -> str:
    settings = {**command.context_settings, "terminal_width": 100}
    ctx = click.Context(command, info_name=name, parent=parent, **settings)
    return command.get_help(ctx)


def cli_reference() -> str:
    """The whole CLI reference as markdown: the group's help, then each command's."""
    root = click.Context(cli, info_name="labelaudit", **cli.context_settings, terminal_width=100)
    parts = [
        "# Command-line reference",
        "",
        "Generated from `--help` by `python -m labelaudit._docs`; do not edit by hand.",
        "",
        "## labelaudit",
        "",
        "```",
        _help_text(cli, "labelaudit", None),
        "```",
    ]
    for name in sorted(cli.list_commands(root)):
        command = cli.get_command(root, name)
        parts += ["", f"## labelaudit {name}", "", "```", _help_text(command, name, root), "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(cli_reference(), end="")
