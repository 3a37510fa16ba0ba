"""Where things live for the repository the user is standing in.

Every linked worktree (task worktrees included) shares one state: the ``.milestones/``
of the main worktree, found through the common git dir, never the stale copy checked
out in a linked worktree.  Discovery reads files only (no ``git`` process), because
every command, hot paths like ``status`` included, starts here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from milestoned.errors import UserError

STATE_DIR = ".milestones"


def _read_gitfile(path: Path) -> Path | None:
    """The directory a ``.git`` file (linked worktree, submodule) points at."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    target = Path(text[len("gitdir:"):].strip())
    return (path.parent / target).resolve() if not target.is_absolute() else target.resolve()


def _common_dir(git_dir: Path) -> Path:
    try:
        rel = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir
    return (git_dir / rel).resolve()


@dataclass(frozen=True)
class Workspace:
    """The paths of one repository as milestoned sees it."""

    root: Path  # the main worktree: where .milestones/ lives
    worktree: Path  # the worktree the command runs in (== root outside linked worktrees)
    git_dir: Path | None  # this worktree's git dir
    common_dir: Path | None  # the repository's common git dir (shared by all worktrees)

    @classmethod
    def discover(cls, start: str | os.PathLike[str] | None = None) -> Workspace:
        here = Path(start or os.getcwd()).resolve()
        for directory in (here, *here.parents):
            dotgit = directory / ".git"
            if dotgit.is_dir():
                return cls._from_git_dir(directory, dotgit.resolve())
            if dotgit.is_file():
                git_dir = _read_gitfile(dotgit)
                if git_dir is not None:
                    return cls._from_git_dir(directory, git_dir)
            if (directory / STATE_DIR).is_dir():
                return cls(root=directory, worktree=directory, git_dir=None, common_dir=None)
        return cls(root=here, worktree=here, git_dir=None, common_dir=None)

    @classmethod
    def _from_git_dir(cls, worktree: Path, git_dir: Path) -> Workspace:
        common = _common_dir(git_dir)
        root = worktree
        if common != git_dir and common.name == ".git":
            root = common.parent  # a linked worktree: state lives with the main worktree
        return cls(root=root, worktree=worktree, git_dir=git_dir, common_dir=common)

    # -- the .milestones/ layout (SPEC §2) --------------------------------------------
    @property
    def milestones_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def active_dir(self) -> Path:
        return self.milestones_dir / "active"

    @property
    def completed_dir(self) -> Path:
        return self.milestones_dir / "completed"

    @property
    def logs_dir(self) -> Path:
        return self.milestones_dir / "logs"

    @property
    def sessions_dir(self) -> Path:
        return self.milestones_dir / "sessions"

    @property
    def cache_dir(self) -> Path:
        """Per-clone caches and write signatures: in the git dir, never in the working tree."""
        return self.runtime_dir / "cache"

    @property
    def config_path(self) -> Path:
        return self.milestones_dir / "config.yaml"

    @property
    def current_path(self) -> Path:
        return self.active_dir / "current.txt"

    @property
    def lock_path(self) -> Path:
        """The engine's writer lock: per repository, outside the working tree."""
        return self.runtime_dir / "state.lock"

    def log_path(self, milestone_id: str) -> Path:
        return self.logs_dir / f"execution-{milestone_id}.jsonl"

    def legacy_log_path(self, milestone_id: str) -> Path:
        """Where older versions of the seed workflow logged events (read, never written)."""
        return self.milestones_dir / "state" / "events" / f"milestone-{milestone_id}.jsonl"

    def task_log_path(self, milestone_id: str, task_id: str) -> Path:
        return self.logs_dir / "tasks" / milestone_id / f"{task_id}.log"

    # -- per-repository runtime files in the common git dir ---------------------------
    @property
    def runtime_dir(self) -> Path:
        """``<common git dir>/milestoned``: inbox, daemon socket and pid, shared by worktrees."""
        base = self.common_dir if self.common_dir is not None else self.milestones_dir / ".run"
        return base / "milestoned"

    @property
    def inbox_path(self) -> Path:
        return self.runtime_dir / "inbox"

    @property
    def is_git(self) -> bool:
        return self.common_dir is not None

    def require_initialized(self) -> None:
        if not self.milestones_dir.is_dir():
            raise UserError(
                f"no {STATE_DIR}/ in {self.root} or above",
                hint="run `milestoned init` in your repository",
            )
