"""What ``gc`` may remove of one milestone's worktrees and branches, proven before it acts.

A task branch (``milestone/M/T``) goes only when every commit on it is reachable from a
ref that stays (the milestone branch, the branch it landed in, a checkpoint): that is
asked of git (``rev-list --count B --not KEEP...``) right before, and the deletion is a
compare-and-swap on the tip that was proven, so a branch that moved meanwhile stays.
A task worktree goes only when ``git status`` shows nothing in it, untracked files
included.  Every step can be cut short by ``kill -9`` and taken up again: a worktree is
first renamed aside (git then sees it gone), its registration pruned, its branch
deleted, and the renamed files deleted last; the next run finds each leftover again.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from milestoned.core.errors import display_path
from milestoned.files.runlock import processes_in
from milestoned.files.workspace import Workspace
from milestoned.git import queries as gitutil
from milestoned.git.worktrees import milestone_branch

TRASH_MARK = ".removed-"  # a worktree renamed aside on its way out (Worktrees.remove names them so too)
CHECKPOINTS = "refs/milestoned/checkpoints/"


@dataclass(frozen=True)
class Item:
    """One thing gc looked at: what it is, and why it stays (``keep`` None: it goes)."""

    kind: str  # "branch", "worktree", "registration", "leftover"
    name: str
    keep: str | None = None
    tip: str | None = None  # a branch's tip, as proven
    worktree: Path | None = None  # a branch's worktree of ours, which goes with it

    def row(self, removed: bool) -> dict[str, str | None]:
        action = "kept" if self.keep else ("removed" if removed else "would remove")
        return {"kind": self.kind, "name": self.name, "action": action, "why": self.keep,
                "worktree": display_path(self.worktree) if self.worktree else None}


def tips(ws: Workspace, refs: Iterable[str]) -> dict[str, str]:
    """The tip of each ref that exists (``for-each-ref`` once)."""
    wanted = list(refs)
    if not wanted:
        return {}
    out = gitutil.git(["for-each-ref", "--format=%(objectname) %(refname)", *wanted], ws.worktree)
    return {name: sha for sha, _, name in (line.partition(" ") for line in out.splitlines() if line)}


def unreached(ws: Workspace, tip: str, keep: Iterable[str]) -> int:
    """How many commits reachable from ``tip`` no ref of ``keep`` reaches."""
    lines = [tip, *(f"^{sha}" for sha in keep)]
    out = gitutil.git(["rev-list", "--count", "--stdin"], ws.worktree, input="\n".join(lines) + "\n")
    return int(out or 0)


def _commits(count: int) -> str:
    return "1 commit" if count == 1 else f"{count} commits"


class Sweep:
    """The decisions for one milestone; ``apply`` carries out those that remove something."""

    def __init__(self, ws: Workspace, milestone_id: str, landed_target: str | None, *, completed: bool) -> None:
        self.ws = ws
        self.mid = milestone_id
        self.base = ws.runtime_dir / "worktrees" / milestone_id
        prefix = f"refs/heads/milestone/{milestone_id}/"
        refs = tips(ws, [prefix, CHECKPOINTS, *([f"refs/heads/{landed_target}"] if landed_target else [])])
        self.branches = {name[len("refs/heads/"):]: sha for name, sha in refs.items() if name.startswith(prefix)}
        self.checkpoints = [sha for name, sha in refs.items() if name.startswith(CHECKPOINTS)]
        self.target = refs.get(f"refs/heads/{landed_target}") if landed_target else None
        self.landed_target = landed_target
        self.heads = {path: branch for path, branch in gitutil.worktree_heads(ws.worktree)}
        self.busy = processes_in(path for path in self.heads if self._is_ours(path))  # a task outlived its run
        self.completed = completed
        self.items: list[Item] = []

    # -- deciding --------------------------------------------------------------------------
    def decide(self) -> list[Item]:
        ours = milestone_branch(self.mid)
        keep = [*self.checkpoints, *([self.target] if self.target else [])]
        mine = self._milestone_branch(ours, keep)
        if mine.keep and ours in self.branches:
            keep.append(self.branches[ours])  # it stays, and keeps what it reaches
        task_items = [self._task(branch, sha, keep) for branch, sha in sorted(self.branches.items()) if branch != ours]
        self.items = [*task_items, *self._stray_worktrees(), *self._leftovers()]
        if ours in self.branches:
            self.items.append(mine)
        return self.items

    def _milestone_branch(self, branch: str, keep: list[str]) -> Item:
        tip = self.branches.get(branch)
        if tip is None:
            return Item("branch", branch, "not there")
        if not self.target:
            return Item("branch", branch, "not landed yet (milestoned land)", tip)
        if not self.completed:
            return Item("branch", branch, "the milestone is not completed: its next tasks merge here", tip)
        left = unreached(self.ws, tip, keep)
        if left:
            return Item("branch", branch, f"{_commits(left)} not on {self.landed_target}", tip)
        if self._checked_out(branch):
            return Item("branch", branch, f"checked out in {display_path(self._checked_out(branch) or '')}", tip)
        return Item("branch", branch, None, tip)

    def _task(self, branch: str, tip: str, keep: list[str]) -> Item:
        shown = self._checked_out(branch)
        if shown is not None and not self._is_ours(shown):
            return Item("branch", branch, f"checked out in {display_path(shown)}", tip)
        if shown is not None and shown in self.busy:
            return Item("branch", branch, f"a process still works in its worktree (pid {self.busy[shown][0]})", tip,
                        shown)
        if shown is not None:
            changed = gitutil.porcelain_status(shown)
            if changed:
                return Item("branch", branch, f"its worktree has {len(changed)} uncommitted file(s)", tip, shown)
        left = unreached(self.ws, tip, keep)
        if left:
            return Item("branch", branch, f"{_commits(left)} merged nowhere", tip, shown)
        return Item("branch", branch, None, tip, shown)

    def _stray_worktrees(self) -> list[Item]:
        """Our worktree folders on no branch of this milestone (detached by hand, or the branch gone)."""
        found = []
        known = {path for path, branch in self.heads.items() if branch in self.branches}
        for path in self._our_dirs():
            if path in known:
                continue
            registered = path in self.heads
            changed = gitutil.porcelain_status(path) if registered else []
            why = (f"a process still works in it (pid {self.busy[path][0]})" if path in self.busy else
                   f"{len(changed)} uncommitted file(s)" if changed else None)
            found.append(Item("worktree" if registered else "leftover", str(path), why))
        return found

    def _leftovers(self) -> list[Item]:
        """Registrations of our worktrees whose folder is gone (a kill, a hand-made rm -rf)."""
        gone = [path for path in self.heads if self._is_ours(path) and not path.exists()]
        return [Item("registration", str(path)) for path in gone]

    def _our_dirs(self) -> list[Path]:
        try:
            return sorted(self.base / name for name in os.listdir(self.base))
        except OSError:
            return []

    def _is_ours(self, path: Path) -> bool:
        return self.base in path.parents

    def _checked_out(self, branch: str) -> Path | None:
        """The worktree that has ``branch`` checked out (one whose folder is gone is a registration)."""
        return next((path for path, shown in self.heads.items() if shown == branch and path.exists()), None)

    # -- acting ---------------------------------------------------------------------------
    def apply(self) -> None:
        """Remove what ``decide`` let go: worktrees set aside, their registrations pruned, then the
        branches deleted by compare-and-swap, and the set-aside files last."""
        going = [item for item in self.items if item.keep is None]
        for item in going:
            shown = item.worktree if item.kind == "branch" else Path(item.name)
            if shown is not None and item.kind != "registration":
                self._set_aside(shown)
        self._prune()
        for item in going:
            if item.kind == "branch":  # a branch that moved since it was proven stays
                gitutil.run_git(["update-ref", "-d", f"refs/heads/{item.name}", str(item.tip)], self.ws.worktree,
                                check=False)
        for path in self._our_dirs():
            if TRASH_MARK in path.name:
                shutil.rmtree(path, ignore_errors=True)
        try:
            os.rmdir(self.base)
        except OSError:
            pass

    def _set_aside(self, path: Path) -> None:
        if path.exists() and TRASH_MARK not in path.name:
            os.rename(path, path.with_name(f".{path.name}{TRASH_MARK}{uuid.uuid4().hex[:8]}"))

    def _prune(self) -> None:
        """Forget the registrations of our worktrees that are gone (never anyone else's)."""
        if self.ws.common_dir is None:
            return
        for entry in sorted((self.ws.common_dir / "worktrees").glob("*")):
            try:
                where = Path((entry / "gitdir").read_text(encoding="utf-8").strip()).parent
            except OSError:
                continue
            if self._is_ours(where) and not where.exists():
                shutil.rmtree(entry, ignore_errors=True)


def milestones_with_work(ws: Workspace) -> list[str]:
    """Every milestone with branches or worktrees of ours in this repository."""
    out = gitutil.git(["for-each-ref", "--format=%(refname)", "refs/heads/milestone/"], ws.worktree)
    found = {name.split("/")[3] for name in out.splitlines() if name.count("/") >= 4}
    base = ws.runtime_dir / "worktrees"
    if base.is_dir():
        found |= {entry.name for entry in base.iterdir() if entry.is_dir()}
    return sorted(found)
