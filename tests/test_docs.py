"""Documentation stays true: the CLI reference is current and every command and option has help."""

from __future__ import annotations

import re
import shlex

import click

from labelaudit._docs import cli_reference
from labelaudit.cli import cli

from .conftest import ROOT, CliRun


def test_cli_reference_is_current() -> None:
    written = (ROOT / "docs" / "cli.md").read_text()
    assert written == cli_reference(), "docs/cli.md is stale: run `make docs`"


def test_every_command_and_option_has_help() -> None:
    ctx = click.Context(cli, info_name="labelaudit")
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command.help, f"command {name} has no help"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"option {param.opts} of {name} has no help"


def test_exit_codes_are_documented_the_same_everywhere() -> None:
    from labelaudit import errors

    text = (ROOT / "docs" / "exit-codes.md").read_text()
    for code in errors.ExitCode:
        assert f"| {int(code)} |" in text
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_every_configuration_key_is_documented() -> None:
    from labelaudit.config import SETTINGS, external_key

    text = (ROOT / "docs" / "inputs.md").read_text()
    for name in SETTINGS:
        assert f"`{external_key(name)}`" in text, f"config key {external_key(name)} not in docs"


def test_the_readme_demo_is_what_make_demo_prints(cli: CliRun) -> None:
    """README.md's "A short tour" shows `make demo`'s command and exactly what it prints: a change
    to the scan's text report updates the README in the same commit."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```text\n\$ (labelaudit scan [^\n]*)\n(.*?)```", readme, re.S)
    assert block, "README.md has no demo block (```text, then $ labelaudit scan ...)"
    command, shown = block.groups()
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    demo = re.search(r"^demo:.*\n\t\$\(BIN\)/(labelaudit [^\n]*)", makefile, re.M)
    assert demo and shlex.split(demo.group(1)) == shlex.split(command), "not make demo's command"
    result = cli(*shlex.split(command)[1:], cwd=ROOT)
    assert result.exit_code == 0, result.output
    assert result.stdout == shown, (
        "README.md's demo block is stale: paste what `make demo` prints (after the $ line)"
    )
