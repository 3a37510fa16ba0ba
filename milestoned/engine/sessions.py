"""Sessions: a snapshot of where a milestone's execution stands, to resume from anywhere.

The fields and their layout are the seed's ``save_execution_session`` (so its ``yq``
queries such as ``.session.milestone_id`` or ``.context.git_branch`` still work):
id, milestone, status, saved_at, reason; working directory, branch, commit; active
agents, current task, progress; next tasks and uncommitted change count.

Sessions live in the state directory (``<git common dir>/milestoned/sessions/``), and
every save is also one commit on the ``milestoned/state`` branch (``statetree``), made
once the transaction has written its files, so that another clone can resume it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from milestoned.core import clock, ids
from milestoned.core.errors import UserError
from milestoned.engine import statetree
from milestoned.engine.engine import Transaction
from milestoned.files import yamlread as yamlio
from milestoned.files.workspace import Workspace
from milestoned.git import checkpoints
from milestoned.git import queries as gitutil
from milestoned.git.checkpoints import Checkpoint
from milestoned.model.milestone import Milestone


def _git_context(ws: Workspace, milestone_id: str) -> tuple[dict[str, Any], int, Checkpoint | None]:
    """Where the user stands; uncommitted work is kept in a checkpoint so the session never loses it."""
    if not ws.is_git:
        return {"working_directory": str(ws.worktree), "git_branch": None, "git_commit": None}, 0, None
    changes = gitutil.porcelain_status(ws.worktree)
    context = {
        "working_directory": str(ws.worktree),
        "git_branch": gitutil.head_branch(ws.worktree),
        "git_commit": gitutil.head_commit(ws.worktree),
    }
    return context, len(changes), checkpoints.take(ws, milestone_id, changes)


def session_status(milestone_status: str) -> str:
    """A session is over when its milestone completed, idle while it is paused, else active
    (``resumed``, the seed's word, is set by ``resume``)."""
    return milestone_status if milestone_status in ("completed", "paused") else "active"


def snapshot(ws: Workspace, milestone: Milestone, reason: str) -> dict[str, Any]:
    """The session record for ``milestone`` as it stands now."""
    context, uncommitted, checkpoint = _git_context(ws, milestone.id)
    in_progress = [tid for tid, task in milestone.tasks.items() if task.status == "in_progress"]
    return {
        "session": {
            "id": milestone.state.session_id,
            "milestone_id": milestone.id,
            "status": session_status(milestone.status),
            "saved_at": clock.now_iso(),
            "save_reason": reason,
        },
        "context": context,
        "execution_state": {
            "milestone_status": milestone.status,
            "active_agents": milestone.active_agents(),
            "current_task": in_progress[0] if in_progress else None,
            "tasks_in_progress": in_progress,
            "progress_percentage": milestone.progress()[2],
            "landed": milestone.state.landed,
        },
        "resume_points": {
            "next_tasks": milestone.ready,
            "pending_commits": uncommitted,
            "uncommitted_changes": bool(uncommitted),
            "checkpoint": checkpoint.ref if checkpoint else None,
        },
    }


def _dump(record: dict[str, Any]) -> str:
    return yaml.safe_dump(record, sort_keys=False, allow_unicode=True)


def checkpoint(txn: Transaction, milestone: Milestone) -> Checkpoint | None:
    """The seed's auto-commit: uncommitted work kept under a ref, and an ``auto_commit`` event naming it.

    The ref is written first: should the transaction then fail, an unnamed checkpoint is
    left (it only keeps the user's work), never an event naming a checkpoint that is not.
    """
    taken = checkpoints.take(txn.ws, milestone.id)
    if taken is not None:
        txn.record(milestone, "auto_commit", checkpoint=taken.ref, files_changed=taken.files_changed)
    return taken


def save(txn: Transaction, milestone: Milestone, reason: str) -> Path:
    """Write the session, log ``session_saved`` and commit the state branch.

    The commit happens after the transaction has written everything, still under the
    lock, so the branch holds exactly the files as they stand.
    """
    if not milestone.state.session_id:
        raise UserError(f"milestone {milestone.id} has no session yet", hint=f"activate it: milestoned activate {milestone.id}")
    record = snapshot(txn.ws, milestone, reason)
    session_id = milestone.state.session_id
    checkpoint = record["resume_points"]["checkpoint"]
    if checkpoint:  # the seed's auto_commit, kept off every branch
        txn.record(milestone, "auto_commit", checkpoint=checkpoint, files_changed=record["resume_points"]["pending_commits"])
    event = txn.record(milestone, "session_saved", reason=reason, session=session_id)
    record["session"]["clock"] = event["clock"]  # orders two saves made within one second
    path = txn.write_session(session_id, _dump(record))
    state = record["execution_state"]
    subject = (f"save session {session_id}: {milestone.id} {state['milestone_status']}, "
               f"{state['progress_percentage']}% ({reason})")
    engine = txn.engine
    txn.after_commit(lambda: statetree.save(engine, subject))
    return path


def mark_resumed(txn: Transaction, milestone: Milestone, session_id: str) -> dict[str, Any]:
    """The seed's resume bookkeeping: ``status: resumed``, ``resumed_at`` and a ``session_resumed`` event."""
    written = txn.written_session(session_id)
    record = yaml.safe_load(written) if written is not None else load(txn.ws, session_id)
    record["session"]["status"] = "resumed"
    record["session"]["resumed_at"] = clock.now_iso()
    txn.write_session(session_id, _dump(record))
    txn.record(milestone, "session_resumed", session_id=session_id)
    engine = txn.engine
    txn.after_commit(lambda: statetree.save(engine, f"resume session {session_id}: {milestone.id}"))
    return record


def load(ws: Workspace, session_id: str) -> dict[str, Any]:
    problem = ids.id_problem(session_id, "session id")
    if problem:
        raise UserError(problem, hint="list sessions with `milestoned session list`")
    path = ws.session_path(session_id)
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
    return sorted(found, key=newness, reverse=True)


def newness(record: dict[str, Any]) -> tuple[str, int, str]:
    session = record["session"]
    tick = session.get("clock")
    return str(session.get("saved_at", "")), tick if isinstance(tick, int) else 0, str(session.get("id"))


def row(record: dict[str, Any]) -> dict[str, Any]:
    """One session as ``sessions --json`` lists it (stable schema)."""
    session, context = record["session"], record.get("context") or {}
    state, resume = record.get("execution_state") or {}, record.get("resume_points") or {}
    return {
        "id": session.get("id"),
        "milestone_id": session.get("milestone_id"),
        "status": session.get("status"),
        "saved_at": session.get("saved_at"),
        "save_reason": session.get("save_reason"),
        "resumed_at": session.get("resumed_at"),
        "git_branch": context.get("git_branch"),
        "git_commit": context.get("git_commit"),
        "milestone_status": state.get("milestone_status"),
        "progress_percentage": state.get("progress_percentage"),
        "active_agents": state.get("active_agents") or [],
        "next_tasks": resume.get("next_tasks") or [],
    }
