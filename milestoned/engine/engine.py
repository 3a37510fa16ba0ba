"""The engine: the one place that changes milestone state.

Every door — the CLI, hook ingest, the daemon, the runner, the socket — calls the
engine.  A change happens inside a ``transaction``: take the lock, load fresh, check,
record events, then on success write the files the events name (a session, the
current milestone, a plan edit), append the events to the log (fsync), refresh the
read cache, and run the git writes that follow (notes, the state branch, a claim's
local copy).  An exception inside the transaction writes nothing.

The state lives in the git dir (``Workspace.state_dir``); the working tree holds only
the user's plan, which the engine writes for plan edits alone (``new``, ``task add``,
``archive``).  A crash at any instant loses at most the change in flight: the log is
the truth, nothing derived is ever read back as a command, and what an event names is
written before it.  A transaction that touches several milestones appends their logs
one after the other: a crash between two leaves the first milestone's events alone,
each of them whole.

Reading needs no lock: files are only ever replaced whole and logs only appended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from milestoned.core import ids
from milestoned.core.errors import UserError, display_path
from milestoned.engine import legacy
from milestoned.files import readcache
from milestoned.files import yamlread as yamlio
from milestoned.files.durable import StateLock, atomic_write
from milestoned.files.workspace import PLAN_SUFFIXES, Workspace
from milestoned.model import events as eventlog
from milestoned.model.events import Event
from milestoned.model.milestone import RECENT_EVENTS, LogFold, Milestone, read_log
from milestoned.model.plan import Plan, load_plan, read_plan
from milestoned.model.state import (
    apply,
    baseline_fields,
    fold,
    initial,
)

NOT_MILESTONES = frozenset({"dependencies", "roadmap", "config", "index"})


class Engine:
    """Verbs over one repository's milestones; the only writer of their state."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        self.lock = StateLock(workspace.lock_path)
        self._txn: Transaction | None = None
        self._txn_thread: int | None = None  # the thread whose transaction it is
        self._pinned: dict[str, Plan] = {}
        self._folds: dict[str, tuple[readcache.Stamp, LogFold]] = {}  # what this process folded last
        self._imported = False

    # -- finding milestones -----------------------------------------------------------
    def milestone_paths(self) -> list[Path]:
        """One plan file per milestone id: this checkout's, else the main worktree's; active first."""
        found: dict[str, Path] = {}
        for directory in self.ws.plan_folders():
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                continue
            for name in names:
                path = directory / name
                if path.suffix in PLAN_SUFFIXES and path.stem not in NOT_MILESTONES and not name.startswith("."):
                    found.setdefault(path.stem, path)
        return list(found.values())

    def path_of(self, milestone_id: str) -> Path:
        """The plan file of a milestone, as ``milestone_paths`` would choose it."""
        _check_id(milestone_id)
        if milestone_id in self._pinned:
            return self._pinned[milestone_id].path
        for directory in self.ws.plan_folders():
            for suffix in PLAN_SUFFIXES:
                candidate = directory / f"{milestone_id}{suffix}"
                if candidate.is_file():
                    return candidate
                if candidate.is_dir():
                    raise UserError("is a directory, not a milestone file", path=candidate,
                                    hint="move it away; a milestone is one YAML file")
        self.ws.require_initialized()
        names = [p.stem for p in self.milestone_paths()]
        known = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "") or "none yet"
        raise UserError(
            f"no milestone {milestone_id!r} in {display_path(self.ws.milestones_dir)}",
            hint=f"known: {known}; create one with `milestoned new`",
        )

    def exists(self, milestone_id: str) -> bool:
        try:
            self.path_of(milestone_id)
        except UserError:
            return False
        return True

    def current_id(self) -> str | None:
        """This clone's current milestone (``activate`` sets it), if any."""
        self.migrate()
        try:
            text = self.ws.current_path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if ids.is_valid_id(text) else None

    def resolve(self, milestone_id: str | None) -> str:
        """The milestone a command means: the one named, else the current one."""
        if milestone_id:
            return milestone_id
        current = self.current_id()
        if current and not self.exists(current):
            raise UserError(f"the current milestone, {current}, has no plan in {display_path(self.ws.milestones_dir)}",
                            hint=f"it was set by `milestoned activate {current}`; name a milestone, or activate "
                                 "another")
        if current:
            return current
        self.ws.require_initialized()
        only = self.milestone_paths()
        if len(only) == 1:
            return only[0].stem  # nothing to choose between
        raise UserError("no milestone given and none is current",
                        hint="name one, or make one current with `milestoned activate ID`")

    def pin(self, plan: Plan) -> None:
        """Keep reading ``plan`` for its milestone, whatever the checkout says now (``execute``)."""
        self._pinned[plan.id] = plan

    # -- reading ----------------------------------------------------------------------
    def load(self, milestone_id: str) -> Milestone:
        """The plan and the folded log (read only, no lock: stamps taken first keep it consistent)."""
        self.migrate()
        plan = self._plan(milestone_id)
        log_path = self.ws.log_path(milestone_id)
        logfold, events = self._fold(milestone_id, plan, log_path)
        return Milestone(plan, logfold, log_path, _events=events)

    def _plan(self, milestone_id: str) -> Plan:
        pinned = self._pinned.get(milestone_id)
        if pinned is not None:
            return pinned
        path = self.path_of(milestone_id)
        key = readcache.stamp(path)
        cached = readcache.get_plan(self.ws.cache_dir, path, key)
        if isinstance(cached, Plan):
            return cached
        plan = load_plan(path)
        readcache.put_plan(self.ws.cache_dir, path, key, plan)
        return plan

    def _fold(self, milestone_id: str, plan: Plan, log_path: Path) -> tuple[LogFold, list[Event] | None]:
        """The log folded: from this process's last write or the cache when the log is unchanged,
        else read whole.  Either way a copy of its own: the caller may apply events to it."""
        key = readcache.stamp(log_path)
        kept = self._folds.pop(milestone_id, None)  # handed out once, then it is the caller's
        if kept is not None and key is not None and kept[0] == key:
            return kept[1], None
        cached = readcache.get_log(self.ws.cache_dir, milestone_id, key)
        if isinstance(cached, LogFold):
            return cached, None
        logfold, events = read_log(log_path, plan, key[1] if key else None)
        if logfold.state.has_baseline:
            readcache.put_log(self.ws.cache_dir, milestone_id, key, logfold)
        return logfold, events

    def _keep(self, milestone: Milestone) -> None:
        """After a write: remember the new fold here and in the cache, so the next read is cheap."""
        logfold = milestone.fold
        key = readcache.stamp(milestone.log_path)
        if not logfold.state.has_baseline or key is None or key[1] != logfold.size:
            return
        readcache.put_log(self.ws.cache_dir, milestone.id, key, logfold)
        self._folds[milestone.id] = (key, logfold)

    # -- what earlier layouts left in the working tree -------------------------------------
    def migrate(self) -> list[str]:
        """Import, once, the logs, sessions and current milestone earlier versions kept in
        ``.milestones/``; returns warnings about lines that could not be read."""
        if self._imported:
            return []
        self._imported = True

        if not legacy.pending(self.ws):
            return []
        with self.lock.held():
            return legacy.import_all(self)

    # -- writing ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """All state changes happen in here, under the lock; nested calls join the outer one.

        Only a call from the thread that opened it joins: another thread (the MCP server serves
        calls at once, each in a thread) waits for the lock and decides on what was written, or
        two claims could both take the one ready task."""
        if self._txn is not None and self._txn_thread == threading.get_ident():
            yield self._txn
            return
        self.migrate()
        self.ws.check_state_dir()
        with self.lock.held():
            txn = Transaction(self)
            self._txn, self._txn_thread = txn, threading.get_ident()
            try:
                yield txn
                txn.commit()
            except BaseException:
                self._folds.clear()  # what was folded in memory may hold events never written
                txn.abort()
                raise
            finally:
                self._txn, self._txn_thread = None, None


def _check_id(milestone_id: str) -> None:
    problem = ids.id_problem(milestone_id, "milestone id")
    if problem:
        raise UserError(problem)


class Transaction:
    """What one locked change touches; written out only when the body succeeds."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ws = engine.ws
        self._milestones: dict[str, Milestone] = {}
        self._merged: dict[str, tuple[list[Event], list[bytes]]] = {}  # logs taken in from another clone
        self._sessions: dict[str, str] = {}
        self._current: tuple[str | None, str | None] | None = None  # (new current, or clear if it is this)
        self._plans: dict[Path, str] = {}
        self._moves: list[tuple[Path, Path]] = []
        self._after: list[Callable[[], object]] = []
        self._aborted: list[Callable[[], object]] = []

    def milestone(self, milestone_id: str) -> Milestone:
        """Load under the lock; the first write records the baseline and what the plan changed."""
        if milestone_id in self._milestones:
            return self._milestones[milestone_id]
        _check_id(milestone_id)  # a path given as an id is refused as such, before its folders are looked at
        self.ws.writable(self.ws.log_path(milestone_id))  # a planted link is refused before anything is decided
        if milestone_id in self._merged:
            plan = self.engine._plan(milestone_id)
            events, _ = self._merged[milestone_id]
            has_baseline = any(e.get("event") == "state_baseline" for e in events)
            state = fold(events, None if has_baseline else initial(plan))
            logfold = LogFold(state, events[-RECENT_EVENTS:], [], 0, 0, True,
                              eventlog.sort_key(events[-1]) if events else None)
            milestone = Milestone(plan, logfold, self.ws.log_path(milestone_id), _events=list(events))
        else:
            milestone = self.engine.load(milestone_id)
        self._milestones[milestone_id] = milestone
        if not milestone.state.has_baseline:
            # The file is the truth when first met (a seed log has no baseline): the baseline
            # comes after any old events, and from now on the file's statuses are not commands.
            self.record(milestone, "state_baseline", **baseline_fields(milestone.plan))
        self.catch_up(milestone)
        return milestone

    def peek(self, milestone_id: str) -> Milestone:
        """A milestone as it stands in this transaction, without loading it for writing."""
        return self._milestones.get(milestone_id) or self.engine.load(milestone_id)

    def catch_up(self, milestone: Milestone) -> None:
        """Record what the plan did since the log last said: a pulled task reopens a completed
        milestone, a plan whose every task is done completes it."""
        derived, logged = milestone.status, milestone.state.status
        if derived == "completed" and logged != "completed":
            self.record(milestone, "milestone_completed", tasks=milestone.progress()[1], reason="plan")
        elif logged == "completed" and derived != "completed":
            still_open = [tid for tid, status in milestone.statuses.items() if status != "completed"]
            self.record(milestone, "milestone_reopened", reason="plan", open_tasks=still_open[:20])

    def record(self, milestone: Milestone, name: str, **fields: Any) -> Event:
        """Record an event: applied to the in-memory state now, written on commit."""
        session_id = fields.pop("session_id", None) or milestone.state.session_id
        event = eventlog.make(name, milestone.id, session_id, milestone.state.clock + 1, fields)
        apply(milestone.state, event)
        milestone.pending.append(event)
        return event

    # -- typed writers: what a change may write besides its events ------------------------
    def merge_log(self, milestone_id: str, incoming: list[Event]) -> int:
        """Take in another clone's events (union by id), before the milestone is loaded here;
        returns how many were new.  The merged log replaces the old one on commit."""
        if milestone_id in self._milestones:
            raise RuntimeError(f"merge the log of {milestone_id} before loading it")  # a bug, not the user's
        path = self.ws.log_path(milestone_id)
        local = self._merged[milestone_id][0] if milestone_id in self._merged else eventlog.read(path).events
        merged, added = eventlog.union(local, incoming)
        if added:
            self._merged[milestone_id] = (merged, _unreadable_lines(path))
        return added

    def write_session(self, session_id: str, text: str) -> Path:
        self._sessions[session_id] = text
        return self.ws.session_path(session_id)

    def written_session(self, session_id: str) -> str | None:
        """A session this transaction writes, as it will be written."""
        return self._sessions.get(session_id)

    def set_current(self, milestone_id: str) -> None:
        self._current = (milestone_id, None)

    def clear_current(self, milestone_id: str) -> None:
        """No current milestone any more, if it is still ``milestone_id``."""
        self._current = (None, milestone_id)

    def write_plan(self, path: Path, text: str) -> Plan:
        """A plan edit the user asked for (``new``, ``task add``): checked now, written on commit."""
        plan, problems = read_plan(yamlio.parse(text, path), path)
        if problems:
            first = problems[0]
            raise UserError(first.message, path=path, line=yamlio.locate(text, first.keypath), hint=first.hint)
        assert plan is not None
        self._plans[path] = text
        return dataclasses.replace(plan, text=text)

    def replace_plan(self, milestone: Milestone, text: str) -> None:
        """New plan text for a loaded milestone (``task add``): its state is seen through it at once."""
        milestone.plan = self.write_plan(milestone.path, text)
        milestone.__post_init__()

    def move_plan(self, source: Path, target: Path) -> None:
        """``archive``: the user's plan file moves between ``active/`` and ``completed/``."""
        if target.exists():
            raise UserError("already exists", path=target, hint="remove one of the two copies")
        self._moves.append((source, target))

    def after_commit(self, action: Callable[[], object]) -> None:
        """Run ``action`` once everything is written, still under the lock (e.g. a state-branch save);
        what it returns is dropped."""
        self._after.append(action)

    def on_abort(self, action: Callable[[], object]) -> None:
        """Run ``action`` if the transaction fails, written or not (stop a write begun alongside)."""
        self._aborted.append(action)

    def abort(self) -> None:
        aborted, self._after, self._aborted = self._aborted, [], []
        for action in aborted:
            with contextlib.suppress(Exception):  # the failure being raised is the one to report
                action()

    # -- the commit ---------------------------------------------------------------------
    def commit(self) -> None:
        """Write what the events will name first (plans, sessions, the current milestone), then the
        events, then the git writes that follow them.  A crash between two steps leaves at worst a
        file the log does not name yet, never an event naming a file that is not there."""
        for path, text in self._plans.items():
            atomic_write(self.ws.writable(path), text)
        for source, target in self._moves:
            self.ws.writable(target)
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            os.replace(source, target)
        for session_id, text in self._sessions.items():
            atomic_write(self.ws.writable(self.ws.session_path(session_id)), text, 0o600)
        self._write_current()
        for milestone_id, (merged, unreadable) in self._merged.items():
            loaded = self._milestones.get(milestone_id)
            pending = loaded.pending if loaded else []
            atomic_write(self.ws.log_path(milestone_id), eventlog.log_text([*merged, *pending], unreadable), 0o600)
            if loaded is not None:
                loaded.pending = []
        for milestone in self._milestones.values():
            if milestone.id not in self._merged:
                self._append(milestone)
        after, self._after = self._after, []
        for action in after:
            action()
        self._aborted = []  # dropped once run: what they hold (a drain's commits, which hold this
        # transaction) is then freed on return by reference counting, not left to a full collection

    def _append(self, milestone: Milestone) -> None:
        if not milestone.pending:
            return
        eventlog.append(milestone.log_path, milestone.pending)
        logfold = milestone.fold
        logfold.take(milestone.pending)
        if milestone._events is not None:
            milestone._events += milestone.pending
        logfold.lines += len(milestone.pending) + (0 if logfold.whole else 1)  # append ends a torn line
        logfold.whole = True
        after = readcache.stamp(milestone.log_path)
        logfold.size = after[1] if after else 0
        milestone.pending = []
        self.engine._keep(milestone)

    def _write_current(self) -> None:
        if self._current is None:
            return
        new, only_if = self._current
        if new is not None:
            atomic_write(self.ws.current_path, new + "\n", 0o600)
        elif self.engine.current_id() == only_if:
            try:
                self.ws.current_path.unlink()
            except FileNotFoundError:
                pass


def _unreadable_lines(path: Path) -> list[bytes]:
    """The lines of a log that could not be read: a merge keeps them, never drops them."""
    problems = eventlog.read(path).problems
    if not problems:
        return []
    raw = path.read_bytes().splitlines()
    return [raw[line - 1] for line, _ in problems if line - 1 < len(raw)]
