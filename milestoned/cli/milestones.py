"""Commands that create, check and move whole milestones: init, new, validate, activate, pause."""

from __future__ import annotations

import click

from milestoned.cli.base import cli, complete_milestones, json_option, milestone_argument, open_engine, print_json, say
from milestoned.core.errors import display_path


@cli.command()
def init() -> None:
    """Create .milestones/ with a commented config.yaml and a .gitignore."""
    # start-up: loaded only when this command runs
    from milestoned.engine.lifecycle import init as do_init
    from milestoned.files.workspace import Workspace

    ws = Workspace.discover()
    made = do_init(ws)
    for path in made:
        say(f"created {display_path(path)}")
    if not made:
        say(f"{display_path(ws.milestones_dir)} is already initialized")
    say(f"state: {display_path(ws.state_dir)} (in the git dir: git never changes it)" if ws.is_git
        else f"state: {display_path(ws.state_dir)}")


@cli.command()
@click.argument("milestone_id")
@click.option("--title", required=True, help="What the milestone delivers.")
@click.option("--requires", multiple=True, help="A milestone that must be completed first (repeatable).")
@click.option("--description", default=None, help="A longer description.")
def new(milestone_id: str, title: str, requires: tuple[str, ...], description: str | None) -> None:
    """Create a planned milestone in .milestones/active/MILESTONE_ID.yaml."""
    # start-up: loaded only when this command runs
    from milestoned.core.errors import UserError
    from milestoned.core.ids import id_problem
    from milestoned.engine.lifecycle import milestone_template

    engine = open_engine()
    for value in (milestone_id, *requires):
        problem = id_problem(value, "milestone id")
        if problem:
            raise UserError(problem)
    try:
        existing = engine.path_of(milestone_id)
    except UserError:
        existing = None
    if existing is not None:
        raise UserError(f"milestone {milestone_id} already exists", path=existing)
    path = engine.ws.active_dir / f"{milestone_id}.yaml"
    with engine.transaction() as txn:
        txn.write_plan(path, milestone_template(milestone_id, title, list(requires), description))
    say(f"created {display_path(path)}")


@cli.command()
@milestone_argument
@click.option("--all", "check_all", is_flag=True, help="Check every milestone file.")
@json_option
def validate(milestone: str | None, check_all: bool, as_json: bool) -> None:
    """Check a milestone: syntax, ids, dependencies, cycles, status, required milestones.

    Without a milestone and with none current, checks them all.  Exits 2 and prints one
    line per problem (FILE:LINE: what is wrong) when any is found.
    """
    # start-up: loaded only when this command runs
    from milestoned.core.errors import UserError
    from milestoned.engine.lifecycle import check_executable, check_requires
    from milestoned.model.plan import NotAMilestone, all_problems

    engine = open_engine()
    check_all = check_all or (milestone is None and engine.current_id() is None)
    paths = engine.milestone_paths() if check_all else [engine.path_of(engine.resolve(milestone))]
    report = []
    for path in paths:
        problems = [p for p in all_problems(path) if not isinstance(p, NotAMilestone)]
        warnings: list[str] = []
        notes: list[str] = []
        if not problems:
            try:
                ms = engine.load(path.stem)
            except NotAMilestone:
                continue
            warnings = ms.plan_warnings()
            try:
                check_requires(engine, ms)  # an unknown required milestone is a problem of the plan
                check_executable(engine, ms)  # whether it can start now is only a note
            except UserError as exc:
                if "unknown milestone" in exc.message:
                    problems.append(exc)
                else:
                    notes.append(exc.message + (f" ({exc.hint})" if exc.hint else ""))
        report.append({"path": display_path(path), "problems": [str(p) for p in problems], "warnings": warnings,
                       "notes": notes})
    if as_json:
        print_json({"schema": 2, "ok": not any(r["problems"] for r in report), "files": report})
    else:
        for row in report:
            for problem in row["problems"]:
                click.echo(f"milestoned: error: {problem}", err=True)
            for warning in row["warnings"]:
                click.echo(f"milestoned: warning: {warning}", err=True)
            if not row["problems"]:
                say(f"ok {row['path']}" + "".join(f"\n  note: {note}" for note in row["notes"]))
    if any(r["problems"] for r in report):
        raise click.exceptions.Exit(2)


@cli.command()
@milestone_argument
@click.option("--force", is_flag=True, help="Activate even if its status or required milestones say no.")
def activate(milestone: str | None, force: bool) -> None:
    """Start a planned or paused milestone: in progress, a new session, the current milestone.

    A milestone already running only becomes the current one again, its session going on.
    """
    # start-up: loaded only when this command runs
    from milestoned.engine import lifecycle

    engine = open_engine()
    with engine.transaction() as txn:
        ms = txn.milestone(engine.resolve(milestone))
        if ms.running and not force:
            lifecycle.make_current(txn, ms)
            session_id = None
        else:
            session_id = lifecycle.activate(txn, ms, force=force)
    say(f"activated {ms.id} (session {session_id})" if session_id else
        f"{ms.id} is {ms.status} already (session {ms.state.session_id}): it is the current milestone")
    ready = ms.ready
    say(f"ready: {', '.join(ready)}" if ready else "no task is ready yet")


@cli.command()
@milestone_argument
@click.option("--reason", default=None, help="Why, for the event log.")
def pause(milestone: str | None, reason: str | None) -> None:
    """Pause a running milestone; `activate` or `execute` picks it up again."""
    # start-up: loaded only when this command runs
    from milestoned.engine import lifecycle

    engine = open_engine()
    with engine.transaction() as txn:
        ms = txn.milestone(engine.resolve(milestone))
        lifecycle.pause(txn, ms, reason=reason)
    say(f"paused {ms.id}")


@cli.command()
@click.argument("milestone", shell_complete=complete_milestones)
def archive(milestone: str) -> None:
    """Move a completed milestone's plan from active/ to completed/ (the seed's layout)."""
    # start-up: loaded only when this command runs
    from milestoned.engine import lifecycle

    engine = open_engine()
    with engine.transaction() as txn:
        target = lifecycle.archive(txn, txn.milestone(milestone))
    say(f"archived {milestone}: {display_path(target)} (commit the move when you like)")
