"""The life cycle of milestones and tasks (SPEC §3): legal transitions and their events.

Each verb runs inside an engine transaction (``txn``) on a milestone it loaded, so
a door can batch several (the runner completes one task and starts the next in one
write).  An illegal transition is refused with one line saying what to do instead;
``force`` lets a user override where that is reasonable, and the event says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milestoned.core import ids
from milestoned.core.errors import UserError
from milestoned.engine import blockers, sessions
from milestoned.engine.engine import Engine, Transaction
from milestoned.files.durable import atomic_write
from milestoned.files.workspace import STATE_DIR, Workspace
from milestoned.git import notes
from milestoned.git import queries as gitutil
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


@dataclass(frozen=True)
class Refusal:
    """Why a task verb changed nothing, said once: the CLI raises it, ingest logs it as a
    ``commit_refused``, the runner reports it, and none of them checks the rule again."""

    kind: str  # no_task | not_running | already | state | dependencies
    message: str
    hint: str | None = None
    dependencies: tuple[str, ...] = ()

    def error(self) -> UserError:
        return UserError(self.message, hint=self.hint)


def refuse(refusal: Refusal | None) -> None:
    """For the doors that stop at a refusal (a person, an agent): it becomes their error."""
    if refusal is not None:
        raise refusal.error()


def _no_task(milestone: Milestone, task_id: str) -> Refusal | None:
    if milestone.plan.has_task(task_id):
        return None
    known = ", ".join(t.id for t in milestone.plan.tasks[:10]) or "none"
    return Refusal("no_task", f"milestone {milestone.id} has no task {task_id!r} (tasks: {known})")


def _not_running(milestone: Milestone, verb: str) -> Refusal | None:
    """Tasks move only while their milestone runs (in progress or blocked)."""
    if milestone.running:
        return None
    if milestone.status == "completed":
        return Refusal("not_running", f"cannot {verb}: milestone {milestone.id} is completed",
                       f"reopen a task first: milestoned task reopen TASK -m {milestone.id}")
    return Refusal("not_running", f"cannot {verb}: milestone {milestone.id} is {milestone.status}",
                   f"activate it first: milestoned activate {milestone.id}")


def require_running(milestone: Milestone, verb: str) -> None:
    refuse(_not_running(milestone, verb))


def _unfinished_deps(milestone: Milestone, task_id: str) -> list[str]:
    deps = milestone.plan.task(task_id).dependencies
    return [d for d in deps if milestone.state.task(d).status != "completed"]


def _waiting_on(milestone: Milestone, task_id: str, then: str) -> Refusal | None:
    open_deps = _unfinished_deps(milestone, task_id)
    if not open_deps:
        return None
    return Refusal("dependencies", f"task {task_id} depends on {', '.join(open_deps)}, not completed yet",
                   f"{then} those first, or pass --force", tuple(open_deps))


def can_start(milestone: Milestone, task_id: str, *, force: bool = False) -> Refusal | None:
    """The one rule for starting a task: it exists and is pending, its milestone runs, its
    dependencies are done (``force`` waives being pending and the dependencies)."""
    refusal = _no_task(milestone, task_id)
    task = milestone.state.task(task_id)
    if refusal is None and task.status != "pending" and not force:
        reopen = f"reopen it first: milestoned task reopen {task_id} -m {milestone.id}"
        holder = f" ({task.agent})" if task.agent else ""
        refusal = Refusal("already" if task.status == "in_progress" else "state",
                          f"task {task_id} is {task.status}{holder}",
                          "it is already being worked on" if task.status == "in_progress" else reopen)
    refusal = refusal or _not_running(milestone, f"start {task_id}")
    return refusal or (None if force else _waiting_on(milestone, task_id, "finish"))


def can_complete(milestone: Milestone, task_id: str, *, force: bool = False) -> Refusal | None:
    """The one rule for completing a task: it exists and is open, its milestone runs, and its
    dependencies are done (``force`` waives that)."""
    refusal = _no_task(milestone, task_id)
    if refusal is None and milestone.state.task(task_id).status == "completed":
        refusal = Refusal("already", f"task {task_id} is already completed")
    refusal = refusal or _not_running(milestone, f"complete {task_id}")
    return refusal or (None if force else _waiting_on(milestone, task_id, "complete"))


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
            hint=f"complete those first, or `milestoned activate {milestone.id} --force`",
        )


def make_current(txn: Transaction, milestone: Milestone) -> None:
    """A running milestone becomes this clone's current one again (``activate`` of one already
    running: its session goes on, no new one)."""
    require_running(milestone, "make it current")
    txn.set_current(milestone.id)


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


def activate(txn: Transaction, milestone: Milestone, *, force: bool = False, workers: int | None = None) -> str:
    """planned|paused -> in_progress, with a new session; returns the session id.  ``execute``
    names its worker count, so that ``execute --resume`` runs as many again."""
    check_executable(txn, milestone, force=force)
    session_id = ids.new_session_id(milestone.id)
    branch = gitutil.head_branch(txn.ws.worktree) if txn.ws.is_git else None  # where `land` takes the work back
    txn.record(milestone, "milestone_activated", session_id=session_id, forced=force or None, workers=workers,
               branch=branch)
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
          force: bool = False, **detail: Any) -> Refusal | None:
    refusal = can_start(milestone, task_id, force=force)
    if refusal is not None:
        return refusal
    open_deps = _unfinished_deps(milestone, task_id)
    txn.record(milestone, "task_started", task_id=task_id, agent=agent, forced=force or None, **detail)
    if open_deps:
        txn.record(milestone, "task_dependency_blocker", task_id=task_id, dependencies=open_deps)
    return None


def complete(txn: Transaction, milestone: Milestone, task_id: str, *, force: bool = False,
             **detail: Any) -> Refusal | None:
    refusal = can_complete(milestone, task_id, force=force)
    if refusal is not None:
        return refusal
    txn.record(milestone, "task_completed", task_id=task_id, forced=force or None, **detail)
    progress_changed(txn, milestone)
    blockers.clear_resolved(txn, milestone)
    return None


def block(txn: Transaction, milestone: Milestone, task_id: str, reason: str, **detail: Any) -> Refusal | None:
    refusal = _no_task(milestone, task_id)
    if refusal is None and milestone.state.task(task_id).status == "completed":
        refusal = Refusal("state", f"task {task_id} is completed; reopen it before blocking it")
    if refusal is not None:
        return refusal
    txn.record(milestone, "task_blocked", task_id=task_id, reason=reason, **detail)
    return None


def reopen(txn: Transaction, milestone: Milestone, task_id: str) -> Refusal | None:
    refusal = _no_task(milestone, task_id)
    status = milestone.state.task(task_id).status if refusal is None else ""
    if status == "pending":
        refusal = Refusal("already", f"task {task_id} is already pending")
    if refusal is not None:
        return refusal
    was_completed = milestone.state.status == "completed"
    txn.record(milestone, "task_reopened", task_id=task_id, previous=status)
    if was_completed:
        txn.record(milestone, "milestone_reopened", task_id=task_id)
        if txn.engine.current_id() is None:
            txn.set_current(milestone.id)  # its completion made none current: the work goes on here
    progress_changed(txn, milestone)
    blockers.clear_resolved(txn, milestone)
    return None


# -- the runner's verbs ---------------------------------------------------------------------
def run_started(txn: Transaction, milestone: Milestone, task_id: str, **detail: Any) -> Refusal | None:
    """``execute`` started a task's process.  A task its first commit already started (hook
    ingest got there first) is taken on, so the start carries the runner's pid and host."""
    refusal = can_start(milestone, task_id)
    if refusal is not None and not (refusal.kind == "already" and _started_by_its_commit(milestone, task_id)):
        return refusal
    txn.record(milestone, "task_started", task_id=task_id, **detail)
    return None


