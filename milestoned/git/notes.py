"""Git notes on ``refs/notes/milestoned``: which milestone, task and event a commit fed.

``git log --notes=milestoned`` then shows, under each ingested commit, one JSON object
per line (like git-appraise), keys sorted so the same fact always has the same bytes:
``cat_sort_uniq`` (set by ``hooks install`` for rewrites and notes merges) unions two
notes on one commit without duplicates, and so do we when we add to a note.

Writing goes through one ``git fast-import`` run per drain (fed while the drain writes its
events, and told ``done`` after them: the events stay first on disk), with explicit 2/38 fanout
paths and each distinct note text stored once.  Measured (``bench/bench_ingest.py``):
libgit2 keeps notes trees flat and rewrites the whole tree for every note, so 2,000
notes cost it seconds (quadratic), and fast-import's own ``N`` command spends its time
searching the tree while it is still flat; writing ``M ab/cdef...`` paths ourselves
takes a fraction of either.  Git reads mixed layouts
(flat entries next to fanned ones, as its own rewrite copies may leave), so only a
commit that already has a note needs its other possible paths deleted first.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from milestoned.core.errors import RuntimeFailure
from milestoned.files import gitdirs
from milestoned.git.identity import FALLBACK
from milestoned.git.queries import git_env, run_git

REF = "refs/notes/milestoned"
_COMMITTER = "{} <{}>".format(*FALLBACK)  # notes commits are milestoned's own bookkeeping


def line(milestone: str, task: str | None, session: str | None, event: str) -> str:
    """The note line of one fact: stable bytes, so equal facts merge as one."""
    fields = {"milestone": milestone, "task": task, "session": session or None, "event": event}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def merge(existing: str, lines: Iterable[str]) -> str:
    """``cat_sort_uniq``: the union of the lines, sorted, without blanks or duplicates."""
    union = {ln.strip() for ln in existing.splitlines()} | {ln.strip() for ln in lines}
    union.discard("")
    return "".join(ln + "\n" for ln in sorted(union))


def _paths(sha: str) -> list[str]:
    """Every place a note on ``sha`` may sit, whatever fanout wrote it."""
    return [sha, f"{sha[:2]}/{sha[2:]}", f"{sha[:2]}/{sha[2:4]}/{sha[4:]}"]


def _stream(notes: Mapping[str, str], replaced: set[str], parent: str | None, message: str) -> bytes:
    """One fast-import stream: each distinct note text once (a mark), then one path per commit."""
    marks: dict[str, int] = {}
    out: list[bytes] = []
    for text in notes.values():
        if text not in marks:
            marks[text] = len(marks) + 1
            data = text.encode("utf-8")
            out.append(b"blob\nmark :%d\ndata %d\n%s\n" % (marks[text], len(data), data))
    msg = message.encode("utf-8")
    out.append(b"commit %s\ncommitter %s %d +0000\ndata %d\n%s\n" % (
        REF.encode(), _COMMITTER.encode(), int(time.time()), len(msg), msg))
    if parent:
        out.append(b"from %s\n" % parent.encode())
    for sha, text in notes.items():
        if sha in replaced:
            out += [b"D %s\n" % p.encode() for p in _paths(sha)]
        out.append(b"M 100644 :%d %s/%s\n" % (marks[text], sha[:2].encode(), sha[2:].encode()))
    out.append(b"\n")
    return b"".join(out)  # without its "done": fast-import moves the ref only once that comes


def write(cwd: Path, notes: Mapping[str, str], replaced: Iterable[str] = (), message: str = "") -> None:
    """Set the note of each commit in ``notes`` (its full text) in one notes commit (``start``, then
    ``finish`` at once)."""
    start(cwd, notes, replaced, message).finish()


class Writing:
    """One notes commit under way: ``git fast-import`` reads its stream from a thread while the
    caller goes on (a drain writes its events meanwhile); ``finish`` lets it move the ref,
    ``abandon`` kills it, with nothing moved (fast-import moves refs only at a ``done``).

    It builds on the ref's tip as fast-import finds it (``from REF^0``, no process to ask
    first).  Another writer moving the ref meanwhile (a rebase copying notes) makes it
    refuse: ``finish`` then builds again on the tip it asks git for.
    """

    def __init__(self, cwd: Path, notes: Mapping[str, str], replaced: set[str], message: str) -> None:
        self.cwd, self.notes, self.replaced, self.message = cwd, notes, replaced, message
        self.proc: subprocess.Popen[bytes] | None = None
        if not notes:
            return
        self.proc = _fast_import(cwd)
        self._feeder = threading.Thread(target=self._feed, args=(_stream(notes, replaced, _tip(cwd), message),),
                                        name="milestoned-notes", daemon=True)
        self._feeder.start()

    def _feed(self, data: bytes) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        with contextlib.suppress(OSError):  # it died (or was killed): finish says so, abandon wanted it
            self.proc.stdin.write(data)

    def finish(self) -> None:
        if self.proc is None:
            return
        self._feeder.join()
        with contextlib.suppress(OSError):
            self.proc.communicate(b"done\n", timeout=600)
        if self.proc.returncode == 0:
            return
        for _attempt in range(3):
            parent = run_git(["rev-parse", "-q", "--verify", REF], self.cwd, check=False).stdout.strip() or None
            self.proc = _fast_import(self.cwd)  # abandon stops this one too (a timeout)
            _, errors = self.proc.communicate(_stream(self.notes, self.replaced, parent, self.message) + b"done\n",
                                              timeout=600)
            if self.proc.returncode == 0:
                return
        detail = errors.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeFailure(f"could not write notes to {REF}: {detail[-1] if detail else self.proc.returncode}")

    def abandon(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            self.proc.wait()
            self._feeder.join()


def _tip(cwd: Path) -> str | None:
    """The ref's tip as fast-import reads it (``REF^0``), or None when there is no ref yet: read from
    the ref files (a process costs more than the notes), from git when refs are not files."""
    common = gitdirs.locate(os.fspath(cwd))[3]
    if common is None or os.path.isdir(os.path.join(common, "reftable")):
        return run_git(["rev-parse", "-q", "--verify", REF], cwd, check=False).stdout.strip() or None
    try:
        with open(os.path.join(common, "packed-refs"), encoding="utf-8", errors="replace") as handle:
            packed = f" {REF}\n" in handle.read()
    except OSError:
        packed = False
    return f"{REF}^0" if packed or os.path.isfile(os.path.join(common, REF)) else None


def _fast_import(cwd: Path) -> subprocess.Popen[bytes]:
    """``git fast-import``, with glibc told to keep freed memory: fast-import sets up and frees a
    zlib stream per tree it stores, and by default each free hands the pages back to the kernel
    and the next tree faults them in again, which measured as a third of its time on 10,000 notes
    (``bench/bench_ingest.py``).  A value the user set is kept; other C libraries ignore it."""
    env = git_env()
    env.setdefault("MALLOC_TRIM_THRESHOLD_", str(256 << 20))
    return subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=cwd, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def start(cwd: Path, notes: Mapping[str, str], replaced: Iterable[str] = (), message: str = "") -> Writing:
    """Begin setting the note of each commit in ``notes`` (its full text) in one notes commit.

    ``replaced`` names the commits that already had a note (merged into their text by the caller).
    """
    return Writing(cwd, notes, set(replaced), message or f"milestoned: notes of {len(notes)} ingested commit(s)\n")


def add(cwd: Path, sha: str, fact: str) -> None:
    """Add one line (``line``'s output) to the note of ``sha``, kept with what the note says already."""
    shown = run_git(["notes", f"--ref={REF}", "show", sha], cwd, check=False)
    existing = shown.stdout if shown.returncode == 0 else ""
    write(cwd, {sha: merge(existing, [fact])}, [sha] if existing else [], message=f"milestoned: note on {sha[:12]}\n")
