"""The git side of ``land``: the merge made off to the side, the worktrees that show the target,
a scratch checkout for the tests, and the move of the target itself.

Nothing here touches a ref or a checkout until ``move`` is called: the merge is made in
memory with libgit2 (its commit object is written, and nothing names it), and the
tests run in a detached worktree of the runtime dir.  ``move`` is the one step that
changes what the user sees, and it is a compare-and-swap: ``update-ref NEW OLD`` for a
branch no worktree shows, and for one that a (clean) worktree shows, ``git merge
--ff-only`` in that worktree, which brings its files along and never moves a branch
anywhere but forward.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pygit2

from milestoned.core.errors import RuntimeFailure, UserError
from milestoned.files.workspace import Workspace
from milestoned.git import queries as gitutil
from milestoned.git.identity import Identity


@dataclass(frozen=True)
class Merge:
    """The milestone branch brought into the target, as it would be."""

    kind: str  # "up-to-date" (nothing to land), "fast-forward", "merge" or "conflict"
    old: str  # the target's tip it was made on
    new: str | None = None  # the target's tip afterwards
    conflicts: tuple[str, ...] = ()


def branch_tip(repo: pygit2.Repository, branch: str) -> str | None:
    ref = repo.references.get(f"refs/heads/{branch}")
    return str(ref.resolve().target) if ref is not None else None


def target_problem(repo: pygit2.Repository, branch: str | None) -> str | None:
    """Why ``branch`` cannot be landed into (a tag, milestoned's own branches, nothing), or None."""
    if branch is None:
        return "no target branch: the milestone was activated on a detached HEAD"
    if not branch or branch.startswith("-") or not pygit2.reference_is_valid_name(f"refs/heads/{branch}"):
        return f"{branch!r} is not a branch name"
    if branch.startswith(("milestone/", "milestoned/")):
        return f"{branch} is one of milestoned's own branches, which work is landed from, never into"
    if repo.references.get(f"refs/heads/{branch}") is None:
        if repo.references.get(f"refs/tags/{branch}") is not None:
            return f"{branch} is a tag, not a branch"
        return f"there is no branch {branch}"
    return None


def compute(repo: pygit2.Repository, source: str, target: str, message: str, identity: Identity) -> Merge:
    """The merge of ``source`` (a commit) into branch ``target``, made in memory."""
    old = branch_tip(repo, target)
    if old is None:
        raise UserError(f"there is no branch {target}")
    if source == old or repo.descendant_of(old, source):
        return Merge("up-to-date", old, old)
    if repo.descendant_of(source, old):
        return Merge("fast-forward", old, source)
    index = repo.merge_commits(old, source)
    if index.conflicts is not None:
        paths = sorted({entry.path for conflict in index.conflicts for entry in conflict if entry is not None})
        return Merge("conflict", old, None, tuple(paths))
    author, committer = identity.signatures()
    new = repo.create_commit(None, author, committer, message, index.write_tree(repo),
                             [pygit2.Oid(hex=old), pygit2.Oid(hex=source)])
    return Merge("merge", old, str(new))


def worktrees_on(ws: Workspace, branch: str) -> list[Path]:
    """Every worktree (the main one included) that has ``branch`` checked out."""
    return [path for path, shown in gitutil.worktree_heads(ws.worktree) if shown == branch]


def uncommitted(worktree: Path) -> list[str]:
    """What would stop a checkout from moving: changes to tracked files (untracked ones stay put,
    and git refuses by itself to overwrite one)."""
    return [line[3:] for line in gitutil.porcelain_status(worktree) if not line.startswith("??")]


def index_matches(worktree: Path, commit: str) -> bool:
    """Does ``worktree``'s index hold exactly ``commit``'s tree?  (A land killed inside its merge.)"""
    return gitutil.run_git(["diff-index", "--cached", "--quiet", commit, "--"], worktree, check=False).returncode == 0


class Scratch:
    """A detached worktree of one commit under the runtime dir, for running the tests on it."""

    def __init__(self, ws: Workspace, milestone_id: str, commit: str) -> None:
        self.ws = ws
        self.path = scratch_dir(ws, milestone_id) / uuid.uuid4().hex[:12]
        self.commit = commit

    def __enter__(self) -> Path:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        gitutil.git(["worktree", "add", "--quiet", "--detach", str(self.path), self.commit], self.ws.worktree)
        return self.path

    def __exit__(self, *exc: object) -> None:
        gitutil.run_git(["worktree", "remove", "--force", str(self.path)], self.ws.worktree, check=False)
        shutil.rmtree(self.path, ignore_errors=True)


def scratch_dir(ws: Workspace, milestone_id: str) -> Path:
    return ws.runtime_dir / "land" / milestone_id


def scratch_left(ws: Workspace, milestone_id: str) -> list[Path]:
    """Scratch worktrees a killed ``land`` of this milestone left (dead once its lock is held)."""
    base = scratch_dir(ws, milestone_id)
    return sorted(base.iterdir()) if base.is_dir() else []


def clear_scratch(ws: Workspace, milestone_id: str) -> list[Path]:
    """Remove the scratch worktrees a killed ``land`` left (the caller holds the milestone's lock)."""
    left = scratch_left(ws, milestone_id)
    for path in left:
        shutil.rmtree(path, ignore_errors=True)
    if left:
        gitutil.run_git(["worktree", "prune"], ws.worktree, check=False)
    return left


def move(ws: Workspace, branch: str, merge: Merge, shown_in: list[Path], identity: Identity) -> None:
    """Move ``branch`` from ``merge.old`` to ``merge.new``, bringing along the worktree that shows it."""
    assert merge.new is not None
    if not shown_in:
        proc = gitutil.run_git(["update-ref", "-m", f"milestoned: land into {branch}", f"refs/heads/{branch}",
                                merge.new, merge.old], ws.worktree, check=False)
        if proc.returncode != 0:
            raise Moved(branch)
        return
    worktree = shown_in[0]
    if gitutil.git(["rev-parse", "--verify", "HEAD"], worktree) != merge.old:
        raise Moved(branch)
    proc = gitutil.run_git(["merge", "--ff-only", "--quiet", merge.new], worktree, check=False, env=identity.env)
    if proc.returncode == 0:
        return
    if gitutil.git(["rev-parse", "--verify", "HEAD"], worktree) != merge.old:
        raise Moved(branch)
    detail = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    raise UserError(f"git merge --ff-only in {worktree} refused: {' '.join(detail[:3]) or proc.returncode}",
                    hint="move those files away, then land again; nothing was changed")


def finish_move(ws: Workspace, branch: str, merge: Merge) -> None:
    """A land killed after its worktree's files were brought up and before the ref moved: move the ref."""
    assert merge.new is not None
    gitutil.git(["update-ref", "-m", f"milestoned: land into {branch} (finished)", f"refs/heads/{branch}",
                 merge.new, merge.old], ws.worktree)


class Moved(RuntimeFailure):
    """The target moved while the land was being prepared: landing now would overwrite it."""

    def __init__(self, branch: str) -> None:
        super().__init__(f"{branch} moved while the land was being prepared; nothing was changed",
                         hint="land again: the merge is made anew on its new tip")
        self.branch = branch
