"""The life cycle of milestones and tasks (SPEC §3): legal transitions and their events.

Each verb runs inside an engine transaction (``txn``) on a milestone it loaded, so
a door can batch several (the runner completes one task and starts the next in one
write).  An illegal transition is refused with one line saying what to do instead;
``force`` lets a user override where that is reasonable, and the event says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from milestoned.core import ids
from milestoned.core.errors import UserError
from milestoned.engine import sessions
from milestoned.engine.engine import Engine, Transaction
from milestoned.files.durable import atomic_write
from milestoned.files.workspace import STATE_DIR, Workspace
from milestoned.model.config import DEFAULT_CONFIG
from milestoned.model.milestone import Milestone

GITIGNORE = """\
# milestoned keeps its state (event logs, sessions, the current milestone) in the git dir,
# .git/milestoned/, and on the milestoned/state branch: only your plans live here.
# Outside a git repository it keeps that state in .run/ instead.
.run/
.*.tmp
"""


def init(ws: Workspace) -> list[Path]:
    """Create ``.milestones/`` with a commented config and a .gitignore; returns what was made."""
    made: list[Path] = []
    base = ws.worktree / STATE_DIR
    for directory in (base / "active", base / "completed"):
        if not directory.is_dir():
            directory.mkdir(parents=True)
            made.append(directory)
    for path, text in ((base / "config.yaml", DEFAULT_CONFIG), (base / ".gitignore", GITIGNORE)):
        if not path.exists():
            atomic_write(path, text)
            made.append(path)
    return made


def milestone_template(milestone_id: str, title: str, requires: list[str], description: str | None) -> str:
    """A new plan: what the milestone is and its tasks; never a status (that is state)."""
    lines = [
        f"id: {milestone_id}",
        f"title: {json.dumps(title, ensure_ascii=False)}",
    ]
    if description:
        lines.append(f"description: {json.dumps(description, ensure_ascii=False)}")
    lines += [
        "dependencies:",
        f"  requires: [{', '.join(requires)}]   # milestones that must be completed first",
        "tasks: []",
    ]
    return "\n".join(lines) + "\n"


def _open_task(milestone: Milestone, task_id: str) -> str:
    """The task's status, after checking it exists."""
    milestone.plan.task(task_id)
    return milestone.state.task(task_id).status


def _unfinished_deps(milestone: Milestone, task_id: str) -> list[str]:
    deps = milestone.plan.task(task_id).dependencies
    return [d for d in deps if milestone.state.task(d).status != "completed"]


def require_running(milestone: Milestone, verb: str) -> None:
    """Tasks move only while their milestone runs (in progress or blocked)."""
    if milestone.running:
        return
    status = milestone.status
    if status == "completed":
        raise UserError(f"cannot {verb}: milestone {milestone.id} is completed",
                        hint=f"reopen a task first: milestoned task reopen TASK -m {milestone.id}")
    raise UserError(
        f"cannot {verb}: milestone {milestone.id} is {status}",
        hint=f"activate it first: milestoned activate {milestone.id}",
    )


def check_requires(engine: Engine | Transaction, milestone: Milestone) -> list[str]:
    """Required milestones that are not completed yet (unknown ones are an error).

    Given a transaction, milestones it changed are judged as they stand in it."""
    if isinstance(engine, Transaction):
        look, engine = engine.peek, engine.engine
    else:
        look = engine.load
    missing: list[str] = []
    for required in milestone.plan.requires:
        if not engine.exists(required):
            raise UserError(
                f"milestone {milestone.id} requires unknown milestone {required}",
                path=milestone.path,
                line=milestone.plan.line_of("dependencies", "requires"),
                hint="create it or remove it from dependencies.requires",
            )
        if look(required).status != "completed":
            missing.append(required)
    return missing


def check_executable(engine: Engine | Transaction, milestone: Milestone, *, force: bool = False) -> None:
    """The seed's ``validate_milestone_state``: status allows execution, requirements done."""
    status = milestone.status
    if status not in ("planned", "paused") and not force:
        hint = {
            "in_progress": f"continue it with `milestoned execute {milestone.id} --resume`",
            "blocked": "resolve its blockers, then `milestoned resume`",
            "completed": f"it is done; reopen a task to work on it again (milestoned task reopen TASK -m {milestone.id})",
        }[status]
        raise UserError(f"milestone {milestone.id} is {status}, not planned or paused", hint=hint)
    missing = check_requires(engine, milestone)
    if missing and not force:
        raise UserError(
            f"milestone {milestone.id} requires {', '.join(missing)}, not completed yet",
            path=milestone.path,
            line=milestone.plan.line_of("dependencies", "requires"),
            hint="complete those first, or pass --force",
        )


def _dependents(txn: Transaction, milestone_id: str) -> list[Milestone]:
    """Other milestones, not archived, that list ``milestone_id`` in ``dependencies.requires``."""
    found = []
    for path in txn.engine.milestone_paths():
        if path.stem == milestone_id or path.parent.name == "completed":
            continue
        try:
            other = txn.engine.load(path.stem)
        except UserError:
            continue  # a broken file elsewhere must not stop this change
        if milestone_id in other.plan.requires:
            found.append(txn.milestone(path.stem))
    return found


