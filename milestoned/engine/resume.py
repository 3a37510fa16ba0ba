"""``milestoned resume``: a saved session, picked up on any clone exactly where it stopped.

Fetch the state branch and the notes, choose the session (the one named, else the
newest here or on the branch), check out its branch — the one place milestoned moves
HEAD, because the user asked — then, in one transaction, take in the state, restore a
plan the branch lacks, mark the session resumed and judge its blockers again.
"""

from __future__ import annotations

from typing import Any

import pygit2
import yaml

from milestoned.core import ids
from milestoned.core.errors import RuntimeFailure, UserError
from milestoned.core.text import visible
from milestoned.engine import blockers, sessions, statemerge, statetree
from milestoned.engine.engine import Engine, Transaction
from milestoned.files.workspace import STATE_DIR, Workspace
from milestoned.git import hookinstall, remotes, statebranch
from milestoned.git import queries as gitutil


def _records_in(repo: pygit2.Repository, commit_id: pygit2.Oid | None) -> dict[str, dict[str, Any]]:
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


def _choose_session(ws: Workspace, repo: pygit2.Repository, commits: list[pygit2.Oid | None],
                    session_id: str | None) -> dict[str, Any]:
    """The session to resume: the one named, else the newest here or on the state branch.

    A session saved again elsewhere since this clone last resumed it is the newer record,
    whichever copy is local: each id keeps its latest save (the fetched one on a tie).
    """
    records: dict[str, dict[str, Any]] = {}
    found = [record for commit_id in commits if commit_id is not None
             for record in _records_in(repo, commit_id).values()]
    for record in [*found, *sessions.list_sessions(ws)]:
        key = str(record["session"].get("id"))
        if key not in records or sessions.newness(record) > sessions.newness(records[key]):
            records[key] = record
    if session_id is not None:
        problem = ids.id_problem(session_id, "session id")
        if problem or session_id not in records:
            raise UserError(problem or f"no session {session_id} here or on the state branch",
                            hint="list them with `milestoned sessions`")
        return records[session_id]
    if not records:
        raise UserError("no saved session to resume",
                        hint="save one with `milestoned session save`, or name the remote that has them")
    return max(records.values(), key=sessions.newness)


def _switch_to(ws: Workspace, repo: pygit2.Repository, record: dict[str, Any], remote: str | None,
               timeout: float) -> str | None:
    """Check out the session's branch (the one place we move HEAD: the user asked); a note, or None.

    A branch this clone lacks is fetched from ``remote``; one that is nowhere to be had
    stops the resume before anything is written.  Refused over uncommitted changes to
    tracked files: they are the user's work (plans included), and a checkout could
    carry them somewhere they do not belong.
    """
    branch = (record.get("context") or {}).get("git_branch")
    if not isinstance(branch, str) or not branch or branch == gitutil.head_branch(ws.worktree):
        return None
    if branch.startswith("-") or not pygit2.reference_is_valid_name(f"refs/heads/{branch}"):
        return f"the session names branch {visible(branch)!r}, which is not a branch name; staying where you are"
    dirty = [line[3:] for line in gitutil.porcelain_status(ws.worktree) if not line.startswith("??")]
    if dirty:
        shown = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
        raise UserError(f"cannot check out {branch}: uncommitted changes in {shown}",
                        hint="commit or stash them, then run `milestoned resume` again")
    switch, fetched = ["switch", branch], ""
    if repo.references.get(f"refs/heads/{branch}") is None:
        start = remotes.fetch_branch(ws, remote, branch, timeout=timeout) if remote else None
        if start is None:
            where = (f"neither on this clone nor on {remotes.public_remote(remote)}" if remote
                     else "not on this clone, and no remote was fetched")
            raise UserError(f"session {record['session'].get('id')} was saved on branch {branch}, which is {where}",
                            hint=f"push it from the clone that saved the session (`git push origin {branch}`), then "
                                 "run `milestoned resume` again; nothing was changed here")
        if start.startswith("refs/remotes/"):
            switch, fetched = ["switch", "--track", start[len("refs/remotes/"):]], f" (fetched from {remote})"
        else:
            fetched = f" (fetched from {remotes.public_remote(str(remote))})"
    proc = gitutil.run_git(switch, ws.worktree, check=False)
    if proc.returncode == 0:
        return f"checked out {branch}{fetched}"
    detail = (proc.stderr.strip().splitlines() or [""])[-1]
    raise UserError(f"git switch {branch} failed: {detail}", hint="resolve that, then run `milestoned resume` again")


