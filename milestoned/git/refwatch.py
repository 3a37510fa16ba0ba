"""Noticing that commits happened, cheaply, and reading them with one ``git log``.

Every command drains first, so "nothing new" must cost a few ``stat`` calls and no
process: ``fingerprint`` stamps the ref directories, ``packed-refs`` and worktree
HEADs; the tips walked up to last time are remembered, and ``walk`` reads only the
commits since, trailers and notes included.  Commits made by tools that run no hooks
(libgit2 clients) are found this way too.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from milestoned.core.errors import RuntimeFailure
from milestoned.files import inbox
from milestoned.files.durable import atomic_write
from milestoned.files.workspace import Workspace
from milestoned.git import notes
from milestoned.git.queries import git, git_env

WALK_TIMEOUT = 600.0  # seconds a walk may take before it is given up (a wedged git)
RACY_SECONDS = 2.0  # a ref changed this recently may change again within the same mtime tick
_FORMAT = "%H%x1f%P%x1f%S%x1f%(trailers:key=Milestone,key=Task,key=Completes,unfold,separator=%x1e)%x1f%N"
# our own branches (milestoned/state): plumbing commits, never task work
OWN_BRANCHES = "refs/heads/milestoned/"


# -- cheap change detection ------------------------------------------------------------
def _ref_dirs(top: Path, skip: Path) -> Iterable[Path]:
    yield top
    try:
        with os.scandir(top) as entries:
            subdirs = [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for sub in subdirs:
        if sub != skip:
            yield from _ref_dirs(sub, skip)


def fingerprint(common: Path) -> tuple[str, bool]:
    """A stamp that changes whenever a branch or a worktree HEAD moves; and whether it is racy.

    Git and libgit2 update a loose ref by renaming a lock file into its directory,
    which changes that directory's mtime; packing rewrites ``packed-refs`` (and the
    reftable backend its ``tables.list``); a detached commit rewrites the worktree's ``HEAD``.  A stamp taken within the same clock tick
    as a change could equal the next one, so a recent change makes it racy (not kept).
    """
    paths = [common / "packed-refs", common / "HEAD", common / "worktrees", common / "reftable" / "tables.list"]
    try:
        paths += [common / "worktrees" / name / "HEAD" for name in sorted(os.listdir(common / "worktrees"))]
    except OSError:
        pass
    paths += _ref_dirs(common / "refs" / "heads", common / OWN_BRANCHES.rstrip("/"))
    parts: list[str] = []
    newest = 0
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}")
        newest = max(newest, st.st_mtime_ns)
    racy = abs(time.time_ns() - newest) < RACY_SECONDS * 1e9
    return "|".join(parts), racy


def _stamp_path(ws: Workspace) -> Path:
    return ws.runtime_dir / "refs.stamp"


def _tips_path(ws: Workspace) -> Path:
    return ws.runtime_dir / "refs.json"


def _stored_stamp(ws: Workspace) -> str | None:
    try:
        return _stamp_path(ws).read_text(encoding="utf-8")
    except OSError:
        return None


def waiting(ws: Workspace) -> bool:
    """Whether commits may wait to be read: the cheap test every command makes first."""
    return ws.common_dir is not None and ws.milestones_dir.is_dir() and not nothing_new(ws)


def nothing_new(ws: Workspace) -> bool:
    """True when the inbox is empty and no ref moved since the last drain (no process run)."""
    if inbox.has_pending(ws.runtime_dir):
        return False
    assert ws.common_dir is not None
    stamp, racy = fingerprint(ws.common_dir)
    return not racy and _stored_stamp(ws) == stamp


# -- the refs we remember -----------------------------------------------------------------
def read_tips(ws: Workspace) -> dict[str, str]:
    """Branch tips (``refs/heads/...``, ours aside) and the commits of detached worktree HEADs."""
    assert ws.common_dir is not None
    tips: dict[str, str] = {}
    for row in git(["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads"], ws.worktree).splitlines():
        sha, _, name = row.partition(" ")
        if name and not name.startswith(OWN_BRANCHES):
            tips[name] = sha
    heads = [("HEAD", ws.common_dir / "HEAD")]
    try:
        heads += [(f"HEAD@{n}", ws.common_dir / "worktrees" / n / "HEAD")
                  for n in sorted(os.listdir(ws.common_dir / "worktrees"))]
    except OSError:
        pass
    for key, path in heads:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if len(value) in (40, 64) and not value.startswith("ref:"):
            tips[key] = value
    return tips


def load_tips(ws: Workspace) -> dict[str, str] | None:
    try:
        data = json.loads(_tips_path(ws).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    tips = data.get("tips") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in tips.items()} if isinstance(tips, dict) else None


def remember_refs(ws: Workspace, tips: dict[str, str], stamp: str, racy: bool) -> None:
    """Save the tips walked up to, then the stamp that lets the next drain skip all work."""
    inbox.ensure_dir(ws.runtime_dir)
    atomic_write(_tips_path(ws), json.dumps({"tips": tips}, sort_keys=True) + "\n", mode=0o600)
    atomic_write(_stamp_path(ws), "" if racy else stamp, mode=0o600)


def baseline(ws: Workspace) -> None:
    """Start reconciling from the refs as they are now (``hooks install`` calls this once)."""
    if ws.common_dir is None or load_tips(ws) is not None:
        return
    stamp, racy = fingerprint(ws.common_dir)
    remember_refs(ws, read_tips(ws), stamp, racy)


# -- reading commits -------------------------------------------------------------------
class Commit(NamedTuple):
    sha: str
    parents: str  # space separated, as git prints them
    source: str  # the ref (or sha) git reached it from
    trailers: str  # "Key: value" items separated by \x1e, as git parsed them
    note: str  # its current note on refs/notes/milestoned

    @property
    def is_merge(self) -> bool:
        return " " in self.parents


def _commits(records: bytes) -> Iterator[Commit]:
    """The commits in NUL-separated records of ``_FORMAT``."""
    for record in records.decode("utf-8", "replace").split("\0"):
        fields = record.split("\x1f", 4)
        if len(fields) == 5 and fields[0]:
            yield Commit._make(fields)


class Walk:
    """Commits reachable from ``tips`` and not from ``stops``, parents first, as git prints them.

    With ``stops`` None (no refs remembered yet) only the named commits themselves.  git
    starts at once, so the caller can read the inbox while git walks; iterating reads each
    commit as git prints it, and git spends about half of a long walk printing, so the
    caller applies each one meanwhile, on the other core (``bench/bench_ingest.py``).  Use it
    as a context manager: leaving it stops a git still running (the caller failed).
    """

    def __init__(self, ws: Workspace, tips: Iterable[str], stops: Iterable[str] | None) -> None:
        lines = list(dict.fromkeys(tips))
        self.proc: subprocess.Popen[bytes] | None = None
        if not lines:
            return
        args = ["git", "log", "-z", "--source", "--ignore-missing", "--stdin", "--no-show-signature",
                f"--notes={notes.REF}", f"--format={_FORMAT}"]  # the user's log.showSignature would print first
        if stops is None:
            args.insert(2, "--no-walk=unsorted")
        else:
            args[2:2] = ["--topo-order", "--reverse"]
            lines += [f"^{s}" for s in dict.fromkeys(stops)]
        self.errors = tempfile.TemporaryFile()  # a file, not a pipe: git never waits on a full stderr
        self.proc = subprocess.Popen(args, cwd=ws.worktree, env=git_env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.errors)
        self.timer = threading.Timer(WALK_TIMEOUT, self.proc.kill)
        self.timer.daemon = True  # never what keeps the process from exiting
        self.timer.start()
        assert self.proc.stdin is not None
        with self.proc.stdin:  # git reads every line before it prints
            self.proc.stdin.write("\n".join(lines).encode() + b"\n")

    def __enter__(self) -> Walk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Commit]:
        if self.proc is None:
            return
        assert self.proc.stdout is not None
        rest = b""
        try:
            for chunk in iter(functools.partial(os.read, self.proc.stdout.fileno(), 1 << 16), b""):
                data = rest + chunk
                cut = data.rfind(b"\0")
                if cut < 0:
                    rest = data
                    continue
                rest = data[cut + 1:]
                yield from _commits(data[:cut])  # whole records only: a character never splits
            if self.proc.wait() != 0:
                self.errors.seek(0)
                detail = self.errors.read().decode("utf-8", "replace").strip() or f"exit status {self.proc.returncode}"
                raise RuntimeFailure(f"git log failed: {detail}")
        finally:
            self.close()
        yield from _commits(rest)

    def close(self) -> None:
        if self.proc is None or self.proc.stdout is None or self.proc.stdout.closed:
            return
        self.timer.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.errors.close()


def patch_ids(ws: Workspace, shas: Iterable[str]) -> dict[str, str]:
    """``git patch-id --stable`` of each commit (merges have none): the change, whoever made it."""
    wanted = "\n".join(dict.fromkeys(shas)) + "\n"
    diff = subprocess.run(["git", "diff-tree", "--stdin", "-p", "-r", "--root", "--no-color", "--no-ext-diff"], cwd=ws.worktree,
                          env=git_env(), input=wanted.encode(), capture_output=True, timeout=600).stdout
    out = subprocess.run(["git", "patch-id", "--stable"], cwd=ws.worktree, env=git_env(), input=diff,
                         capture_output=True, timeout=600).stdout.decode()
    ids: dict[str, str] = {}
    for row in out.splitlines():
        patch, _, commit = row.partition(" ")
        ids[commit] = patch
    return ids
