"""The plan: what a person wrote in a milestone file, read forgivingly.

Files in the wild (the seed's users) disagree with each other: ``progress`` as a map
or a number, ``status: active`` for ``in_progress``, ``depends_on`` for
``dependencies``, ``hours`` or ``estimated_hours``.  We read them all.  What we cannot
read becomes a ``Problem`` with a key path, turned into ``FILE:LINE`` by the caller.

The status and timestamp fields a file may carry (the seed wrote them) are ``Recorded``:
read once as the baseline of the state, and after that only compared with it (see
``state``).  The plan proper is ids, titles, dependencies and commands.
"""

from __future__ import annotations

import dataclasses
import functools
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milestoned.core import clock, graph
from milestoned.core.errors import UserError
from milestoned.core.ids import id_problem
from milestoned.files import yamlread as yamlio

MILESTONE_STATUSES = ("planned", "in_progress", "paused", "blocked", "completed")
TASK_STATUSES = ("pending", "in_progress", "completed", "blocked")
_MILESTONE_ALIASES = {"active": "in_progress", "planning": "planned"}
_TASK_ALIASES = {"active": "in_progress"}


@dataclass(frozen=True)
class Problem:
    keypath: tuple[str | int, ...]
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class Recorded:
    """Status fields as the file holds them (normalized), to compare with the event log."""

    status: str
    started_at: str | None = None
    completed_at: str | None = None
    agent: str | None = None
    session_id: str | None = None


@dataclass(frozen=True)
class TaskPlan:
    id: str
    title: str
    dependencies: tuple[str, ...] = ()
    run: tuple[str, ...] | str | None = None  # argv, or shell text when shell is true
    shell: bool = False
    prompt: str | None = None
    hours: float | None = None
    index: int = 0
    dependency_key: str = "dependencies"  # or depends_on: where the file wrote them
    recorded: Recorded = Recorded("pending")

    @property
    def runnable(self) -> bool:
        return self.run is not None or self.prompt is not None


@dataclass(frozen=True)
class Plan:
    id: str
    title: str
    requires: tuple[str, ...]
    tasks: tuple[TaskPlan, ...]
    recorded: Recorded
    path: Path
    text: str = field(repr=False, default="")
    # fields the seed (and earlier milestoned) wrote state into: read once, as the baseline
    state_fields: tuple[tuple[str | int, ...], ...] = ()

    @functools.cached_property
    def deps(self) -> dict[str, tuple[str, ...]]:
        """Each task's dependencies, by id (read-only: kept for the plan's life)."""
        return {t.id: t.dependencies for t in self.tasks}

    @functools.cached_property
    def _by_id(self) -> dict[str, TaskPlan]:
        # a 20,000-task plan is asked for a task per event: a walk each time would be quadratic;
        # a duplicated id (which validate reports) finds its first task, as a walk would
        found: dict[str, TaskPlan] = {}
        for t in self.tasks:
            found.setdefault(t.id, t)
        return found

    def task(self, task_id: str) -> TaskPlan:
        found = self._by_id.get(task_id)
        if found is not None:
            return found
        known = ", ".join(t.id for t in self.tasks[:10]) or "none"
        raise UserError(f"milestone {self.id} has no task {task_id!r} (tasks: {known})")

    def has_task(self, task_id: str) -> bool:
        return task_id in self._by_id

    def line_of(self, *keypath: str | int, key: bool = False) -> int | None:
        return yamlio.locate(self.text, keypath, key=key) if self.text else None


def normalize_status(value: object, *, task: bool) -> str | None:
    """Our status name for what the file says, or None when it is not one we know."""
    if value is None:
        return "pending" if task else "planned"
    if not isinstance(value, str):
        return None
    name = value.strip().lower()
    aliases = _TASK_ALIASES if task else _MILESTONE_ALIASES
    name = aliases.get(name, name)
    return name if name in (TASK_STATUSES if task else MILESTONE_STATUSES) else None


