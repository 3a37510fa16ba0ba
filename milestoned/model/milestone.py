"""A milestone as every reader sees it: the plan of this checkout over its folded log.

``LogFold`` is a log read up to some byte offset: its folded ``State``, its last
events and the lines it could not read, extended in place when the log grows (the
daemon, a writer after its append).  ``Milestone`` joins it with the plan: the
derived status, the ready tasks, the progress, and the statuses a person wrote into
the plan that the state does not share.  Reading the whole log is left for the rare
verb that needs it (``events``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milestoned.core import graph
from milestoned.core.errors import display_path
from milestoned.model import events as eventlog
from milestoned.model.events import Event
from milestoned.model.plan import Plan
from milestoned.model.state import State, TaskState, apply, derive_status, disagreements, fold, initial
from milestoned.model.statuses import RUNNING

RECENT_EVENTS = 50  # events a loaded milestone keeps at hand (views show the last few)


@dataclass
class LogFold:
    """A log read up to ``size`` bytes: its folded state, its last events, its bad lines."""

    state: State
    recent: list[Event]
    problems: list[tuple[int, str]]
    size: int = 0
    lines: int = 0
    whole: bool = True  # the bytes folded end on a newline: what is appended can be applied alone
    last_key: tuple[int, str, str] | None = None

    def take(self, new: list[Event]) -> None:
        """Keep ``new`` events (already applied to ``state``) as the most recent ones."""
        if new:
            self.recent = (self.recent + new)[-RECENT_EVENTS:]
            self.last_key = eventlog.sort_key(new[-1])

    def extend(self, data: bytes) -> bool:
        """Fold lines appended to the log; False when only a full read can say what they mean."""
        if not data:
            return True
        if not self.whole or not data.endswith(b"\n"):
            return False  # a torn line before, or one being written now
        read = eventlog.parse_lines(data, first_line=self.lines + 1)
        last = self.last_key
        for event in read.events:
            key = eventlog.sort_key(event)
            if last is not None and key < last:
                return False  # out of fold order (a merge): the order needs a full read
            last = key
        for event in read.events:
            apply(self.state, event)
        self.take(read.events)
        self.problems = self.problems + read.problems
        self.size += len(data)
        self.lines += data.count(b"\n")
        return True


def read_log(log_path: Path, plan: Plan, size: int | None = None) -> tuple[LogFold, list[Event]]:
    """The whole log folded (up to ``size`` bytes: what a stamp taken before promised).

    A log that is a link (planted to read some other file as ours) is not read: its one
    problem says so, and writing to it is refused."""
    if log_path.is_symlink():
        read, data = eventlog.read(log_path), b""  # not read: its one problem says why
    else:
        try:
            with log_path.open("rb") as handle:
                data = handle.read() if size is None else handle.read(size)
        except FileNotFoundError:
            data = b""
        read = eventlog.parse_lines(data)
    events = read.events
    keys = [eventlog.sort_key(e) for e in events]
    if any(a > b for a, b in zip(keys, keys[1:])):
        events.sort(key=eventlog.sort_key)
    has_baseline = any(e.get("event") == "state_baseline" for e in events)
    state = fold(events, None if has_baseline else initial(plan))
    logfold = LogFold(state, events[-RECENT_EVENTS:], read.problems, len(data), data.count(b"\n"),
                      not data or data.endswith(b"\n"), eventlog.sort_key(events[-1]) if events else None)
    return logfold, events


@dataclass
class Milestone:
    """A milestone as the engine sees it: the plan of this checkout and the folded log."""

    plan: Plan
    fold: LogFold
    log_path: Path
    pending: list[Event] = field(default_factory=list)  # recorded, not yet written
    _events: list[Event] | None = field(default=None, repr=False)  # the whole log, once read

    def __post_init__(self) -> None:
        for task in self.plan.tasks:
            self.state.task(task.id)  # every task of the plan has a state, pending by default

    @property
    def id(self) -> str:
        return self.plan.id

    @property
    def path(self) -> Path:
        """The plan file."""
        return self.plan.path

    @property
    def state(self) -> State:
        return self.fold.state

    # -- the state, over this checkout's plan --------------------------------------------
    @property
    def tasks(self) -> dict[str, TaskState]:
        """The plan's tasks, in plan order (the log may know others: another branch's plan)."""
        return {t.id: self.state.task(t.id) for t in self.plan.tasks}

    @property
    def statuses(self) -> dict[str, str]:
        return {t.id: self.state.task(t.id).status for t in self.plan.tasks}

    def progress(self) -> tuple[int, int, int]:
        return graph.progress(self.statuses)

    @property
    def status(self) -> str:
        done, total, _ = self.progress()
        return derive_status(self.state.status, done, total)

    @property
    def running(self) -> bool:
        """In progress or blocked: the one test of whether tasks may move."""
        return self.status in RUNNING

    @property
    def blockers(self) -> list[dict[str, Any]]:
        return [] if self.status == "completed" else self.state.blockers

    @property
    def ready(self) -> list[str]:
        return graph.ready(self.plan.deps, self.statuses)

    def active_agents(self) -> list[str]:
        return sorted({t.agent for t in self.tasks.values() if t.status == "in_progress" and t.agent})

    # -- the log -------------------------------------------------------------------------
    def events(self) -> list[Event]:
        """Every event, in fold order, with those recorded and not yet written."""
        if self._events is None:
            self._events = read_log(self.log_path, self.plan, self.fold.size)[1]
        return [*self._events, *self.pending]

    def forget_events(self) -> None:
        """Drop the whole log read on demand (the daemon keeps only the recent events in memory)."""
        self._events = None

    def recent_events(self, count: int) -> list[Event]:
        events = [*self.fold.recent, *self.pending]
        return events[-count:] if count else []

    def event_problems(self) -> list[str]:
        return [f"{display_path(self.log_path)}:{line}: {why} (line skipped)" for line, why in self.fold.problems]

    def plan_warnings(self) -> list[str]:
        """Statuses written in the plan by hand that the state does not share: one line each, with
        the command that records it (they are never applied, and never silently dropped)."""
        lines = []
        for key, written, now in disagreements(self.plan, self.state, self.statuses, self.status):
            keypath: tuple[str | int, ...] = ("status",) if key == "" else ("tasks", self.plan.task(key).index, "status")
            where = f"{display_path(self.path)}:{self.plan.line_of(*keypath) or 1}"
            what = f"milestone {self.id}" if key == "" else f"task {key}"
            lines.append(f"{where}: the file says {what} is {written}, milestoned has it {now} "
                         f"({_recording_command(self.id, key, written)})")
        return lines


def _recording_command(milestone_id: str, key: str, status: str) -> str:
    """How the user records a status they wrote by hand."""
    if key:
        verb = {"completed": "done", "in_progress": "start", "blocked": "block", "pending": "reopen"}[status]
        extra = ' --reason "..."' if status == "blocked" else ""
        return f"to record it: milestoned task {verb} {key} -m {milestone_id}{extra}; else remove the line"
    command = {"in_progress": f"milestoned activate {milestone_id}", "paused": f"milestoned pause {milestone_id}",
               "completed": f"milestoned task done TASK -m {milestone_id} for each open task",
               "blocked": f"milestoned task block TASK -m {milestone_id} --reason \"...\""}.get(status)
    return f"to record it: {command}; else remove the line" if command else "remove the line: the status is derived"
