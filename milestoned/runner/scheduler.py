"""The parallel runner behind ``milestoned execute`` (SPEC §8).

A run: validate and activate (or resume) in one transaction, then a scheduler loop on
the calling thread, which alone owns the run's bookkeeping.  Each ready task
(``graph.ready``, the one definition of ready) is handed to a starter thread that makes
its worktree on its own branch (``worktrees``) and starts its process — in its own
process group, writing to the task's log — and a waiter thread.  When the process ends,
its waiter commits what it left in the worktree; the scheduler merges the task branch
into the milestone branch (one at a time: it is one ref), starts whatever that unlocked,
and hands the batch's events — a completion and the starts it unlocked — to the recorder
thread, which writes them through the engine in one transaction.  Processes start first
and are recorded after, so the engine's writes never delay the next task.

Crash safety: a task is recorded completed only after its merge, and started only once
its process runs, with the runner's pid and host.  A runner holds an ``flock`` on
``<common git dir>/milestoned/execute-<mid>.lock`` while it runs; an ``execute --resume``
that gets the lock knows that every runner-started task still in progress on this host
belongs to a dead runner: it stops what is left of that task's processes and puts the
task back in the queue.  Completed tasks never run again.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from milestoned.core import graph
from milestoned.core.errors import MilestonedError, UserError, display_path
from milestoned.engine import blockers, cleanup, lifecycle, sessions
from milestoned.engine.engine import Engine, Transaction
from milestoned.engine.lifecycle import Refusal
from milestoned.files.durable import LOCK_TIMEOUT, open_append, open_fresh
from milestoned.files.runlock import milestone_lock
from milestoned.files.runners import HOST
from milestoned.git import queries as gitutil
from milestoned.git import reflocks
from milestoned.git.identity import FALLBACK, Identity
from milestoned.git.worktrees import MERGE_CONFLICT, GitStepFailed, Worktrees, task_branch
from milestoned.model.config import Config, load_config
from milestoned.model.events import Event
from milestoned.model.milestone import Milestone
from milestoned.model.plan import TaskPlan
from milestoned.model.state import STATE_EVENTS
from milestoned.runner.display import Header, Outcome, make_display, outcome_of, summary_lines
from milestoned.runner.recorder import Fatal, Op, Recorder, Refused
from milestoned.runner.taskprocess import (
    agent_not_found,
    find_executable,
    kill_group,
    kill_leftovers,
    tail,
    task_argv,
    task_env,
)
from milestoned.runner.trace import Trace

GRACE = 5.0  # seconds from SIGTERM to SIGKILL when tasks are stopped
POLL = 0.2  # how often the scheduler looks at signals while waiting
SWITCH_INTERVAL = 0.001  # the scheduler gets the interpreter back quickly from busy threads
QUIET = 0.03  # bookkeeping (engine writes, removals) waits until the scheduler rested this long...
QUIET_LIMIT = 0.5  # ...or this long at most


class Display(Protocol):
    def begin(self, header: Header) -> None: ...
    def started(self, task_id: str, agent: str, log: str) -> None: ...
    def finished(self, task_id: str, status: str, detail: str) -> None: ...
    def note(self, text: str) -> None: ...
    def end(self) -> None: ...


@contextlib.contextmanager
def _run_settings(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """Our SIGINT/SIGTERM handlers and a short interpreter switch interval, for the run only."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        sys.setswitchinterval(interval)


# -- what the threads tell the scheduler ----------------------------------------------------
@dataclass
class Run:
    """A task whose process is running."""

    task: TaskPlan
    agent: str
    slot: int
    worktree: Path
    log: Path
    proc: subprocess.Popen[bytes]
    stop_reason: str | None = None  # set when the runner stops it (interrupted, refused)
    # set once its task_started is written: its commits come after, so that hook ingest,
    # which starts a task on a commit of its branch, never gets there before the runner
    recorded: threading.Event = field(default_factory=threading.Event)


@dataclass
class Started:
    run: Run


@dataclass
class NotStarted:
    task_id: str
    slot: int
    reason: str
    theirs: bool = False  # someone else works on the task (its branch is checked out elsewhere)


@dataclass
class Ended:
    run: Run
    returncode: int
    failure: str | None = None  # why the task is blocked; None when it succeeded
    tail: list[str] | None = None


