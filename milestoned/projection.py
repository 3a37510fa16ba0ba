"""Writing the folded state back into the milestone file, touching only our fields.

We own ``status``, ``progress``, ``execution.started_at``/``session_id``,
``blockers``, ``completed_at`` and, per task, ``status``, ``started_at``,
``completed_at`` and ``agent``.  Everything else in the file is the user's: it is
left exactly as written (comments, order, quoting, unknown fields).  A value that
already means the same thing (``active`` for ``in_progress``, a timestamp written
differently) is not rewritten.
"""

from __future__ import annotations

from typing import Any

from milestoned import clock, yamlio
from milestoned.plan import Plan, normalize_status
from milestoned.state import State


def _set_status(mapping: Any, status: str, *, task: bool) -> bool:
    if normalize_status(mapping.get("status"), task=task) == status and "status" in mapping:
        return False
    return yamlio.set_value(mapping, "status", status)


def _set_time(mapping: Any, key: str, value: str | None) -> bool:
    if clock.normalize_time(mapping.get(key)) == value:
        return False
    if value is None:
        if key in mapping and mapping[key] not in ("", None):
            del mapping[key]
            return True
        return False
    return yamlio.set_value(mapping, key, value)


def _set_optional(mapping: Any, key: str, value: Any) -> bool:
    if value is None:
        if mapping.get(key) not in (None, ""):
            del mapping[key]
            return True
        return False
    return yamlio.set_value(mapping, key, value)


def _child_map(parent: Any, key: str) -> Any:
    from ruamel.yaml.comments import CommentedMap

    child = parent.get(key)
    if not isinstance(child, dict):
        child = CommentedMap()
        parent[key] = child
    return child


def _project_progress(doc: Any, state: State) -> bool:
    done, _, percentage = state.progress()
    current = doc.get("progress")
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        return yamlio.set_value(doc, "progress", percentage)  # the user keeps a bare number
    if (
        isinstance(current, dict)
        and current.get("percentage") == percentage
        and current.get("tasks_completed") == done
        and clock.normalize_time(current.get("last_update")) == state.last_update
    ):
        return False
    progress = _child_map(doc, "progress")
    changed = yamlio.set_value(progress, "percentage", percentage)
    changed |= yamlio.set_value(progress, "tasks_completed", done)
    if state.last_update:
        changed |= _set_time(progress, "last_update", state.last_update)
    return changed


def project(text: str, plan: Plan, state: State) -> str | None:
    """The file's new text with ``state`` written in, or None when nothing would change."""
    doc = yamlio.rt_load(text)
    changed = _set_status(doc, state.status, task=False)
    changed |= _project_progress(doc, state)
    if state.started_at or state.session_id:
        execution = _child_map(doc, "execution")
        changed |= _set_time(execution, "started_at", state.started_at)
        if state.session_id and execution.get("session_id") != state.session_id:
            changed |= yamlio.set_value(execution, "session_id", state.session_id)
    if state.blockers or doc.get("blockers"):
        if list(doc.get("blockers") or []) != state.blockers:
            doc["blockers"] = state.blockers
            changed = True
    changed |= _set_time(doc, "completed_at", state.completed_at)
    raw_tasks = doc.get("tasks") or []
    for task in plan.tasks:
        if task.index >= len(raw_tasks) or not isinstance(raw_tasks[task.index], dict):
            continue
        raw, ts = raw_tasks[task.index], state.tasks[task.id]
        changed |= _set_status(raw, ts.status, task=True)
        changed |= _set_time(raw, "started_at", ts.started_at)
        changed |= _set_time(raw, "completed_at", ts.completed_at)
        changed |= _set_optional(raw, "agent", ts.agent)
    return yamlio.rt_dump(doc, text) if changed else None
