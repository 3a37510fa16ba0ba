"""Execution state as a fold of the event log, seen through the plan.

The event log is the source of truth for what happened; the plan (the user's file)
says which tasks exist in this checkout.  ``fold`` is pure, deterministic and does not
depend on the plan once a ``state_baseline`` is in the log: the same events give the
same state on any clone, whatever branch is checked out.  A git operation that swaps
the plan changes which tasks are shown, never what happened to them.

Before a baseline exists (a milestone milestoned never wrote to, or a seed log), the
fold starts from the statuses the file itself records: the seed's files carry them,
and they are read once, as the baseline, at the first write (``baseline_fields``).
After that a status written in the file is never applied; where it disagrees with the
state it is reported (``disagreements``) with the command that records it.

The milestone's status is derived from the plan as well as the events: it is
completed when every task of the plan is (``derive_status``), so a plan that grows is
in progress again and one whose tasks are all done is completed, on any checkout.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from milestoned.model.events import Event
from milestoned.model.plan import MILESTONE_STATUSES, TASK_STATUSES, Plan

# events that change state; every other event is a record only
STATE_EVENTS = frozenset(
    {
        "state_baseline",
        "plan_acknowledged",
        "milestone_activated",
        "milestone_paused",
        "milestone_completed",
        "milestone_reopened",
        "blockers_escalated",
        "blockers_cleared",
        "task_started",
        "task_completed",
        "task_blocked",
        "task_reopened",
        "task_claimed",
        "claim_renewed",
        "claim_released",
        "claim_expired",
        "task_requeued",
        "execute_resumed",
        "milestone_landed",
        "status_set_manually",  # written by earlier versions for hand edits: still facts
    }
)


@dataclass
class TaskState:
    status: str = "pending"
    started_at: str | None = None
    completed_at: str | None = None
    agent: str | None = None
    lease_until: str | None = None
    blocker: dict[str, Any] | None = None  # why it is blocked
    output: str | None = None  # path of the log of its last run
    runner: str | None = None  # "pid@host" of the `execute` that started it, if one did


@dataclass
class State:
    """What the events say: the milestone's own status and every task they ever named."""

    status: str = "planned"
    started_at: str | None = None
    completed_at: str | None = None
    session_id: str | None = None
    workers: int | None = None  # how many tasks the session's run ran at once: what `execute --resume` keeps
    branch: str | None = None  # the branch checked out when it was activated: where `land` lands it
    landed: dict[str, Any] | None = None  # the last `land`: target, commit, at
    last_update: str | None = None
    blockers: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, TaskState] = field(default_factory=dict)
    clock: int = 0
    has_baseline: bool = False
    # the statuses the plan file carried when last read as a baseline: a file still saying
    # these is only stale, one saying something else was edited by hand
    acknowledged: dict[str, str] = field(default_factory=dict)  # "" for the milestone, else task id

    def task(self, task_id: str) -> TaskState:
        """The task's state, made pending on first sight (a task the events never named)."""
        found = self.tasks.get(task_id)
        if found is None:
            found = self.tasks[task_id] = TaskState()
        return found

    def copy(self) -> State:
        return copy.deepcopy(self)


def initial(plan: Plan) -> State:
    """The state the file itself records: where a log without a baseline starts."""
    state = State(
        status=plan.recorded.status,
        started_at=plan.recorded.started_at,
        completed_at=plan.recorded.completed_at,
        session_id=plan.recorded.session_id,
    )
    for task in plan.tasks:
        rec = task.recorded
        state.tasks[task.id] = TaskState(rec.status, rec.started_at, rec.completed_at, rec.agent)
    return state


def file_statuses(plan: Plan) -> dict[str, str]:
    """The statuses written in the file: ``""`` for the milestone's, then one per task."""
    return {"": plan.recorded.status, **{t.id: t.recorded.status for t in plan.tasks}}