# -- the scheduler ---------------------------------------------------------------------------
class Runner:
    """Runs one milestone's tasks on up to ``workers`` processes at once."""

    def __init__(self, engine: Engine, milestone_id: str, *, workers: int | None, display: Display,
                 config: Config | None = None) -> None:
        self.engine = engine
        self.ws = engine.ws
        self.mid = milestone_id
        self.config = config or load_config(self.ws.config_path)
        self.workers = workers or self.config.workers
        self.display = display
        self.inbox: queue.Queue[object] = queue.Queue()
        self.idle = threading.Event()  # the scheduler is waiting: a good time for bookkeeping
        self.idle_since = 0.0
        self.title = milestone_id
        self.tasks: dict[str, TaskPlan] = {}
        self.deps: dict[str, tuple[str, ...]] = {}
        self.status: dict[str, str] = {}  # our view; "elsewhere" for tasks someone else holds
        self.running: dict[str, Run] = {}
        self.starting: dict[str, int] = {}  # task -> its worker slot, while a starter makes it
        self.preparing: set[str] = set()  # tasks whose worktree is made ahead, not started yet
        self.free_slots = list(range(1, self.workers + 1))
        self.signals: list[int] = []
        self.stopping = False
        self.kill_at = 0.0
        self.fatal: BaseException | None = None
        self.identity = Identity.detect(self.ws.worktree) if self.ws.is_git else Identity(FALLBACK, FALLBACK)
        self.trees = Worktrees(self.ws, milestone_id, self.identity)
        self.recorder = Recorder(engine, milestone_id, self.inbox.put, self._settle)
        self.starter = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="milestoned-start")
        self.cleaner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="milestoned-cleanup")
        self.trace = Trace()

    # -- the whole run ----------------------------------------------------------------------
    def execute(self, *, resume: bool = False, force: bool = False) -> Outcome:
        with milestone_lock(self.ws, self.mid, "being executed"), _run_settings(self._on_signal):
            try:
                ms = self._prepare(resume=resume, force=force)
                self.display.begin(Header(self.mid, self.title, self.trees.branch, self.workers,
                                          [(t.id, t.title) for t in self.tasks.values()], dict(self.status)))
                self.recorder.start()
                self._loop(self._retry_conflicts(ms))
            except BaseException:
                self._abandon()
                raise
            finally:
                self.starter.shutdown(wait=True)
                self.idle_since = 0.0
                self.idle.set()
                self.recorder.close()
                self.cleaner.shutdown(wait=True)
                self.trees.discard_prepared()
                self._drain_reports()
                self.trees.tidy()
                self._sweep()
                self.trees.maintain()
                self.trace.close()
            if self.fatal is not None:
                raise self.fatal
            return self._conclude()

    def _sweep(self) -> None:
        """``gc``'s safe cleanup of this milestone, which the run holds: what killed runs left, and
        task branches whose work is merged.  A failure here never fails the run."""
        try:
            removed = [row for row in cleanup.sweep(self.engine, self.mid) if row["action"] == "removed"]
        except MilestonedError as exc:
            self.display.note(f"cleanup skipped: {exc}")
            return
        if removed:
            self.display.note(f"removed {len(removed)} branch(es), worktree(s) or leftover(s) that held no unmerged "
                              "work (`milestoned gc --dry-run` lists what stays)")

    def _abandon(self) -> None:
        """The loop failed (a bug, a lost disk): no task process may outlive the runner."""
        self.starter.shutdown(wait=True)
        with contextlib.suppress(queue.Empty):
            while True:
                item = self.inbox.get_nowait()
                if isinstance(item, Started):
                    self.running[item.run.task.id] = item.run
        for run in self.running.values():
            kill_group(run.proc.pid, signal.SIGKILL)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)

    def _prepare(self, *, resume: bool, force: bool) -> Milestone:
        """Check, activate or resume, and requeue what a dead runner left: one transaction."""
        for lock in reflocks.clear(self.ws, f"heads/milestone/{self.mid}"):  # we hold the runner lock
            self.display.note(f"removed {display_path(lock)}, a lock a killed run left on a task branch")
        with self.engine.transaction() as txn:
            ms = txn.milestone(self.mid)
            self.engine.pin(ms.plan)  # the plan it started with, whatever is checked out meanwhile
            running = ms.running
            if not (resume and running):
                lifecycle.check_executable(self.engine, ms, force=force)
            self._check_commands(ms)
            self.trees.ensure_milestone_branch()
            if resume and running:
                requeued = self._requeue_dead(txn, ms)
                lifecycle.run_resumed(txn, ms, runner_pid=os.getpid(), runner_host=HOST, workers=self.workers,
                                      requeued=requeued or None)
            else:
                lifecycle.activate(txn, ms, force=force, workers=self.workers)
            for task_id in [t for t in ms.ready if ms.plan.task(t).runnable][:self.workers]:
                self.preparing.add(task_id)  # their worktrees are made while this transaction is written
                self.cleaner.submit(self.trees.prepare, task_id)
        self.title = ms.plan.title
        self.tasks = {t.id: t for t in ms.plan.tasks}
        self.deps = ms.plan.deps
        self.status = dict(ms.statuses)
        return ms

    def _check_commands(self, ms: Milestone) -> None:
        """Refuse, before anything starts, a run whose prompt tasks have no agent to run them."""
        prompts = [task.id for task in ms.plan.tasks
                   if task.run is None and task.prompt is not None and ms.state.task(task.id).status != "completed"]
        if not prompts:
            return
        if not self.config.agent_command:
            raise UserError(f"task {prompts[0]} has a prompt but no agent command is configured",
                            path=self.ws.config_path,
                            hint='set agent.preset (claude-code, codex or aider) or agent.command, for example '
                                 '["my-agent", "--print", "{prompt}"]')
        if find_executable(self.config.agent_command, self.ws.worktree) is None:
            problem, fix = agent_not_found(self.config)
            raise UserError(f"{problem}: task {prompts[0]}{f' and {len(prompts) - 1} more' if prompts[1:] else ''} "
                            "could not run", path=self.ws.config_path, hint=fix)

    def _requeue_dead(self, txn: Transaction, ms: Milestone) -> list[str]:
        """Tasks a dead runner had in progress go back to the queue (we hold the runner lock)."""
        last: dict[str, Event] = {}
        for event in ms.events():
            if event.get("event") in ("task_started", "task_claimed") and isinstance(event.get("task_id"), str):
                last[event["task_id"]] = event
        requeued: list[str] = []
        for task in ms.plan.tasks:
            started = last.get(task.id)
            if ms.state.task(task.id).status != "in_progress" or not started or "runner_pid" not in started:
                continue  # a person's or an agent's: not ours to take back
            if started.get("runner_host") != HOST:
                self.display.note(f"{task.id} is in progress under a runner on {started.get('runner_host')}; left alone")
                continue
            requeued.append(task.id)
            lifecycle.requeue(txn, ms, task.id, f"its runner (pid {started['runner_pid']}) is gone")
        kill_leftovers([self.trees.path(t.id) for t in ms.plan.tasks if self.trees.exists(t.id)
                         and (t.id in requeued or ms.state.task(t.id).status == "pending")])
        return requeued

    # -- the loop ----------------------------------------------------------------------------
    def _loop(self, initial: list[Op]) -> None:
        self._fill()
        self.recorder.submit(initial)
        self._prepare_ahead()
        while self.running or self.starting:
            self.idle_since = time.monotonic()
            self.idle.set()
            try:
                items = [self.inbox.get(timeout=POLL)]
            except queue.Empty:
                self._check_stop()
                continue
            finally:
                self.idle.clear()
            with contextlib.suppress(queue.Empty):
                while True:
                    items.append(self.inbox.get_nowait())
            ops = []
            for item in items:  # a task unlocked by the first end starts before the next merge
                ops += self._handle(item)
                self._fill()
            self._check_stop()
            self._fill()
            self.recorder.submit(ops)
            self._prepare_ahead()

    def _handle(self, item: object) -> list[Op]:
        if isinstance(item, Started):
            return self._started(item.run)
        if isinstance(item, NotStarted):
            del self.starting[item.task_id]
            self._free(item.slot)
            if item.theirs:
                self.status[item.task_id] = "elsewhere"
                self.display.note(f"{item.task_id}: {item.reason}; left alone")
                return []
            return self._block(item.task_id, item.reason,
                               output=self._log_name(item.task_id))
        if isinstance(item, Ended):
            return self._finish(item)
        if isinstance(item, Refused):
            self.display.note(f"{item.op.task_id}: {item.error.message}")
            run = self.running.get(item.op.task_id)
            if item.op.kind == "start" and run is not None:
                run.stop_reason = "refused"
                kill_group(run.proc.pid, signal.SIGTERM)
        elif isinstance(item, Fatal):
            self.fatal = self.fatal or item.error
            self._begin_stop()
            for run in self.running.values():
                run.recorded.set()  # nothing more gets written: waiters must not wait for it
        return []

    def _drain_reports(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._handle(self.inbox.get_nowait())

    def _check_stop(self) -> None:
        if self.signals and not self.stopping:
            busy = len(self.running) + len(self.starting)
            self.display.note(f"{signal.Signals(self.signals[0]).name}: stopping {busy} running task(s)")
            self._begin_stop()
        if self.stopping and self.running and (len(self.signals) > 1 or time.monotonic() >= self.kill_at):
            for run in self.running.values():
                kill_group(run.proc.pid, signal.SIGKILL)

    def _begin_stop(self) -> None:
        self.stopping = True
        self.kill_at = time.monotonic() + GRACE
        for run in self.running.values():
            self._stop(run, "interrupted")

    def _stop(self, run: Run, reason: str) -> None:
        run.stop_reason = run.stop_reason or reason
        kill_group(run.proc.pid, signal.SIGTERM)

    def _log_name(self, task_id: str) -> str:
        """A task's log as events name it: relative to the repository, wherever the runner started."""
        return os.path.relpath(self.ws.task_log_path(self.mid, task_id), self.ws.root)

    def _free(self, slot: int) -> None:
        self.free_slots.append(slot)
        self.free_slots.sort()

    # -- starting a task -----------------------------------------------------------------------
    def _fill(self) -> None:
        """Hand ready tasks to the starters while workers are free."""
        for task_id in graph.ready(self.deps, self.status):
            if self.stopping or self.signals or not self.free_slots:
                return
            if self.tasks[task_id].runnable:
                slot = self.free_slots.pop(0)
                self.status[task_id] = "in_progress"
                self.starting[task_id] = slot
                self.preparing.discard(task_id)
                self.trace.mark(task_id, "dispatched")
                self.starter.submit(self._start, self.tasks[task_id], slot)

    def _prepare_ahead(self) -> None:
        """While tasks run, make the worktrees of the tasks they will unlock (at most one per worker)."""
        if self.stopping or self.signals:
            return
        for task in self.tasks.values():
            if len(self.preparing) >= self.workers:
                return
            if (task.id in self.preparing or self.status[task.id] != "pending" or not task.runnable
                    or not task.dependencies):
                continue
            needs = [self.status[d] for d in task.dependencies]
            if "in_progress" in needs and all(n in ("completed", "in_progress") for n in needs):
                self.preparing.add(task.id)
                self.cleaner.submit(self._prepare_one, task.id)

    def _prepare_one(self, task_id: str) -> None:
        self._settle()
        if self.status.get(task_id) == "pending" and not self.stopping:
            try:
                self.trees.prepare(task_id)
            except Exception:  # noqa: BLE001 - only a head start: create() will try again and report
                return

    def _start(self, task: TaskPlan, slot: int) -> None:
        """A starter thread: the task's worktree, its process, its waiter; the scheduler hears of it."""
        log = self.ws.task_log_path(self.mid, task.id)
        try:
            worktree = self.trees.create(task.id)
        except UserError as exc:  # its branch is checked out in someone else's worktree
            self.inbox.put(NotStarted(task.id, slot, exc.message, theirs=True))
            return
        except Exception as exc:  # noqa: BLE001 - git or the disk said no: a blocker for this task only
            held = reflocks.stale(self.ws, f"heads/milestone/{self.mid}") if ".lock" in str(exc) else []
            fix = f" (a killed git left {display_path(held[0])}: delete it, then reopen {task.id})" if held else ""
            self.inbox.put(NotStarted(task.id, slot, f"could not make its worktree: {exc}{fix}"))
            return
        self.trace.mark(task.id, "worktree")
        if task.id in self.trees.carried:
            self.display.note(f"{task.id} runs again on what its earlier run left in {display_path(worktree)} "
                              "(commits and changes carried over, none discarded)")
        argv = task_argv(task, self.config.agent_command, self.mid, worktree)
        env = gitutil.git_env({**self.identity.env, **task_env(self.mid, task.id, worktree)})
        try:
            log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with os.fdopen(open_fresh(self.ws.writable(log)), "wb") as out:
                proc = subprocess.Popen(argv, cwd=worktree, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, env=env, start_new_session=True)
        except OSError as exc:
            self.inbox.put(NotStarted(task.id, slot, f"could not start {argv[0]!r}: {exc.strerror or exc}"))
            return
        self.trace.mark(task.id, "spawned")
        name = "worker" if task.run is not None else Path(self.config.agent_command[0]).name
        run = Run(task, f"{name}-{slot}", slot, worktree, log, proc)
        self.inbox.put(Started(run))  # before the waiter can report its end
        threading.Thread(target=self._wait, args=(run,), name=f"milestoned-{task.id}", daemon=True).start()

    def _started(self, run: Run) -> list[Op]:
        task_id = run.task.id
        del self.starting[task_id]
        self.running[task_id] = run
        if self.stopping:
            self._stop(run, "interrupted")
        log = self._log_name(task_id)
        self.display.started(task_id, run.agent, display_path(run.log))
        fields = {"agent": run.agent, "output": log, "worktree": str(run.worktree),
                  "branch": task_branch(self.mid, task_id), "runner_pid": os.getpid(), "runner_host": HOST,
                  "pid": run.proc.pid}
        def start(txn: Transaction, ms: Milestone) -> Refusal | None:
            try:
                return lifecycle.run_started(txn, ms, task_id, **fields)
            finally:
                txn.after_commit(run.recorded.set)

        return [Op(task_id, "start", start)]

    def _wait(self, run: Run) -> None:
        """A waiter thread: the task's process ends (or times out); commit what it left."""
        timeout = self.config.task_timeout
        failure = None
        try:
            code = run.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(run.proc.pid, signal.SIGTERM)
            try:
                code = run.proc.wait(timeout=GRACE)
            except subprocess.TimeoutExpired:
                kill_group(run.proc.pid, signal.SIGKILL)
                code = run.proc.wait()
            failure = f"timed out after {timeout:g}s"
        self.trace.mark(run.task.id, "ended")
        kill_group(run.proc.pid, signal.SIGTERM)  # what it left running in the background ends with it
        if run.stop_reason is None and failure is None:
            if code != 0:
                failure = (f"command exited with status {code}" if code > 0
                           else f"command killed by {signal.Signals(-code).name}")
            else:
                if not run.recorded.is_set():  # a commit it left is credited to a task recorded as started
                    self.recorder.hurry.set()
                    run.recorded.wait(timeout=LOCK_TIMEOUT)
                try:
                    self.trees.commit_leftovers(run.task.id, run.task.title)
                    self.trace.mark(run.task.id, "committed")
                except GitStepFailed as exc:
                    failure = str(exc)
                    with os.fdopen(open_append(run.log), "a", encoding="utf-8") as handle:
                        handle.write(f"\nmilestoned: {exc}\n{exc.output}\n")
        self.inbox.put(Ended(run, code, failure, tail(run.log) if failure else None))

    # -- a task's end --------------------------------------------------------------------------
    def _finish(self, ended: Ended) -> list[Op]:
        run = ended.run
        task_id = run.task.id
        del self.running[task_id]
        self._free(run.slot)
        log = self._log_name(task_id)
        if run.stop_reason == "refused":
            self.status[task_id] = "elsewhere"
            self._remove(task_id)
            return []
        if run.stop_reason is not None:
            self.status[task_id] = "pending"
            self._remove(task_id)
            self.display.finished(task_id, "requeued", run.stop_reason)
            reason = run.stop_reason
            return [Op(task_id, "requeue", lambda txn, ms: lifecycle.requeue(txn, ms, task_id, reason))]
        if ended.failure is not None:
            return self._block(task_id, ended.failure, exit_code=ended.returncode or None, tail=ended.tail,
                               output=log)
        return self._merge(task_id, log)

    def _merge(self, task_id: str, log: str) -> list[Op]:
        """Merge a finished task into the milestone branch: completed, or blocked by a conflict."""
        self.trace.mark(task_id, "picked up")
        try:
            result = self.trees.merge(task_id)
            if result.kind == "conflict":
                # leave the conflict in the task's worktree, for a person or an agent to resolve
                paths = self.trees.start_conflict(task_id)
                if paths:
                    worktree = str(self.trees.path(task_id))
                    return self._block(task_id, MERGE_CONFLICT, paths=list(paths), worktree=worktree, output=log,
                                       detail=f"merge conflict in {', '.join(paths)}: resolve it in {worktree}")
                result = self.trees.merge(task_id)  # git merged what libgit2 could not: now it goes in
        except MilestonedError as exc:
            return self._block(task_id, f"merge failed: {exc}", output=log)
        if result.kind == "conflict":
            return self._block(task_id, f"merge failed: conflict in {', '.join(result.paths)}", output=log)
        self.trace.mark(task_id, "merged")
        self.status[task_id] = "completed"
        self._remove(task_id)
        merged = "nothing to merge" if result.kind == "nothing" else f"{result.kind} {str(result.commit)[:10]}"
        self.display.finished(task_id, "completed", f"{merged} into {self.trees.branch}")
        fields = {"merge": result.kind, "commit": result.commit, "branch": self.trees.branch}
        return [Op(task_id, "complete", lambda txn, ms: _complete(txn, ms, task_id, fields))]

    def _block(self, task_id: str, reason: str, *, detail: str | None = None, **fields: Any) -> list[Op]:
        self.status[task_id] = "blocked"
        self.display.finished(task_id, "blocked", detail or reason)
        return [Op(task_id, "block", lambda txn, ms: lifecycle.block(txn, ms, task_id, reason, **fields))]

    def _settle(self, hurry: threading.Event | None = None) -> None:
        """Wait for the scheduler to rest a moment: tasks ending together are followed by starts,
        and bookkeeping threads competing for the CPU and the interpreter would delay them.
        Unless someone is in a hurry for the result."""
        deadline = time.monotonic() + QUIET_LIMIT
        while (now := time.monotonic()) < deadline:
            if (hurry is not None and hurry.is_set()) or (self.idle.is_set() and now - self.idle_since >= QUIET):
                return
            time.sleep(QUIET / 6)

    def _remove(self, task_id: str) -> None:
        """Remove a worktree once the scheduler rests (never in the way of a start)."""
        def remove() -> None:
            self._settle()
            self.trees.remove(task_id)

        self.cleaner.submit(remove)

    def _retry_conflicts(self, ms: Milestone) -> list[Op]:
        """Tasks blocked by a merge conflict that a person has since resolved: merge them now."""
        ops: list[Op] = []
        for task in ms.plan.tasks:
            state = ms.state.task(task.id)
            if state.status != "blocked" or (state.blocker or {}).get("reason") != MERGE_CONFLICT:
                continue
            try:
                resolution = self.trees.resolve(task.id, task.title)
            except GitStepFailed as exc:
                self.display.note(f"{task.id}: {exc}")
                continue
            if resolution.state == "missing":
                self.display.note(f"{task.id}: its worktree is gone; reopen the task to run it again")
            elif resolution.state == "unresolved":
                self.display.note(f"{task.id}: still unresolved in {self.trees.path(task.id)}: "
                                  + ", ".join(resolution.paths))
            else:
                ops += self._merge(task.id, self._log_name(task.id))
        return ops

    # -- the end -------------------------------------------------------------------------------
    def _conclude(self) -> Outcome:
        """Escalate what failed, save the session and say how the run ended."""
        interrupted = signal.Signals(self.signals[0]).name if self.signals else None
        with self.engine.transaction() as txn:
            ms = txn.milestone(self.mid)
            reason = (f"execute interrupted by {interrupted}" if interrupted else
                      "execute finished" if ms.status == "completed" else "execute stopped")
            if not interrupted and ms.status != "completed":
                blockers.recheck(txn, ms)  # failed commands, conflicts: escalated even with no daemon
            if ms.state.session_id and not _saved_since_last_change(ms):
                sessions.save(txn, ms, reason)
        outcome = outcome_of(self.ws, ms, self.trees.branch)
        if interrupted:
            outcome.interrupted = f"interrupted by {interrupted}"
            outcome.exit_code = 128 + self.signals[0]
            outcome.next_commands.insert(0, f"milestoned execute {self.mid} --resume")
        return outcome


def _saved_since_last_change(ms: Milestone) -> bool:
    """A session save is the newest state-relevant event (a completion saves by itself)."""
    for event in reversed(ms.events()):
        if event.get("event") == "session_saved":
            return True
        if event.get("event") in STATE_EVENTS:
            return False
    return False


def _complete(txn: Transaction, ms: Milestone, task_id: str, fields: dict[str, Any]) -> Refusal | None:
    refusal = lifecycle.complete(txn, ms, task_id, **fields)
    return None if refusal and refusal.kind == "already" else refusal  # hook ingest read our merge's trailer first


def execute_with_display(engine: Engine, milestone_id: str, *, workers: int | None, resume: bool, force: bool,
                         tty: bool, echo: Callable[[str], None]) -> Outcome:
    """``milestoned execute`` as a person sees it: the live display, then the summary."""
    if resume and workers is None:  # as many at once as the run it resumes
        workers = engine.load(milestone_id).state.workers
    display = make_display(tty, echo)
    try:
        outcome = Runner(engine, milestone_id, workers=workers, display=display).execute(resume=resume, force=force)
    finally:
        display.end()
    for line in summary_lines(outcome):
        echo(line)
    return outcome
