"""Finding, starting and stopping a repository's daemon: its lock, its record, its leftovers.

One daemon per repository (its common git dir) is proven by an ``flock`` on
``<runtime dir>/daemon.lock`` plus a socket that answers; ``daemon.json`` records its
pid and socket.  A daemon that died (kill -9) leaves its record and socket behind:
they are removed only when nobody holds the lock.  The daemon process itself is in
``daemon``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from milestoned.core.errors import RuntimeFailure
from milestoned.daemon import client
from milestoned.daemon.client import socket_path
from milestoned.files.durable import open_append, read_json
from milestoned.files.workspace import Workspace
from milestoned.git import queries as gitutil

LOCK_NAME = "daemon.lock"
RECORD_NAME = "daemon.json"
LOG_NAME = "daemon.log"
MAX_LOG = 5 << 20  # bytes of daemon.log before it is rotated at the next start
WEDGED = 5.0  # seconds a daemon holding the lock gets to answer before `start` calls it wedged


# -- where things are -------------------------------------------------------------------
def private_dir(path: Path) -> None:
    """Create ``path`` mode 0700, and refuse one that another user could have prepared."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.lstat()
    if not path.is_dir() or path.is_symlink() or st.st_uid != os.getuid():
        raise RuntimeFailure(f"{path} is not a directory owned by you; remove it and try again")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def read_record(ws: Workspace) -> dict[str, Any] | None:
    """What the running (or crashed) daemon wrote about itself: pid, socket, start time."""
    return read_json(ws.runtime_dir / RECORD_NAME)


def try_lock(path: Path) -> int | None:
    """An fd holding the exclusive daemon lock, or None when a live daemon holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def lock_held(ws: Workspace) -> bool:
    """Whether a live process holds the daemon lock of this repository."""
    path = ws.runtime_dir / LOCK_NAME
    if not path.exists():
        return False
    fd = try_lock(path)
    if fd is None:
        return True
    os.close(fd)
    return False


def clean_stale(ws: Workspace) -> list[Path]:
    """Remove the socket and record a dead daemon left behind; only when nobody holds the lock."""
    path = ws.runtime_dir / LOCK_NAME
    if not path.exists():
        return []
    fd = try_lock(path)
    if fd is None:
        return []
    try:
        return remove_files(ws)
    finally:
        os.close(fd)


def remove_files(ws: Workspace) -> list[Path]:
    """The socket and record a daemon leaves: only a socket and a plain file that are this user's
    (a directory, a FIFO or another user's file at those paths is not ours to delete)."""
    removed = []
    for leftover, kind in ((socket_path(ws), stat.S_ISSOCK), (ws.runtime_dir / RECORD_NAME, stat.S_ISREG)):
        try:
            st = leftover.lstat()
            if kind(st.st_mode) and st.st_uid == os.geteuid():
                leftover.unlink()
                removed.append(leftover)
        except FileNotFoundError:
            pass
    return removed


def wedged(ws: Workspace) -> str:
    """What to say of a daemon that holds the lock and does not answer (stopped, or stuck)."""
    pid = (read_record(ws) or {}).get("pid")
    return f"a milestoned daemon{f' (pid {pid})' if pid else ''} holds {ws.root} but does not answer"


# -- start / stop from the command line ------------------------------------------------
def start(ws: Workspace, *, timeout: float = 30.0) -> tuple[bool, dict[str, Any]]:
    """Start a detached daemon and wait until it answers.  (started?, its ping answer).

    A daemon that already answers is reported, not duplicated.  The child gets a new
    session (no terminal, no signals from this shell) and writes to ``daemon.log``.
    """
    answer = client.ping(ws)
    if answer is not None:
        return False, answer
    if lock_held(ws):  # one is starting, or is wedged: give it a moment, then say which
        deadline = time.monotonic() + WEDGED
        while (answer := client.ping(ws, timeout=0.5)) is None and lock_held(ws) and time.monotonic() < deadline:
            time.sleep(0.1)
        if answer is not None:
            return False, answer
        if lock_held(ws):
            raise RuntimeFailure(wedged(ws), hint="milestoned daemon stop ends it")
    private_dir(ws.runtime_dir)
    log_path = ws.runtime_dir / LOG_NAME
    if log_path.exists() and log_path.stat().st_size > MAX_LOG:
        os.replace(log_path, log_path.with_suffix(".log.1"))
    env = gitutil.git_env()  # a detached daemon is nobody's notify service, nor inside a hook's repository
    fd = open_append(ws.writable(log_path))
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "milestoned", "daemon", "run"], cwd=ws.root, env=env,
            stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True,
        )
    finally:
        os.close(fd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.ping(ws, timeout=max(0.1, deadline - time.monotonic()))
        if answer is not None:
            return answer.get("pid") == child.pid, answer
        if child.poll() is not None and (child.returncode != 0 or not lock_held(ws)):
            answer = client.ping(ws)
            if answer is not None:
                return False, answer
            raise RuntimeFailure(f"the daemon exited with status {child.returncode}: {_last_line(log_path)}")
        time.sleep(0.02)  # (a child that found another daemon starting exits 0: wait for that one)
    raise RuntimeFailure(f"the daemon did not answer within {timeout:g}s (see {log_path})")


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else f"nothing in {path}"


def stop(ws: Workspace, *, timeout: float = 20.0) -> int | None:
    """SIGTERM the daemon and wait for it to let go of its lock; its pid, or None if none ran."""
    answer = client.ping(ws)
    pid = answer.get("pid") if answer else None
    if pid is None and lock_held(ws):  # alive but not answering (wedged): its record names it
        pid = (read_record(ws) or {}).get("pid")
    if not isinstance(pid, int):
        clean_stale(ws)
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        clean_stale(ws)
        return pid
    deadline = time.monotonic() + timeout
    while lock_held(ws):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            clean_stale(ws)
            raise RuntimeFailure(f"the daemon (pid {pid}) did not stop within {timeout:g}s and was killed")
        time.sleep(0.02)
    return pid
