"""Small named git queries, run through the git command line.

Hooks hand their children ``GIT_DIR``, ``GIT_INDEX_FILE`` and friends; running git
again with them set would act on the wrong repository or index, so every call here
scrubs them (as pre-commit does).  Arguments are always an argv list: commit
messages, branch names and titles are data, never shell text.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from milestoned.core.errors import RuntimeFailure

TIMEOUT = 120  # seconds a git command may take by default

_SCRUBBED = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    # and a service manager's: a child must never speak for the daemon that started it
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
)


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    if extra:
        env.update(extra)
    return env


def run_git(
    args: Sequence[str],
    cwd: str | os.PathLike[str],
    *,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input,
            capture_output=True,
            text=True,
            env=git_env(env),
            timeout=timeout,
        )
    except FileNotFoundError as exc:
        if not os.path.isdir(cwd):
            raise RuntimeFailure(f"git {' '.join(args[:2])}: the directory {os.fspath(cwd)} is gone") from exc
        raise RuntimeFailure("git is not installed or not on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeFailure(f"git {' '.join(args[:2])} timed out after {timeout}s") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeFailure(f"git {' '.join(args[:2])} failed: {detail[-1] if detail else proc.returncode}")
    return proc


def git(
    args: Sequence[str],
    cwd: str | os.PathLike[str],
    *,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = TIMEOUT,
) -> str:
    """stdout of a git command, stripped of its trailing newline."""
    return run_git(args, cwd, check=check, input=input, env=env, timeout=timeout).stdout.rstrip("\n")


def git_path(cwd: Path, name: str) -> Path:
    """``git rev-parse --git-path NAME``: where git itself looks (hooks honour core.hooksPath)."""
    out = git(["rev-parse", "--git-path", name], cwd)
    path = Path(out)
    return path if path.is_absolute() else (cwd / path)


def head_branch(cwd: Path) -> str | None:
    out = run_git(["symbolic-ref", "--quiet", "--short", "HEAD"], cwd, check=False)
    return out.stdout.strip() or None if out.returncode == 0 else None


def head_commit(cwd: Path) -> str | None:
    out = run_git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd, check=False)
    return out.stdout.strip() or None if out.returncode == 0 else None


def worktree_heads(cwd: Path) -> list[tuple[Path, str | None]]:
    """Every worktree of the repository (the main one first) with the branch it has checked out
    (None: a detached HEAD)."""
    found: list[tuple[Path, str | None]] = []
    for line in git(["worktree", "list", "--porcelain"], cwd).splitlines():
        if line.startswith("worktree "):
            found.append((Path(line[len("worktree "):]), None))
        elif line.startswith("branch refs/heads/") and found:
            found[-1] = (found[-1][0], line[len("branch refs/heads/"):])
    return found


def porcelain_status(cwd: Path) -> list[str]:
    """Lines of ``git status --porcelain``: uncommitted changes in that worktree.

    ``--no-optional-locks`` skips git's index refresh, so asking writes nothing of the user's.
    """
    return [line for line in git(["--no-optional-locks", "status", "--porcelain"], cwd).splitlines() if line]


def unfetched_state(common_dir: Path, branch: str) -> list[str]:
    """The remotes whose copy of milestoned's state ``branch`` this clone has (a plain ``git clone``
    brings it) while it has none of its own yet: ``resume`` or ``sync`` takes it in.  Read from the
    ref files, without a git process: ``status`` asks it."""
    def has(ref: str) -> bool:
        return (common_dir / ref).is_file() or f" {ref}\n" in packed
    try:
        packed = (common_dir / "packed-refs").read_text(encoding="utf-8", errors="replace")
    except OSError:
        packed = ""
    if has(f"refs/heads/{branch}"):
        return []
    remotes_dir = common_dir / "refs" / "remotes"
    names = {line.split(" ", 1)[1][len("refs/remotes/"):-len(branch) - 1] for line in packed.splitlines()
             if line.endswith(f"/{branch}") and " refs/remotes/" in line}
    if remotes_dir.is_dir():
        names |= {d.name for d in remotes_dir.iterdir() if (d / branch).is_file()}
    return sorted(names)
