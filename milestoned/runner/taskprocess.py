"""A task's process: its argv, its process group, its log's tail, and dead runs.

Tasks run in their own process group, so stopping one stops what it started, and
the death of the runner (kill -9) does not take them along: ``kill_leftovers`` finds
what a dead runner left behind (``files.runners.gone_runs``: the tasks it had in progress).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path

from milestoned.files.runlock import processes_in
from milestoned.git import trailers
from milestoned.model.config import Config
from milestoned.model.plan import TaskPlan

TAIL_LINES = 20
PLACEHOLDER = re.compile(r"\{(prompt|task_id|milestone_id|workdir)\}")


def task_argv(task: TaskPlan, agent_command: tuple[str, ...], milestone_id: str, workdir: Path) -> list[str]:
    """The argv of a task: its ``run:``, or the agent command with placeholders filled in.

    Placeholders are replaced inside each argument in one pass (a prompt that contains
    ``{task_id}`` stays as written); the result is an argv, never shell text.  An agent
    command without ``{prompt}`` gets the prompt as its last argument.
    """
    if task.run is not None:
        return ["/bin/sh", "-c", task.run] if isinstance(task.run, str) else list(task.run)
    values = {"prompt": task.prompt or "", "task_id": task.id, "milestone_id": milestone_id, "workdir": str(workdir)}
    argv = [PLACEHOLDER.sub(lambda m: values[m.group(1)], arg) for arg in agent_command]
    if not any("{prompt}" in arg for arg in agent_command):
        argv.append(values["prompt"])
    return argv


def find_executable(argv: Sequence[str], cwd: Path) -> str | None:
    """Where the program an argv starts is found: on PATH for a name, else the path (below ``cwd``
    when relative, as a task's process resolves it in its worktree); None when it is not there."""
    program = argv[0]
    if os.sep not in program:
        return shutil.which(program)
    path = cwd / program
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


def agent_not_found(config: Config) -> tuple[str, str]:
    """What doctor and ``execute`` say of an agent command whose program is not found: (problem, fix)."""
    program = config.agent_command[0]
    where = "not on PATH" if os.sep not in program else "not there"
    problem = f"{config.agent_source} runs {program!r}, which is {where}"
    if config.agent_preset and config.agent_source != "agent.command":
        return problem, f"install {config.agent_preset}, or set agent.command to its path"
    return problem, "install it, or write its path in agent.command"


def kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, count: int = TAIL_LINES) -> list[str]:
    """The last lines of a task's log, for the event that says why it is blocked."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            data = handle.read()
    except OSError:
        return []
    return [line[:500] for line in data.decode("utf-8", errors="replace").splitlines()[-count:]]


def kill_leftovers(worktrees: list[Path]) -> None:
    """Stop processes a dead runner's tasks left running in these worktrees (Linux: /proc).

    A task runs in its own process group, so the runner's death does not take it along.
    Elsewhere the leftovers keep running in a directory that is then removed.
    """
    own = os.getpgid(0)
    for pids in processes_in(worktrees).values():
        for pid in pids:
            try:
                group = os.getpgid(pid)
            except OSError:
                continue  # ended meanwhile
            if group != own:
                kill_group(group, signal.SIGKILL)


def task_env(milestone_id: str, task_id: str, worktree: Path) -> dict[str, str]:
    """What a task's process is told besides its argv (the README lists them): which task, where,
    and the trailers its own commits should carry."""
    return {
        "MILESTONED_MILESTONE_ID": milestone_id,
        "MILESTONED_TASK_ID": task_id,
        "MILESTONED_WORKTREE": str(worktree),
        "MILESTONED_TRAILERS": trailers.for_task(milestone_id, task_id),
    }