def _started_by_its_commit(milestone: Milestone, task_id: str) -> bool:
    for event in reversed(milestone.events()):
        if event.get("task_id") == task_id and event.get("event") in ("task_started", "task_claimed"):
            return event.get("via") == "commit" and "runner_pid" not in event
    return False


def requeue(txn: Transaction, milestone: Milestone, task_id: str, reason: str) -> None:
    """A started task whose process is gone (interrupted, its runner dead) goes back to the queue."""
    if milestone.state.task(task_id).status == "in_progress":
        txn.record(milestone, "task_requeued", task_id=task_id, reason=reason)


def run_resumed(txn: Transaction, milestone: Milestone, **detail: Any) -> None:
    """``execute --resume`` carries on a running milestone."""
    require_running(milestone, "resume the run")
    txn.record(milestone, "execute_resumed", **detail)


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


def landed(txn: Transaction, milestone: Milestone, *, target: str, old: str, new: str, kind: str) -> None:
    """The milestone's work is on ``target``: the event, a session save that records it, and a note
    on the commit that brought it (written once the event is)."""
    txn.record(milestone, "milestone_landed", target=target, old=old, commit=new, kind=kind)
    save_session(txn, milestone, "landed")
    fact = notes.line(milestone.id, None, milestone.state.session_id, "milestone_landed")
    worktree = txn.ws.worktree
    txn.after_commit(lambda: notes.add(worktree, new, fact))


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
