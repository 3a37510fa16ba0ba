"""Shell completion of milestone, task and session ids.

click calls these while the shell waits for a tab, with the command line parsed but no
command run: so ``-C`` has not changed directory yet, and nothing here may print, prompt
or write.  A repository that cannot be read completes nothing rather than put a
traceback in the middle of the user's command line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from milestoned.engine.engine import Engine


def _engine(ctx: click.Context) -> Engine:
    # start-up: loaded only when the shell asks for a completion
    from milestoned.engine.engine import Engine
    from milestoned.files.workspace import Workspace

    directory = ctx.find_root().params.get("directory")
    return Engine(Workspace.discover(os.path.abspath(directory) if directory else None))


def _matching(names: Iterable[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(name) for name in dict.fromkeys(names) if name.startswith(incomplete)]


def _quietly(find: Callable[[click.Context], Iterable[str]]) -> Callable[..., list[CompletionItem]]:
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        try:
            return _matching(find(ctx), incomplete)
        except Exception:  # noqa: BLE001 - a completion never breaks the shell; the command itself says what is wrong
            return []
    return complete


@_quietly
def milestones(ctx: click.Context) -> Iterable[str]:
    return [path.stem for path in _engine(ctx).milestone_paths()]


@_quietly
def tasks(ctx: click.Context) -> Iterable[str]:
    """The tasks of the milestone the command line names so far (``-m``, or the argument), else the current one."""
    # start-up: loaded only when the shell asks for a completion
    from milestoned.model.plan import load_plan

    engine = _engine(ctx)
    named = ctx.params.get("milestone")
    milestone_id = named if isinstance(named, str) and named else engine.current_id()
    return [task.id for task in load_plan(engine.path_of(milestone_id)).tasks] if milestone_id else []


@_quietly
def sessions(ctx: click.Context) -> Iterable[str]:
    """Saved sessions here, then those on the state branch as this clone last saw it from each remote
    (what ``resume`` can pick up, without the fetch a completion has no time for)."""
    # start-up: loaded only when the shell asks for a completion
    from milestoned.git import remotes, statebranch

    ws = _engine(ctx).ws
    here = sorted(path.stem for path in ws.sessions_dir.glob("*.yaml")) if ws.sessions_dir.is_dir() else []
    repo = statebranch.open_repo(ws)
    refs = [statebranch.REF]
    for remote in filter(None, repo.remotes.names()):
        refs += [remotes.tracking_state(remote), f"refs/remotes/{remote}/{statebranch.BRANCH}"]
    shared = {key[len("sessions/"):-len(".yaml")] for ref in refs
              for key in statebranch.blobs_at(repo, statebranch.tip(repo, ref))
              if key.startswith("sessions/") and key.endswith(".yaml")}
    return here + sorted(shared)
