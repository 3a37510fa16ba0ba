"""Checkpoints: the seed's "auto-commit ``git add .``", done without touching the user's branch.

A checkpoint is a commit of the worktree as it stands — tracked changes and untracked
files (plans included: they are the user's work), ignored ones excepted — built in a
temporary index (like ``git stash create``, but without refreshing the real index) and
kept under
``refs/milestoned/checkpoints/<milestone>/<time>-<hex>``.  HEAD, the index and the
working tree are never touched; nothing lands on a branch.  A session save takes one
when there is uncommitted work, so that work is never lost with the session.  They
stay in this clone: ``sync`` does not push them (untracked files may hold what must
not leave the machine).  Restore one with ``git restore --source=REF --worktree -- .``.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from milestoned.core import clock
from milestoned.files.workspace import Workspace
from milestoned.git import queries as gitutil
from milestoned.git.identity import Identity

PREFIX = "refs/milestoned/checkpoints/"


@dataclass(frozen=True)
class Checkpoint:
    ref: str
    commit: str
    files_changed: int

    @property
    def restore_hint(self) -> str:
        return f"git restore --source={self.ref} --worktree -- ."


def _latest(ws: Workspace, milestone_id: str) -> tuple[str, str] | None:
    """(ref, tree) of the newest checkpoint of a milestone."""
    out = gitutil.git(["for-each-ref", "--count=1", "--sort=-creatordate", "--format=%(refname) %(tree)",
                       f"{PREFIX}{milestone_id}/"], ws.worktree)
    ref, _, tree = out.partition(" ")
    return (ref, tree) if ref else None


def take(ws: Workspace, milestone_id: str, changes: list[str] | None = None) -> Checkpoint | None:
    """Snapshot the worktree; None when there is nothing uncommitted.  The same snapshot twice
    in a row is one checkpoint."""
    changes = gitutil.porcelain_status(ws.worktree) if changes is None else changes
    if not changes:
        return None
    identity = Identity.detect(ws.worktree)
    with tempfile.TemporaryDirectory(prefix="milestoned-checkpoint-") as scratch:
        index = Path(scratch) / "index"
        real = gitutil.git_path(ws.worktree, "index")
        if real.exists():  # copy2 keeps the mtime: git's racy-clean check depends on it
            shutil.copy2(real, index)
        env = {**identity.full_env, "GIT_INDEX_FILE": str(index)}
        gitutil.git(["add", "--all", "--", "."], ws.worktree, env=env)
        tree = gitutil.git(["write-tree"], ws.worktree, env=env)
    latest = _latest(ws, milestone_id)
    if latest is not None and latest[1] == tree:
        return Checkpoint(latest[0], gitutil.git(["rev-parse", latest[0]], ws.worktree), len(changes))
    head = gitutil.head_commit(ws.worktree)
    message = f"milestoned checkpoint of {milestone_id}: {len(changes)} uncommitted change(s)"
    commit = gitutil.git(["commit-tree", tree, *(["-p", head] if head else []), "-m", message], ws.worktree,
                         env=identity.full_env)
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    ref = f"{PREFIX}{milestone_id}/{stamp}-{secrets.token_hex(3)}"
    gitutil.git(["update-ref", "-m", "milestoned checkpoint", ref, commit, ""], ws.worktree)  # create only
    return Checkpoint(ref, commit, len(changes))


def listing(ws: Workspace, milestone_id: str) -> list[dict[str, str]]:
    """A milestone's checkpoints, newest first."""
    out = gitutil.git(["for-each-ref", "--sort=-creatordate", "--format=%(refname)%09%(objectname)%09%(creatordate:iso-strict)",
                       f"{PREFIX}{milestone_id}/"], ws.worktree)
    rows = []
    for line in out.splitlines():
        ref, commit, when = line.split("\t")
        rows.append({"ref": ref, "commit": commit, "created_at": when})
    return rows
