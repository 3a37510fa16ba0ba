"""Blockers (SPEC §7): found from facts, escalated and cleared through the engine.

Two kinds of facts feed the detectors.  The milestone's folded state says which
tasks are in progress too long, started before their dependencies, or failed their
command.  The repository around it is gathered in a ``Probe``: unmerged paths in
any worktree (``git worktree list --porcelain``), how full the disk is, and the last
run of the configured test command.  ``detect`` is a pure function of both, so the
daemon, ``resume`` and ``milestoned blockers --recheck`` all judge alike.

Each blocker has a ``key`` naming its cause (``long_running_tasks:T3``).  ``settle``
compares what was found with what the milestone already lists: new causes are
escalated (``blocker_detected`` each, then ``blockers_escalated`` with the whole
list, which makes the milestone ``blocked``; the session is saved; the event says
how to resume) and vanished causes are cleared (``blockers_cleared``, which brings
the milestone back to ``in_progress`` when none remain).  A detector that could not
look (no git probe this time) leaves its blockers alone: only what was checked is
cleared.
"""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
from dataclasses import dataclass, field
from typing import Any

from milestoned.core import clock
from milestoned.core.text import visible
from milestoned.engine import sessions
from milestoned.engine.engine import Engine, Transaction
from milestoned.engine.testruns import RunLedger, TestCommand, TestRun
from milestoned.files.workspace import Workspace
from milestoned.git import queries as gitutil
from milestoned.model.config import Config, load_config
from milestoned.model.milestone import Milestone
from milestoned.model.statuses import describe

SHOWN_PATHS = 5
IN_THE_MIDDLE = ("MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "rebase-merge", "rebase-apply", "AUTO_MERGE")

# the causes each detector is responsible for, as key prefixes
CONFLICTS, TASK_CONFLICTS, TESTS = "git_conflicts:", "task_conflict:", "test_failures"
LONG_RUNNING, DISK, DEPENDENCIES, FAILED = "long_running_tasks:", "disk_space", "dependency_violation:", "failed_command:"
STATE_DETECTORS = frozenset({TASK_CONFLICTS, TESTS, LONG_RUNNING, DEPENDENCIES, FAILED})


@dataclass(frozen=True)
class Conflict:
    """Unmerged paths in one worktree, and the branch it has checked out."""

    worktree: str
    branch: str | None
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Probe:
    """Facts about the repository; None where a detector did not look this time."""

    now: dt.datetime
    conflicts: tuple[Conflict, ...] | None = None
    disk_percent: float | None = None
    tests: TestRun | None = None


@dataclass
class Outcome:
    milestone_id: str
    detected: list[dict[str, Any]] = field(default_factory=list)
    cleared: list[dict[str, Any]] = field(default_factory=list)
    remaining: list[dict[str, Any]] = field(default_factory=list)
    message: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.detected or self.cleared)


# -- facts ------------------------------------------------------------------------------
def _worktrees(ws: Workspace) -> list[tuple[str, str | None]]:
    """(path, branch) of every usable worktree, task worktrees included."""
    out = gitutil.run_git(["worktree", "list", "--porcelain"], ws.root, check=False)
    found: list[tuple[str, str | None]] = []
    for block in out.stdout.split("\n\n"):
        fields = dict((line.split(" ", 1) + [""])[:2] for line in block.splitlines() if line)
        path = fields.get("worktree")
        if not path or "bare" in fields or "prunable" in fields:
            continue
        branch = fields.get("branch", "")
        found.append((path, branch.removeprefix("refs/heads/") or None))
    return found


def find_conflicts(ws: Workspace) -> tuple[Conflict, ...]:
    """Unmerged paths (a merge, rebase or cherry-pick stopped on conflicts) in each worktree."""
    if not ws.is_git:
        return ()
    conflicts = []
    for path, branch in _worktrees(ws):
        listed = gitutil.run_git(["ls-files", "--unmerged", "-z"], path, check=False)
        if listed.returncode != 0:
            continue  # a worktree deleted under us: `git worktree prune` material, not a conflict
        paths = sorted({entry.split("\t", 1)[1] for entry in listed.stdout.split("\0") if "\t" in entry})
        if paths:
            conflicts.append(Conflict(path, branch, tuple(paths)))
    return tuple(conflicts)


def disk_percent(ws: Workspace) -> float:
    """How full the disk holding the repository is, as ``df`` counts it (reserved blocks excluded)."""
    usage = shutil.disk_usage(ws.root)
    available = usage.used + usage.free
    return 100.0 * usage.used / available if available else 0.0


