"""Sessions and remotes: ``session save|list|show``, ``sessions``, ``resume``, ``sync``.

Saves land on the ``milestoned/state`` branch; ``resume`` restores from it on any
clone and ``sync`` exchanges it with a remote.  Only ``sync`` ever pushes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from milestoned.cli.base import (
    cli,
    json_option,
    milestone_argument,
    note_unfetched_state,
    open_engine,
    print_json,
    printed_as_json,
    say,
    session_argument,
    warn,
)
from milestoned.core.errors import display_path

if TYPE_CHECKING:
    from milestoned.engine.engine import Engine


def _timeout(value: str) -> float:
    # start-up: loaded only when this command runs
    from milestoned.core.clock import parse_duration
    from milestoned.core.errors import UserError

    seconds = parse_duration(value)
    if seconds is None or seconds <= 0:
        raise UserError(f"--timeout {value!r} is not a duration", hint="write e.g. 30s or 2m")
    return seconds


timeout_option = click.option("--timeout", "timeout", default="2m", show_default=True,
                              help="Give up on the remote after this long.")


@cli.group()
def session() -> None:
    """Save, list and show sessions (kept on the milestoned/state branch)."""


@session.command("save")
@milestone_argument
@click.option("--reason", default="manual_save", show_default=True, help="Why, recorded in the session.")
@json_option
def save(milestone: str | None, reason: str, as_json: bool) -> None:
    """Save where MILESTONE stands, and commit the state to the milestoned/state branch."""
    # start-up: loaded only when this command runs
    from milestoned.engine import sessions
    from milestoned.git import statebranch

    engine = open_engine()
    with engine.transaction() as txn:
        ms = txn.milestone(engine.resolve(milestone))
        path = sessions.save(txn, ms, reason)
    commit = statebranch.tip(statebranch.open_repo(engine.ws)) if engine.ws.is_git else None
    if as_json:
        print_json({"schema": 1, "session": sessions.row(sessions.load(engine.ws, path.stem)),
                    "path": str(path), "branch": statebranch.BRANCH, "commit": str(commit) if commit else None})
        return
    where = f" and to branch {statebranch.BRANCH} ({str(commit)[:10]})" if commit else ""
    say(f"saved session {path.stem} to {display_path(path)}{where}")


def _list(as_json: bool) -> None:
    # start-up: loaded only when this command runs
    from milestoned.engine import sessions

    engine = open_engine()
    rows = [sessions.row(r) for r in sessions.list_sessions(engine.ws)]
    if as_json:
        print_json({"schema": 1, "sessions": rows})
        return
    if not rows:
        say("no saved session")
        note_unfetched_state(engine)
    for r in rows:
        say(f"{r['id']}  {r['milestone_id']}  {r['status']}  {r['milestone_status']} "
            f"{r['progress_percentage']}%  saved {r['saved_at']} ({r['save_reason']})  "
            f"on {r['git_branch'] or '(detached)'}")


@session.command("list")
@json_option
def list_(as_json: bool) -> None:
    """Saved sessions, newest first."""
    _list(as_json)


@cli.command("sessions")
@json_option
def sessions_(as_json: bool) -> None:
    """Saved sessions, newest first (same as `session list`)."""
    _list(as_json)


@session.command("show")
@session_argument
@json_option
def show(session_id: str | None, as_json: bool) -> None:
    """One session in full (default: the newest)."""
    # start-up: loaded only when this command runs
    from milestoned.core.errors import UserError
    from milestoned.engine import sessions

    engine = open_engine()
    if session_id is None:
        found = sessions.list_sessions(engine.ws)
        if not found:
            raise UserError("no saved session", hint="save one with `milestoned session save`")
        session_id = str(found[0]["session"]["id"])
    record = sessions.load(engine.ws, session_id)
    if as_json:
        print_json({"schema": 1, **record})
    else:
        click.echo(engine.ws.session_path(session_id).read_text(encoding="utf-8"), nl=False)


def _remote_for(engine: Engine, remote: str | None) -> str | None:
    # start-up: loaded only when this command runs
    from milestoned.git import remotes

    return remotes.check_remote(engine.ws, remote) if remote else remotes.default_remote(engine.ws)


@cli.command()
@session_argument
@click.option("--remote", default=None, help="Fetch the state from this remote (default: origin, or the only one).")
@click.option("--no-fetch", is_flag=True, help="Resume from this clone's state branch only.")
@timeout_option
@json_option
def resume(session_id: str | None, remote: str | None, no_fetch: bool, timeout: str, as_json: bool) -> None:
    """Resume a saved session (default: the newest) on this clone.

    Fetches the state branch and notes, checks out the session's branch (never over
    uncommitted work), restores the state into the git dir (and a plan the branch
    lacks, as an untracked file), re-checks blockers and says what comes next.
    `milestoned execute MILESTONE --resume` then carries on running it.
    """
    # start-up: loaded only when this command runs
    from milestoned.core.errors import UserError
    from milestoned.engine import resume as resuming
    from milestoned.engine.engine import Engine
    from milestoned.files.workspace import Workspace
    from milestoned.model.statuses import describe

    if remote and no_fetch:
        raise UserError("--remote and --no-fetch contradict each other", hint="pass one of them")
    engine = Engine(Workspace.discover())  # the plan may not be here yet: resume restores it
    chosen = None if no_fetch else _remote_for(engine, remote)
    answer = resuming.resume(engine, session_id, remote=chosen, timeout=_timeout(timeout),
                             remote_optional=remote is None)
    if printed_as_json(answer, as_json):
        return
    s, ms = answer["session"], answer["milestone"]
    say(f"resumed session {s['id']} ({s['milestone_id']}, saved {s['saved_at']} on "
        f"{s['git_branch'] or 'a detached HEAD'} at {(s['git_commit'] or '?')[:10]})")
    if answer["checkout"]:
        say(answer["checkout"])
    if answer["plan_restored"]:
        say(answer["plan_restored"])
    say(f"{ms['id']}: {ms['status']}, {ms['progress_percentage']}%")
    for task in answer["in_progress"]:
        say(f"in progress: {task['task_id']}" + (f" ({task['agent']})" if task["agent"] else ""))
    say(f"ready: {', '.join(answer['ready'])}" if answer["ready"] else "no task is ready")
    for blocker in answer["blockers_cleared"]:
        say(f"cleared blocker: {describe(blocker)}")
    for blocker in answer["blockers"]:
        say(f"blocker: {describe(blocker)}")
    if not answer["hooks"]["installed"]:
        say(f"hooks: not installed in this clone, so commits do not move tasks yet: {answer['hooks']['fix']}")
    if answer["next_command"]:
        say(f"next: {answer['next_command']}")


@cli.command("sync")
@click.argument("remote", required=False)
@timeout_option
@json_option
def sync_(remote: str | None, timeout: str, as_json: bool) -> None:
    """Fetch, merge and push the state branch, the notes and this clone's claims with REMOTE.

    Histories from several clones merge without loss (event logs are unions); a push
    rejected because the remote moved is retried after another fetch and merge.
    """
    # start-up: loaded only when this command runs
    from milestoned.core.errors import UserError
    from milestoned.remote import sync

    engine = open_engine()
    chosen = _remote_for(engine, remote)
    if chosen is None:
        raise UserError("no remote to sync with", hint="name one: milestoned sync REMOTE (see `git remote -v`)")
    report = sync.sync(engine, chosen, timeout=_timeout(timeout))
    if as_json:
        print_json(report)
        return
    said = {"none": "not there yet", "up-to-date": "up to date", "fast-forward": "fast-forwarded",
            "merged": "merged"}
    pushed = ", ".join(report["pushed"]) or "nothing new"
    retried = f" (after {report['push_attempts'] - 1} rejected push(es), fetched and merged again)" \
        if report["push_attempts"] > 1 else ""
    say(f"synced with {chosen}: state {said[report['state']]}, notes {said[report['notes']]}; "
        f"pushed {pushed}{retried}")
    for name in report["claims"].get("pushed", []):
        say(f"pushed claim {name}")
    for name in report["claims"].get("lost", []):
        warn(f"claim {name} is no longer ours on {chosen}")


@cli.command()
@milestone_argument
@click.option("--list", "show_list", is_flag=True, help="List the milestone's checkpoints instead.")
@json_option
def checkpoint(milestone: str | None, show_list: bool, as_json: bool) -> None:
    """Snapshot uncommitted work (tracked and untracked) under refs/milestoned/checkpoints/.

    Your branch, index and files stay as they are; nothing is committed to a branch.
    Session saves take one by themselves when there is uncommitted work.
    """
    # start-up: loaded only when this command runs
    from milestoned.core.errors import UserError
    from milestoned.engine import sessions
    from milestoned.git import checkpoints

    engine = open_engine()
    if not engine.ws.is_git:
        raise UserError("not a git repository", hint="checkpoints are git commits: git init")
    mid = engine.resolve(milestone)
    engine.path_of(mid)
    if show_list:
        rows = checkpoints.listing(engine.ws, mid)
        if as_json:
            print_json({"schema": 1, "milestone_id": mid, "checkpoints": rows})
        for row in [] if as_json else rows:
            say(f"{row['created_at']}  {row['ref']}")
        return
    with engine.transaction() as txn:
        taken = sessions.checkpoint(txn, txn.milestone(mid))
    if as_json:
        print_json({"schema": 1, "milestone_id": mid,
                    "checkpoint": None if taken is None else {**taken.__dict__, "restore": taken.restore_hint}})
    elif taken is None:
        say("nothing uncommitted: no checkpoint needed")
    else:
        say(f"checkpoint {taken.ref} ({taken.files_changed} change(s)); restore with: {taken.restore_hint}")
