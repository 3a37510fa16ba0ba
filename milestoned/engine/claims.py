"""Claims: one ready task to one agent at a time, on one machine or across clones.

On one machine a claim is a ``task_claimed`` event recorded under the engine lock,
with a lease: ``heartbeat`` renews it, ``release`` gives the task back, ``done``
completes it, and a lease left to run out returns the task to the ready set with a
``claim_expired`` event.  Because every claim is decided under the one lock, two
agents on one machine never get the same task.

Across clones (``--remote``) the remote decides.  A claim is the ref
``refs/milestoned/claims/<mid>/<tid>`` created there with
``git push --force-with-lease=<ref>:`` (the ref must not exist yet), pointing at a
commit unique to the claimant (two pushes of one object would both "succeed"), and
read back after the push.  Exactly one clone wins; the others learn who holds the
task and move on to the next one.  The winner keeps a local copy of the ref, so its
heartbeats, release and completion update the remote ref with a lease on the value
it pushed, and an expired remote claim can be taken over the same way.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
import socket
from typing import TYPE_CHECKING, Any

from milestoned.core import clock
from milestoned.core.errors import RuntimeFailure, UserError
from milestoned.engine import lifecycle
from milestoned.files.workspace import Workspace
from milestoned.git import hookinstall as hooks
from milestoned.git import remotes, statebranch, trailers
from milestoned.model import views
from milestoned.model.config import load_config

if TYPE_CHECKING:
    import pygit2

    from milestoned.engine.engine import Engine, Transaction
    from milestoned.model.milestone import Milestone

NETWORK_TIMEOUT = 30.0  # under the engine lock (60 s): a stuck remote must not starve local writers


# -- leases -------------------------------------------------------------------------------
def lease_seconds(engine: Engine, lease: str | None) -> float:
    """``--lease`` as seconds, else ``claims.lease`` from the config (default 30 minutes)."""
    if lease is None:
        return load_config(engine.ws.config_path).lease
    seconds = clock.parse_duration(lease)
    if seconds is None:
        raise UserError(f"--lease {lease!r} is not a duration", hint="write e.g. 90s, 30m or 1h")
    if seconds <= 0:
        raise UserError(f"--lease {lease!r} would run out at once", hint="give a lease longer than 0, e.g. 30m")
    return seconds


def check_agent(agent: str) -> str:
    if not agent or not agent.strip() or not agent.isprintable() or len(agent) > 100:
        raise UserError(f"agent name {agent!r} is not usable", hint="give a short printable name such as claude-1")
    return agent


def _until(seconds: float) -> str:
    return clock.format_time(clock.now() + dt.timedelta(seconds=seconds))


def _lapsed(lease_until: object) -> bool:
    when = clock.parse_time(lease_until)
    return when is not None and when < clock.now()


def expire(txn: Transaction, milestone: Milestone) -> list[str]:
    """Give back every task whose lease ran out (``claim_expired``); the tasks given back."""
    lapsed = [tid for tid, task in milestone.tasks.items()
              if task.status == "in_progress" and _lapsed(task.lease_until)]
    for tid in lapsed:
        task = milestone.state.task(tid)
        txn.record(milestone, "claim_expired", task_id=tid, agent=task.agent, lease_until=task.lease_until)
    return lapsed


def load(engine: Engine, milestone_id: str) -> Milestone:
    """The milestone as a read of the claims should see it: tasks whose lease ran out given back
    first (a read that records it)."""
    ms = engine.load(milestone_id)
    if has_lapsed_leases(ms):
        with engine.transaction() as txn:
            ms = txn.milestone(milestone_id)
            expire(txn, ms)
    return ms


def earliest_lease(milestone: Milestone) -> dt.datetime | None:
    """When the first lease of ``milestone`` runs out (None: no task is held under a lease).  The
    daemon keeps it per version of the state, so its reaper is not a walk over 10,000 tasks a second."""
    ends = [when for t in milestone.tasks.values()
            if t.status == "in_progress" and (when := clock.parse_time(t.lease_until)) is not None]
    return min(ends, default=None)


def ran_out(earliest: dt.datetime | None) -> bool:
    """Whether a lease ending at ``earliest`` (``earliest_lease``; None: no lease) ran out by now."""
    return earliest is not None and earliest < clock.now()


def has_lapsed_leases(milestone: Milestone) -> bool:
    return ran_out(earliest_lease(milestone))


def held_by(milestone: Milestone, agent: str) -> list[str]:
    """The tasks ``agent`` holds, in plan order."""
    return [tid for tid, task in milestone.tasks.items() if task.status == "in_progress" and task.agent == agent]


def _now_is(milestone: Milestone, task_id: str) -> str:
    task = milestone.state.task(task_id)
    return f"held by {task.agent}" if task.status == "in_progress" and task.agent else task.status


def _lapsed_claim(milestone: Milestone, agent: str, task_id: str | None) -> dict[str, Any] | None:
    """The ``claim_expired`` event that ended ``agent``'s claim (on ``task_id``, if named), when that is the
    last word on it: an agent that lost its claim learns why, not only that it holds nothing."""
    for event in reversed(milestone.events()):
        if event.get("agent") == agent and task_id in (None, event.get("task_id")):
            lapsed = event.get("event") == "claim_expired" and event.get("task_id") in milestone.tasks
            return event if lapsed else None
    return None


def _how_lapsed(event: dict[str, Any]) -> str:
    return f"({event['reason']})" if event.get("reason") else f"at {event.get('lease_until')} (no heartbeat in time)"


def _held_task(milestone: Milestone, agent: str, task_id: str | None) -> list[str]:
    """The task(s) a heartbeat/release/done is about: the one named (it must be ``agent``'s) or all it holds."""
    if task_id is None:
        mine = held_by(milestone, agent)
        if not mine:
            lapsed = _lapsed_claim(milestone, agent, None)
            said = (f": its claim on {lapsed['task_id']} lapsed {_how_lapsed(lapsed)}, and {lapsed['task_id']} is "
                    f"{_now_is(milestone, lapsed['task_id'])} now") if lapsed else ""
            raise UserError(f"agent {agent} holds no task in {milestone.id}{said}",
                            hint=f"claim one: milestoned next {milestone.id} --claim --agent {agent}")
        return mine
    milestone.plan.task(task_id)
    task = milestone.state.task(task_id)
    if task.status != "in_progress" or task.agent != agent:
        lapsed = _lapsed_claim(milestone, agent, task_id)
        said = f": the claim {agent} had lapsed {_how_lapsed(lapsed)}" if lapsed else ""
        raise UserError(f"task {task_id} is not held by {agent} (it is {_now_is(milestone, task_id)}){said}",
                        hint=f"claim a task with `milestoned next {milestone.id} --claim --agent {agent}`")
    return [task_id]


# -- claim objects on a remote -------------------------------------------------------------
def _one_held_task(milestone: Milestone, agent: str, task_id: str | None, what: str) -> str:
    """The one task ``agent`` means: the one named, else the one it holds (two held: name one)."""
    tasks = _held_task(milestone, agent, task_id)
    if len(tasks) > 1:
        raise UserError(f"agent {agent} holds {', '.join(tasks)}", hint=f"name the task that is {what}")
    return tasks[0]


def claim_ref(milestone_id: str, task_id: str) -> str:
    return f"{remotes.CLAIMS_PREFIX}{milestone_id}/{task_id}"


def _write_claim(repo: pygit2.Repository, record: dict[str, Any]) -> pygit2.Oid:
    """A commit (empty tree, no parent) whose message is the claim: unique by its nonce and time."""
    record = {**record, "nonce": secrets.token_hex(8), "written_at": clock.now_iso()}
    subject = f"{record['status']} {record['milestone_id']}/{record['task_id']} by {record['agent']}"
    message = f"{subject}\n\n{json.dumps(record, sort_keys=True, ensure_ascii=False)}\n"
    author, committer = statebranch.signatures(repo)
    return repo.create_commit(None, author, committer, message, repo.TreeBuilder().write(), [])


def read_claim(repo: pygit2.Repository, oid: pygit2.Oid | str) -> dict[str, Any] | None:
    """The claim a claim commit holds, or None when it is not one of ours."""
    # start-up: pygit2 costs ~60 ms, and the commands that never touch git objects skip it
    import pygit2

    try:
        message = repo[oid].peel(pygit2.Commit).message  # not a commit: ValueError
        record = json.loads(message.partition("\n\n")[2])
    except (KeyError, ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) and "agent" in record else None


def _holders(ws: Workspace, repo: pygit2.Repository, remote: str,
             milestone_id: str) -> dict[str, tuple[pygit2.Oid | str, dict[str, Any]]]:
    """The remote's claims on ``milestone_id`` as ``{task: (commit, claim)}``, fetched now."""
    base = f"{remotes.tracking_claims(remote)}{milestone_id}/"
    remotes.fetch(ws, remote, timeout=NETWORK_TIMEOUT, refspecs=[f"+{claim_ref(milestone_id, '*')}:{base}*"])
    found: dict[str, tuple[pygit2.Oid | str, dict[str, Any]]] = {}
    for name in repo.references:
        if name.startswith(base):
            oid = repo.references[name].target
            found[name[len(base):]] = (oid, read_claim(repo, oid) or {"agent": "unknown", "status": "claimed"})
    return found


def _remote_value(ws: Workspace, remote: str, ref: str) -> str | None:
    """Read a ref back from the remote (``git ls-remote``): what it holds now, for sure."""
    proc = remotes.network_git(ws, ["ls-remote", remote, ref], timeout=NETWORK_TIMEOUT)
    if proc.returncode != 0:
        raise remotes.failure("asking", remote, proc)
    for line in proc.stdout.splitlines():
        oid, _, name = line.partition("\t")
        if name == ref:
            return oid
    return None


def _cas_push(ws: Workspace, remote: str, ref: str, new: pygit2.Oid | str | None,
              expect: pygit2.Oid | str | None) -> bool:
    """Set (or delete, ``new=None``) ``ref`` on the remote if it still holds ``expect`` (None: absent).

    True only when the remote reads back exactly what we pushed.
    """
    lease = f"--force-with-lease={ref}:{expect if expect is not None else ''}"
    spec = f"{new}:{ref}" if new is not None else f":{ref}"
    result = remotes.push(ws, remote, [spec], options=[lease], timeout=NETWORK_TIMEOUT)
    if result.get(ref, "").startswith("rejected"):
        return False
    return _remote_value(ws, remote, ref) == (str(new) if new is not None else None)


def _mirror(repo: pygit2.Repository, ref: str, oid: pygit2.Oid | str | None) -> None:
    """Our local copy of a claim we hold on a remote (deleted when we no longer hold it)."""
    if oid is None:
        if repo.references.get(ref) is not None:
            repo.references.delete(ref)
    else:
        repo.references.create(ref, oid, force=True)


def _claim_remote(txn: Transaction, milestone: Milestone, candidates: list[str], agent: str, lease: float,
                  remote: str) -> tuple[str | None, dict[str, Any] | None, list[dict[str, Any]]]:
    """Try the candidates in order until the remote gives us one: (task, claim, tasks held elsewhere)."""
    ws = txn.ws
    repo = statebranch.open_repo(ws)
    holders = _holders(ws, repo, remote, milestone.id)
    elsewhere: list[dict[str, Any]] = []
    for tid in candidates:
        ref = claim_ref(milestone.id, tid)
        expect = None
        if tid in holders:
            oid, held = holders[tid]
            ours = held.get("agent") == agent and held.get("host") == socket.gethostname()
            if held.get("status") != "claimed" or not (ours or _lapsed(held.get("lease_until"))):
                elsewhere.append({"task_id": tid, **_public(held)})
                continue
            # its lease ran out, or it is this agent's own claim that the log never took in (the
            # process died between the push and the write): take it over, if nobody else does first
            expect = oid
        record = {"milestone_id": milestone.id, "task_id": tid, "agent": agent, "status": "claimed",
                  "claim_id": secrets.token_hex(8), "claimed_at": clock.now_iso(), "lease_until": _until(lease),
                  "host": socket.gethostname(), "remote": remotes.public_remote(remote)}
        oid = _write_claim(repo, record)
        if _cas_push(ws, remote, ref, oid, expect):
            # the push decided; our copy of it follows once the claim is recorded
            txn.after_commit(functools.partial(_mirror, repo, ref, oid))
            if expect is not None:
                txn.record(milestone, "claim_taken_over", task_id=tid, agent=agent, previous=_public(holders[tid][1]))
            return tid, {**record, "commit": str(oid)}, elsewhere
        winner = _holders(ws, repo, remote, milestone.id).get(tid)
        held = _public(winner[1]) if winner else {"agent": None, "status": "released"}
        elsewhere.append({"task_id": tid, **held})
        txn.record(milestone, "claim_lost", task_id=tid, agent=agent, remote=remote, holder=held.get("agent"))
    return None, None, elsewhere


def _public(claim: dict[str, Any]) -> dict[str, Any]:
    return {k: claim.get(k) for k in ("agent", "status", "host", "claimed_at", "lease_until")}


def _update_remote(txn: Transaction, milestone: Milestone, task_id: str, **changes: Any) -> dict[str, Any] | None:
    """Move our remote claim on a task forward (renewed, done) or delete it (``delete=True``).

    Returns None when we hold no remote claim on it, else ``{"remote", "ok", "holder",
    "unreachable"}``.  An unreachable remote does not undo the local change: the local
    copy of the claim moves on and ``sync`` pushes it later (see ``push_pending``).
    """
    ws = txn.ws
    repo = statebranch.open_repo(ws)
    ref = claim_ref(milestone.id, task_id)
    mine = repo.references.get(ref)
    ours = read_claim(repo, mine.target) if mine is not None else None
    if mine is None or not ours or not ours.get("remote"):
        return None
    remote = ours["remote"]
    new = None if changes.pop("delete", False) else _write_claim(repo, {**ours, **changes})
    answer: dict[str, Any] = {"remote": remote, "ok": True, "holder": None, "unreachable": None}
    try:
        answer["ok"] = _cas_push(ws, remote, ref, new, mine.target)
    except RuntimeFailure as exc:
        answer["unreachable"] = str(exc)
    if not answer["ok"] and new is not None:
        holder = _holders(ws, repo, remote, milestone.id).get(task_id)
        answer["holder"] = _public(holder[1]) if holder else None
    txn.after_commit(lambda: _mirror(repo, ref, new if answer["ok"] else None))
    return answer


def _remote_warning(task_id: str, answer: dict[str, Any] | None) -> str | None:
    if answer is None or not answer["unreachable"]:
        return None
    return (f"{answer['unreachable']}: the claim on {task_id} changed here only; "
            f"`milestoned sync {answer['remote']}` pushes it")


# -- the verbs --------------------------------------------------------------------------------
def claim_next(engine: Engine, milestone_id: str, agent: str, *, lease: float,
               remote: str | None = None) -> dict[str, Any]:
    """Give ``agent`` one ready task (the one it already holds, if any); the answer of ``next --claim``."""
    check_agent(agent)
    with engine.transaction() as txn:
        ms = txn.milestone(milestone_id)
        lifecycle.require_running(ms, "claim a task")
        expired = expire(txn, ms)
        mine = held_by(ms, agent)
        claim: dict[str, Any] | None = None
        elsewhere: list[dict[str, Any]] = []
        if mine:
            task_id: str | None = mine[0]
        elif remote is not None:
            task_id, claim, elsewhere = _claim_remote(txn, ms, ms.ready, agent, lease, remote)
        else:
            task_id = ms.ready[0] if ms.ready else None
        if task_id is not None and not mine:
            until = claim["lease_until"] if claim else _until(lease)
            txn.record(ms, "task_claimed", task_id=task_id, agent=agent, lease_until=until,
                       remote=remotes.public_remote(remote) if remote else None,
                       claim=claim["commit"] if claim else None)
    if task_id is not None:
        hooks.hold_task(engine.ws, ms.id, task_id)  # this worktree's commits get its trailers
    row = next((r for r in views.task_rows(ms) if r["id"] == task_id), None)
    return {"schema": 1, "milestone_id": ms.id, "agent": agent, "claimed": row, "already_held": bool(mine),
            "trailers": trailers.for_task(ms.id, task_id) if task_id is not None else None,
            "remote": remote, "expired": expired, "held_elsewhere": elsewhere}


def heartbeat(engine: Engine, milestone_id: str, agent: str, task_id: str | None, *, lease: float) -> dict[str, Any]:
    """Renew the lease of the task(s) ``agent`` holds; a remote claim taken over meanwhile is reported lost."""
    check_agent(agent)
    renewed: list[dict[str, Any]] = []
    lost: list[dict[str, Any]] = []
    warnings: list[str] = []
    with engine.transaction() as txn:
        ms = txn.milestone(milestone_id)
        for tid in _held_task(ms, agent, task_id):
            until = _until(lease)
            answer = _update_remote(txn, ms, tid, lease_until=until)
            if answer is not None and not answer["ok"]:
                holder = (answer["holder"] or {}).get("agent")
                txn.record(ms, "claim_expired", task_id=tid, agent=agent, reason="taken over on the remote",
                           holder=holder)
                lost.append({"task_id": tid, "holder": answer["holder"]})
                continue
            txn.record(ms, "claim_renewed", task_id=tid, agent=agent, lease_until=until)
            renewed.append({"task_id": tid, "lease_until": until})
            warnings += filter(None, [_remote_warning(tid, answer)])
    return {"schema": 1, "milestone_id": ms.id, "agent": agent, "renewed": renewed, "lost": lost,
            "warnings": warnings}


def release(engine: Engine, milestone_id: str, agent: str, task_id: str | None) -> dict[str, Any]:
    """Give the task(s) back to the ready set (and drop the remote claim we hold on them)."""
    check_agent(agent)
    with engine.transaction() as txn:
        ms = txn.milestone(milestone_id)
        tasks = _held_task(ms, agent, task_id)
        warnings: list[str] = []
        for tid in tasks:
            answer = _update_remote(txn, ms, tid, delete=True)
            if answer is not None and answer["unreachable"]:
                warnings.append(f"{answer['unreachable']}: the claim on {tid} stays on {answer['remote']} "
                                "until its lease runs out")
            txn.record(ms, "claim_released", task_id=tid, agent=agent)
    hooks.let_go(engine.ws, ms.id, tasks)
    return {"schema": 1, "milestone_id": ms.id, "agent": agent, "released": tasks, "ready": ms.ready,
            "warnings": warnings}


def done(engine: Engine, milestone_id: str, agent: str, task_id: str | None) -> dict[str, Any]:
    """Complete the task ``agent`` holds; a remote claim stays, marked done, so no clone takes it again."""
    check_agent(agent)
    warnings: list[str] = []
    with engine.transaction() as txn:
        ms = txn.milestone(milestone_id)
        tid = _one_held_task(ms, agent, task_id, "done")
        answer = _update_remote(txn, ms, tid, status="done", lease_until=None, done_at=clock.now_iso())
        if answer is not None and not answer["ok"]:
            holder = (answer["holder"] or {}).get("agent")
            warnings.append(f"the claim on {tid} at {answer['remote']} had passed to {holder or 'nobody'}")
        warnings += filter(None, [_remote_warning(tid, answer)])
        lifecycle.refuse(lifecycle.complete(txn, ms, tid, agent=agent))
    hooks.let_go(engine.ws, ms.id, [tid])
    done_count, total, percentage = ms.progress()
    return {"schema": 1, "milestone_id": ms.id, "agent": agent, "completed": tid, "milestone_status": ms.status,
            "progress": {"percentage": percentage, "tasks_completed": done_count, "tasks_total": total},
            "ready": ms.ready, "warnings": warnings}


def push_pending(ws: Workspace, remote: str, repo: pygit2.Repository, *, timeout: float) -> dict[str, list[str]]:
    """For ``sync``: push our claims whose last update did not reach ``remote``; list those we lost.

    Only a claim we still hold there (same ``claim_id``) is pushed, with a lease on
    the value the remote has: a claim someone else took over is never overwritten.
    A lost claim is only reported here; the holder's next heartbeat records it.
    """
    pushed, lost = [], []
    tracking = remotes.tracking_claims(remote)
    for name in list(repo.references):
        if not name.startswith(remotes.CLAIMS_PREFIX):
            continue
        ours_id = repo.references[name].target
        ours = read_claim(repo, ours_id) or {}
        if ours.get("remote") != remote:
            continue
        theirs_ref = repo.references.get(tracking + name[len(remotes.CLAIMS_PREFIX):])
        if theirs_ref is not None and theirs_ref.target == ours_id:
            continue
        theirs = read_claim(repo, theirs_ref.target) if theirs_ref is not None else None
        if theirs_ref is None or theirs is None or theirs.get("claim_id") != ours.get("claim_id"):
            lost.append(name)
        elif _cas_push(ws, remote, name, ours_id, theirs_ref.target):
            pushed.append(name)
        else:
            lost.append(name)
    return {"pushed": pushed, "lost": lost}


def block(engine: Engine, milestone_id: str, agent: str, task_id: str | None, reason: str) -> dict[str, Any]:
    """The agent reports what stops the task it holds, instead of pushing on: the task is blocked
    (only its dependents wait) and no longer the agent's; a remote claim says so."""
    check_agent(agent)
    if not reason.strip():
        raise UserError("a blocker needs a reason", hint="say what stops the task")
    with engine.transaction() as txn:
        ms = txn.milestone(milestone_id)
        tid = _one_held_task(ms, agent, task_id, "blocked")
        _update_remote(txn, ms, tid, status="blocked", lease_until=None)
        lifecycle.refuse(lifecycle.block(txn, ms, tid, reason, agent=agent))
    hooks.let_go(engine.ws, ms.id, [tid])
    return {"schema": 1, "milestone_id": ms.id, "agent": agent, "blocked": tid, "reason": reason,
            "milestone_status": ms.status, "ready": ms.ready}
