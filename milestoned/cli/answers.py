"""What the agents' commands print, from their answers: one place for both ways of answering.

``status``, ``next`` (and ``next --claim``), ``heartbeat``, ``release`` and ``done`` are
answered either by the full command line (click, the engine, the files) or by the thin
path (``cli.thin``, straight from the daemon).  Both hand the same answer to the same
function here, so they print the same bytes; and this module imports nothing heavier
than the standard library's ``json`` until a terminal needs rich.
"""

from __future__ import annotations

import os
import shlex
import sys

from milestoned.core.jsonout import json_text
from milestoned.core.text import visible
from milestoned.model.statuses import RUNNING

TYPE_CHECKING = False  # typing itself costs the thin path a few ms
if TYPE_CHECKING:
    from typing import Any

INTERRUPTED = "milestoned: interrupted"


def say(message: str = "", *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{message}\n")
    stream.flush()


def warn(message: str) -> None:
    say(f"milestoned: warning: {message}", err=True)


def print_json(data: Any) -> None:
    """Indented for a person at a terminal, compact for a program (same schema either way)."""
    sys.stdout.write(json_text(data, pretty=sys.stdout.isatty()))


def quiet_stdout() -> None:
    """The reader of stdout went away (``| head -1``): send what is still buffered nowhere, so
    Python's flush at exit does not fail into the closed pipe."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # no stdout to point elsewhere


def warnings_of(answer: dict[str, Any]) -> None:
    for message in answer.get("warnings") or ():
        warn(message)


# -- status -------------------------------------------------------------------------------
def status_warnings(view: dict[str, Any]) -> None:
    """What a milestone's view warns of, and tasks a killed ``execute`` left in progress."""
    # start-up: loaded only when a status is printed as text
    from milestoned.files.runners import gone_runs

    for warning in view.get("warnings", []):
        warn(warning)
    mid = view["milestone"]["id"]
    for pid, tasks in gone_runs(view["tasks"]).items():
        warn(f"{', '.join(tasks)} in progress under `milestoned execute` (pid {pid}), which is no longer running: "
             f"`milestoned execute {mid} --resume` runs them again")


def status_body(view: dict[str, Any]) -> None:
    """The dashboard: a rich panel on a terminal, plain lines elsewhere."""
    # start-up: loaded only when a status is printed as text
    from milestoned.cli import render

    if sys.stdout.isatty():
        # start-up: rich costs ~35 ms, and only a terminal needs it
        from rich.console import Console

        Console().print(render.status_rich(view))
        return
    for line in render.status_lines(view):
        say(line)


# -- next and the claims ------------------------------------------------------------------
def ready(result: dict[str, Any], as_json: bool) -> None:
    """``next``: the tasks ready to start."""
    if as_json:
        print_json(result)
        return
    if result["status"] not in RUNNING:
        warn(f"milestone {result['milestone_id']} is {result['status']}; activate it to start tasks")
    if not result["ready"]:
        say("no task is ready")
    for row in result["ready"]:
        say(f"{row['id']}  {row['title']}")


def claimed(answer: dict[str, Any], as_json: bool) -> None:
    """``next --claim``: the task given to the agent, or why none was."""
    if as_json:
        print_json(answer)
        return
    for held in answer["held_elsewhere"]:
        say(f"{held['task_id']} is {held.get('status') or 'held'} by {held.get('agent') or 'someone else'}")
    task = answer["claimed"]
    if task is None:
        say("no task to claim")
        return
    verb = "still holds" if answer["already_held"] else "claimed"
    say(f"{answer['agent']} {verb} {task['id']}  {task['title']}  (lease until {task['lease_until']})")
    if task.get("prompt"):  # what to do, for an agent that reads lines
        say(f"  prompt: {visible(task['prompt'])}")
    if task.get("run"):
        run = task["run"]
        say(f"  run: {visible(run if isinstance(run, str) else shlex.join(run))}")


def renewed(answer: dict[str, Any], as_json: bool) -> tuple[str, str] | None:
    """``heartbeat``: the leases renewed; the (error, hint) to fail with when a claim was lost."""
    warnings_of(answer)
    agent = answer["agent"]
    if as_json:
        print_json(answer)
    else:
        for row in answer["renewed"]:
            say(f"{row['task_id']} held by {agent} until {row['lease_until']}")
    if not answer["lost"]:
        return None
    lost = ", ".join(f"{row['task_id']} (now {(row['holder'] or {}).get('agent') or 'free'})"
                     for row in answer["lost"])
    return (f"{agent} no longer holds {lost}: its lease ran out and another clone took it",
            f"claim another task: milestoned next --claim --agent {agent}")


def released(answer: dict[str, Any], as_json: bool) -> None:
    """``release``: the tasks given back."""
    warnings_of(answer)
    if as_json:
        print_json(answer)
        return
    say(f"{answer['agent']} released {', '.join(answer['released'])}")


def completed(answer: dict[str, Any], as_json: bool) -> None:
    """``done``: the task completed, and where the milestone stands."""
    warnings_of(answer)
    if as_json:
        print_json(answer)
        return
    p = answer["progress"]
    note = " — milestone completed" if answer["milestone_status"] == "completed" else ""
    say(f"{answer['milestone_id']}: {answer['completed']} completed by {answer['agent']} "
        f"({p['tasks_completed']}/{p['tasks_total']}, {p['percentage']}%){note}")