def _restore_plan(txn: Transaction, repo: pygit2.Repository, commits: list[pygit2.Oid | None],
                  milestone_id: str) -> str | None:
    """A plan the checked-out branch lacks (never committed) comes back from the state branch
    (the fetched tip first), as an untracked file; a note saying so, or None."""
    engine = txn.engine
    if engine.exists(milestone_id):
        return None
    text = next((found for commit in commits if commit is not None
                 and (found := statetree.plan_text(repo, commit, milestone_id)) is not None), None)
    if text is None:
        raise UserError(f"no plan for milestone {milestone_id} on this branch or on {statebranch.BRANCH}",
                        hint=f"check out the branch that has .milestones/active/{milestone_id}.yaml")
    ws = engine.ws
    path = ws.worktree / STATE_DIR / "active" / f"{milestone_id}.yaml"
    engine.pin(txn.write_plan(path, text.decode("utf-8")))  # read from here on, written on commit
    return (f"restored the plan {path.relative_to(ws.worktree)} from {statebranch.BRANCH}: this branch never "
            "had it, so it is an untracked file (commit it to version it with your code)")


def resume(engine: Engine, session_id: str | None, *, remote: str | None, timeout: float,
           remote_optional: bool = False) -> dict[str, Any]:
    """``milestoned resume``: fetch, check out, restore the state, mark the session resumed.

    The order matters: the checkout comes before anything is written, so a refusal
    changes nothing; then one transaction takes in the state (from the remote, else the
    branch), restores a plan the branch lacks, marks the session resumed and re-checks
    the blockers.  With ``remote_optional`` (a remote we chose, not one the user named)
    an unreachable remote is a warning, not a failure.
    """
    ws = engine.ws
    repo = statebranch.open_repo(ws)
    incoming, warnings, reached = None, [], remote
    if remote is not None:
        try:
            remotes.fetch(ws, remote, timeout=timeout)  # into tracking refs only: nothing of ours changes yet
            incoming = statebranch.tip(repo, remotes.tracking_state(remote))
        except RuntimeFailure as exc:
            if not remote_optional:
                raise
            warnings.append(f"{exc}; resuming from this clone's state")
            reached = None
    record = _choose_session(ws, repo, [incoming, statebranch.tip(repo)], session_id)
    session_id, milestone_id = str(record["session"]["id"]), str(record["session"]["milestone_id"])
    note = _switch_to(ws, repo, record, reached, timeout)
    if reached is not None:
        remotes.merge_notes(ws, reached, repo)  # `git log --notes=milestoned` works at once
    with engine.transaction() as txn:
        merged = statemerge.integrate(txn, incoming, subject=f"resume: merge state from {remote}",
                                      prefer_incoming=True)
        if merged in ("none", "up-to-date"):
            statemerge.restore(txn)
        restored = _restore_plan(txn, repo, [incoming, statebranch.tip(repo)], milestone_id)
        ms = txn.milestone(milestone_id)
        sessions.mark_resumed(txn, ms, session_id)
        if ms.status != "completed":
            txn.set_current(milestone_id)
        outcome = blockers.recheck(txn, ms)
    installed = all(h.state in ("ours", "chained") for h in hookinstall.status(ws))
    return {
        "schema": 2,
        "session": sessions.row(sessions.load(ws, session_id)),
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
