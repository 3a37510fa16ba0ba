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
from milestoned.core.errors import RuntimeFailure, UserError
from milestoned.engine import statetree
from milestoned.engine.engine import Engine, Milestone, Transaction
from milestoned.files import yamlread as yamlio
from milestoned.files.workspace import STATE_DIR, Workspace
from milestoned.git import checkpoints, statebranch
from milestoned.git import queries as gitutil
from milestoned.git.checkpoints import Checkpoint


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


def snapshot(ws: Workspace, milestone: Milestone, reason: str) -> dict[str, Any]:
    """The session record for ``milestone`` as it stands now."""
    context, uncommitted, checkpoint = _git_context(ws, milestone.id)
    in_progress = [tid for tid, task in milestone.tasks.items() if task.status == "in_progress"]
    return {
        "session": {
            "id": milestone.state.session_id,
            "milestone_id": milestone.id,
            "status": "active",
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
    record = load(txn.ws, session_id)
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
    return sorted(found, key=_newness, reverse=True)


def _newness(record: dict[str, Any]) -> tuple[str, int, str]:
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


# -- resume -------------------------------------------------------------------------------
def _records_in(repo: Any, commit_id: Any) -> dict[str, dict[str, Any]]:
    """The session records a state commit holds, by id (unreadable ones skipped)."""
    found = {}
    for key, data in statebranch.files_at(repo, commit_id).items():
        if key.startswith("sessions/"):
            try:
                record = yaml.safe_load(data)
            except yaml.YAMLError:
                continue
            if isinstance(record, dict) and isinstance(record.get("session"), dict):
                found[key[len("sessions/"):-len(".yaml")]] = record
    return found


def _choose_session(ws: Workspace, repo: Any, commits: list[Any], session_id: str | None) -> dict[str, Any]:
    """The session to resume: the one named, else the newest here or on the state branch."""
    records: dict[str, dict[str, Any]] = {}
    for commit_id in commits:
        if commit_id is not None:
            records.update(_records_in(repo, commit_id))
    records.update({str(r["session"].get("id")): r for r in list_sessions(ws)})
    if session_id is not None:
        problem = ids.id_problem(session_id, "session id")
        if problem or session_id not in records:
            raise UserError(problem or f"no session {session_id} here or on the state branch",
                            hint="list them with `milestoned sessions`")
        return records[session_id]
    if not records:
        raise UserError("no saved session to resume",
                        hint="save one with `milestoned session save`, or name the remote that has them")
    return max(records.values(), key=_newness)


def _switch_to(ws: Workspace, branch: str | None) -> str | None:
    """Check out the session's branch (the one place we move HEAD: the user asked); a note, or None.

    Refused over uncommitted changes to tracked files: they are the user's work (plans
    included), and a checkout could carry them somewhere they do not belong.
    """
    if not branch or branch == gitutil.head_branch(ws.worktree):
        return None
    if branch.startswith("-"):
        return f"the session names branch {branch!r}, which is not a branch name; staying where you are"
    dirty = [line[3:] for line in gitutil.porcelain_status(ws.worktree) if not line.startswith("??")]
    if dirty:
        shown = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        raise UserError(f"cannot check out {branch}: uncommitted changes in {shown}",
                        hint="commit or stash them, then run `milestoned resume` again")
    proc = gitutil.run_git(["switch", branch], ws.worktree, check=False)
    if proc.returncode == 0:
        return f"checked out {branch}"
    detail = (proc.stderr.strip().splitlines() or [""])[-1]
    if "invalid reference" in detail:
        return f"branch {branch} does not exist here (push it from the clone that saved the session)"
    raise UserError(f"git switch {branch} failed: {detail}", hint="resolve that, then run `milestoned resume` again")


def _restore_plan(engine: Engine, repo: Any, milestone_id: str) -> str | None:
    """A plan the checked-out branch lacks (never committed) comes back from the state branch,
    as an untracked file; a note saying so, or None."""
    if engine.exists(milestone_id):
        return None
    text = statetree.plan_text(repo, statebranch.tip(repo), milestone_id)
    if text is None:
        raise UserError(f"no plan for milestone {milestone_id} on this branch or on {statebranch.BRANCH}",
                        hint="check out the branch that has .milestones/active/" + milestone_id + ".yaml")
    ws = engine.ws
    path = ws.worktree / STATE_DIR / "active" / f"{milestone_id}.yaml"
    with engine.transaction() as txn:
        txn.write_plan(path, text.decode("utf-8"))
    return (f"restored the plan {path.relative_to(ws.worktree)} from {statebranch.BRANCH}: this branch never "
            "had it, so it is an untracked file (commit it to version it with your code)")


def resume(engine: Engine, session_id: str | None, *, remote: str | None, timeout: float,
           remote_optional: bool = False) -> dict[str, Any]:
    """``milestoned resume``: fetch, check out, restore the state, mark the session resumed.

    The order matters: the checkout comes before anything is written, so a refusal
    changes nothing; the state comes into the git dir after it, and a plan the branch
    lacks is restored last.  With ``remote_optional`` (a remote we chose, not one the
    user named) an unreachable remote is a warning, not a failure.
    """
    from milestoned.engine import blockers
    from milestoned.git import hookinstall as hooks
    from milestoned.remote import sync

    ws = engine.ws
    repo = statebranch.open_repo(ws)
    incoming, warnings = None, []
    if remote is not None:
        try:
            sync.fetch(ws, remote, timeout=timeout)
            incoming = statebranch.tip(repo, sync.tracking_state(remote))
            sync.merge_notes(ws, remote, repo)  # `git log --notes=milestoned` works at once
        except RuntimeFailure as exc:
            if not remote_optional:
                raise
            warnings.append(f"{exc}; resuming from this clone's state")
    record = _choose_session(ws, repo, [incoming, statebranch.tip(repo)], session_id)
    session_id, milestone_id = str(record["session"]["id"]), str(record["session"]["milestone_id"])
    note = _switch_to(ws, (record.get("context") or {}).get("git_branch"))
    with engine.lock.held():
        merged = sync.integrate(engine, incoming, subject=f"resume: merge state from {remote}", prefer_incoming=True)
        if merged in ("none", "up-to-date"):
            sync.restore(engine)
        restored = _restore_plan(engine, repo, milestone_id)
        with engine.transaction() as txn:
            ms = txn.milestone(milestone_id)
            mark_resumed(txn, ms, session_id)
            if ms.status != "completed":
                txn.set_current(milestone_id)
            outcome = blockers.recheck(txn, ms)
    installed = all(h.state in ("ours", "chained") for h in hooks.status(ws))
    return {
        "schema": 2,
        "session": row(load(ws, session_id)),
        "remote": remote,
        "state": merged,
        "checkout": note,
        "plan_restored": restored,
        "hooks": {"installed": installed, "fix": None if installed else "milestoned hooks install"},
        "milestone": {"id": ms.id, "status": ms.status, "progress_percentage": ms.progress()[2]},
        "ready": ms.ready,
        "in_progress": [{"task_id": t, "agent": s.agent} for t, s in ms.tasks.items() if s.status == "in_progress"],
        "blockers": ms.blockers,
        "blockers_cleared": outcome.cleared,
        "next_command": f"milestoned execute {ms.id} --resume" if ms.status != "completed" else None,
        "warnings": warnings,
    }