def activate(txn: Transaction, milestone: Milestone, *, force: bool = False) -> str:
    """planned|paused -> in_progress, with a new session; returns the session id."""
    check_executable(txn, milestone, force=force)
    session_id = ids.new_session_id(milestone.id)
    txn.record(milestone, "milestone_activated", session_id=session_id, forced=force or None)
    txn.set_current(milestone.id)
    for other in _dependents(txn, milestone.id):
        txn.record(other, "required_milestone_activated", required=milestone.id)
    return session_id


def pause(txn: Transaction, milestone: Milestone, *, reason: str | None = None) -> None:
    if not milestone.running:
        raise UserError(f"milestone {milestone.id} is {milestone.status}: only a running milestone pauses")
    txn.record(milestone, "milestone_paused", reason=reason)
    save_session(txn, milestone, "paused")


def start(txn: Transaction, milestone: Milestone, task_id: str, *, agent: str | None = None,
          force: bool = False, **detail: Any) -> None:
    status = _open_task(milestone, task_id)
    require_running(milestone, f"start {task_id}")
    if status != "pending" and not force:
        hint = {"completed": f"reopen it first: milestoned task reopen {task_id} -m {milestone.id}",
                "blocked": f"reopen it first: milestoned task reopen {task_id} -m {milestone.id}",
                "in_progress": "it is already being worked on"}[status]
        holder = milestone.state.task(task_id).agent
        raise UserError(f"task {task_id} is {status}" + (f" ({holder})" if holder else ""), hint=hint)
    open_deps = _unfinished_deps(milestone, task_id)
    if open_deps and not force:
        raise UserError(f"task {task_id} depends on {', '.join(open_deps)}, not completed yet",
                        hint="finish those first, or pass --force")
    txn.record(milestone, "task_started", task_id=task_id, agent=agent, forced=force or None, **detail)
    if open_deps:
        txn.record(milestone, "task_dependency_blocker", task_id=task_id, dependencies=open_deps)


def complete(txn: Transaction, milestone: Milestone, task_id: str, *, force: bool = False, **detail: Any) -> None:
    status = _open_task(milestone, task_id)
    require_running(milestone, f"complete {task_id}")
    if status == "completed":
        raise UserError(f"task {task_id} is already completed")
    open_deps = _unfinished_deps(milestone, task_id)
    if open_deps and not force:
        raise UserError(f"task {task_id} depends on {', '.join(open_deps)}, not completed yet",
                        hint="complete those first, or pass --force")
    txn.record(milestone, "task_completed", task_id=task_id, forced=force or None, **detail)
    progress_changed(txn, milestone)


def block(txn: Transaction, milestone: Milestone, task_id: str, reason: str, **detail: Any) -> None:
    status = _open_task(milestone, task_id)
    if status == "completed":
        raise UserError(f"task {task_id} is completed; reopen it before blocking it")
    txn.record(milestone, "task_blocked", task_id=task_id, reason=reason, **detail)


def reopen(txn: Transaction, milestone: Milestone, task_id: str) -> None:
    status = _open_task(milestone, task_id)
    if status == "pending":
        raise UserError(f"task {task_id} is already pending")
    was_completed = milestone.state.status == "completed"
    txn.record(milestone, "task_reopened", task_id=task_id, previous=status)
    if was_completed:
        txn.record(milestone, "milestone_reopened", task_id=task_id)
    progress_changed(txn, milestone)


def archive(txn: Transaction, milestone: Milestone) -> Path:
    """Move a completed milestone's plan into ``completed/`` (the seed's layout), at the user's word."""
    if milestone.status != "completed":
        done, total, _ = milestone.progress()
        raise UserError(f"milestone {milestone.id} is {milestone.status} ({done}/{total} tasks): "
                        "only a completed milestone is archived")
    source = milestone.path
    if source.parent.name == "completed":
        raise UserError(f"milestone {milestone.id} is archived already", path=source)
    target = source.parent.parent / "completed" / source.name
    txn.move_plan(source, target)
    txn.record(milestone, "milestone_archived", path=str(target.relative_to(source.parent.parent.parent)))
    return target


def save_session(txn: Transaction, milestone: Milestone, reason: str) -> None:
    """A milestone that pauses or completes saves its session by itself (SPEC §5)."""
    if milestone.state.session_id:
        sessions.save(txn, milestone, reason)


def progress_changed(txn: Transaction, milestone: Milestone) -> None:
    """Log the seed's ``progress_updated``; complete the milestone when the last task of its plan is."""
    done, total, percentage = milestone.progress()
    txn.record(milestone, "progress_updated", percentage=percentage, completed_tasks=done, total_tasks=total)
    if milestone.status == "completed" and milestone.state.status != "completed":
        txn.record(milestone, "milestone_completed", tasks=total)
        save_session(txn, milestone, "milestone_completed")
        txn.clear_current(milestone.id)
        for other in _dependents(txn, milestone.id):
            if not check_requires(txn, other):
                txn.record(other, "milestone_startable", required=milestone.id)
