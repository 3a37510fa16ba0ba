"""The click group, the shared options and the doors' common plumbing.

Every command module registers on ``cli`` and keeps its heavy imports inside the
command body: ``milestoned status`` must start nearly as fast as ``import click``.
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from milestoned import __version__
from milestoned.cli.answers import print_json, quiet_stdout, say, warn, warnings_of
from milestoned.core.errors import MilestonedError, UserError
from milestoned.files.durable import private_umask

if TYPE_CHECKING:
    from milestoned.engine.engine import Engine

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class MilestonedGroup(click.Group):
    """Turns our errors into one line and an exit status, for ``main`` and CliRunner alike."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MilestonedError as exc:
            say(f"milestoned: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:  # the reader took what it wanted (`| head -1`): not a failure
            quiet_stdout()
            ctx.exit(0)


@click.group(cls=MilestonedGroup, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="milestoned")
@click.option("-C", "directory", type=click.Path(file_okay=False), default=None,
              help="Run as if started in this directory.")
@click.pass_context
def cli(ctx: click.Context, directory: str | None) -> None:
    """Execute software milestones with several agents, tracked in git.

    A milestone is a YAML file of tasks with dependencies under .milestones/: your plan.
    Commits and agents move its tasks along; the state lives in the git dir and on
    its own branch, so no git operation on your files ever changes it.
    """
    private_umask()  # nothing milestoned creates is writable by others, whatever umask it was started with
    if directory:
        try:
            os.chdir(directory)
        except OSError as exc:
            raise UserError(f"-C {directory}: {exc.strerror}", hint="give -C a directory that exists") from None


def json_option(func: F) -> F:
    """``--json``: the stable machine-readable answer of a read command."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (stable schema).")(func)


def _completing(kind: str) -> Callable[..., Any]:
    """A shell-completion callback that loads ``cli.complete`` only when the shell asks for it."""
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> Any:
        # start-up: loaded only when the shell asks for a completion
        from milestoned.cli import complete as completions

        return getattr(completions, kind)(ctx, param, incomplete)
    return complete


complete_milestones = _completing("milestones")
complete_tasks = _completing("tasks")
complete_sessions = _completing("sessions")


def milestone_argument(func: F) -> F:
    return click.argument("milestone", required=False, shell_complete=complete_milestones)(func)


def milestone_option(func: F) -> F:
    return click.option("-m", "--milestone", default=None, shell_complete=complete_milestones,
                        help="Milestone id (default: the current one).")(func)


def task_argument(*, required: bool = True) -> Callable[[F], F]:
    """A task of the milestone given with ``-m`` (or the current one)."""
    return click.argument("task_id", required=required, shell_complete=complete_tasks)


def session_argument(func: F) -> F:
    return click.argument("session_id", required=False, shell_complete=complete_sessions)(func)


def open_engine() -> Engine:
    """The engine for the repository around the current directory."""
    # start-up: loaded on first use (`--help` and `--version` need none of it)
    from milestoned.engine.engine import Engine
    from milestoned.files.workspace import Workspace

    engine = Engine(Workspace.discover())
    try:
        engine.ws.require_initialized()
    except UserError as exc:
        remote = _unfetched_remote(engine)
        if remote is None:
            raise
        raise UserError(exc.message, hint=f"this clone's {remote} has milestoned's state: `milestoned resume` "
                                          "brings it here, with the plans") from None
    for warning in engine.migrate():  # logs and sessions earlier versions kept in .milestones/
        warn(warning)
    _drain(engine)
    return engine


def _drain(engine: Engine) -> None:
    """Take in the commits the hooks reported or that moved a ref, so answers are exact.

    Costs a few ``stat`` calls when there is nothing new.  A failure (a broken
    milestone file, git missing) keeps the inbox for later and does not stop the command.
    """
    # start-up: loaded on first use, with the engine
    from milestoned.git.refwatch import waiting

    if not waiting(engine.ws):
        return
    # start-up: the ingest machinery loads only when commits wait to be read
    from milestoned.engine.ingest import drain

    try:
        drain(engine)
    except MilestonedError as exc:
        warn(f"commits not fully taken in (the next command tries again): {exc}")


def wait_unless_reader_gone(seconds: float) -> bool:
    """Wait ``seconds`` for a command that keeps printing (``--watch``, ``--follow``); True at once
    when the reader of stdout has gone (``| head -1`` exited), so the command ends then, not at
    its next line."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # stdout is no file (captured by a test runner)
        time.sleep(seconds)
        return False
    poller = select.poll()
    poller.register(fd, select.POLLERR | select.POLLHUP)  # a pipe's write end says POLLERR once nobody reads
    return bool(poller.poll(seconds * 1000))


def _unfetched_remote(engine: Engine) -> str | None:
    """A remote whose copy of the state branch this clone has not taken in (a fresh clone's), if any."""
    # start-up: loaded only when this command runs
    from milestoned.git.queries import unfetched_state
    from milestoned.git.statebranch import BRANCH

    remotes = unfetched_state(engine.ws.common_dir, BRANCH) if engine.ws.common_dir is not None else []
    return remotes[0] if remotes else None


def note_unfetched_state(engine: Engine) -> None:
    """A fresh clone looks empty until it takes in the state its remote has: say so, and how."""
    remote = _unfetched_remote(engine)
    if remote is not None:
        warn(f"this clone has not taken in the state on {remote}/milestoned/state yet: `milestoned resume` picks "
             "up the newest session, `milestoned sync` takes in the state alone")


def printed_as_json(answer: dict[str, Any], as_json: bool) -> bool:
    """Warn what ``answer`` warns of; print it as JSON when asked.  True when it was printed."""
    warnings_of(answer)
    if as_json:
        print_json(answer)
    return as_json
