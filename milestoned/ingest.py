"""Commits feed the task state: drain the hooks' inbox, reconcile refs, apply trailers.

Every ``milestoned`` command calls ``drain`` first, and so does the daemon.  When the
inbox is empty and no ref moved it costs a few ``stat`` calls and no process: the
refs are fingerprinted by the modification times of the directories git renames
loose refs into, ``packed-refs`` and each worktree's ``HEAD``.  Otherwise one ``git
for-each-ref`` reads the branch tips and one ``git log`` walks every commit that is
new since the last drain — named by a hook, or reached by a ref that moved without
any hook (libgit2/pygit2 clients run none) — with its trailers and its note.
Reconciliation reads where the refs and worktree HEADs stand, not their reflogs: a
commit that no hook reported and no ref reaches any more (made, then reset away
before the next drain) was abandoned, and is not counted as progress.  Our own
``milestoned/`` branches (the state branch) hold plumbing commits and are skipped.

What a commit says:

- ``Milestone: <id>`` names the milestone (else the branch, else the current one).
- ``Task: <id>`` starts a pending task (pending -> in_progress).  A task whose
  dependencies are still open is started all the same (the work is happening) and
  a ``task_dependency_blocker`` event says so, for the blocker detector.
- ``Completes: <id>`` completes the task; if its dependencies are still open it is
  refused with a ``commit_refused`` event naming the commit and the dependencies, and
  a later commit (or ``task done``) must complete it.
- A branch ``milestone/<mid>/<tid>`` implies ``Milestone: <mid>`` and ``Task: <tid>``
  (``milestone/<mid>`` implies the milestone only) for commits that do not say
  otherwise; merge commits take nothing from their branch.
- On a milestone that is not running (planned, paused, completed) trailers change
  nothing: a ``commit_refused`` event records the commit, the task and why, so the
  work can be credited by hand once the milestone is activated.  A commit naming a
  milestone that does not exist is ignored (there is no log to write to); one naming
  an unknown task of a known milestone is refused with an event.

Idempotence.  The event log is the ledger: every ingested commit appears in it once,
in the event that moved its task (``commit`` field) or in the drain's
``commits_ingested`` record (``commits``: ``[sha, task, event, session]`` rows).  A
commit already in the ledger is skipped, so replaying the inbox or a second worktree
seeing the same commit changes nothing.  A rewritten commit (post-rewrite: amend,
rebase, squash) inherits the rows of the commits it replaced and moves no task.  A
commit that would start or complete a task already moved by another commit (a
cherry-pick, a rewrite by a tool without hooks) is compared by ``git patch-id``: the
same change is recorded as a duplicate, never applied twice.

The order of durable steps makes a crash harmless: claim the inbox (rename), apply
events (one transaction for the whole drain) while one ``git fast-import`` writes the
notes, remember the refs, delete the claimed inbox.  Redoing any suffix of that
changes nothing: a commit found in the ledger gets its note again if it lacks it, and
notes written for events a crash lost get the very same lines when the next drain
records those events (a note line holds only milestone, task, session and event).
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from milestoned import inbox
from milestoned.workspace import Workspace

if TYPE_CHECKING:
    from milestoned.engine import Engine, Milestone, Transaction

RACY_SECONDS = 2.0  # a ref changed this recently may change again within the same mtime tick
_FORMAT = "%H%x1f%P%x1f%S%x1f%(trailers:key=Milestone,key=Task,key=Completes,unfold,separator=%x1e)%x1f%N"
_MOVES = ("task_started", "task_completed")
_RECORDS = (*_MOVES, "commit_refused")


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
    from milestoned.gitutil import git

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


def _load_tips(ws: Workspace) -> dict[str, str] | None:
    try:
        data = json.loads(_tips_path(ws).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    tips = data.get("tips") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in tips.items()} if isinstance(tips, dict) else None


def remember_refs(ws: Workspace, tips: dict[str, str], stamp: str, racy: bool) -> None:
    """Save the tips walked up to, then the stamp that lets the next drain skip all work."""
    from milestoned.store import atomic_write

    inbox.ensure_dir(ws.runtime_dir)
    atomic_write(_tips_path(ws), json.dumps({"tips": tips}, sort_keys=True) + "\n", mode=0o600)
    atomic_write(_stamp_path(ws), "" if racy else stamp, mode=0o600)


def baseline(ws: Workspace) -> None:
    """Start reconciling from the refs as they are now (``hooks install`` calls this once)."""
    if ws.common_dir is None or _load_tips(ws) is not None:
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


def _parse_log(data: bytes) -> list[Commit]:
    commits = []
    for record in data.decode("utf-8", "replace").split("\0"):
        fields = record.split("\x1f", 4)
        if len(fields) != 5 or not fields[0]:
            continue
        commits.append(Commit(*fields))
    return commits


def walk(ws: Workspace, tips: Iterable[str], stops: Iterable[str] | None) -> list[Commit]:
    """Commits reachable from ``tips`` and not from ``stops``, parents first.

    With ``stops`` None (no refs remembered yet) only the named commits themselves.
    """
    import subprocess

    from milestoned import notes
    from milestoned.gitutil import git_env

    lines = list(dict.fromkeys(tips))
    if not lines:
        return []
    args = ["git", "log", "-z", "--source", "--ignore-missing", "--stdin", f"--notes={notes.REF}",
            f"--format={_FORMAT}"]
    if stops is None:
        args.insert(2, "--no-walk=unsorted")
    else:
        args[2:2] = ["--topo-order", "--reverse"]
        lines += [f"^{s}" for s in dict.fromkeys(stops)]
    proc = subprocess.run(args, cwd=ws.worktree, env=git_env(), input="\n".join(lines).encode() + b"\n",
                          capture_output=True, timeout=600)
    if proc.returncode != 0:
        from milestoned.errors import RuntimeFailure

        raise RuntimeFailure(f"git log failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return _parse_log(proc.stdout)


def patch_ids(ws: Workspace, shas: Iterable[str]) -> dict[str, str]:
    """``git patch-id --stable`` of each commit (merges have none): the change, whoever made it."""
    import subprocess

    from milestoned.gitutil import git_env

    wanted = "\n".join(dict.fromkeys(shas)) + "\n"
    diff = subprocess.run(["git", "diff-tree", "--stdin", "-p", "-r", "--root", "--no-color"], cwd=ws.worktree,
                          env=git_env(), input=wanted.encode(), capture_output=True, timeout=600).stdout
    out = subprocess.run(["git", "patch-id", "--stable"], cwd=ws.worktree, env=git_env(), input=diff,
                         capture_output=True, timeout=600).stdout.decode()
    ids: dict[str, str] = {}
    for row in out.splitlines():
        patch, _, commit = row.partition(" ")
        ids[commit] = patch
    return ids


# -- what a commit means ---------------------------------------------------------------
@dataclass(frozen=True)
class Intent:
    milestone: str | None
    moves: tuple[tuple[str, str], ...]  # (task, task_completed|task_started), completions first


@functools.lru_cache(maxsize=4096)
def _valid(value: str) -> bool:
    """``ids.is_valid_id``, remembered: the same few ids come back on thousands of commits."""
    from milestoned.ids import is_valid_id

    return is_valid_id(value)


def _branch_parts(ref: str) -> tuple[str | None, str | None]:
    """``refs/heads/milestone/<mid>[/<tid>]`` -> (mid, tid)."""
    if not ref.startswith("refs/heads/milestone/"):
        return None, None
    parts = ref[len("refs/heads/milestone/"):].split("/")
    mid = parts[0] if _valid(parts[0]) else None
    tid = parts[1] if len(parts) == 2 and mid and _valid(parts[1]) else None
    return mid, tid


def intent_of(commit: Commit, branch: str) -> Intent:
    """What the trailers (and, for a plain commit, its branch) ask of the task state."""
    return _intent(commit.trailers, "" if commit.is_merge else branch)


@functools.lru_cache(maxsize=4096)
def _intent(trailers: str, branch: str) -> Intent:
    """Remembered: thousands of commits repeat a few trailer blocks on a few branches."""
    milestone: str | None = None
    tasks: list[str] = []
    completes: list[str] = []
    for item in trailers.split("\x1e"):
        key, sep, value = item.partition(":")
        key, value = key.strip().lower(), value.strip()
        if not sep or not _valid(value):
            continue
        if key == "milestone" and milestone is None:
            milestone = value
        elif key == "task" and value not in tasks:
            tasks.append(value)
        elif key == "completes" and value not in completes:
            completes.append(value)
    mid, tid = _branch_parts(branch)
    if milestone is None:
        milestone = mid
    if tid and not tasks and milestone == mid:
        tasks.append(tid)
    moves = [(t, "task_completed") for t in completes] + [(t, "task_started") for t in tasks if t not in completes]
    return Intent(milestone, tuple(moves))


def _note_milestones(note: str) -> list[str]:
    found = []
    for row in note.splitlines():
        try:
            value = json.loads(row).get("milestone")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str) and value not in found:
            found.append(value)
    return found


# -- the ledger: which commits a milestone's log already holds ----------------------------
Row = tuple[str | None, str, str | None]  # (task, event, session)


class Ledger:
    """Commit -> rows of a milestone's log, and task moves -> the commits that made them."""

    def __init__(self, milestone: Milestone) -> None:
        self.milestone_id = milestone.id
        self.deps = milestone.plan.deps  # the plan cannot change while the lock is held
        self.rows: dict[str, list[Row]] = {}
        self.moves: dict[tuple[str, str], list[str]] = {}
        self._lines: dict[Row, str] = {}
        for event in milestone.log.events:
            self.add_event(event)

    def add_event(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        commit = event.get("commit")
        if name in _RECORDS and isinstance(commit, str):
            self.add(commit, event.get("task_id"), name, event.get("session_id"))
        elif name == "commits_ingested" and isinstance(event.get("commits"), list):
            for row in event["commits"]:
                if isinstance(row, list) and len(row) == 4 and isinstance(row[0], str):
                    self.add(row[0], row[1], str(row[2]), row[3])

    def add(self, sha: str, task: str | None, event: str, session: str | None) -> str:
        """Record a row; returns its note line."""
        row = (task, event, session or None)
        if sha in self.rows:
            self.rows[sha].append(row)
        else:
            self.rows[sha] = [row]
        if event in _MOVES and task:
            self.moves.setdefault((task, event), []).append(sha)
        return self._line(row)

    def note_lines(self, sha: str) -> list[str]:
        return [self._line(row) for row in self.rows.get(sha, [])]

    def _line(self, row: Row) -> str:
        """The note line of a row; thousands of commits share a handful of distinct lines."""
        if row not in self._lines:
            from milestoned.notes import line

            task, event, session = row
            self._lines[row] = line(self.milestone_id, task, session, event)
        return self._lines[row]


# -- applying ----------------------------------------------------------------------------
class _Drain:
    """One drain: the commits to read, the milestones they touch, the notes to write."""

    def __init__(self, engine: Engine, txn: Transaction, commits: list[Commit], branches: dict[str, str],
                 rewrites: dict[str, list[str]]) -> None:
        self.engine, self.txn, self.ws = engine, txn, engine.ws
        self.by_sha = {c.sha: c for c in commits}
        self.order = commits
        self.branches = branches  # sha -> the branch a hook saw it made on
        self.rewrites = rewrites  # new sha -> the shas it replaced
        self.ledgers: dict[str, Ledger | None] = {}
        self.rows: dict[str, list[list[Any]]] = {}  # milestone -> commits_ingested rows
        self.notes: dict[str, list[str]] = {}  # sha -> note lines
        self.done: set[str] = set()
        self.ingested = 0
        self._patch_ids: dict[str, str] = {}
        from milestoned import lifecycle

        self.lifecycle = lifecycle

    def run(self) -> None:
        for commit in self.order:
            self.ingest(commit)
        for mid, rows in self.rows.items():
            milestone = self.txn.milestone(mid)
            self.txn.record(milestone, "commits_ingested", commits=rows)

    def ledger(self, mid: str) -> Ledger | None:
        if mid not in self.ledgers:
            from milestoned.errors import UserError

            try:
                self.engine.path_of(mid)
            except UserError:
                self.ledgers[mid] = None  # no such milestone: nothing to record the commit in
                return None
            self.ledgers[mid] = Ledger(self.txn.milestone(mid))
        return self.ledgers[mid]

    def ingest(self, commit: Commit) -> None:
        sha = commit.sha
        if sha in self.done:
            return
        self.done.add(sha)
        origins = self.rewrites.get(sha, ())
        for old in origins:
            if old in self.by_sha:
                self.ingest(self.by_sha[old])  # what it replaced first, so it can inherit
        intent = intent_of(commit, self.branches.get(sha) or commit.source)
        if not intent.moves and not origins:
            return
        mid = intent.milestone or next(iter(_note_milestones(commit.note)), None) or self.engine.current_id()
        ledger = self.ledger(mid) if mid else None
        if ledger is None:
            return
        if sha in ledger.rows:
            self._note(sha, *ledger.note_lines(sha))  # a note lost in a crash comes back
            return
        inherited = [row for old in origins for row in ledger.rows.get(old, ())]
        if inherited:
            self.ingested += 1
            for task, event, session in inherited:
                self._row(ledger, sha, task, event, session)
        elif intent.moves:
            self.ingested += 1
            self._apply(ledger, commit, intent)

    def _apply(self, ledger: Ledger, commit: Commit, intent: Intent) -> None:
        lifecycle = self.lifecycle
        milestone = self.txn.milestone(ledger.milestone_id)
        status = milestone.state.status
        for task_id, move in intent.moves:
            if task_id not in ledger.deps:
                self._refuse(ledger, milestone, commit, task_id, f"milestone {milestone.id} has no task {task_id}")
                continue
            current = milestone.state.tasks[task_id].status
            needed = current != "completed" if move == "task_completed" else current == "pending"
            if not needed:  # already where the commit would take it (ingested late, say): credit it
                self._row(ledger, commit.sha, task_id, "commit_ingested", milestone.state.session_id)
                continue
            if status not in ("in_progress", "blocked"):
                self._refuse(ledger, milestone, commit, task_id, f"milestone {milestone.id} is {status}")
                continue
            twin = self._same_change(ledger, commit.sha, task_id, move)
            if twin:
                self._row(ledger, commit.sha, task_id, "commit_ingested", milestone.state.session_id)
                self.txn.record(milestone, "commit_duplicate", commit=commit.sha, task_id=task_id, duplicate_of=twin)
                continue
            deps = [d for d in ledger.deps[task_id] if milestone.state.tasks[d].status != "completed"]
            if move == "task_completed" and deps:
                self._refuse(ledger, milestone, commit, task_id, "dependencies not completed", dependencies=deps)
                continue
            if move == "task_completed":
                lifecycle.complete(self.txn, milestone, task_id, commit=commit.sha, via="commit")
            else:
                lifecycle.start(self.txn, milestone, task_id, force=bool(deps), commit=commit.sha, via="commit")
            self._note(commit.sha, ledger.add(commit.sha, task_id, move, milestone.state.session_id))

    def _refuse(self, ledger: Ledger, milestone: Milestone, commit: Commit, task_id: str, reason: str,
                **detail: Any) -> None:
        self.txn.record(milestone, "commit_refused", commit=commit.sha, task_id=task_id, reason=reason, **detail)
        self._note(commit.sha, ledger.add(commit.sha, task_id, "commit_refused", milestone.state.session_id))

    def _row(self, ledger: Ledger, sha: str, task: str | None, event: str, session: str | None) -> None:
        self.rows.setdefault(ledger.milestone_id, []).append([sha, task, event, session])
        self._note(sha, ledger.add(sha, task, event, session))

    def _note(self, sha: str, *lines: str) -> None:
        if sha in self.notes:
            self.notes[sha] += lines
        else:
            self.notes[sha] = list(lines)

    def write_notes(self) -> None:
        """The notes, ``cat_sort_uniq`` with any the commits already have (copied by a rewrite)."""
        from milestoned import notes

        changed: dict[str, str] = {}
        replaced = []
        for sha, lines in self.notes.items():
            existing = self.by_sha[sha].note if sha in self.by_sha else ""
            if not existing:  # the common case: a commit seen for the first time
                changed[sha] = lines[0] + "\n" if len(lines) == 1 else notes.merge("", lines)
                continue
            text = notes.merge(existing, lines)
            if text != notes.merge(existing, ()):
                changed[sha] = text
                replaced.append(sha)
        notes.write(self.ws.worktree, changed, replaced)

    def _same_change(self, ledger: Ledger, sha: str, task_id: str, move: str) -> str | None:
        """An earlier commit that moved this task the same way with the same patch (a copy of it)."""
        earlier = [s for s in ledger.moves.get((task_id, move), []) if s != sha]
        if not earlier:
            return None
        missing = [s for s in (sha, *earlier) if s not in self._patch_ids]
        if missing:
            self._patch_ids.update(patch_ids(self.ws, missing))
            self._patch_ids.update({s: "" for s in missing if s not in self._patch_ids})
        mine = self._patch_ids[sha]
        return next((s for s in earlier if mine and self._patch_ids[s] == mine), None)


def drain(engine: Engine) -> int:
    """Ingest what the hooks reported and what moved without them; returns commits newly applied.

    Cheap when there is nothing to do: no lock, no process, a few ``stat`` calls.
    """
    ws = engine.ws
    if ws.common_dir is None or not ws.milestones_dir.is_dir() or nothing_new(ws):
        return 0
    with engine.lock.held():
        return _drain_locked(engine)


def _drain_locked(engine: Engine) -> int:
    ws = engine.ws
    assert ws.common_dir is not None
    inbox.ensure_dir(ws.runtime_dir)
    claimed = inbox.claim(ws.runtime_dir)
    entries = inbox.read(claimed)
    stamp, racy = fingerprint(ws.common_dir)
    known = _load_tips(ws)
    tips = read_tips(ws)
    named = [e.sha for e in entries]
    branches = {e.sha: e.ref for e in entries if e.kind == "commit" and e.ref}
    rewrites: dict[str, list[str]] = {}
    for entry in entries:
        if entry.is_rewrite and entry.extra:
            rewrites.setdefault(entry.sha, []).append(entry.extra)
    if known is None:
        commits = walk(ws, named, None)
    else:  # walk the moved refs; then whatever the hooks named that no ref reaches (amended away)
        moved = {name: sha for name, sha in tips.items() if known.get(name) != sha}
        commits = walk(ws, [n if n.startswith("refs/") else s for n, s in moved.items()], known.values())
        seen = {c.sha for c in commits}
        rest = [sha for sha in named if sha not in seen]
        if rest:
            commits += walk(ws, rest, [*known.values(), *moved.values()])
    count = 0
    if commits:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            with engine.transaction() as txn:
                drained = _Drain(engine, txn, commits, branches, rewrites)
                drained.run()
                notes_written = pool.submit(drained.write_notes)  # fast-import works while events are written
            notes_written.result()
        count = drained.ingested
    remember_refs(ws, tips, stamp, racy)
    inbox.release(ws.runtime_dir, claimed)
    return count
