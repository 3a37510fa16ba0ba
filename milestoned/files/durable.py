"""Durable writes: one lock for a repository's whole state, temp file + fsync + rename.

The lock is an ``flock`` (through filelock), so it dies with its process: a crashed
writer never leaves a stale lock that slows every later command.  It is re-entrant
within a process and shared by its threads (the runner's workers), behind a mutex.

Nothing is ever written through a link: a file opened to append or to fill is opened
with ``O_NOFOLLOW`` (a link planted in its place is refused, not followed), and the
workspace checks that the directories written into stay inside the repository
(``Workspace.writable``).  What milestoned creates is never writable by other users,
whatever the umask it was started with (``private_umask``).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milestoned.core.errors import RuntimeFailure, UserError

if TYPE_CHECKING:
    from filelock import BaseFileLock

LOCK_TIMEOUT = 60.0
_NO_LINK = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def private_umask() -> None:
    """Take group and other write away from everything this process creates (git's children too)."""
    old = os.umask(0o022)
    os.umask(old | 0o022)


def _open_no_link(path: Path, flags: int, mode: int) -> int:
    try:
        return os.open(path, flags | _NO_LINK, mode)
    except OSError as exc:
        if path.is_symlink():
            raise UserError(f"is a link to {os.readlink(path)}: milestoned never writes through a link",
                            path=path, hint="replace the link with the file itself") from None
        raise RuntimeFailure(f"cannot write {path}: {exc.strerror}") from None


def open_append(path: Path, mode: int = 0o600) -> int:
    """A descriptor appending to ``path`` (created ``mode``; readable with ``pread``), never through a link."""
    return _open_no_link(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, mode)


def open_fresh(path: Path, mode: int = 0o600) -> int:
    """A descriptor writing ``path`` from empty (a log of one run), never through a link."""
    return _open_no_link(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object milestoned keeps in a file of its own (a record, a ledger); None when the file is
    missing, unreadable, damaged or holds something else: the caller starts afresh."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new, never half.

    ``durable=False`` skips the fsyncs, for caches that may be lost in a crash.
    """
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class StateLock:
    """The single writer lock of a repository's state (re-entrant, thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mutex = threading.RLock()
        self._depth = 0
        self._file_lock: BaseFileLock | None = None  # made on first use (filelock loads late)

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._mutex:
            if self._depth == 0:
                self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._file_lock is not None:  # _acquire made it
                    self._file_lock.release()

    @property
    def is_held(self) -> bool:
        return self._depth > 0

    def _acquire(self) -> None:
        from filelock import FileLock, Timeout  # imported here: it costs ~60 ms at start-up

        if self._file_lock is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._file_lock = FileLock(str(self.path), thread_local=False)
        try:
            self._file_lock.acquire(timeout=LOCK_TIMEOUT)
        except Timeout:
            raise RuntimeFailure(
                f"{self.path} stayed locked for {LOCK_TIMEOUT:.0f}s by another milestoned process"
            ) from None
