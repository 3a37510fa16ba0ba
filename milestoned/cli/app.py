"""The full command line: every command registered on the click group, and how it ends.

``main`` maps failures to exit statuses the way users and scripts expect: a user
error is one line and status 2, a runtime failure status 1 with its cause, Ctrl-C
130, and a bug status 3 with a pointer to a log holding the traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from milestoned import __version__
from milestoned.cli import (  # noqa: F401 - each module registers its commands
    agents,
    blockers,
    claims,
    daemon,
    doctor,
    execute,
    hooks,
    landing,
    milestones,
    reading,
    sessions,
    tasks,
    trust,
)
from milestoned.cli.answers import INTERRUPTED
from milestoned.cli.base import cli
from milestoned.core.errors import MilestonedError


def _crash_dir() -> Path:
    """A private directory for crash reports: the repository's state dir, else ``$XDG_STATE_HOME``.

    Never a fixed name in the shared ``/tmp``, where a planted link would make the report
    (of a root user, say) append to any file."""
    # start-up: only a crash needs these
    from milestoned.files.workspace import Workspace

    try:
        ws = Workspace.discover()
        if ws.is_git and ws.state_dir.is_dir() and not ws.state_dir.is_symlink():
            return ws.state_dir
    except OSError:
        pass  # the current directory is gone, say
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "milestoned"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    return base


def _report_bug(exc: BaseException) -> int:
    # start-up: only a crash needs these (~8 ms for every command otherwise)
    import platform
    import traceback

    from milestoned.files.durable import open_append

    log = str(_crash_dir() / "crash.log")
    try:
        with os.fdopen(open_append(Path(log)), "a", encoding="utf-8") as handle:
            handle.write(f"milestoned {__version__}, Python {platform.python_version()}, {platform.platform()}\n")
            handle.write(f"argv: {sys.argv}\n")
            traceback.print_exception(exc, file=handle)
            handle.write("\n")
    except (OSError, MilestonedError):
        log = "(could not write a log)"
    click.echo(f"milestoned: internal error: {type(exc).__name__}: {exc}", err=True)
    click.echo(f"milestoned: this is a bug; the details are in {log}", err=True)
    return 3


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="milestoned",
                          standalone_mode=False)
    except MilestonedError as exc:  # raised outside a command (while parsing, say)
        click.echo(f"milestoned: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo(INTERRUPTED, err=True)
        return 130
    except click.UsageError as exc:  # one line, like every other error (click's own takes three)
        command = exc.ctx.command_path if exc.ctx is not None else "milestoned"
        message, _, guess = exc.format_message().partition(". (")  # click's "Did you mean ...?" is a hint
        hint = f"{guess.rstrip(')')} " if guess else ""
        click.echo(f"milestoned: error: {_lower_first(message.rstrip('.'))} ({_lower_first(hint)}see "
                   f"`{command} --help`)", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo(INTERRUPTED, err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last resort: never a bare traceback
        return _report_bug(exc)
    return result if isinstance(result, int) else 0