def baseline_fields(plan: Plan) -> dict[str, Any]:
    """What a ``state_baseline`` event holds: the statuses the file had when first met."""
    rec = plan.recorded
    return {
        "status": rec.status,
        "started_at": rec.started_at,
        "completed_at": rec.completed_at,
        "execution_session_id": rec.session_id,
        "tasks": {
            t.id: {k: v for k, v in vars(t.recorded).items() if v is not None and k != "session_id"}
            for t in plan.tasks
        },
    }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _task_status(value: object) -> str | None:
    return value if value in TASK_STATUSES else None


def _milestone_status(value: object) -> str | None:
    return value if value in MILESTONE_STATUSES else None


def _task_of(state: State, event: Event) -> TaskState | None:
    task_id = event.get("task_id")
    return state.task(task_id) if isinstance(task_id, str) and task_id else None


def _baseline(state: State, event: Event) -> None:
    """The file's statuses when milestoned first wrote: the state starts over from them."""
    state.has_baseline = True
    state.status = _milestone_status(event.get("status")) or state.status
    state.started_at = _text(event.get("started_at"))
    state.completed_at = _text(event.get("completed_at"))
    state.session_id = _text(event.get("execution_session_id"))
    state.tasks = {}
    tasks = event.get("tasks")
    for tid, fields in (tasks.items() if isinstance(tasks, dict) else ()):
        if isinstance(tid, str) and isinstance(fields, dict):
            state.tasks[tid] = TaskState(
                _task_status(fields.get("status")) or "pending", _text(fields.get("started_at")),
                _text(fields.get("completed_at")), _text(fields.get("agent")),
            )
    _acknowledge(state, event)


def _acknowledge(state: State, event: Event) -> None:
    """``state_baseline`` and ``plan_acknowledged``: the file's statuses, as read then."""
    tasks = event.get("tasks")
    statuses = {"": _milestone_status(event.get("status")) or "planned"}
    for tid, fields in (tasks.items() if isinstance(tasks, dict) else ()):
        if isinstance(tid, str) and isinstance(fields, dict):
            statuses[tid] = _task_status(fields.get("status")) or "pending"
    state.acknowledged = statuses


def apply(state: State, event: Event) -> None:
    """Apply one event to ``state`` in place.  Events are facts: they are never refused here."""
    name = event.get("event")
    clock = event.get("clock")
    if isinstance(clock, int) and not isinstance(clock, bool) and clock > state.clock:
        state.clock = clock
    if name not in STATE_EVENTS:
        return
    when = _text(event.get("timestamp"))
    state.last_update = when
    if name == "state_baseline":
        _baseline(state, event)
        return
    if name == "plan_acknowledged":
        _acknowledge(state, event)
        return
    task = _task_of(state, event)
    if name == "milestone_activated":
        state.status = "in_progress"
        state.session_id = _text(event.get("session_id")) or state.session_id
        state.started_at = state.started_at or when
        state.completed_at = None
        state.workers = _count(event.get("workers"))  # a new session: none when activated by hand
        state.branch = _text(event.get("branch")) or state.branch
    elif name == "milestone_landed":
        if isinstance(event.get("target"), str) and isinstance(event.get("commit"), str):
            state.landed = {"target": event["target"], "commit": event["commit"], "at": when}
    elif name == "execute_resumed":
        state.workers = _count(event.get("workers")) or state.workers
    elif name == "milestone_paused":
        state.status = "paused"
    elif name == "milestone_completed":
        state.status = "completed"
        state.completed_at = when
        state.blockers = []
    elif name == "milestone_reopened":
        state.status = "in_progress" if state.status == "completed" else state.status
        state.completed_at = None
    elif name == "blockers_escalated":
        state.status = "blocked"
        state.blockers = _blocker_list(event.get("blockers"))
    elif name == "blockers_cleared":
        state.blockers = _blocker_list(event.get("remaining"))
        if not state.blockers and state.status == "blocked":
            state.status = "in_progress"
    elif name == "status_set_manually":
        if task is not None:
            task.status = _task_status(event.get("to")) or task.status
            task.started_at = None if task.status == "pending" else task.started_at
        elif event.get("task_id") is None:
            state.status = _milestone_status(event.get("to")) or state.status
    elif task is None:
        return
    elif name in ("task_started", "task_claimed"):
        task.status = "in_progress"
        task.started_at = when
        task.completed_at = None
        task.blocker = None
        task.agent = _text(event.get("agent")) or task.agent
        task.lease_until = _text(event.get("lease_until"))
        task.output = _text(event.get("output")) or task.output
        pid, host = event.get("runner_pid"), _text(event.get("runner_host"))
        task.runner = f"{pid}@{host}" if _count(pid) and host else None
    elif name in ("claim_renewed", "claim_released", "claim_expired") and not _holds(task, event):
        return  # about a claim that is no longer the current one (merged from another clone)
    elif name == "claim_renewed":
        task.lease_until = _text(event.get("lease_until"))
    elif name == "task_completed":
        task.status = "completed"
        task.completed_at = when
        task.lease_until = None
        task.blocker = None
    elif name == "task_blocked":
        task.status = "blocked"
        task.lease_until = None
        task.blocker = _blocker_fields(event)
        task.output = _text(event.get("output")) or task.output
    elif name in ("task_reopened", "claim_released", "claim_expired", "task_requeued"):
        task.status = "pending"
        task.started_at = None  # back in the queue: its next start is its start
        task.completed_at = None
        task.lease_until = None
        task.blocker = None
        task.agent = None


