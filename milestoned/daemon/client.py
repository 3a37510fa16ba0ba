"""Asking the daemon from the full command line: ``status``, ``events``, ``ping``.

A request is ``{"op": "status" | "events" | "next" | ..., ...}``; the answer is
``{"ok": true, "version": V, "notes": [...], "result": ...}`` or ``{"ok": false,
"error": "...", "exit_code": N}`` (``wire`` checks both ends).

Every function here returns None when no daemon answers — none runs, it is wedged
past the timeout, it is another version, or it answered with an error — and the
caller then reads the files itself, which gives the same answer: a daemon only ever
makes answers faster, never different (Watchman's rule).  Errors in particular are
always worded by the caller from the files, exactly as without a daemon.

The daemon sends ``status`` results already serialized as ``--json`` prints them when
piped, so ``status --json`` passes them through as bytes without parsing a
10,000-task view.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milestoned.daemon import wire
from milestoned.files.workspace import Workspace

ANSWER_TIMEOUT = 5.0


def socket_path(ws: Workspace) -> Path:
    """Where the daemon of ``ws`` listens (``wire.socket_path_for``)."""
    return Path(wire.socket_path_for(os.fspath(ws.runtime_dir)))


def _exchange(ws: Workspace, payload: dict[str, Any], timeout: float) -> bytes | None:
    return wire.exchange_line(os.fspath(socket_path(ws)), payload, timeout)


def ask(ws: Workspace, op: str, *, timeout: float = ANSWER_TIMEOUT, **fields: Any) -> dict[str, Any] | None:
    """The whole answer of a successful request, parsed; None otherwise."""
    return wire.answer_of(_exchange(ws, {"op": op, **fields}, timeout))


def ping(ws: Workspace, *, timeout: float = 2.0) -> dict[str, Any] | None:
    """The daemon's description of itself (pid, version, socket, what it watches), or None.

    Any version's: stopping or reporting on a daemon of another version must still find it."""
    line = _exchange(ws, {"op": "ping"}, timeout)
    try:
        data = json.loads(line) if line is not None else None
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("ok") is not True:
        return None
    return {k: v for k, v in data.items() if k != "ok"}


@dataclass(frozen=True)
class StatusAnswer:
    raw: bytes  # the view as ``--json`` prints it when piped (compact, one line)

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = json.loads(self.raw)  # the daemon's status result: always an object
        return view


def status(ws: Workspace, milestone: str | None, *, timeout: float = ANSWER_TIMEOUT) -> StatusAnswer | None:
    """The ``status`` view from the daemon, for a client standing in the current directory."""
    found = wire.result_bytes(_exchange(ws, wire.status_request(milestone), timeout))
    return StatusAnswer(found[0]) if found is not None else None  # its notes: the caller reads them itself
