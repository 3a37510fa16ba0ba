"""Where ``execute``'s time goes, step by step, when ``MILESTONED_TRACE`` names a file.

Each step of each task — its process ended, its leftovers committed, merged, handed to
a starter, its worktree ready, its process spawned — is one JSON line
``{"t": <epoch seconds>, "task": ID, "step": NAME}`` appended to that file.
``bench/bench_execute.py`` reads it to show where the gap between one task's end and
the start of the task it unlocked goes.  Unset, marking costs one attribute test.
"""

from __future__ import annotations

import json
import os
import time


class Trace:
    def __init__(self, path: str | None = None) -> None:
        path = path if path is not None else os.environ.get("MILESTONED_TRACE")
        # appended with one write per line, so threads never interleave within a line
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                           0o600) if path else None

    def mark(self, task_id: str, step: str) -> None:
        if self._fd is not None:
            os.write(self._fd, json.dumps({"t": time.time(), "task": task_id, "step": step}).encode() + b"\n")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
