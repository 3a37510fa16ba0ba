"""Sessions: a snapshot of where a milestone's execution stands, to resume from anywhere.

The fields and their layout are the seed's ``save_execution_session`` (so its ``yq``
queries such as ``.session.milestone_id`` or ``.context.git_branch`` still work):
id, milestone, status, saved_at, reason; working directory, branch, commit; active
agents, current task, progress; next tasks and uncommitted change count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from milestoned import clock, gitutil, yamlio
from milestoned.engine import Milestone, Transaction
from milestoned.errors import UserError
from milestoned.workspace import Workspace


def _git_context(ws: Workspace) -> dict[str, Any]:
    if not ws.is_git:
        return {"working_directory": str(ws.worktree), "git_branch": None, "git_commit": None}
    changes = gitutil.porcelain_status(ws.worktree)
    return {
        "working_directory": str(ws.worktree),
        "git_branch": gitutil.head_branch(ws.worktree),
        "git_commit": gitutil.head_commit(ws.worktree),
        "uncommitted": len(changes),
    }


def snapshot(ws: Workspace, milestone: Milestone, reason: str) -> dict[str, Any]:
    """The session record for ``milestone`` as it stands now."""
    state = milestone.state
    context = _git_context(ws)
    uncommitted = context.pop("uncommitted", 0)
    in_progress = [t.id for t in milestone.plan.tasks if state.tasks[t.id].status == "in_progress"]
    return {
        "session": {
            "id": state.session_id,
            "milestone_id": milestone.id,
            "status": "active",
            "saved_at": clock.now_iso(),
            "save_reason": reason,
        },
        "context": context,
        "execution_state": {
            "milestone_status": state.status,
            "active_agents": state.active_agents(),
            "current_task": in_progress[0] if in_progress else None,
            "tasks_in_progress": in_progress,
            "progress_percentage": state.progress()[2],
        },
        "resume_points": {
            "next_tasks": milestone.ready,
            "pending_commits": uncommitted,
            "uncommitted_changes": bool(uncommitted),
        },
    }


def save(txn: Transaction, milestone: Milestone, reason: str) -> Path:
    """Write ``sessions/<session-id>.yaml`` and log ``session_saved``; returns its path."""
    if not milestone.state.session_id:
        raise UserError(f"milestone {milestone.id} has no session yet", hint=f"activate it: milestoned activate {milestone.id}")
    record = snapshot(txn.ws, milestone, reason)
    path = txn.ws.sessions_dir / f"{milestone.state.session_id}.yaml"
    txn.write_file(path, yaml.safe_dump(record, sort_keys=False, allow_unicode=True))
    txn.record(milestone, "session_saved", reason=reason, path=str(path.relative_to(txn.ws.root)))
    return path


def load(ws: Workspace, session_id: str) -> dict[str, Any]:
    path = ws.sessions_dir / f"{session_id}.yaml"
    if not path.is_file():
        raise UserError(f"no session {session_id}", hint="list them with `milestoned session list`")
    data, _ = yamlio.load(path)
    if not isinstance(data, dict) or not isinstance(data.get("session"), dict):
        raise UserError("not a session file", path=path, line=1)
    return data


def list_sessions(ws: Workspace) -> list[dict[str, Any]]:
    """Saved sessions, newest first (unreadable ones are skipped: they are reported by ``show``)."""
    found = []
    if ws.sessions_dir.is_dir():
        for path in ws.sessions_dir.glob("*.yaml"):
            try:
                found.append(load(ws, path.stem))
            except UserError:
                continue
    return sorted(found, key=lambda s: str(s["session"].get("saved_at", "")), reverse=True)
