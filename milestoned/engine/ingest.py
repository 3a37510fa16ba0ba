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

- ``Milestone: <id>`` names the milestone (else the branch, else the current one, else
  the one milestone whose plan has the tasks the commit names).
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

import contextlib
import gc
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from milestoned.core.errors import UserError
from milestoned.engine import lifecycle
from milestoned.engine.lifecycle import Refusal
from milestoned.files import inbox
from milestoned.git import notes
from milestoned.git.hookinstall import let_go_of_finished
from milestoned.git.notes import line
from milestoned.git.refwatch import (
    Commit,
    Walk,
    fingerprint,
    load_tips,
    patch_ids,
    read_tips,
    remember_refs,
    waiting,
)
from milestoned.git.trailers import Intent, intent_of, note_milestones

if TYPE_CHECKING:
    from milestoned.engine.engine import Engine, Transaction
    from milestoned.model.milestone import Milestone

_MOVES = ("task_started", "task_completed")
_RECORDS = (*_MOVES, "commit_refused")


# -- the ledger: which commits a milestone's log already holds ----------------------------
Row = tuple[str | None, str, str | None]  # (task, event, session)


class CommitLedger:
    """Commit -> rows of a milestone's log, and task moves -> the commits that made them."""

    def __init__(self, milestone: Milestone) -> None:
        self.milestone_id = milestone.id
        self.deps = milestone.plan.deps  # the plan cannot change while the lock is held
        self.rows: dict[str, list[Row]] = {}
        self.moves: dict[tuple[str, str], list[str]] = {}
        self._lines: dict[Row, str] = {}
        for event in milestone.events():
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
            task, event, session = row
            self._lines[row] = line(self.milestone_id, task, session, event)
        return self._lines[row]


