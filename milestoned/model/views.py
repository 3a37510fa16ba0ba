"""What read commands answer, as plain data with a stable schema.

The CLI prints these (as JSON with ``--json``, as a table otherwise) and the daemon
sends the very same objects over its socket, so ``status`` answers alike with or
without the daemon.  Bump ``SCHEMA`` on any incompatible change.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any, Protocol

from milestoned.core import graph
from milestoned.core.errors import UserError, display_path
from milestoned.model.milestone import Milestone
from milestoned.model.plan import NotAMilestone

SCHEMA = 2  # 2: state in the git dir; milestone status derived from the plan; log path; plan warnings
RECENT = 10


def task_rows(milestone: Milestone, only: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Every task as a row of the views, in plan order (``only``: just these tasks)."""
    statuses = milestone.statuses
    deps = milestone.plan.deps
    stuck = graph.waiting_on_blocked(deps, statuses)
    rows = []
    for task in milestone.plan.tasks:
        if only is not None and task.id not in only:
            continue
        st = milestone.state.task(task.id)
        rows.append({
            "id": task.id,
            "title": task.title,
            "prompt": task.prompt,
            "run": list(task.run) if isinstance(task.run, tuple) else task.run,  # argv, or shell text
            "status": st.status,
            "dependencies": list(task.dependencies),
            "ready": graph.is_ready(task.id, deps, statuses),
            "waiting_on_blocked": task.id in stuck,
            "agent": st.agent,
            "lease_until": st.lease_until,
            "started_at": st.started_at,
            "completed_at": st.completed_at,
            "blocker": st.blocker,
            "output": st.output,
            "runner": st.runner,
        })
    return rows


def ready_view(milestone: Milestone) -> dict[str, Any]:
    """What ``next`` answers: the tasks ready to start now, as rows."""
    ready = milestone.ready
    return {"schema": 1, "milestone_id": milestone.id, "status": milestone.status,
            "ready": task_rows(milestone, only=set(ready))}


def summary(milestone: Milestone) -> dict[str, Any]:
    done, total, percentage = milestone.progress()
    state = milestone.state
    status = milestone.status
    return {
        "id": milestone.id,
        "title": milestone.plan.title,
        "status": status,
        "progress": {"percentage": percentage, "tasks_completed": done, "tasks_total": total},
        "requires": list(milestone.plan.requires),
        "started_at": state.started_at,
        "completed_at": state.completed_at if status == "completed" else None,
        "last_update": state.last_update,
        "session_id": state.session_id,
        "blockers": milestone.blockers,
        "path": display_path(milestone.path),
        "log": display_path(milestone.log_path),
    }


def status(milestone: Milestone, recent: int = RECENT) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "milestone": summary(milestone),
        "tasks": task_rows(milestone),
        "ready": milestone.ready,
        "active_agents": milestone.active_agents(),
        "recent_events": milestone.recent_events(recent),
        "warnings": milestone.event_problems() + milestone.plan_warnings(),
    }


def graph_view(milestone: Milestone) -> dict[str, Any]:
    """``graph --json``: the tasks as nodes with their status, and an edge from each dependency to its
    dependent (the direction work flows), in plan order; a program draws it as it likes."""
    nodes = [{key: row[key] for key in ("id", "title", "status", "ready", "waiting_on_blocked", "agent")}
             for row in task_rows(milestone)]
    edges = [{"from": dep, "to": task.id} for task in milestone.plan.tasks for dep in task.dependencies]
    return {"schema": SCHEMA, "milestone": {"id": milestone.id, "title": milestone.plan.title,
                                            "status": milestone.status}, "nodes": nodes, "edges": edges}


class Milestones(Protocol):
    """What the overview asks of whoever holds the milestones: the engine, or the daemon's memory."""

    def milestone_paths(self) -> list[Path]: ...
    def current_id(self) -> str | None: ...
    def load(self, milestone_id: str) -> Milestone: ...


def overview(engine: Milestones) -> dict[str, Any]:
    """Every milestone in one view; a broken file is listed with its error, not fatal."""
    rows, errors = [], []
    for path in engine.milestone_paths():
        try:
            rows.append(summary(engine.load(path.stem)))
        except NotAMilestone:
            continue
        except UserError as exc:
            errors.append(str(exc))
    return {"schema": SCHEMA, "current": engine.current_id(), "milestones": rows, "errors": errors}