def gather(ws: Workspace, config: Config, *, git: bool = True) -> Probe:
    """Look at the repository now; ``git=False`` skips the git processes (the cheap probe)."""
    return Probe(
        now=clock.now(),
        conflicts=find_conflicts(ws) if git and config.detect_conflicts else None,
        disk_percent=disk_percent(ws) if config.disk_usage_percent is not None else None,
        tests=RunLedger(ws).last(),
    )


# -- detection (pure) -------------------------------------------------------------------
def _owner(branch: str | None) -> tuple[str, str | None] | None:
    """(milestone, task) for ``milestone/<mid>`` and ``milestone/<mid>/<tid>`` branches."""
    parts = (branch or "").split("/")
    if len(parts) in (2, 3) and parts[0] == "milestone" and parts[1]:
        task = parts[2] if len(parts) == 3 and not parts[2].startswith("_") else None  # _milestone: the runner's
        return parts[1], task
    return None


def _age(since: str | None, now: dt.datetime) -> float | None:
    moment = clock.parse_time(since)
    return (now - moment).total_seconds() if moment else None


def _listing(paths: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(paths[:SHOWN_PATHS])
    return shown + (f" and {len(paths) - SHOWN_PATHS} more" if len(paths) > SHOWN_PATHS else "")


def _blocker(kind: str, key: str, detail: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "key": key, "detail": detail, **{k: v for k, v in fields.items() if v is not None}}


def detect(milestone: Milestone, config: Config, probe: Probe) -> tuple[list[dict[str, Any]], frozenset[str]]:
    """The blockers of ``milestone`` now, and the key prefixes this look was able to judge."""
    found: list[dict[str, Any]] = []
    covered = set(STATE_DETECTORS)
    state, mid = milestone.state, milestone.id
    tasks = [(task, state.task(task.id)) for task in milestone.plan.tasks]

    if not config.detect_conflicts or probe.conflicts is not None:
        covered.add(CONFLICTS)
    if config.detect_conflicts:
        for conflict in probe.conflicts or ():
            owner = _owner(conflict.branch)
            if owner is not None and owner[0] != mid:
                continue  # another milestone's worktree
            found.append(_blocker(
                "git_conflicts", CONFLICTS + conflict.worktree,
                f"unmerged paths in {conflict.worktree}: {_listing(conflict.paths)}",
                worktree=conflict.worktree, paths=list(conflict.paths), task_id=owner[1] if owner else None,
            ))
    for task, ts in tasks:
        blocker = ts.blocker or {}
        if ts.status != "blocked":
            continue
        if config.detect_conflicts and blocker.get("paths"):
            found.append(_blocker("git_conflicts", TASK_CONFLICTS + task.id,
                                  f"merging {task.id} conflicted: {_listing(list(blocker['paths']))}",
                                  task_id=task.id, paths=list(blocker["paths"])))
        elif config.detect_failed_commands and (blocker.get("exit_code") not in (None, 0) or blocker.get("output")):
            # a command run by `execute` (it has a log) that failed, could not start or timed out
            log = f" (log: {blocker['output']})" if blocker.get("output") else ""
            how = (f"exited {blocker['exit_code']}" if blocker.get("exit_code") not in (None, 0)
                   else f"failed: {blocker.get('reason', 'unknown reason')}")
            found.append(_blocker("failed_command", FAILED + task.id, f"the command of {task.id} {how}{log}",
                                  task_id=task.id, exit_code=blocker.get("exit_code"), output=blocker.get("output")))

    run = probe.tests
    if config.detect_test_failures and config.test_command and run is not None and not run.ok:
        found.append(_blocker("test_failures", TESTS,
                              f"`{visible(shlex.join(run.command))}` {run.outcome} on commit {run.commit[:12]} (log: {run.log})",
                              commit=run.commit, exit_code=run.exit_code, log=run.log))

    if config.long_running_after:
        for task, ts in tasks:
            age = _age(ts.started_at, probe.now) if ts.status == "in_progress" else None
            if age is not None and age > config.long_running_after:
                found.append(_blocker(
                    "long_running_tasks", LONG_RUNNING + task.id,
                    f"{task.id} in progress for {clock.duration_text(age)} "
                    f"(threshold {clock.duration_text(config.long_running_after)})",
                    task_id=task.id, started_at=ts.started_at, threshold=config.long_running_after,
                ))

    if config.disk_usage_percent is None or probe.disk_percent is not None:
        covered.add(DISK)
    threshold = config.disk_usage_percent
    if threshold is not None and probe.disk_percent is not None and probe.disk_percent > threshold:
        found.append(_blocker("disk_space", DISK,
                              f"the disk holding the repository is {probe.disk_percent:.1f}% full "
                              f"(threshold {threshold:g}%)", usage_percent=round(probe.disk_percent, 1)))

    if config.detect_dependency_violations:
        statuses = milestone.statuses
        for task, ts in tasks:
            open_deps = [d for d in task.dependencies if statuses.get(d) != "completed"]
            if ts.status == "in_progress" and open_deps:
                found.append(_blocker("dependency_violation", DEPENDENCIES + task.id,
                                      f"{task.id} was started before {', '.join(open_deps)} completed",
                                      task_id=task.id, dependencies=open_deps))
    return found, frozenset(covered)


def key_of(blocker: dict[str, Any]) -> str:
    """A blocker's cause; blockers written by others without a key get one from their text."""
    key = blocker.get("key")
    return key if isinstance(key, str) else f"{blocker.get('type', '?')}:{blocker.get('detail', '')}"


def _judged(key: str, covered: frozenset[str]) -> bool:
    return any(key == prefix or (prefix.endswith(":") and key.startswith(prefix)) for prefix in covered)


def how_to_go_on(milestone_id: str, blocker: dict[str, Any]) -> str:
    """What to run once a blocker's cause is dealt with: the command that works for its kind."""
    task = blocker.get("task_id")
    kind = blocker.get("type")
    if kind == "failed_command" and isinstance(task, str):
        return f"fix its cause, then `milestoned task reopen {task} -m {milestone_id}` and " \
               f"`milestoned execute {milestone_id} --resume`"
    if kind == "git_conflicts" and isinstance(task, str) and blocker.get("key", "").startswith(TASK_CONFLICTS):
        return f"resolve it in the task's worktree, commit, then `milestoned execute {milestone_id} --resume`"
    if kind == "git_conflicts":
        return "resolve the conflicted paths, commit, then `milestoned resume`"
    if kind == "long_running_tasks" and isinstance(task, str):
        return f"finish it (`milestoned task done {task} -m {milestone_id}`) or give it back " \
               f"(`milestoned task reopen {task} -m {milestone_id}`)"
    if kind == "dependency_violation" and isinstance(task, str):
        return f"complete what it depends on, or `milestoned task reopen {task} -m {milestone_id}`"
    if kind == "test_failures":
        return "fix the tests and commit: a passing commit clears it (or `milestoned blockers --recheck`)"
    if kind == "disk_space":
        return "free some disk space, then `milestoned blockers --recheck`"
    return "resolve it, then `milestoned resume`"


def _unblock(milestone_id: str, task_id: str, blocker: dict[str, Any]) -> str:
    """What to run for one blocked task once what blocks it is dealt with."""
    back = f"`milestoned task reopen {task_id} -m {milestone_id}`"
    if "output" in blocker or "worktree" in blocker:  # blocked by a run of `execute`
        return f"{back}, then `milestoned execute {milestone_id} --resume`"
    return f"{back} puts it back in the queue (or `milestoned task done {task_id} -m {milestone_id}`)"


def escalation_message(milestone_id: str, blockers: list[dict[str, Any]]) -> str:
    """One line for the log and the event: what blocks, and what to run to go on."""
    steps = "; ".join(f"{describe(b)}: {how_to_go_on(milestone_id, b)}" for b in blockers)
    return f"milestone {milestone_id} is blocked ({steps})"


# -- escalation -------------------------------------------------------------------------
def settle(txn: Transaction, milestone: Milestone, found: list[dict[str, Any]], covered: frozenset[str],
           *, escalate: bool = True) -> Outcome:
    """Record what changed between the milestone's blockers and ``found``."""
    now = clock.now_iso()
    existing = list(milestone.blockers)
    known = {key_of(b) for b in existing}
    found_keys = {key_of(b) for b in found}
    cleared = [b for b in existing if _judged(key_of(b), covered) and key_of(b) not in found_keys]
    kept = [b for b in existing if b not in cleared]
    new = [{**b, "since": now} for b in found if key_of(b) not in known] if escalate else []
    outcome = Outcome(milestone.id, detected=new, cleared=cleared, remaining=kept + new)
    if cleared:
        txn.record(milestone, "blockers_cleared", cleared=cleared, remaining=kept)
    if new:
        for blocker in new:
            txn.record(milestone, "blocker_detected", **blocker)
        outcome.message = escalation_message(milestone.id, outcome.remaining)
        txn.record(milestone, "blockers_escalated", blockers=outcome.remaining, message=outcome.message)
        if milestone.state.session_id:
            sessions.save(txn, milestone, "blocker_detected")
    return outcome


def differs(milestone: Milestone, found: list[dict[str, Any]], covered: frozenset[str]) -> bool:
    """Whether ``settle`` would record anything (cheap: the daemon asks before taking the lock)."""
    existing = {key_of(b) for b in milestone.blockers}
    found_keys = {key_of(b) for b in found}
    if milestone.running and found_keys - existing:
        return True
    return any(_judged(k, covered) and k not in found_keys for k in existing)


def clear_resolved(txn: Transaction, milestone: Milestone) -> Outcome:
    """After a task moved: blockers its state alone judges (a failed command, a dependency
    violation) whose cause is gone are cleared at once; nothing is raised here."""
    found, _ = detect(milestone, Config(), Probe(now=clock.now()))
    return settle(txn, milestone, found, frozenset({TASK_CONFLICTS, DEPENDENCIES, FAILED}), escalate=False)


def quick_conflicts(ws: Workspace) -> tuple[Conflict, ...] | None:
    """Unmerged paths, found cheaply: ``git ls-files`` runs only in a worktree that is in the middle
    of a merge, a rebase, a cherry-pick or a revert (seen by a few ``stat`` calls); None outside git."""
    if ws.common_dir is None:
        return None
    git_dirs = [ws.common_dir]
    linked = ws.common_dir / "worktrees"
    if linked.is_dir():
        git_dirs += sorted(p for p in linked.iterdir() if p.is_dir())
    if not any((d / name).exists() for d in git_dirs for name in IN_THE_MIDDLE):
        return ()
    return find_conflicts(ws)


def quick_look(engine: Engine, milestone: Milestone) -> Milestone:
    """What ``status`` and ``blockers`` see without a daemon: unmerged paths (cheaply) and what the
    state alone says; recorded (escalated, or cleared) only when that changes something."""
    if not milestone.running and not milestone.blockers:
        return milestone
    config = load_config(engine.ws.config_path)
    probe = Probe(now=clock.now(), conflicts=quick_conflicts(engine.ws) if config.detect_conflicts else None)
    found, covered = detect(milestone, config, probe)
    covered -= {TESTS, LONG_RUNNING}  # judged by the daemon, which runs the tests and watches the clock
    found = [b for b in found if _judged(key_of(b), covered)]
    if not differs(milestone, found, covered):
        return milestone
    with engine.transaction() as txn:
        fresh = txn.milestone(milestone.id)
        settle(txn, fresh, found, covered, escalate=fresh.running)
    return engine.load(milestone.id)


def recheck(txn: Transaction, milestone: Milestone, *, config: Config | None = None,
            probe: Probe | None = None) -> Outcome:
    """Judge the milestone's blockers again now: clear what is resolved, escalate what is new.

    ``resume`` and the daemon call this.  A milestone that is not running (planned,
    paused, completed) only has resolved blockers cleared, never new ones raised.
    """
    config = config or load_config(txn.ws.config_path)
    probe = probe or gather(txn.ws, config)
    found, covered = detect(milestone, config, probe)
    return settle(txn, milestone, found, covered, escalate=milestone.running)


def look_again(engine: Engine, milestone_id: str) -> tuple[TestRun | None, Outcome]:
    """``blockers --recheck``: run the test command on HEAD if it never ran there (the user asked),
    then judge the blockers again; (that run, if one was made, and what changed)."""
    config = load_config(engine.ws.config_path)
    head = gitutil.head_commit(engine.ws.root) if engine.ws.is_git else None
    run = None
    if head and config.test_command and config.detect_test_failures:
        run = TestCommand(engine.ws).run(config.test_command, config.test_timeout, head)
    probe = gather(engine.ws, config)
    with engine.transaction() as txn:
        return run, recheck(txn, txn.milestone(milestone_id), config=config, probe=probe)


# -- the read view ----------------------------------------------------------------------
def view(milestones: list[Milestone]) -> dict[str, Any]:
    """``milestoned blockers --json`` and the daemon's ``blockers`` answer (stable schema)."""
    rows = []
    for ms in milestones:
        blocked_tasks = [
            {"id": tid, **(ts.blocker or {}), "then": _unblock(ms.id, tid, ts.blocker or {})}
            for tid, ts in ms.tasks.items() if ts.status == "blocked"
        ]
        rows.append({
            "milestone_id": ms.id,
            "status": ms.status,
            "blockers": ms.blockers,
            "blocked_tasks": blocked_tasks,
            "resume": "milestoned resume" if ms.blockers else None,
            "next": [how_to_go_on(ms.id, b) for b in ms.blockers],
        })
    return {"schema": 1, "milestones": rows}
