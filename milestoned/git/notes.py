"""Git notes on ``refs/notes/milestoned``: which milestone, task and event a commit fed.

``git log --notes=milestoned`` then shows, under each ingested commit, one JSON object
per line (like git-appraise), keys sorted so the same fact always has the same bytes:
``cat_sort_uniq`` (set by ``hooks install`` for rewrites and notes merges) unions two
notes on one commit without duplicates, and so do we when we add to a note.

Writing goes through one ``git fast-import`` run per drain, with explicit 2/38 fanout
paths and each distinct note text stored once.  Measured (``bench/bench_ingest.py``):
libgit2 keeps notes trees flat and rewrites the whole tree for every note, so 2,000
notes cost it seconds (quadratic), and fast-import's own ``N`` command spends its time
searching the tree while it is still flat; writing ``M ab/cdef...`` paths ourselves
takes a fraction of either.  Git reads mixed layouts
(flat entries next to fanned ones, as its own rewrite copies may leave), so only a
commit that already has a note needs its other possible paths deleted first.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from milestoned.core.errors import RuntimeFailure
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
    out.append(b"\ndone\n")
    return b"".join(out)


def write(cwd: Path, notes: Mapping[str, str], replaced: Iterable[str] = (), message: str = "") -> None:
    """Set the note of each commit in ``notes`` (its full text) in one notes commit.

    ``replaced`` names the commits that already had a note (merged into their text by
    the caller).  Another writer moving the ref meanwhile (a rebase copying notes)
    makes fast-import refuse the update: we build again on the new tip.
    """
    if not notes:
        return
    replaced = set(replaced)
    message = message or f"milestoned: notes of {len(notes)} ingested commit(s)\n"
    for _attempt in range(3):
        parent = run_git(["rev-parse", "-q", "--verify", REF], cwd, check=False).stdout.strip() or None
        proc = subprocess.run(["git", "fast-import", "--quiet", "--done"], cwd=cwd, env=git_env(),
                              input=_stream(notes, replaced, parent, message), capture_output=True, timeout=600)
        if proc.returncode == 0:
            return
    detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    raise RuntimeFailure(f"could not write notes to {REF}: {detail[-1] if detail else proc.returncode}")


def add(cwd: Path, sha: str, fact: str) -> None:
    """Add one line (``line``'s output) to the note of ``sha``, kept with what the note says already."""
    shown = run_git(["notes", f"--ref={REF}", "show", sha], cwd, check=False)
    existing = shown.stdout if shown.returncode == 0 else ""
    write(cwd, {sha: merge(existing, [fact])}, [sha] if existing else [], message=f"milestoned: note on {sha[:12]}\n")
