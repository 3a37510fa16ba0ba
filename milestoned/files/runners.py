"""Which ``execute`` runs of this machine are gone: a task's runner is ``pid@host``.

Light on purpose (``os`` and ``socket`` only): ``status`` says which tasks a killed run
left in progress on the thin path as well as the full one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from typing import Any

HOST = socket.gethostname()


def gone_runs(tasks: Iterable[dict[str, Any]]) -> dict[int, list[str]]:
    """Tasks in progress under an ``execute`` of this machine that is no longer running (killed,
    rebooted), by its pid: ``execute --resume`` takes them back."""
    gone: dict[int, list[str]] = {}
    for task in tasks:
        pid, _, host = (task.get("runner") or "").partition("@")
        if task.get("status") != "in_progress" or host != HOST or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            gone.setdefault(int(pid), []).append(task["id"])
        except PermissionError:
            continue  # alive, someone else's
    return gone
