"""Which repository a directory is in, and where its state lives, found with ``os.path`` alone.

``Workspace.discover`` and the thin path (``cli.thin``) both start here.  The thin path
answers agents' polls before pathlib or dataclasses are imported, so this module
imports nothing but ``os``; sharing it means the two can never disagree on which
repository, worktree or daemon a command belongs to.
"""

from __future__ import annotations

import os

STATE_DIR = ".milestones"  # the plan's folder in a worktree (the name the seed's users have)


def _read_gitfile(path: str) -> str | None:
    """The directory a ``.git`` file (linked worktree, submodule) points at."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    return os.path.realpath(os.path.join(os.path.dirname(path), text[len("gitdir:"):].strip()))


def _common_dir(git_dir: str) -> str:
    try:
        with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as handle:
            rel = handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return git_dir
    return os.path.realpath(os.path.join(git_dir, rel))


def locate(start: str | None = None) -> tuple[str, str, str | None, str | None]:
    """``(root, worktree, git_dir, common_dir)`` for the directory ``start`` (default: the current one).

    The nearest directory holding ``.git`` (a directory, or a file naming a linked worktree's
    git dir) or, outside git, ``.milestones/``; ``root`` is the main worktree.  Without either,
    ``start`` itself with no git dirs.
    """
    here = os.path.realpath(start or os.getcwd())
    directory = here
    while True:
        dotgit = os.path.join(directory, ".git")
        if os.path.isdir(dotgit):
            return _from_git_dir(directory, os.path.realpath(dotgit))
        if os.path.isfile(dotgit) and (git_dir := _read_gitfile(dotgit)) is not None:
            return _from_git_dir(directory, git_dir)
        if os.path.isdir(os.path.join(directory, STATE_DIR)):
            return directory, directory, None, None
        parent = os.path.dirname(directory)
        if parent == directory:
            return here, here, None, None
        directory = parent


def _from_git_dir(worktree: str, git_dir: str) -> tuple[str, str, str, str]:
    common = _common_dir(git_dir)
    root = worktree
    if common != git_dir and os.path.basename(common) == ".git":
        root = os.path.dirname(common)  # a linked worktree: the main worktree is where the common dir is
    return root, worktree, git_dir, common


def state_dir(root: str, common_dir: str | None) -> str:
    """``<common git dir>/milestoned``, shared by every worktree; outside git ``.milestones/.run``."""
    if common_dir is not None:
        return os.path.join(common_dir, "milestoned")
    return os.path.join(root, STATE_DIR, ".run")
