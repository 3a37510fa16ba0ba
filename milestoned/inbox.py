"""The inbox: where git hooks leave word of new commits for milestoned to ingest.

It lives in the common git dir (``<common>/milestoned/inbox``, shared by every
worktree), in a directory only the owner can enter (0700); the hooks create the file
with umask 077 (0600).  A hook appends one short line per event and exits; it never
waits for anything.

Draining renames the file before reading it, so a hook appending at that very
moment either lands in the renamed file (read now) or creates a fresh inbox (read
next time): nothing is lost.  A renamed file is deleted only after its lines are
applied; a crash in between leaves it behind, and the next drain (which holds the
engine lock, so no other drainer can be mid-way) reads it again.  Ingest is
idempotent, so reading a line twice changes nothing.

Line format (tab separated, written by ``hooks/``):
``1  KIND  SHA  REF  EXTRA  WORKTREE`` where KIND is ``commit`` (SHA: the new commit,
REF: the branch it was made on), ``merge`` (SHA: HEAD after the merge, EXTRA:
ORIG_HEAD), ``amend``/``rebase`` (SHA: the new commit, EXTRA: the one it replaced)
or ``checkout`` (SHA: the new HEAD, EXTRA: the previous one).  The worktree comes
last so that a path holding a tab still parses.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

CLAIMED_PREFIX = "inbox.draining."
KINDS = frozenset({"commit", "merge", "amend", "rebase", "checkout"})
_HEX = "0123456789abcdef"


def _is_sha(value: str) -> bool:
    """A full object name (SHA-1 or SHA-256), not the all-zero "no commit"."""
    return len(value) in (40, 64) and not value.strip(_HEX) and bool(value.strip("0"))


class Entry(NamedTuple):
    """One hook event, as the hook wrote it."""

    kind: str
    sha: str
    ref: str  # the branch HEAD pointed at ("" when detached or unknown)
    extra: str  # ORIG_HEAD for merge, the replaced commit for amend/rebase, the old HEAD for checkout
    worktree: str

    @property
    def is_rewrite(self) -> bool:
        return self.kind in ("amend", "rebase")


def ensure_dir(runtime_dir: Path) -> None:
    """Create the runtime directory readable by its owner only (the hooks need it to exist)."""
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(runtime_dir, 0o700)


def claimed_files(runtime_dir: Path) -> list[Path]:
    """Renamed inbox files not yet applied (a drain crashed after renaming)."""
    try:
        names = os.listdir(runtime_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(runtime_dir / n for n in names if n.startswith(CLAIMED_PREFIX))


def has_pending(runtime_dir: Path) -> bool:
    """Anything to read?  A couple of file system calls, no process: every command asks."""
    try:
        if os.stat(runtime_dir / "inbox").st_size > 0:
            return True
    except OSError:
        pass
    return bool(claimed_files(runtime_dir))


def claim(runtime_dir: Path) -> list[Path]:
    """Rename the inbox aside and return every claimed file, oldest first.

    The caller holds the engine lock, so any claimed file already there was left by a
    drain that died before finishing: it is read again with the new one.
    """
    inbox = runtime_dir / "inbox"
    try:
        if os.stat(inbox).st_size > 0:
            os.replace(inbox, runtime_dir / f"{CLAIMED_PREFIX}{os.getpid()}.{os.urandom(4).hex()}")
    except FileNotFoundError:
        pass
    return sorted(claimed_files(runtime_dir), key=lambda p: (_mtime(p), p.name))


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def parse(data: bytes) -> list[Entry]:
    """The well-formed lines of an inbox file; anything else (a torn line) is skipped."""
    entries: list[Entry] = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        fields = line.split("\t", 5)
        if len(fields) != 6 or fields[0] != "1" or fields[1] not in KINDS or not _is_sha(fields[2]):
            continue
        _, kind, sha, ref, extra, worktree = fields
        entries.append(Entry(kind, sha, ref, extra if _is_sha(extra) else "", worktree))
    return entries


def read(paths: Iterable[Path]) -> list[Entry]:
    entries: list[Entry] = []
    for path in paths:
        try:
            entries += parse(path.read_bytes())
        except FileNotFoundError:
            continue
    return entries


def release(paths: Iterable[Path]) -> None:
    """Delete claimed files once what they said is applied."""
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
