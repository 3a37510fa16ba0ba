"""Lock files a killed git left behind in milestoned's own refs, found and cleared safely.

git takes ``<ref>.lock`` while it updates a ref and deletes it when done; a process
killed in between leaves it, and every later update of that ref fails ("failed to
lock file") until someone deletes it.  Only locks under milestoned's own namespaces
are ever touched, and only those no live process holds: on Linux, no process has the
file open (``/proc/*/fd``); elsewhere, the lock is older than ``STALE_AFTER``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from milestoned.files.workspace import Workspace

STALE_AFTER = 600.0  # seconds, where open files cannot be listed


def _open_files() -> set[str] | None:
    """Every path some process has open (Linux), or None where that cannot be known."""
    proc = Path("/proc")
    if not sys.platform.startswith("linux") or not proc.is_dir():
        return None
    found: set[str] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                try:
                    found.add(os.readlink(fd))
                except OSError:
                    continue
        except OSError:
            continue  # gone meanwhile, or not ours to look at
    return found


def stale(ws: Workspace, namespace: str) -> list[Path]:
    """Lock files under ``refs/<namespace>`` (e.g. ``heads/milestone/m1``) that nobody holds."""
    if ws.common_dir is None:
        return []
    base = ws.common_dir / "refs" / namespace
    locks = sorted(base.rglob("*.lock")) if base.is_dir() else []
    if not locks:
        return []
    held = _open_files()
    now = time.time()
    found = []
    for lock in locks:
        try:
            age = now - lock.lstat().st_mtime
        except OSError:
            continue
        if (held is not None and str(lock) not in held) or (held is None and age > STALE_AFTER):
            found.append(lock)
    return found


def clear(ws: Workspace, namespace: str) -> list[Path]:
    """Delete the stale locks under ``refs/<namespace>``; the ones deleted."""
    removed = []
    for lock in stale(ws, namespace):
        try:
            lock.unlink()
        except OSError:
            continue
        removed.append(lock)
    return removed
