"""The engine: the one place that changes milestone state.

Every door — the CLI, hook ingest, the daemon, the runner, the socket — calls the
engine; none of them opens a milestone file for writing.  A change happens inside a
``transaction``: take the lock, load fresh, check, record events, then on success
append them to the log (fsync), project the new state into the YAML (atomic rename)
and move completed milestones.  An exception inside the transaction writes nothing.

Reading needs no lock: files are only ever replaced whole and logs only appended.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milestoned import events as eventlog
from milestoned import graph, ids, readcache, yamlio
from milestoned.errors import UserError, display_path
from milestoned.events import Event, LogRead
from milestoned.plan import Plan, load_plan, read_plan
from milestoned.state import State, baseline_fields, fold, manual_edits
from milestoned.state import apply as apply_event
from milestoned.store import StateLock, atomic_write
from milestoned.workspace import Workspace

NOT_MILESTONES = frozenset({"dependencies", "roadmap", "config", "index"})


@dataclass
class Milestone:
    """A milestone as the engine sees it: the user's plan and the folded state."""

    plan: Plan
    state: State
    log: LogRead
    path: Path
    log_path: Path
    disk_text: str = field(repr=False, default="")  # the file as read, to know if it must be written
    pending: list[Event] = field(default_factory=list)  # recorded, not yet written
    reproject: bool = False  # the file lags behind the log (a crash, a merge)

    @property
    def id(self) -> str:
        return self.plan.id

    @property
    def ready(self) -> list[str]:
        return graph.ready(self.plan.deps, self.state.statuses)

    def event_problems(self) -> list[str]:
        return [f"{display_path(self.log_path)}:{line}: {why} (line skipped)" for line, why in self.log.problems]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Engine:
    """Verbs over one repository's milestones; the only writer of ``.milestones/``."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        self.lock = StateLock(workspace.lock_path)
        self._txn: Transaction | None = None

    # -- finding milestones -----------------------------------------------------------
    def milestone_paths(self) -> list[Path]:
        """Candidate milestone files: ``active/*.yaml`` then ``completed/*.yaml``."""
        found: list[Path] = []
        for directory in (self.ws.active_dir, self.ws.completed_dir):
            if directory.is_dir():
                found += sorted(
                    p for p in directory.iterdir()
                    if p.suffix in (".yaml", ".yml") and p.stem not in NOT_MILESTONES and not p.name.startswith(".")
                )
        return found

    def path_of(self, milestone_id: str) -> Path:
        problem = ids.id_problem(milestone_id, "milestone id")
        if problem:
            raise UserError(problem)
        for directory in (self.ws.active_dir, self.ws.completed_dir):
            for suffix in (".yaml", ".yml"):
                candidate = directory / f"{milestone_id}{suffix}"
                if candidate.is_file():
                    return candidate
        self.ws.require_initialized()
        known = ", ".join(p.stem for p in self.milestone_paths()[:8]) or "none yet"
        raise UserError(
            f"no milestone {milestone_id!r} in {self.ws.milestones_dir}",
            hint=f"known: {known}; create one with `milestoned new`",
        )

    def current_id(self) -> str | None:
        try:
            text = self.ws.current_path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text if ids.is_valid_id(text) else None

    def resolve(self, milestone_id: str | None) -> str:
        """The milestone a command means: the one named, else ``active/current.txt``."""
        if milestone_id:
            return milestone_id
        current = self.current_id()
        if current:
            return current
        self.ws.require_initialized()
        raise UserError("no milestone given and none is current", hint="name one, or `milestoned activate ID`")

    # -- reading ----------------------------------------------------------------------
    def load(self, milestone_id: str, *, cached: bool = False) -> Milestone:
        """Plan + folded state, including hand edits not yet recorded (read only, no lock).

        ``cached`` (read commands only) may answer from the read cache; its milestone
        then carries only the most recent events of the log.
        """
        path = self.path_of(milestone_id)
        log_path = self.ws.log_path(milestone_id)
        cache_file = self.ws.cache_dir / f"{milestone_id}.pickle"
        key = readcache.stamps(path, log_path, self.ws.cache_dir / f"{milestone_id}.sha256")
        if cached and readcache.worth_caching(key):
            hit = readcache.get(cache_file, key)
            if hit is not None:
                return hit
        plan = load_plan(path)
        log = eventlog.read(log_path)
        state = fold(plan, log.events)
        milestone = Milestone(plan, state, log, path, log_path, disk_text=plan.text)
        if log.events and manual_edits(plan, state):
            if self._signature(plan.id) == _sha(plan.text):
                milestone.reproject = True  # we wrote this file; the log moved on since
            else:
                for edit in manual_edits(plan, state):
                    self._note(milestone, "status_set_manually", **edit)
        if cached:
            recent = LogRead(log.events[-readcache.RECENT_EVENTS:], log.problems)
            readcache.put(cache_file, key, dataclasses.replace(milestone, log=recent))
        return milestone

    def _note(self, milestone: Milestone, name: str, **fields: Any) -> Event:
        session_id = fields.pop("session_id", None) or milestone.state.session_id
        event = eventlog.make(name, milestone.id, session_id, milestone.state.clock + 1, fields)
        apply_event(milestone.state, event)
        milestone.pending.append(event)
        return event

    def _signature(self, milestone_id: str) -> str | None:
        try:
            return (self.ws.cache_dir / f"{milestone_id}.sha256").read_text().strip()
        except OSError:
            return None

    # -- writing ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """All state changes happen in here, under the lock; nested calls join the outer one."""
        if self._txn is not None and self.lock.is_held:
            yield self._txn
            return
        self.ws.require_initialized()
        with self.lock.held():
            txn = Transaction(self)
            self._txn = txn
            try:
                yield txn
                txn.commit()
            finally:
                self._txn = None


class Transaction:
    """What one locked change touches; written out only when the body succeeds."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ws = engine.ws
        self._milestones: dict[str, Milestone] = {}
        self._files: dict[Path, str] = {}
        self._removals: list[Path] = []
        self._after: list[Callable[[], None]] = []
        # Append events but leave the YAML projection for later (a busy writer such as the
        # runner, whose round-trip rewrites would cost more than its events): the next load
        # sees the file lag behind the log and the next projecting transaction catches up.
        self.defer_projection = False

    def milestone(self, milestone_id: str) -> Milestone:
        """Load under the lock; the first write for a milestone records its baseline."""
        if milestone_id in self._milestones:
            return self._milestones[milestone_id]
        milestone = self.engine.load(milestone_id)
        if not milestone.state.has_baseline:
            # The file is the truth when first met (a seed log has no baseline): the
            # baseline comes after any old events, so it also covers their hand edits.
            milestone.pending.clear()
            milestone.state = fold(milestone.plan, milestone.log.events)
            self.record(milestone, "state_baseline", **baseline_fields(milestone.plan))
        self._milestones[milestone_id] = milestone
        return milestone

    def record(self, milestone: Milestone, name: str, **fields: Any) -> Event:
        """Record an event: applied to the in-memory state now, written on commit."""
        return self.engine._note(milestone, name, **fields)

    def write_file(self, path: Path, text: str) -> None:
        """An auxiliary file (session, current.txt) written atomically on commit."""
        self._files[path] = text

    def remove_file(self, path: Path) -> None:
        self._removals.append(path)

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once everything is written, still under the lock (e.g. a state-branch save)."""
        self._after.append(action)

    def replace_plan(self, milestone: Milestone, text: str) -> None:
        """New plan text for a milestone (``task add``): checked now, written on commit."""
        path = milestone.path
        data = yamlio.parse(text, path)
        plan, problems = read_plan(data, path)
        if problems:
            first = problems[0]
            raise UserError(first.message, path=path, line=yamlio.locate(text, first.keypath), hint=first.hint)
        assert plan is not None
        milestone.plan = dataclasses.replace(plan, text=text)
        milestone.state = fold(milestone.plan, [*milestone.log.events, *milestone.pending])
        milestone.reproject = True

    def commit(self) -> None:
        for milestone in self._milestones.values():
            self._write_milestone(milestone)
        for path, text in self._files.items():
            atomic_write(path, text)
        for path in self._removals:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        for action in self._after:
            action()

    def _write_milestone(self, milestone: Milestone) -> None:
        if not milestone.pending and not milestone.reproject:
            return
        ws = self.ws
        eventlog.append(ws.log_path(milestone.id), milestone.pending)
        if self.defer_projection and self._may_defer(milestone):
            milestone.log.events.extend(milestone.pending)
            milestone.pending = []
            return
        from milestoned import projection  # writers only: reads stay light

        text = milestone.plan.text
        new_text = projection.project(text, milestone.plan, milestone.state) or text
        path = milestone.path
        target_dir = ws.completed_dir if milestone.state.status == "completed" else ws.active_dir
        if path.parent != target_dir:
            target = target_dir / path.name
            target_dir.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)  # move first: a crash leaves a stale projection, not two files
            path = milestone.path = target
        if new_text != milestone.disk_text or not path.exists():
            atomic_write(path, new_text)
            milestone.disk_text = new_text
        atomic_write(ws.cache_dir / f"{milestone.id}.sha256", _sha(new_text) + "\n")
        milestone.log.events.extend(milestone.pending)
        milestone.pending = []
        milestone.reproject = False

    def _may_defer(self, milestone: Milestone) -> bool:
        """Only a file that is our own last projection may lag (else a load takes it for a hand
        edit), and a completed milestone moves to ``completed/`` at once."""
        return milestone.state.status != "completed" and self.engine._signature(milestone.id) == _sha(milestone.disk_text)
