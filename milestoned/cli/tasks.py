"""``milestoned task ...``: add tasks and move them by hand (people and agents alike)."""

from __future__ import annotations

from collections.abc import Callable

import click

from milestoned.cli.base import cli, complete_tasks, milestone_option, open_engine, say, task_argument


@cli.group()
def task() -> None:
    """Add a task, or start, finish, block or reopen one."""


@task.command("add")
@click.argument("task_id")
@milestone_option
@click.option("--title", required=True, help="What the task does.")
@click.option("--depends-on", "depends_on", multiple=True, shell_complete=complete_tasks,
              help="A task that must be completed first (repeatable).")
@click.option("--run", "run", default=None, help='The command to run, split like a shell would: "pytest -q".')
@click.option("--shell", is_flag=True, help="Run --run through sh -c (only for commands you wrote).")
@click.option("--prompt", default=None, help="Text handed to the configured agent command.")
def add(task_id: str, milestone: str | None, title: str, depends_on: tuple[str, ...], run: str | None,
        shell: bool, prompt: str | None) -> None:
    """Add TASK_ID to a milestone (the file keeps its comments and layout)."""
    # start-up: loaded only when this command runs
    from milestoned.engine.planedits import add_task

    engine = open_engine()
    with engine.transaction() as txn:
        ms = txn.milestone(engine.resolve(milestone))
        add_task(txn, ms, task_id, title=title, depends_on=list(depends_on), run=run, shell=shell, prompt=prompt)
    say(f"added {task_id} to {ms.id}")


def _task_verb(verb: str, task_id: str, milestone: str | None, **kwargs: object) -> str:
    """Move one task; the worktree holds a started task, so its commits get its trailers."""
    # start-up: loaded only when this command runs
    from milestoned.engine import lifecycle
    from milestoned.git import hookinstall as hooks

    verbs: dict[str, Callable[..., lifecycle.Refusal | None]] = {
        "start": lifecycle.start, "complete": lifecycle.complete, "block": lifecycle.block, "reopen": lifecycle.reopen}
    engine = open_engine()
    with engine.transaction() as txn:
        ms = txn.milestone(engine.resolve(milestone))
        lifecycle.refuse(verbs[verb](txn, ms, task_id, **kwargs))
    if verb == "start":
        hooks.hold_task(engine.ws, ms.id, task_id)
    else:
        hooks.let_go(engine.ws, ms.id, [task_id])
    done, total, pct = ms.progress()
    note = ""
    if ms.status == "completed":
        archive = f"; `milestoned archive {ms.id}` moves its plan to completed/" if ms.path.parent.name != "completed" else ""
        note = f" — milestone completed{archive}"
    return f"{ms.id}: {task_id} {ms.state.task(task_id).status} ({done}/{total}, {pct}%){note}"


@task.command("start")
@task_argument()
@milestone_option
@click.option("--agent", default=None, help="Who works on it.")
@click.option("--force", is_flag=True, help="Start even if its dependencies are not completed (logged).")
def start(task_id: str, milestone: str | None, agent: str | None, force: bool) -> None:
    """Mark a task in progress."""
    say(_task_verb("start", task_id, milestone, agent=agent, force=force))


@task.command("done")
@task_argument()
@milestone_option
@click.option("--force", is_flag=True, help="Complete even if its dependencies are not (logged).")
def done(task_id: str, milestone: str | None, force: bool) -> None:
    """Mark a task completed (the milestone completes with its last task)."""
    say(_task_verb("complete", task_id, milestone, force=force))


@task.command("block")
@task_argument()
@milestone_option
@click.option("--reason", required=True, help="What blocks it.")
def block(task_id: str, milestone: str | None, reason: str) -> None:
    """Mark a task blocked; only the tasks that depend on it wait."""
    say(_task_verb("block", task_id, milestone, reason=reason))


@task.command("reopen")
@task_argument()
@milestone_option
def reopen(task_id: str, milestone: str | None) -> None:
    """Put a completed, blocked or started task back to pending."""
    say(_task_verb("reopen", task_id, milestone))
