"""The inbox: where git hooks leave word of new commits for milestoned to ingest.

It lives in the common git dir (``<common>/milestoned/inbox``, shared by every
worktree), in a directory only the owner can enter (0700); the hooks create the file
with umask 077 (0600).  A hook appends one short line per event and exits; it never
waits for anything.

Draining renames the file before reading it, so a hook appending at that very
moment either lands in the renamed file or creates a fresh inbox: nothing is lost.
A hook that opened the inbox just before the rename writes into the renamed file,
possibly after the drainer read it; so a renamed file keeps the count of bytes
already applied in its name (``inbox.draining.<token>.<offset>``) and is deleted
only once it has stopped changing for ``GRACE`` seconds, and the next drain reads
what came after the offset.  A crash before the offset is recorded leaves the file
to be read again by the next drain (which holds the engine lock, so no other
drainer can be mid-way); ingest is idempotent, so a line read twice changes nothing.

Line format (tab separated, written by ``hooks/``):
``1  KIND  SHA  REF  EXTRA  WORKTREE`` where KIND is ``commit`` (SHA: the new commit,
REF: the branch it was made on), ``merge`` (SHA: HEAD after the merge, EXTRA:
ORIG_HEAD), ``amend``/``rebase`` (SHA: the new commit, EXTRA: the one it replaced)
or ``checkout`` (SHA: the new HEAD, EXTRA: the previous one).  The worktree comes
last so that a path holding a tab still parses.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

CLAIMED_PREFIX = "inbox.draining."
GRACE = 2.0  # seconds a drained file must stay unchanged before it is deleted
KINDS = frozenset({"commit", "merge", "amend", "rebase", "checkout"})
_HEX = "0123456789abcdef"
# 1 KIND SHA REF EXTRA WORKTREE: a full object name, not the all-zero one; EXTRA is checked apart
_LINE = re.compile(r"^1\t(%s)\t(?!0+\t)([0-9a-f]{40}(?:[0-9a-f]{24})?)\t([^\t\n]*)\t([^\t\n]*)\t(.*)$"
                   % "|".join(sorted(KINDS)), re.MULTILINE)


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


def report(runtime_dir: Path, entry: Entry) -> None:
    """Append ``entry`` as the hooks do (one write, so it never tears), for a commit milestoned
    made in-process in a repository whose post-commit hook would have reported it."""
    line = "\t".join(("1", entry.kind, entry.sha, entry.ref, entry.extra, entry.worktree)) + "\n"
    fd = os.open(runtime_dir / "inbox", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)


def ensure_dir(runtime_dir: Path) -> None:
    """Create the runtime directory readable by its owner only (the hooks need it to exist)."""
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(runtime_dir, 0o700)


@dataclass
class Claim:
    """A renamed inbox file: bytes before ``offset`` were applied by an earlier drain."""

    path: Path
    offset: int
    end: int | None = None  # how far this drain read (set by ``read``)


def _claims(runtime_dir: Path) -> list[Claim]:
    try:
        names = os.listdir(runtime_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        if name.startswith(CLAIMED_PREFIX):
            token, _, offset = name[len(CLAIMED_PREFIX):].rpartition(".")
            found.append(Claim(runtime_dir / name, int(offset) if token and offset.isdigit() else 0))
    return found


def _stat(path: Path) -> os.stat_result | None:
    """The file's status if it is a regular file: a directory or a link planted at an inbox path is
    none of ours, never read, renamed or deleted."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def _size(path: Path) -> int:
    st = _stat(path)
    return st.st_size if st else 0


def claimed_files(runtime_dir: Path) -> list[Claim]:
    """Renamed inbox files with lines not yet applied (oldest first)."""
    pending = []
    for claim in _claims(runtime_dir):
        st = _stat(claim.path)
        if st is not None and st.st_size > claim.offset:
            pending.append((st.st_mtime_ns, claim.path.name, claim))  # names are unique: claims never compared
    return [claim for _, _, claim in sorted(pending)]


def has_pending(runtime_dir: Path) -> bool:
    """Anything to read?  A couple of file system calls, no process: every command asks."""
    return _size(runtime_dir / "inbox") > 0 or bool(claimed_files(runtime_dir))


def claim(runtime_dir: Path) -> list[Claim]:
    """Rename the inbox aside and return every claimed file with lines to read, oldest first.

    The caller holds the engine lock, so any claimed file already there was left by an
    earlier drain: a crash, or a hook's late line.
    """
    inbox = runtime_dir / "inbox"
    if _size(inbox) > 0:
        with contextlib.suppress(FileNotFoundError):  # a concurrent drain took it first
            os.replace(inbox, runtime_dir / f"{CLAIMED_PREFIX}{os.getpid()}-{os.urandom(4).hex()}.0")
    return claimed_files(runtime_dir)


def parse(data: bytes) -> list[Entry]:
    """The well-formed lines of an inbox file; anything else (a torn line) is skipped.

    One regular expression over the whole file: a pull announces thousands of commits at once."""
    rows = _LINE.findall(data.decode("utf-8", "surrogateescape"))
    return [Entry._make(row) if not row[3] or _is_sha(row[3]) else Entry(row[0], row[1], row[2], "", row[4])
            for row in rows]


def read(claims: Iterable[Claim]) -> list[Entry]:
    """The lines after each claim's offset (whole lines only); notes how far each was read."""
    entries: list[Entry] = []
    for claim in claims:
        try:
            with claim.path.open("rb") as handle:
                handle.seek(claim.offset)
                data = handle.read()
        except OSError:  # gone (a concurrent drain), or unreadable: the next drain tries again
            continue
        whole = data[: data.rfind(b"\n") + 1]
        claim.end = claim.offset + len(whole)
        entries += parse(whole)
    return entries


def release(runtime_dir: Path, claims: Iterable[Claim]) -> None:
    """Record what was applied; delete claimed files that are applied and quiet."""
    for claim in claims:
        if claim.end is not None and claim.end != claim.offset:
            token = claim.path.name[len(CLAIMED_PREFIX):].rpartition(".")[0] or claim.path.name
            target = claim.path.with_name(f"{CLAIMED_PREFIX}{token}.{claim.end}")
            try:
                os.replace(claim.path, target)
            except FileNotFoundError:
                continue
    now = time.time()
    for claim in _claims(runtime_dir):
        st = _stat(claim.path)
        if st is not None and now - st.st_mtime > GRACE and (st.st_size <= claim.offset or _only_a_torn_line(claim)):
            claim.path.unlink(missing_ok=True)


def _only_a_torn_line(claim: Claim) -> bool:
    """What is left after the offset will never become a line (a hook killed mid-write)."""
    with claim.path.open("rb") as handle:
        handle.seek(claim.offset)
        return b"\n" not in handle.read()
