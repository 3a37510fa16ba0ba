"""What ``execute`` shows while it runs, and the summary it ends with.

On a terminal: a rich ``Live`` panel (progress bar, task table, active agents, recent
events) redrawn a few times a second.  Anywhere else (a pipe, CI, a test): one plain
line per event, which is also what a log file of the run should look like.  Both take
the same calls from the runner, on its scheduler thread; the live panel is drawn from
its own refresh thread, hence the lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from milestoned.core import graph
from milestoned.core.errors import display_path
from milestoned.core.text import bar, counted, visible
from milestoned.git.worktrees import MERGE_CONFLICT
from milestoned.model.statuses import STATUS_STYLE

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from milestoned.files.workspace import Workspace
    from milestoned.model.milestone import Milestone

RECENT = 6


@dataclass(frozen=True)
class Header:
    milestone_id: str
    title: str
    branch: str
    workers: int
    tasks: Sequence[tuple[str, str]]  # (id, title) in plan order
    statuses: dict[str, str]


class PlainDisplay:
    """One line per event: what tests, pipes and CI logs see."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo

    def begin(self, header: Header) -> None:
        done = sum(1 for s in header.statuses.values() if s == "completed")
        self.echo(f"execute {header.milestone_id}: {counted(len(header.tasks), 'task')} ({done} done), "
                  f"{counted(header.workers, 'worker')}, work merged into {header.branch}")

    def started(self, task_id: str, agent: str, log: str) -> None:
        self.echo(f"started    {task_id}  {agent}  log {log}")

    def finished(self, task_id: str, status: str, detail: str) -> None:
        self.echo(f"{status:<10} {task_id}  {visible(detail)}")

    def note(self, text: str) -> None:
        self.echo(f"note: {visible(text)}")

    def end(self) -> None:
        pass


