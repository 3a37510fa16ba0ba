"""One process at a time works on a milestone's branches and worktrees: ``execute``, ``land``, ``gc``.

And the processes still working in a folder (a task that outlived its killed runner), which
neither may pull the folder away from.

A ``flock`` on ``<runtime dir>/execute-<milestone>.lock``: it dies with its process (``kill -9``
too), so a lock left behind never blocks anyone, and the holder writes its pid and host
into the file so that a refusal can say who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from milestoned.core.errors import UserError
from milestoned.files.runners import HOST
from milestoned.files.workspace import Workspace


@contextlib.contextmanager
def milestone_lock(ws: Workspace, milestone_id: str, doing: str) -> Iterator[None]:
    """Hold the milestone's work lock, or refuse at once naming its holder and what it does
    (``doing``: "being executed", "being landed", ...)."""
    ws.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = ws.runtime_dir / f"execute-{milestone_id}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)  # tasks must not keep it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", errors="replace").split(maxsplit=2)
            by = f" by pid {holder[0]} on {holder[1]}" if len(holder) >= 2 else ""
            activity = holder[2].strip() if len(holder) == 3 else "busy"
            raise UserError(f"milestone {milestone_id} is already {activity}{by}",
                            hint="wait for it to finish, or stop it (Ctrl-C) first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {HOST} {doing}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def processes_in(folders: Iterable[Path]) -> dict[Path, list[int]]:
    """The live processes whose working directory is in each folder (Linux: /proc; elsewhere none known)."""
    proc = Path("/proc")
    roots = {folder: os.path.realpath(folder) for folder in folders}
    found: dict[Path, list[int]] = {}
    if not roots or not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue  # gone meanwhile, or not ours to look at
        for folder, root in roots.items():
            if cwd == root or cwd.startswith((root + os.sep, root + " (deleted)")):
                found.setdefault(folder, []).append(int(entry.name))
    return found
