"""Taking in another clone's state: event logs by union, sessions by newest save.

Histories written concurrently by several clones merge without loss: event logs are
append-only with ids unique across clones, so the merge is their union ordered by
``(clock, timestamp, id)`` and the state is folded from it again; sessions go to the
side that changed since the common base, or to the newer save when both did.  Plans
are not merged here: they are the user's files and travel with the code branches.
Everything is written through one engine transaction, and the result committed on
the state branch with both histories as parents, so the next push is a fast-forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from milestoned.core import ids
from milestoned.engine import statetree
from milestoned.engine.engine import Engine, Transaction
from milestoned.git import statebranch
from milestoned.model import events as eventlog

if TYPE_CHECKING:
    import pygit2


def _session_time(data: bytes) -> str:
    try:
        record = yaml.safe_load(data)
        session = record.get("session") or {}
        return max(str(session.get("saved_at") or ""), str(session.get("resumed_at") or ""))
    except (yaml.YAMLError, AttributeError):
        return ""


def _absorb_sessions(txn: Transaction, incoming: dict[str, bytes], base: dict[str, bytes],
                     prefer_incoming: bool) -> int:
    """Session files: the side that changed since the base wins; if both did, the newer save."""
    taken = 0
    for key, theirs in incoming.items():
        folder, _, name = key.partition("/")
        session_id = name[: -len(".yaml")] if name.endswith(".yaml") else ""
        if folder != "sessions" or not ids.is_valid_id(session_id):
            continue
        path = txn.ws.session_path(session_id)
        ours = path.read_bytes() if path.is_file() else None
        if ours == theirs:
            continue
        before = base.get(key)
        if ours is not None and ours != before:
            if theirs == before:
                continue  # only we changed it
            ours_time, theirs_time = _session_time(ours), _session_time(theirs)
            if ours_time > theirs_time or (ours_time == theirs_time and not prefer_incoming):
                continue  # both changed it: the newer save wins
        txn.write_session(session_id, theirs.decode("utf-8", "replace"))
        taken += 1
    return taken


def absorb(txn: Transaction, incoming: dict[str, bytes], base: dict[str, bytes], *, prefer_incoming: bool) -> int:
    """Merge a state tree into the state directory, in ``txn``; how many events and sessions came in.

    Each merged milestone whose plan this checkout has is loaded again, so what the merge
    changed (a completion on the other clone, a task that arrived) is recorded at once.
    """
    taken = 0
    merged = []
    for key, data in sorted(incoming.items()):
        mid = statebranch.milestone_id_of(key)
        if key.startswith("logs/") and mid and ids.is_valid_id(mid):
            added = txn.merge_log(mid, eventlog.parse_lines(data).events)
            if added:
                merged.append(mid)
                taken += added
    taken += _absorb_sessions(txn, incoming, base, prefer_incoming)
    for mid in merged:
        if txn.engine.exists(mid):
            txn.milestone(mid)
    return taken


def integrate(txn: Transaction, incoming: pygit2.Oid | None, *, subject: str, prefer_incoming: bool = False) -> str:
    """Bring a state commit (fetched, or the local tip to restore) into the state directory, in ``txn``.

    Returns what happened: ``none``, ``up-to-date``, ``fast-forward`` or ``merged``.  Once
    the transaction is written, the result is committed on the state branch with both
    histories as parents, so the next push is a fast-forward; should that commit fail,
    the merged state is still in the state directory, and the next save commits it.
    """
    if incoming is None:
        return "none"
    engine = txn.engine
    repo = statebranch.open_repo(engine.ws)
    local = statebranch.tip(repo)
    if local is not None and (local == incoming or repo.descendant_of(local, incoming)):
        return "up-to-date"
    base_id = repo.merge_base(local, incoming) if local is not None else None
    absorb(txn, statebranch.files_at(repo, incoming), statebranch.files_at(repo, base_id),
           prefer_incoming=prefer_incoming)
    forward = local is None or base_id == local
    parents = [incoming] if local is None or forward else [local, incoming]
    txn.after_commit(lambda: statetree.save(engine, subject, parents=parents, repo=repo))
    return "fast-forward" if forward else "merged"


def restore(txn: Transaction) -> int:
    """Put back into the state directory what the state branch holds and it lacks (no event is lost)."""
    repo = statebranch.open_repo(txn.ws)
    files = statebranch.files_at(repo, statebranch.tip(repo))
    return absorb(txn, files, files, prefer_incoming=True)


def take_in(engine: Engine, incoming: pygit2.Oid | None, *, subject: str, local_subject: str) -> tuple[str, bool]:
    """``sync``'s merge: ``integrate``, then commit what this clone has that the branch lacks.

    Returns (what happened, whether that second commit was made)."""
    saved: list[bool] = []
    with engine.transaction() as txn:
        merged = integrate(txn, incoming, subject=subject)
        txn.after_commit(lambda: saved.append(statetree.save(engine, local_subject) is not None))
    return merged, bool(saved and saved[0])