def _blocker_fields(event: Event) -> dict[str, Any]:
    """Why a task is blocked, each field only when it has the type every reader expects."""
    fields: dict[str, Any] = {}
    for key in ("reason", "output", "worktree"):
        if isinstance(event.get(key), str):
            fields[key] = event[key]
    if isinstance(event.get("exit_code"), int) and not isinstance(event.get("exit_code"), bool):
        fields["exit_code"] = event["exit_code"]
    for key in ("paths", "tail"):
        value = event.get(key)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            fields[key] = value
    return fields


def _blocker_list(value: object) -> list[dict[str, Any]]:
    return [b for b in value if isinstance(b, dict)] if isinstance(value, list) else []


def _holds(task: TaskState, event: Event) -> bool:
    """Whether ``event``'s agent holds ``task`` now: lease events of an older claim change nothing."""
    agent = event.get("agent")
    return task.status == "in_progress" and (agent is None or task.agent in (None, agent))


def fold(events: list[Event], start: State | None = None) -> State:
    """State = fold(events), from ``start`` (the file's record, for a log without a baseline)."""
    state = start or State()
    for event in events:
        apply(state, event)
    return state


def derive_status(recorded: str, done: int, total: int) -> str:
    """The milestone's status over the plan of this checkout.

    Completed exactly when every task of the plan is; a milestone the log calls completed
    whose plan has grown is in progress again (the new task is ready).
    """
    if total and done == total:
        return "completed"
    if recorded == "completed":
        return "in_progress"
    return recorded


def disagreements(plan: Plan, state: State, statuses: dict[str, str], status: str) -> list[tuple[str, str, str]]:
    """Statuses written in the file by hand, that the state does not share: ``(key, file, state)``.

    ``key`` is ``""`` for the milestone, else a task id.  A status still equal to what the
    file said when it was last read as a baseline is only stale (the seed, an earlier
    milestoned) and not reported; before any baseline the file is the state itself.
    """
    if not state.has_baseline:
        return []
    said = file_statuses(plan)
    found = []
    for key, written in said.items():
        now = status if key == "" else statuses[key]
        default = "planned" if key == "" else "pending"
        if written != now and written != state.acknowledged.get(key, default):
            found.append((key, written, now))
    return found
