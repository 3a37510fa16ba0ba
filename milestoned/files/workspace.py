"""Where things live for the repository the user is standing in.

The one rule (SPEC §2): the working tree holds the user's plan, milestoned's state
lives in the git dir.  So there are two kinds of place:

- **the plan**: ``.milestones/`` in the worktree the command runs in — read as git
  reads every file, from that checkout — falling back, file by file, to the main
  worktree's ``.milestones/`` when this checkout lacks a plan (one never committed);
- **the state**: ``<git common dir>/milestoned/`` — event logs, sessions, the current
  milestone, inbox, locks, caches, the daemon's socket — shared by every worktree and
  untouched by anything git does to the working tree.  Outside a git repository it is
  ``.milestones/.run/``.

Discovery reads files only (no ``git`` process), because every command, hot paths
like ``status`` included, starts here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from milestoned.core.errors import UserError
from milestoned.files import gitdirs
from milestoned.files.gitdirs import STATE_DIR

PLAN_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Workspace:
    """The paths of one repository as milestoned sees it."""

    root: Path  # the main worktree
    worktree: Path  # the worktree the command runs in (== root outside linked worktrees)
    git_dir: Path | None  # this worktree's git dir
    common_dir: Path | None  # the repository's common git dir (shared by all worktrees)

    @classmethod
    def discover(cls, start: str | os.PathLike[str] | None = None) -> Workspace:
        root, worktree, git_dir, common_dir = gitdirs.locate(os.fspath(start) if start is not None else None)
        return cls(root=Path(root), worktree=Path(worktree), git_dir=Path(git_dir) if git_dir else None,
                   common_dir=Path(common_dir) if common_dir else None)

    @property
    def is_git(self) -> bool:
        return self.common_dir is not None

    # -- the plan: .milestones/ in the working tree (the user's) ------------------------
    @property
    def plan_roots(self) -> list[Path]:
        """Where plans are looked for, in order: this checkout's ``.milestones/``, then the main one's."""
        mine = self.worktree / STATE_DIR
        main = self.root / STATE_DIR
        return [mine] if mine == main else [mine, main]

    @property
    def milestones_dir(self) -> Path:
        """The ``.milestones/`` plans are read from and new plans written to: this checkout's
        when it has one, else the main worktree's (a plan never committed lives only there)."""
        for candidate in self.plan_roots:
            if candidate.is_dir():
                return candidate
        return self.plan_roots[0]

    @property
    def active_dir(self) -> Path:
        return self.milestones_dir / "active"

    @property
    def completed_dir(self) -> Path:
        return self.milestones_dir / "completed"

    def plan_folders(self) -> list[Path]:
        """Every folder a plan file may be in, in lookup order (active before completed)."""
        return [root / folder for root in self.plan_roots for folder in ("active", "completed")]

    @property
    def config_path(self) -> Path:
        """``config.yaml`` of this checkout, else of the main worktree (it is plan, like a milestone)."""
        for root in self.plan_roots:
            if (root / "config.yaml").is_file():
                return root / "config.yaml"
        return self.milestones_dir / "config.yaml"

    def require_initialized(self) -> None:
        if not any(root.is_dir() for root in self.plan_roots):
            raise UserError(
                f"no {STATE_DIR}/ in {self.worktree} or above",
                hint="run `milestoned init` in your repository",
            )

    # -- the state: <git common dir>/milestoned/ (ours) ----------------------------------
    @property
    def state_dir(self) -> Path:
        """``<common git dir>/milestoned``: every worktree's one state, out of git's way."""
        return Path(gitdirs.state_dir(os.fspath(self.root), os.fspath(self.common_dir) if self.common_dir else None))

    @property
    def runtime_dir(self) -> Path:
        """The same directory, named for what hooks, the daemon and the runner keep there."""
        return self.state_dir

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    def log_path(self, milestone_id: str) -> Path:
        """A milestone's event log: the source of truth for its execution state."""
        return self.log_dir / f"{milestone_id}.jsonl"

    @property
    def sessions_dir(self) -> Path:
        return self.state_dir / "sessions"

    def session_path(self, session_id: str) -> Path:
        return self.sessions_dir / f"{session_id}.yaml"

    @property
    def current_path(self) -> Path:
        """The id of this clone's current milestone."""
        return self.state_dir / "current"

    def task_log_path(self, milestone_id: str, task_id: str) -> Path:
        """What a task's command printed when ``execute`` ran it."""
        return self.state_dir / "output" / milestone_id / f"{task_id}.log"

    @property
    def cache_dir(self) -> Path:
        """Per-clone read caches: lost with no harm."""
        return self.state_dir / "cache"

    @property
    def lock_path(self) -> Path:
        """The engine's writer lock: one per repository."""
        return self.state_dir / "state.lock"

    @property
    def inbox_path(self) -> Path:
        return self.state_dir / "inbox"

    # -- writing safely ----------------------------------------------------------------
    def _homes(self) -> list[Path]:
        """Where milestoned may write: the worktrees and the git dirs, as the filesystem has them."""
        places = [self.root, self.worktree, self.state_dir.parent]
        places += [p for p in (self.git_dir, self.common_dir) if p is not None]
        return [p.resolve() for p in places]

    def writable(self, path: Path) -> Path:
        """``path``, once sure that no link leads the write out of the repository or the git dir."""
        existing = path.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        resolved = existing.resolve()
        if not any(resolved == home or home in resolved.parents for home in self._homes()):
            raise UserError(f"leads to {resolved}, outside the repository: milestoned never writes through a link",
                            path=existing, hint="replace the link with a plain directory")
        if path.is_symlink():
            raise UserError(f"is a link to {os.readlink(path)}: milestoned never writes through a link", path=path,
                            hint="replace the link with the file itself")
        return path

    def check_state_dir(self) -> None:
        """Refuse to write state when one of its folders was replaced by a link leading elsewhere."""
        for folder in (self.state_dir, self.log_dir, self.sessions_dir, self.cache_dir, self.state_dir / "output"):
            if folder.is_symlink() or folder.exists():
                self.writable(folder / ".probe")

    # -- what earlier versions and the seed kept in the working tree (read, never written) --
    def legacy_dirs(self) -> list[Path]:
        """``.milestones/`` folders that may hold logs, sessions or ``current.txt`` of old."""
        return [root for root in self.plan_roots if root.is_dir()]
