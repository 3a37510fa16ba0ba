"""``milestoned hooks install|uninstall|status``: the git hooks that feed commits in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from milestoned.cli.base import cli, json_option, open_engine, print_json, say

if TYPE_CHECKING:
    from milestoned.files.workspace import Workspace


def _workspace() -> Workspace:
    """The repository around us; drains the inbox first when milestoned is initialized there."""
    # start-up: loaded only when this command runs
    from milestoned.files.workspace import Workspace

    ws = Workspace.discover()
    if ws.milestones_dir.is_dir():
        return open_engine().ws
    return ws


@cli.group()
def hooks() -> None:
    """Install, remove or check the git hooks that turn commits into task progress."""


@hooks.command()
def install() -> None:
    """Install the hooks where git looks for them, keeping any hook already there running."""
    # start-up: loaded only when this command runs
    from milestoned.git import hookinstall as hookmod

    ws = _workspace()
    done = hookmod.install(ws)
    directory = hookmod.hooks_dir(ws)
    for name, what in done.items():
        say(f"{name}: {what}")
    say(f"hooks in {directory}; notes follow amend and rebase ({hookmod.NOTES_REF})")


@hooks.command()
def uninstall() -> None:
    """Remove our hook lines and settings, leaving the other hooks exactly as they were."""
    # start-up: loaded only when this command runs
    from milestoned.git import hookinstall as hookmod

    ws = _workspace()
    for name, what in hookmod.uninstall(ws).items():
        say(f"{name}: {what}")


@hooks.command()
@json_option
def status(as_json: bool) -> None:
    """Per hook: ours, chained (inside or around another hook), moved away, missing or inactive."""
    # start-up: loaded only when this command runs
    from milestoned.files import inbox
    from milestoned.git import hookinstall as hookmod

    ws = _workspace()
    rows = hookmod.status(ws)
    directory = str(hookmod.hooks_dir(ws))
    config = hookmod.config_view(ws)
    view = {
        "schema": 1,
        "hooks_dir": directory,
        "hooks": [row.as_dict() for row in rows],
        "config": config,
        "inbox_pending": inbox.has_pending(ws.runtime_dir),
    }
    if as_json:
        print_json(view)
        return
    say(f"hooks directory: {directory}")
    width = max(len(name) for name in hookmod.HOOKS)
    for row in rows:
        stale = "" if row.current or row.state in ("missing", "moved") else " (out of date: run `hooks install`)"
        say(f"  {row.name:<{width}}  {row.state:<8}  {row.detail}{stale}")
    follows = hookmod.NOTES_REF in config["notes.rewriteRef"]
    say(f"notes follow rewrites: {'yes' if follows else 'no (run `milestoned hooks install`)'}")
    if any(row.state in ("missing", "moved", "inactive") for row in rows):
        say("some hooks do not run: `milestoned hooks install` puts them back")