# -- applying ----------------------------------------------------------------------------
class _Drain:
    """One drain: the commits to read, the milestones they touch, the notes to write."""

    def __init__(self, engine: Engine, txn: Transaction, entries: list[inbox.Entry]) -> None:
        self.engine, self.txn, self.ws = engine, txn, engine.ws
        self.by_sha: dict[str, Commit] = {}  # every commit read, in order
        self.branches = {e.sha: e.ref for e in entries if e.kind == "commit" and e.ref}  # the branch a hook saw
        self.rewrites: dict[str, list[str]] = {}  # new sha -> the shas it replaced
        for entry in entries:
            if entry.is_rewrite and entry.extra:
                self.rewrites.setdefault(entry.sha, []).append(entry.extra)
        self.ledgers: dict[str, CommitLedger | None] = {}
        self.rows: dict[str, list[list[Any]]] = {}  # milestone -> commits_ingested rows
        self.notes: dict[str, list[str]] = {}  # sha -> note lines
        self.done: set[str] = set()
        self.ingested = 0
        self.finished: set[tuple[str, str]] = set()  # (milestone, task) completed by a commit
        self._patch_ids: dict[str, str] = {}
        self._verdicts: dict[tuple[str, str, str], tuple[int, Refusal | None]] = {}

    def take(self, commits: Iterable[Commit]) -> None:
        """Read commits, parents first, applying each as it comes (while git prints the next ones).

        A rewritten commit inherits the rows of the one it replaced, which a later walk may bring
        (amended away, no ref reaches it): with rewrites in the drain, ``finish`` applies them all."""
        for commit in commits:
            self.by_sha[commit.sha] = commit
            if not self.rewrites:
                self.ingest(commit)

    def finish(self) -> None:
        if self.rewrites:
            for commit in list(self.by_sha.values()):
                self.ingest(commit)
        for mid, rows in self.rows.items():
            milestone = self.txn.milestone(mid)
            self.txn.record(milestone, "commits_ingested", commits=rows)

    def ledger(self, mid: str) -> CommitLedger | None:
        if mid not in self.ledgers:
            try:
                self.engine.path_of(mid)
            except UserError:
                self.ledgers[mid] = None  # no such milestone: nothing to record the commit in
                return None
            self.ledgers[mid] = CommitLedger(self.txn.milestone(mid))
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
        if not intent.moves and not origins and intent.problem is None:
            return
        mid = (intent.milestone or next(iter(note_milestones(commit.note)), None) or self.engine.current_id()
               or self._only_owner(intent))
        ledger = self.ledger(mid) if mid else None
        if ledger is None:
            return
        if sha in ledger.rows:
            self._note(sha, *ledger.note_lines(sha))  # a note lost in a crash comes back
            return
        if intent.problem is not None:  # said once, in the milestone the commit would have reached
            milestone = self.txn.milestone(ledger.milestone_id)
            self.txn.record(milestone, "commit_refused", commit=sha, reason=intent.problem)
            self._row(ledger, sha, None, "commit_refused", milestone.state.session_id)
        inherited = [row for old in origins for row in ledger.rows.get(old, ())] if origins else None
        if inherited:
            self.ingested += 1
            for task, event, session in inherited:
                self._row(ledger, sha, task, event, session)
        elif intent.moves:
            self.ingested += 1
            self._apply(ledger, commit, intent)

    def _only_owner(self, intent: Intent) -> str | None:
        """With no milestone named and none current, the one milestone whose plan has every task the
        commit names, if exactly one has (so a commit on a milestone not running is refused aloud)."""
        named = {task_id for task_id, _ in intent.moves}
        if not named:
            return None
        owners = []
        for path in self.engine.milestone_paths():
            try:
                plan = self.engine.load(path.stem).plan
            except UserError:
                continue  # a broken plan owns nothing; `validate` says what is wrong with it
            if all(plan.has_task(task_id) for task_id in named):
                owners.append(plan.id)
        return owners[0] if len(owners) == 1 else None

    def _apply(self, ledger: CommitLedger, commit: Commit, intent: Intent) -> None:
        """Each move through the life cycle's own rule; what it refuses is logged, not re-judged."""
        milestone = self.txn.milestone(ledger.milestone_id)
        for task_id, move in intent.moves:
            completes = move == "task_completed"
            refusal = self._verdict(milestone, task_id, move)
            if refusal is not None and refusal.kind in ("already", "state"):
                # already where the commit would take it (ingested late, say): credit it
                self._row(ledger, commit.sha, task_id, "commit_ingested", milestone.state.session_id)
                continue
            if refusal is not None and refusal.kind in ("no_task", "not_running"):
                self._refuse(ledger, milestone, commit, task_id, refusal)
                continue
            twin = self._same_change(ledger, commit.sha, task_id, move)
            if twin:
                self._row(ledger, commit.sha, task_id, "commit_ingested", milestone.state.session_id)
                self.txn.record(milestone, "commit_duplicate", commit=commit.sha, task_id=task_id, duplicate_of=twin)
                continue
            if completes and refusal is not None:  # its dependencies are still open
                self._refuse(ledger, milestone, commit, task_id, refusal)
                continue
            if completes:
                lifecycle.complete(self.txn, milestone, task_id, commit=commit.sha, via="commit")
                self.finished.add((milestone.id, task_id))
            else:  # a commit on a task that waits for its dependencies: the work is happening, start it
                lifecycle.start(self.txn, milestone, task_id, force=refusal is not None, commit=commit.sha,
                                via="commit")
            self._note(commit.sha, ledger.add(commit.sha, task_id, move, milestone.state.session_id))

    def _verdict(self, milestone: Milestone, task_id: str, move: str) -> Refusal | None:
        """The life cycle's rule for a move, asked again only once the milestone changed (its clock
        moves with every event): thousands of commits of one task get the same answer."""
        key = (milestone.id, task_id, move)
        known = self._verdicts.get(key)
        if known is not None and known[0] == milestone.state.clock:
            return known[1]
        refusal = (lifecycle.can_complete if move == "task_completed" else lifecycle.can_start)(milestone, task_id)
        self._verdicts[key] = (milestone.state.clock, refusal)
        return refusal

    def _refuse(self, ledger: CommitLedger, milestone: Milestone, commit: Commit, task_id: str, refusal: Refusal) -> None:
        self.txn.record(milestone, "commit_refused", commit=commit.sha, task_id=task_id, reason=refusal.message,
                        dependencies=list(refusal.dependencies) or None)
        self._note(commit.sha, ledger.add(commit.sha, task_id, "commit_refused", milestone.state.session_id))

    def _row(self, ledger: CommitLedger, sha: str, task: str | None, event: str, session: str | None) -> None:
        self.rows.setdefault(ledger.milestone_id, []).append([sha, task, event, session])
        self._note(sha, ledger.add(sha, task, event, session))

    def _note(self, sha: str, *lines: str) -> None:
        if sha in self.notes:
            self.notes[sha] += lines
        else:
            self.notes[sha] = list(lines)

    def start_notes(self) -> notes.Writing:
        """The notes, ``cat_sort_uniq`` with any the commits already have (copied by a rewrite):
        under way from now on, moved onto the notes ref by ``finish`` once the events are written."""
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
        return notes.start(self.ws.worktree, changed, replaced)

    def _same_change(self, ledger: CommitLedger, sha: str, task_id: str, move: str) -> str | None:
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

    Cheap when there is nothing to do: no lock, no process, a few ``stat`` calls.  Else one
    transaction: its events are written first; then the notes, the ledger of refs read and
    the inbox's release follow in that order, so that a failure of any of them (a notes ref
    locked by a concurrent git) leaves the commits to be read again: a commit the log
    already holds gets its note back and changes nothing else.
    """
    if not waiting(engine.ws):
        return 0
    with _collector_paused(), engine.transaction() as txn:
        return _drain_in(txn)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a drain allocates a few objects per commit: one full
    collection walks every object of the process (a daemon's caches too) and measured 25-50 ms
    inside a drain of 10,000 commits (``bench/bench_ingest.py``).  What a drain makes holds no
    cycles, so reference counting frees it; the collector resumes as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _drain_in(txn: Transaction) -> int:
    engine, ws = txn.engine, txn.ws
    assert ws.common_dir is not None
    inbox.ensure_dir(ws.runtime_dir)
    claimed = inbox.claim(ws.runtime_dir)
    stamp, racy = fingerprint(ws.common_dir)
    known = load_tips(ws)
    tips = read_tips(ws)
    moved = {} if known is None else {name: sha for name, sha in tips.items() if known.get(name) != sha}
    with contextlib.ExitStack() as walks:
        if known is None:  # no refs remembered yet: only the commits the hooks named
            entries = inbox.read(claimed)
            first = walks.enter_context(Walk(ws, [e.sha for e in entries], None))
        else:  # the moved refs, which git walks while the inbox is read
            first = walks.enter_context(Walk(ws, [n if n.startswith("refs/") else s for n, s in moved.items()],
                                             known.values()))
            entries = inbox.read(claimed)
        drained = _Drain(engine, txn, entries)
        drained.take(first)
        rest = [e.sha for e in entries if e.sha not in drained.by_sha]
        if rest and known is not None:  # named by a hook, reached by no ref (amended away)
            drained.take(walks.enter_context(Walk(ws, rest, [*known.values(), *moved.values()])))
    if drained.by_sha:
        drained.finish()
        writing = drained.start_notes()
        txn.on_abort(writing.abandon)
        txn.after_commit(writing.finish)
        txn.after_commit(lambda: let_go_of_finished(ws, drained.finished))

    def done() -> None:
        remember_refs(ws, tips, stamp, racy)
        inbox.release(ws.runtime_dir, claimed)

    txn.after_commit(done)
    return drained.ingested
