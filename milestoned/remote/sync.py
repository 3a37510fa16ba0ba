"""Exchanging state with a git remote: the state branch, the notes and the claims.

Network work goes through the git command line, so credentials, ssh config and
leases work exactly as the user has them; never a prompt (``GIT_TERMINAL_PROMPT=0``,
no stdin) and always a timeout.  Fetches land in remote-tracking refs of our own,
``refs/milestoned/remotes/<remote>/…``: a forced refspec never overwrites a local ref,
so unpushed local notes or state can never be lost to a fetch.

Histories written concurrently by several clones merge without loss: event logs are
append-only with ids unique across clones, so the merge is their union ordered by
``(clock, timestamp, id)``, and the state is folded from it again; sessions merge by
newest save; notes merge with ``cat_sort_uniq`` (one JSON object per line).  Plans
are not merged here: they are the user's files and travel with the code branches.
A push rejected because the remote moved is retried after a fetch and a merge.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from milestoned.core import ids
from milestoned.core.errors import RuntimeFailure, UserError
from milestoned.files.workspace import Workspace
from milestoned.git import queries as gitutil
from milestoned.git import statebranch
from milestoned.git.identity import Identity
from milestoned.model import events as eventlog

if TYPE_CHECKING:
    import subprocess

    import pygit2

    from milestoned.engine.engine import Engine, Transaction

NOTES_REF = "refs/notes/milestoned"
CLAIMS_PREFIX = "refs/milestoned/claims/"
STATE_PATTERN = "refs/heads/milestoned/*"  # the state branch, as a pattern: absent is not an error
TIMEOUT = 120.0
PUSH_ATTEMPTS = 5
_REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# -- remotes and their tracking refs ----------------------------------------------------
def default_remote(ws: Workspace) -> str | None:
    """``origin`` if there is one, else the only remote, else None."""
    names = list(statebranch.open_repo(ws).remotes.names())
    if "origin" in names:
        return "origin"
    return names[0] if len(names) == 1 else None


def check_remote(ws: Workspace, remote: str) -> str:
    """A configured remote name, or a URL or path git understands; never an option."""
    if not remote or remote.startswith("-"):
        raise UserError(f"{remote!r} is not a remote", hint="name a remote from `git remote -v`, or a URL")
    names = set(statebranch.open_repo(ws).remotes.names())
    if remote in names or "/" in remote or ":" in remote:
        return remote
    known = ", ".join(sorted(names)) or "none"
    raise UserError(f"no remote named {remote!r} (remotes: {known})", hint="add one with `git remote add NAME URL`")


def public_remote(remote: str) -> str:
    """A remote as it may be written where others read it: no password, no token in an http URL.

    An ssh user name stays (``ssh://git@host/...`` needs it); credentials then come
    from the user's credential helper, as for any other git command.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(remote)
    if not parts.scheme or "@" not in parts.netloc:
        return remote
    user, _, host = parts.netloc.rpartition("@")
    keep = "" if parts.scheme in ("http", "https") else user.partition(":")[0] + "@"
    return urlunsplit(parts._replace(netloc=keep + host))


def _slug(remote: str) -> str:
    if _REMOTE_NAME.match(remote) and ".." not in remote and not remote.endswith(".lock"):
        return remote
    return "url-" + hashlib.sha1(remote.encode()).hexdigest()[:12]


def tracking_prefix(remote: str) -> str:
    return f"refs/milestoned/remotes/{_slug(remote)}/"


def tracking_state(remote: str) -> str:
    return tracking_prefix(remote) + "heads/state"


def tracking_notes(remote: str) -> str:
    return tracking_prefix(remote) + "notes"


def tracking_claims(remote: str) -> str:
    return tracking_prefix(remote) + "claims/"


def network_git(ws: Workspace, args: list[str], *, timeout: float = TIMEOUT,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A git command that talks to a remote: no prompt, no stdin, a timeout; returns even on failure."""
    return gitutil.run_git(args, ws.worktree, check=False, input="", timeout=timeout,
                           env={"GIT_TERMINAL_PROMPT": "0", **(env or {})})


def _failure(what: str, remote: str, proc: subprocess.CompletedProcess[str]) -> RuntimeFailure:
    lines = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()]
    cause = lines[-1] if lines else f"exit status {proc.returncode}"
    return RuntimeFailure(f"{what} {remote} failed: {cause}")


def fetch(ws: Workspace, remote: str, *, timeout: float = TIMEOUT, refspecs: Iterable[str] | None = None) -> None:
    """Fetch the state branch, notes and claims of ``remote`` into our tracking refs (pruned)."""
    prefix = tracking_prefix(remote)
    specs = list(refspecs) if refspecs is not None else [
        f"+{STATE_PATTERN}:{prefix}heads/*",
        f"+{NOTES_REF}*:{prefix}notes*",  # a pattern: a remote without notes is not an error
        f"+{CLAIMS_PREFIX}*:{prefix}claims/*",
    ]
    proc = network_git(ws, ["fetch", "--quiet", "--prune", "--no-tags", "--no-write-fetch-head", remote, *specs],
                       timeout=timeout)
    if proc.returncode != 0:
        raise _failure("fetching from", remote, proc)


def push(ws: Workspace, remote: str, specs: list[str], *, options: Iterable[str] = (),
         timeout: float = TIMEOUT) -> dict[str, str]:
    """``git push --porcelain``: for each destination ref, ``ok``, ``uptodate`` or ``rejected: why``."""
    proc = network_git(ws, ["push", "--porcelain", *options, remote, *specs], timeout=timeout)
    results: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or len(parts[0]) != 1:
            continue
        flag, (_, _, dst), summary = parts[0], parts[1].rpartition(":"), parts[2]
        results[dst] = {"!": f"rejected: {summary}", "=": "uptodate"}.get(flag, "ok")
    if proc.returncode != 0 and not results:
        raise _failure("pushing to", remote, proc)
    return results


# -- merging state ------------------------------------------------------------------------
def _session_time(data: bytes) -> str:
    import yaml

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


def absorb(engine: Engine, incoming: dict[str, bytes], base: dict[str, bytes], *, prefer_incoming: bool) -> int:
    """Merge a state tree into the state directory through one engine transaction.

    Returns how many events and sessions came in.  Each merged milestone whose plan this
    checkout has is loaded again, so what the merge changed (a completion on the other
    clone, a task that arrived) is recorded at once.
    """
    taken = 0
    with engine.transaction() as txn:
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
            if engine.exists(mid):
                txn.milestone(mid)
    return taken


def integrate(engine: Engine, incoming: pygit2.Oid | None, *, subject: str, prefer_incoming: bool = False) -> str:
    """Bring a state commit (fetched, or the local tip to restore) into the state directory and the branch.

    Returns what happened: ``none``, ``up-to-date``, ``fast-forward`` or ``merged``.
    The result is committed on the state branch with both histories as parents, so
    the next push is a fast-forward.
    """
    from milestoned.engine import statetree

    if incoming is None:
        return "none"
    ws = engine.ws
    repo = statebranch.open_repo(ws)
    with engine.lock.held():
        local = statebranch.tip(repo)
        if local is not None and (local == incoming or repo.descendant_of(local, incoming)):
            return "up-to-date"
        base_id = repo.merge_base(local, incoming) if local is not None else None
        absorb(engine, statebranch.files_at(repo, incoming), statebranch.files_at(repo, base_id),
               prefer_incoming=prefer_incoming)
        forward = local is None or base_id == local
        statetree.save(engine, subject, parents=[incoming] if forward else [local, incoming], repo=repo)
        return "fast-forward" if forward else "merged"


def restore(engine: Engine) -> int:
    """Put back into the state directory what the state branch holds and it lacks (no event is lost)."""
    repo = statebranch.open_repo(engine.ws)
    with engine.lock.held():
        files = statebranch.files_at(repo, statebranch.tip(repo))
        return absorb(engine, files, files, prefer_incoming=True)


def merge_notes(ws: Workspace, remote: str, repo: pygit2.Repository) -> str:
    """Fold the fetched notes into ``refs/notes/milestoned`` (``cat_sort_uniq``): none/up-to-date/fast-forward/merged."""
    theirs = statebranch.tip(repo, tracking_notes(remote))
    if theirs is None:
        return "none"
    ours = statebranch.tip(repo, NOTES_REF)
    if ours is not None and (ours == theirs or repo.descendant_of(ours, theirs)):
        return "up-to-date"
    if ours is None or repo.descendant_of(theirs, ours):
        statebranch.move_ref(repo, theirs, ours, f"milestoned: notes from {remote}", ref=NOTES_REF)
        return "fast-forward"
    proc = gitutil.run_git(["notes", f"--ref={NOTES_REF}", "merge", "--quiet", "--strategy=cat_sort_uniq",
                            tracking_notes(remote)], ws.worktree, check=False,
                           env=Identity.detect(ws.worktree).full_env)
    if proc.returncode != 0:
        raise _failure("merging the notes of", remote, proc)
    return "merged"


# -- the sync command ---------------------------------------------------------------------
def sync(engine: Engine, remote: str, *, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Fetch, merge, save and push the state branch and notes; reconcile this clone's claims."""
    from milestoned.engine import claims, statetree

    ws = engine.ws
    repo = statebranch.open_repo(ws)
    report: dict[str, Any] = {"schema": 1, "remote": remote, "state": "none", "notes": "none",
                              "pushed": [], "push_attempts": 0, "claims": {}}
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        fetch(ws, remote, timeout=timeout)
        with engine.lock.held():
            merged = integrate(engine, statebranch.tip(repo, tracking_state(remote)),
                               subject=f"sync: merge state from {remote}")
            if merged in ("merged", "fast-forward") or report["state"] == "none":
                report["state"] = merged
            if statetree.save(engine, f"sync: local state for {remote}", repo=repo) is not None:
                report["saved"] = True
        notes = merge_notes(ws, remote, repo)
        if notes != "up-to-date" or report["notes"] == "none":
            report["notes"] = notes
        specs = [f"{ref}:{ref}" for ref in (statebranch.REF, NOTES_REF) if statebranch.tip(repo, ref) is not None]
        report["push_attempts"] = attempt
        results = push(ws, remote, specs, timeout=timeout) if specs else {}
        rejected = {ref: why for ref, why in results.items() if why.startswith("rejected")}
        report["pushed"] = sorted(ref for ref, why in results.items() if why == "ok")
        if not rejected:
            break
        report.setdefault("rejected", []).append(rejected)
    else:
        raise RuntimeFailure(f"pushing to {remote} was rejected {PUSH_ATTEMPTS} times: the remote keeps moving",
                             hint="run `milestoned sync` again")
    report["claims"] = claims.push_pending(ws, remote, repo, timeout=timeout)
    return report


def unsynced(ws: Workspace, remote: str, *, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Refs that differ between this clone and ``remote`` (asks the remote), for ``doctor``.

    Each row: ``ref``, ``local``, ``remote`` (commit ids or None) and ``status``:
    ``not pushed``, ``not fetched``, ``ahead``, ``behind``, ``diverged``, or
    ``behind or diverged (fetch to know)`` when the remote's commit is not here yet.
    Claims count only where this clone holds one: other clones' claims are theirs.
    """
    repo = statebranch.open_repo(ws)
    proc = network_git(ws, ["ls-remote", remote, statebranch.REF, NOTES_REF, f"{CLAIMS_PREFIX}*"], timeout=timeout)
    if proc.returncode != 0:
        raise _failure("asking", remote, proc)
    theirs = {ref: oid for oid, _, ref in (line.partition("\t") for line in proc.stdout.splitlines()) if ref}
    ours = {ref: str(statebranch.tip(repo, ref)) for ref in (statebranch.REF, NOTES_REF)
            if statebranch.tip(repo, ref) is not None}
    ours.update({ref: str(statebranch.tip(repo, ref)) for ref in repo.references if ref.startswith(CLAIMS_PREFIX)})
    rows = []
    for ref in sorted(set(ours) | {r for r in theirs if not r.startswith(CLAIMS_PREFIX)}):
        local, there = ours.get(ref), theirs.get(ref)
        if local == there:
            continue
        if there is None:
            status = "not pushed"
        elif local is None:
            status = "not fetched"
        elif there not in repo:
            status = "behind or diverged (fetch to know)"
        elif repo.descendant_of(local, there):
            status = "ahead"
        elif repo.descendant_of(there, local):
            status = "behind"
        else:
            status = "diverged"
        rows.append({"ref": ref, "local": local, "remote": there, "status": status})
    return rows