def _as_id(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _id_list(value: object, keypath: tuple[str | int, ...], what: str, problems: list[Problem]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list):
        problems.append(Problem(keypath, f"{what} must be a list of ids", f"write {keypath[-1]}: [id, ...]"))
        return ()
    ids: list[str] = []
    for i, item in enumerate(value):
        item = _as_id(item)
        why = id_problem(item, "required milestone" if what == "requires" else "dependency")
        if why:
            problems.append(Problem((*keypath, i), why))
        else:
            assert isinstance(item, str)  # what id_problem accepts is a string
            ids.append(item)
    return tuple(ids)


def _optional_str(mapping: dict[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return None if value in (None, "") else str(value)


def _read_task(raw: object, index: int, problems: list[Problem]) -> TaskPlan | None:
    at: tuple[str | int, ...] = ("tasks", index)
    if not isinstance(raw, dict):
        problems.append(Problem(at, f"task #{index + 1} must be a mapping with an id and a title"))
        return None
    task_id = _as_id(raw.get("id"))
    why = id_problem(task_id, "task id")
    if why:
        problems.append(Problem((*at, "id"), why, "give every task a unique id such as T1"))
        return None
    assert isinstance(task_id, str)  # what id_problem accepts is a string
    title = raw.get("title", task_id)
    status = normalize_status(raw.get("status"), task=True)
    if status is None:
        problems.append(
            Problem((*at, "status"), f"task {task_id} has unknown status {raw.get('status')!r}",
                    f"use one of {', '.join(TASK_STATUSES)}")
        )
        status = "pending"
    dep_key = "dependencies" if "dependencies" in raw else "depends_on"
    deps = _id_list(raw.get(dep_key), (*at, dep_key), "dependencies", problems)
    run = raw.get("run")
    shell = raw.get("shell", False)
    if not isinstance(shell, bool):
        problems.append(Problem((*at, "shell"), f"task {task_id}: shell must be true or false"))
        shell = False
    if run is not None:
        if isinstance(run, str):
            if not shell:
                try:
                    run = tuple(shlex.split(run))
                except ValueError as exc:
                    problems.append(Problem((*at, "run"), f"task {task_id}: cannot split run: {exc}",
                                            "write run as a list of arguments"))
                    run = None
        elif isinstance(run, list) and run and all(isinstance(a, (str, int, float)) for a in run):
            run = tuple(str(a) for a in run)
            if shell:
                run = shlex.join(run)
        else:
            problems.append(Problem((*at, "run"), f"task {task_id}: run must be a non-empty list of arguments",
                                    'write run: ["command", "arg", ...]'))
            run = None
    prompt = raw.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        problems.append(Problem((*at, "prompt"), f"task {task_id}: prompt must be text"))
        prompt = None
    hours = raw.get("hours", raw.get("estimated_hours"))
    if hours is not None and (isinstance(hours, bool) or not isinstance(hours, (int, float))):
        key = "hours" if "hours" in raw else "estimated_hours"
        problems.append(Problem((*at, key), f"task {task_id}: {key} must be a number"))
        hours = None
    recorded = Recorded(
        status=status,
        started_at=clock.normalize_time(raw.get("started_at")),
        completed_at=clock.normalize_time(raw.get("completed_at")),
        agent=_optional_str(raw, "agent"),
    )
    return TaskPlan(
        id=task_id,
        title=str(title) if title is not None else task_id,
        dependencies=deps,
        run=run,
        shell=shell,
        prompt=prompt,
        hours=float(hours) if hours is not None else None,
        index=index,
        dependency_key=dep_key,
        recorded=recorded,
    )


class NotAMilestone(UserError):
    """A YAML file beside the milestones that is something else (a road map, notes)."""


MILESTONE_KEYS = ("id", "title", "tasks", "status")


def read_plan(data: object, path: Path) -> tuple[Plan | None, list[Problem]]:
    """The plan in ``data`` (as loaded from ``path``) and every problem found in it."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        problems.append(Problem((), "a milestone file must be a mapping with id, title and tasks"))
        return None, problems
    if not any(key in data for key in MILESTONE_KEYS):
        raise NotAMilestone("not a milestone (no id, title, status or tasks)", path=path, line=1)
    mid = _as_id(data.get("id", path.stem))
    why = id_problem(mid, "milestone id")
    if why:
        problems.append(Problem(("id",), why))
        return None, problems
    assert isinstance(mid, str)  # what id_problem accepts is a string
    if mid != path.stem:
        problems.append(Problem(("id",), f"id {mid!r} does not match the file name {path.name}",
                                f"rename the file to {mid}.yaml or set id: {path.stem}"))
    status = normalize_status(data.get("status"), task=False)
    if status is None:
        problems.append(Problem(("status",), f"unknown milestone status {data.get('status')!r}",
                                f"use one of {', '.join(MILESTONE_STATUSES)}"))
        status = "planned"
    milestone_deps = data.get("dependencies")
    if isinstance(milestone_deps, dict):
        requires = _id_list(milestone_deps.get("requires"), ("dependencies", "requires"), "requires", problems)
    else:
        requires = _id_list(milestone_deps, ("dependencies",), "dependencies", problems)
    if mid in requires:
        where = ("dependencies", "requires") if isinstance(milestone_deps, dict) else ("dependencies",)
        problems.append(Problem(where, f"milestone {mid} requires itself", "remove it from dependencies.requires"))
    raw_tasks = data.get("tasks")
    if raw_tasks is None:
        raw_tasks = []
    if not isinstance(raw_tasks, list):
        problems.append(Problem(("tasks",), "tasks must be a list", "write tasks: followed by - id: ... items"))
        raw_tasks = []
    tasks: list[TaskPlan] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_tasks):
        task = _read_task(raw, index, problems)
        if task is None:
            continue
        if task.id in seen:
            problems.append(Problem(("tasks", index, "id"),
                                    f"duplicate task id {task.id} (also task #{seen[task.id] + 1})",
                                    "give every task a unique id"))
            continue
        seen[task.id] = index
        tasks.append(task)
    for task in tasks:
        for i, dep in enumerate(task.dependencies):
            at = ("tasks", task.index, task.dependency_key, i)
            if dep == task.id:
                problems.append(Problem(at, f"task {task.id} depends on itself", "remove it from its dependencies"))
            elif dep not in seen:
                problems.append(Problem(at,
                                        f"task {task.id} depends on unknown task {dep}",
                                        "add that task or remove the dependency"))
    cycle = graph.find_cycle({t.id: tuple(d for d in t.dependencies if d != t.id) for t in tasks})  # self: above
    if cycle:
        first = next(t for t in tasks if t.id == cycle[0])
        problems.append(Problem(("tasks", first.index, first.dependency_key),
                                "dependency cycle " + " -> ".join(cycle),
                                "remove one of these dependencies"))
    execution = data.get("execution")
    if not isinstance(execution, dict):
        execution = {}
    recorded = Recorded(
        status=status,
        started_at=clock.normalize_time(execution.get("started_at")),
        completed_at=clock.normalize_time(data.get("completed_at")),
        session_id=_optional_str(execution, "session_id"),
    )
    plan = Plan(
        id=mid,
        title=str(data.get("title") or mid),
        requires=requires,
        tasks=tuple(tasks),
        recorded=recorded,
        path=path,
        state_fields=_state_fields(data, raw_tasks),
    )
    return plan, problems


STATE_KEYS = ("progress", "execution", "blockers", "completed_at")
TASK_STATE_KEYS = ("started_at", "completed_at", "agent")


def _state_fields(data: dict[str, Any], raw_tasks: list[Any]) -> tuple[tuple[str | int, ...], ...]:
    found: list[tuple[str | int, ...]] = [(key,) for key in STATE_KEYS if key in data]
    for index, raw in enumerate(raw_tasks):
        if isinstance(raw, dict):
            found += [("tasks", index, key) for key in TASK_STATE_KEYS if key in raw]
    return tuple(found)


def load_plan(path: Path) -> Plan:
    """Load and check a milestone file; its first problem is raised as ``FILE:LINE: ...``."""
    data, text = yamlio.load(path)
    plan, problems = read_plan(data, path)
    if problems:
        first = problems[0]
        raise UserError(first.message, path=path, line=yamlio.locate(text, first.keypath) or 1, hint=first.hint)
    assert plan is not None
    return dataclasses.replace(plan, text=text)


def all_problems(path: Path) -> list[UserError]:
    """Every problem of a file, each as a located ``UserError`` (for ``validate``)."""
    try:
        data, text = yamlio.load(path)
        _, problems = read_plan(data, path)
    except UserError as exc:
        return [exc]
    return [
        UserError(p.message, path=path, line=yamlio.locate(text, p.keypath) or 1, hint=p.hint) for p in problems
    ]
