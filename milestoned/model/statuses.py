"""The statuses every door shares: which ones mean a milestone runs, how each is coloured,
how a blocker reads.

Apart from ``state`` and ``views`` so that printing a view (``cli.render``, the thin path)
needs no plan or YAML machinery: only the clock, for a long-running task's age as of now.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs the thin path a few ms
if TYPE_CHECKING:
    from typing import Any

RUNNING = ("in_progress", "blocked")  # a milestone whose tasks may move

# how every door colours a status (rich style names)
STATUS_STYLE = {
    "completed": "green", "in_progress": "cyan", "blocked": "red", "pending": "dim",
    "planned": "dim", "paused": "yellow",
}


def describe(blocker: dict[str, Any]) -> str:
    """``type: detail``: the one wording of a blocker, in every door (a long-running task's age as of now)."""
    # start-up: the clock (datetime, re) only when a blocker is worded
    from milestoned.core import clock

    detail = blocker.get("detail", "")
    started, threshold = clock.parse_time(blocker.get("started_at")), blocker.get("threshold")
    if blocker.get("type") == "long_running_tasks" and started and isinstance(threshold, (int, float)):
        age = (clock.now() - started).total_seconds()
        detail = (f"{blocker.get('task_id')} in progress for {clock.duration_text(age)} "
                  f"(threshold {clock.duration_text(threshold)})")
    return f"{blocker.get('type', '?')}: {detail}"
