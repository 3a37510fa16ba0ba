"""What a commit asks of the task state: its trailers, or the branch it was made on.

``Milestone: <id>``, ``Task: <id>`` (start) and ``Completes: <id>`` (complete); a
branch ``milestone/<mid>/<tid>`` implies the milestone and the task for commits that
say nothing, and merge commits take nothing from their branch.

Trailers are data someone else wrote.  A ``Milestone:`` whose value is no valid id
makes the commit's trailers ignored (it never falls back to another milestone), and a
commit asks for at most ``MAX_MOVES`` moves; either way the intent carries a
``problem``, which ingest records once.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from milestoned.core.ids import is_valid_id
from milestoned.git.refwatch import Commit

# -- what a commit means ---------------------------------------------------------------
MAX_MOVES = 32  # task moves one commit may ask for


def for_task(milestone_id: str, task_id: str) -> str:
    """The trailer lines a commit of a task's work carries: what ``execute`` tells a task's process
    (``MILESTONED_TRAILERS``) and what a claim tells its agent, so the commit counts for the task."""
    return f"Milestone: {milestone_id}\nTask: {task_id}"


@dataclass(frozen=True)
class Intent:
    milestone: str | None
    moves: tuple[tuple[str, str], ...]  # (task, task_completed|task_started), completions first
    problem: str | None = None  # what was refused of the trailers, to record once


@functools.lru_cache(maxsize=4096)
def _valid(value: str) -> bool:
    """``ids.is_valid_id``, remembered: the same few ids come back on thousands of commits."""
    return is_valid_id(value)


def _branch_parts(ref: str) -> tuple[str | None, str | None]:
    """``refs/heads/milestone/<mid>[/<tid>]`` -> (mid, tid)."""
    if not ref.startswith("refs/heads/milestone/"):
        return None, None
    parts = ref[len("refs/heads/milestone/"):].split("/")
    mid = parts[0] if _valid(parts[0]) else None
    tid = parts[1] if len(parts) == 2 and mid and _valid(parts[1]) else None
    return mid, tid


def intent_of(commit: Commit, branch: str) -> Intent:
    """What the trailers (and, for a plain commit, its branch) ask of the task state."""
    return _intent(commit.trailers, "" if commit.is_merge else branch)


@functools.lru_cache(maxsize=4096)
def _intent(trailers: str, branch: str) -> Intent:
    """Remembered: thousands of commits repeat a few trailer blocks on a few branches."""
    milestone: str | None = None
    tasks: list[str] = []
    completes: list[str] = []
    for item in trailers.split("\x1e"):
        key, sep, value = item.partition(":")
        key, value = key.strip().lower(), value.strip()
        if sep and key == "milestone" and milestone is None and not _valid(value):
            shown = value if len(value) <= 40 else value[:40] + "..."
            return Intent(None, (), f"Milestone: {shown!r} is not a milestone id: the commit's trailers are ignored")
        if not sep or not _valid(value):
            continue
        if key == "milestone" and milestone is None:
            milestone = value
        elif key == "task" and value not in tasks:
            tasks.append(value)
        elif key == "completes" and value not in completes:
            completes.append(value)
    mid, tid = _branch_parts(branch)
    if milestone is None:
        milestone = mid
    if tid and not tasks and milestone == mid:
        tasks.append(tid)
    moves = [(t, "task_completed") for t in completes] + [(t, "task_started") for t in tasks if t not in completes]
    if len(moves) > MAX_MOVES:
        problem = f"{len(moves)} task trailers, more than {MAX_MOVES}: the first {MAX_MOVES} are read, the rest refused"
        return Intent(milestone, tuple(moves[:MAX_MOVES]), problem)
    return Intent(milestone, tuple(moves))


def note_milestones(note: str) -> list[str]:
    found = []
    for row in note.splitlines():
        try:
            value = json.loads(row).get("milestone")
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str) and value not in found:
            found.append(value)
    return found
