"""Talking to git remotes: the state branch, the notes and the claims, fetched and pushed.

Network work goes through the git command line, so credentials, ssh config and
leases work exactly as the user has them; never a prompt (``GIT_TERMINAL_PROMPT=0``,
no stdin) and always a timeout.  Fetches land in remote-tracking refs of our own,
``refs/milestoned/remotes/<remote>/…``: a forced refspec never overwrites a local ref,
so unpushed local notes or state can never be lost to a fetch.  Notes merge with
``cat_sort_uniq`` (one JSON object per line).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from milestoned.core.errors import RuntimeFailure, UserError
from milestoned.files.workspace import Workspace
from milestoned.git import queries as gitutil
from milestoned.git import statebranch
from milestoned.git.identity import Identity

if TYPE_CHECKING:
    import pygit2

NOTES_REF = "refs/notes/milestoned"
CLAIMS_PREFIX = "refs/milestoned/claims/"
STATE_PATTERN = "refs/heads/milestoned/*"  # the state branch, as a pattern: absent is not an error
TIMEOUT = 120.0
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
    names = {name for name in statebranch.open_repo(ws).remotes.names() if name is not None}
    if remote in names or "/" in remote or ":" in remote:
        return remote
    known = ", ".join(sorted(names)) or "none"
    raise UserError(f"no remote named {remote!r} (remotes: {known})", hint="add one with `git remote add NAME URL`")


def public_remote(remote: str) -> str:
    """A remote as it may be written where others read it: no password, no token in an http URL.

    An ssh user name stays (``ssh://git@host/...`` needs it); credentials then come
    from the user's credential helper, as for any other git command.
    """
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


def failure(what: str, remote: str, proc: subprocess.CompletedProcess[str]) -> RuntimeFailure:
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
        raise failure("fetching from", remote, proc)


def fetch_branch(ws: Workspace, remote: str, branch: str, *, timeout: float = TIMEOUT) -> str | None:
    """Fetch one code branch (a resumed session's) from ``remote``; the ref to start it from, or None
    when the remote has no such branch.  A named remote's branch lands where git keeps it,
    ``refs/remotes/<remote>/<branch>``, so the branch made from it tracks it; a URL's becomes the
    local branch itself (there is nothing to track)."""
    named = remote in {name for name in statebranch.open_repo(ws).remotes.names() if name is not None}
    target = f"refs/remotes/{remote}/{branch}" if named else f"refs/heads/{branch}"
    proc = network_git(ws, ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote,
                            f"+refs/heads/{branch}:{target}"], timeout=timeout)
    if proc.returncode == 0:
        return target
    if "couldn't find remote ref" in proc.stderr:
        return None
    raise failure("fetching from", remote, proc)


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
        raise failure("pushing to", remote, proc)
    return results



# -- notes --------------------------------------------------------------------------------
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
        raise failure("merging the notes of", remote, proc)
    return "merged"


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
        raise failure("asking", remote, proc)
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
