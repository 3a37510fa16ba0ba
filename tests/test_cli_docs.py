"""Every command has help text and is documented in the README."""

from __future__ import annotations

from pathlib import Path

import click

from conftest import invoke
from milestoned.cli import cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def walk(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append(((*prefix, name), command))
        if isinstance(command, click.Group):
            found += walk(command, (*prefix, name))
    return found


def test_every_command_has_help_text() -> None:
    for path, command in walk(cli):
        if command.hidden:
            continue
        assert (command.help or "").strip(), f"`milestoned {' '.join(path)}` has no help text"
        result = invoke(*path, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output, path


def test_every_top_level_command_is_in_the_readme() -> None:
    missing = [name for name, command in cli.commands.items() if not command.hidden and f"`{name}" not in README]
    assert not missing, f"undocumented in README.md: {missing}"


def test_the_readme_shows_the_two_commands() -> None:
    assert "pip install . && milestoned demo" in README
    assert "pip install '.[test]' && pytest" in README
