"""Execution state as a fold of the event log over the plan.

The event log is the source of truth for who did what; the status, progress and
timestamp fields in the milestone YAML are this fold's projection, rewritten by the
engine so that the seed's ``yq`` queries keep working.  ``fold`` is pure and
deterministic: the same plan and the same events give the same state on any clone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from milestoned import graph
from milestoned.events import Event
from milestoned.plan import Plan

# events that change state; every other event is a record only
STATE_EVENTS = frozenset(
    {
        "state_baseline",
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
        "status_set_manually",
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


@dataclass
class State:
    status: str = "planned"
    started_at: str | None = None
    completed_at: str | None = None
    session_id: str | None = None
    last_update: str | None = None
    blockers: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, TaskState] = field(default_factory=dict)
    clock: int = 0
    has_baseline: bool = False

    @property
    def statuses(self) -> dict[str, str]:
        return {tid: t.status for tid, t in self.tasks.items()}

    def active_agents(self) -> list[str]:
        return sorted({t.agent for t in self.tasks.values() if t.status == "in_progress" and t.agent})

    def progress(self) -> tuple[int, int, int]:
        return graph.progress(self.statuses)

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


def _task(state: State, event: Event) -> TaskState | None:
    task_id = event.get("task_id")
    return state.tasks.get(task_id) if isinstance(task_id, str) else None


def apply(state: State, event: Event) -> None:
    """Apply one event to ``state`` in place.  Events are facts: they are never refused here."""
    name = event.get("event")
    clock = event.get("clock")
    if isinstance(clock, int) and clock > state.clock:
        state.clock = clock
    if name not in STATE_EVENTS:
        return
    when = event.get("timestamp")
    state.last_update = when
    task = _task(state, event)
    if name == "state_baseline":
        state.has_baseline = True
        state.status = event.get("status", state.status)
        state.started_at = event.get("started_at")
        state.completed_at = event.get("completed_at")
        state.session_id = event.get("execution_session_id")
        for tid, fields in (event.get("tasks") or {}).items():
            if tid in state.tasks and isinstance(fields, dict):
                state.tasks[tid] = TaskState(
                    fields.get("status", "pending"), fields.get("started_at"),
                    fields.get("completed_at"), fields.get("agent"),
                )
    elif name == "milestone_activated":
        state.status = "in_progress"
        state.session_id = event.get("session_id") or state.session_id
        state.started_at = state.started_at or when
        state.completed_at = None
    elif name == "milestone_paused":
        state.status = "paused"
    elif name == "milestone_completed":
        state.status = "completed"
        state.completed_at = when
        state.blockers = []
    elif name == "milestone_reopened":
        state.status = "in_progress"
        state.completed_at = None
    elif name == "blockers_escalated":
        state.status = "blocked"
        state.blockers = list(event.get("blockers") or [])
    elif name == "blockers_cleared":
        state.blockers = list(event.get("remaining") or [])
        if not state.blockers and state.status == "blocked":
            state.status = "in_progress"
    elif name == "status_set_manually":
        if task is not None:
            task.status = event.get("to", task.status)
        elif event.get("task_id") is None:
            state.status = event.get("to", state.status)
    elif task is None:
        return
    elif name in ("task_started", "task_claimed"):
        task.status = "in_progress"
        task.started_at = when
        task.completed_at = None
        task.blocker = None
        task.agent = event.get("agent") or task.agent
        task.lease_until = event.get("lease_until")
        task.output = event.get("output") or task.output
    elif name in ("claim_renewed", "claim_released", "claim_expired") and not _holds(task, event):
        return  # about a claim that is no longer the current one (merged from another clone)
    elif name == "claim_renewed":
        task.lease_until = event.get("lease_until")
    elif name == "task_completed":
        task.status = "completed"
        task.completed_at = when
        task.lease_until = None
        task.blocker = None
    elif name == "task_blocked":
        task.status = "blocked"
        task.lease_until = None
        task.blocker = {k: event[k] for k in ("reason", "exit_code", "paths", "output", "tail", "worktree")
                        if k in event}
        task.output = event.get("output") or task.output
    elif name in ("task_reopened", "claim_released", "claim_expired", "task_requeued"):
        task.status = "pending"
        task.completed_at = None
        task.lease_until = None
        task.blocker = None
        task.agent = None


def _holds(task: TaskState, event: Event) -> bool:
    """Whether ``event``'s agent holds ``task`` now: lease events of an older claim change nothing."""
    agent = event.get("agent")
    return task.status == "in_progress" and (agent is None or task.agent in (None, agent))


def fold(plan: Plan, events: list[Event]) -> State:
    """State = fold(events) over the plan, starting from the file's record if no baseline."""
    state = initial(plan)
    for event in events:
        apply(state, event)
    return state


def manual_edits(plan: Plan, state: State) -> list[dict[str, Any]]:
    """Statuses the file says and the log does not: hand edits to record, never lose."""
    edits: list[dict[str, Any]] = []
    if plan.recorded.status != state.status:
        edits.append({"from": state.status, "to": plan.recorded.status})
    for task in plan.tasks:
        current = state.tasks[task.id].status
        if task.recorded.status != current:
            edits.append({"task_id": task.id, "from": current, "to": task.recorded.status})
    return edits