class LiveDisplay:
    """The rich dashboard of a run on a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        # start-up: rich costs ~35 ms, and only a terminal needs it
        from rich.console import Console

        self.console = console or Console()
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._header: Header | None = None
        self._status: dict[str, str] = {}
        self._agents: dict[str, tuple[str, float]] = {}  # task -> (agent, started)
        self._recent: deque[str] = deque(maxlen=RECENT)

    def begin(self, header: Header) -> None:
        # start-up: rich costs ~35 ms, and only a terminal needs it
        from rich.live import Live

        with self._lock:
            self._header = header
            self._status = dict(header.statuses)
        live = self._live = Live(get_renderable=self._render, console=self.console, refresh_per_second=4,
                                 transient=False)
        live.start()

    def started(self, task_id: str, agent: str, log: str) -> None:
        with self._lock:
            self._status[task_id] = "in_progress"
            self._agents[task_id] = (agent, time.monotonic())
            self._recent.append(f"started {task_id} ({agent})")

    def finished(self, task_id: str, status: str, detail: str) -> None:
        with self._lock:
            self._status[task_id] = {"requeued": "pending"}.get(status, status)
            self._agents.pop(task_id, None)
            self._recent.append(f"{status} {task_id}: {detail}")

    def note(self, text: str) -> None:
        with self._lock:
            self._recent.append(text)

    def end(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self) -> RenderableType:
        # start-up: rich costs ~35 ms, and only a terminal needs it
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            header = self._header
            status = dict(self._status)
            agents = dict(self._agents)
            recent = list(self._recent)
        if header is None:
            return Text("")
        total = len(header.tasks)
        done = sum(1 for s in status.values() if s == "completed")
        now = time.monotonic()
        head = Text.assemble((f"{header.milestone_id}", "bold"), f" — {visible(header.title)}   ",
                             f"{done}/{total} tasks   {len(agents)}/{header.workers} workers busy   ",
                             (header.branch, "dim"))
        table = Table(expand=True, show_edge=False, pad_edge=False)
        for column in ("task", "status", "title", "agent"):
            table.add_column(column)
        for task_id, title in _visible(header.tasks, status):
            st = status.get(task_id, "pending")
            agent = ""
            if task_id in agents:
                name, since = agents[task_id]
                agent = f"{name} {now - since:4.0f}s"
            table.add_row(task_id, Text(st, STATUS_STYLE.get(st, "")), visible(title), agent)
        filled, rest = bar(done, total)
        progress = Text.assemble((filled, "green"), (rest, "grey50"))  # a line of its own, glyphs that read uncoloured
        parts: list[RenderableType] = [head, progress, table]
        busy = ", ".join(f"{a} on {t}" for t, (a, _) in agents.items())
        parts.append(Text(f"active agents: {busy or 'none'}"))
        parts.extend(Text("  " + line, "dim") for line in recent)
        return Group(*parts)


def _visible(tasks: Sequence[tuple[str, str]], status: dict[str, str], rows: int = 20) -> list[tuple[str, str]]:
    """At most ``rows`` tasks, the running and blocked ones first when there are too many."""
    if len(tasks) <= rows:
        return list(tasks)
    rank = {"in_progress": 0, "blocked": 1, "pending": 2, "completed": 3}
    return sorted(tasks, key=lambda t: rank.get(status.get(t[0], "pending"), 2))[:rows]


def make_display(tty: bool, echo: Callable[[str], None]) -> PlainDisplay | LiveDisplay:
    return LiveDisplay() if tty else PlainDisplay(echo)


@dataclass
class Outcome:
    """How a run ended, for the summary and the exit status."""

    milestone_id: str
    milestone_status: str
    completed: int
    total: int
    branch: str
    log: str
    task_logs: str
    blocked: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, list[str]] = field(default_factory=dict)
    manual: list[str] = field(default_factory=list)
    elsewhere: dict[str, str] = field(default_factory=dict)
    next_commands: list[str] = field(default_factory=list)
    interrupted: str | None = None
    exit_code: int = 0


def _blocked_text(milestone_id: str, blocker: dict[str, Any]) -> str:
    reason = str(blocker.get("reason", "blocked"))
    if reason == MERGE_CONFLICT:
        return (f"merge conflict in {', '.join(blocker.get('paths') or [])}: resolve it in "
                f"{blocker.get('worktree')}, commit, then `milestoned execute {milestone_id} --resume`")
    return reason + (f" — log {blocker['output']}" if blocker.get("output") else "")


def outcome_of(ws: Workspace, ms: Milestone, branch: str) -> Outcome:
    """Where a milestone stands after a run: what is done, stuck and why, and what to run next."""
    state = ms.state
    statuses = ms.statuses
    done, total, _ = ms.progress()
    outcome = Outcome(
        milestone_id=ms.id, milestone_status=ms.status, completed=done, total=total, branch=branch,
        log=display_path(ws.log_path(ms.id)), task_logs=display_path(ws.task_log_path(ms.id, "x").parent),
    )
    stuck = graph.waiting_on_blocked(ms.plan.deps, statuses)
    for task in ms.plan.tasks:
        st = state.task(task.id)
        if st.status == "blocked":
            outcome.blocked[task.id] = _blocked_text(ms.id, st.blocker or {})
        elif st.status == "in_progress":
            outcome.elsewhere[task.id] = f"in progress ({st.agent or 'someone'})"
        elif task.id in stuck:
            outcome.waiting[task.id] = [d for d in task.dependencies if statuses[d] != "completed"]
        elif st.status == "pending" and not task.runnable and graph.is_ready(task.id, ms.plan.deps, statuses):
            outcome.manual.append(task.id)
    if ms.status == "completed":
        outcome.next_commands.append(f"milestoned land {ms.id}   # its work into your branch, tested, whole")
        if ms.path.parent.name != "completed":
            outcome.next_commands.append(f"milestoned archive {ms.id}   # if you keep finished plans in completed/")
    for task_id in outcome.blocked:
        if (state.task(task_id).blocker or {}).get("reason") != MERGE_CONFLICT:
            outcome.next_commands.append(f"milestoned task reopen {task_id} -m {ms.id}   # after fixing the cause")
    if outcome.blocked or outcome.manual:
        outcome.next_commands.append(f"milestoned execute {ms.id} --resume")
    outcome.next_commands.append(f"milestoned status {ms.id}")
    outcome.exit_code = 1 if outcome.blocked else 0
    return outcome


def summary_lines(outcome: Outcome) -> Iterable[str]:
    """The end of a run: what got done, what is stuck and why, where things are, what next."""
    mid = outcome.milestone_id
    done, total = outcome.completed, outcome.total
    if outcome.milestone_status == "completed":
        yield f"milestone {mid} completed: {done}/{total} tasks"
    else:
        counts = [f"{done}/{total} tasks completed"]
        for label, items in (("blocked", outcome.blocked), ("waiting", outcome.waiting),
                             ("without a command", outcome.manual), ("held elsewhere", outcome.elsewhere)):
            if items:
                counts.append(f"{len(items)} {label}")
        yield f"{mid}: " + ", ".join(counts) + (f" — {outcome.interrupted}" if outcome.interrupted else "")
    for task_id, why in outcome.blocked.items():
        yield f"  blocked   {task_id}  {why}"
    for task_id, needs in outcome.waiting.items():
        yield f"  waiting   {task_id}  needs {', '.join(needs)}"
    for task_id in outcome.manual:
        yield f"  todo      {task_id}  no run: or prompt: (do it, then `milestoned task done {task_id} -m {mid}`)"
    for task_id, holder in outcome.elsewhere.items():
        yield f"  elsewhere {task_id}  {holder}"
    yield f"work:  branch {outcome.branch} (see it: git log {outcome.branch})"
    yield f"logs:  {outcome.log} and {outcome.task_logs}/"
    for command in outcome.next_commands:
        yield f"next:  {command}"
