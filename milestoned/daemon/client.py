"""Asking the daemon: one JSON object per line each way, over its Unix socket.

A request is ``{"op": "status" | "events" | "next" | "blockers" | "ping", ...}``; the
answer is ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "...",
"exit_code": N}``, either with an optional ``"warning"``.

Every function here returns None when no daemon answers — none runs, it is wedged
past the timeout, or it answered with an error — and the caller then reads the files
itself, which gives the same answer: a daemon only ever makes answers faster, never
different (Watchman's rule).  Errors in particular are always worded by the caller
from the files, exactly as without a daemon.

The daemon sends ``status`` results already serialized as ``--json`` prints them when
piped, in front of nothing but the closing brace, so ``status --json`` passes them
through as bytes without parsing a 10,000-task view.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milestoned.core.jsonout import json_text
from milestoned.files.workspace import Workspace

SOCKET_NAME = "daemon.sock"
MAX_SOCKET_PATH = 100  # bytes: sun_path holds 108 on Linux and 104 on macOS, with its NUL
CONNECT_TIMEOUT = 1.0
ANSWER_TIMEOUT = 5.0
RESULT_PREFIX = b'{"ok":true,"result":'


def socket_path(ws: Workspace) -> Path:
    """``<runtime dir>/daemon.sock``, or, when that path is too long for a Unix socket, a short
    one under ``/tmp/milestoned-<uid>/`` named by a hash of the runtime dir.

    The daemon and its clients compute it alike, so finding the daemon reads no file.
    """
    preferred = ws.runtime_dir / SOCKET_NAME
    if len(os.fsencode(preferred)) <= MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(os.fsencode(ws.runtime_dir)).hexdigest()[:20]
    return Path(f"/tmp/milestoned-{os.getuid()}") / f"{digest}.sock"


def _exchange(ws: Workspace, payload: dict[str, Any], timeout: float) -> bytes | None:
    """One request line out, one answer line back; None on any failure to talk."""
    path = socket_path(ws)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(min(CONNECT_TIMEOUT, timeout))
            sock.connect(os.fspath(path))
            sock.settimeout(timeout)
            sock.sendall(json.dumps(payload).encode("utf-8") + b"\n")
            with sock.makefile("rb") as answer:
                line = answer.readline()
    except OSError:  # no socket, nobody listening (a crash's leftover), timed out, reset
        return None
    return line if line.endswith(b"\n") else None


def ask(ws: Workspace, op: str, *, timeout: float = ANSWER_TIMEOUT, **fields: Any) -> dict[str, Any] | None:
    """The whole answer of a successful request, parsed; None otherwise."""
    line = _exchange(ws, {"op": op, **fields}, timeout)
    if line is None:
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("ok") is True else None


def ping(ws: Workspace, *, timeout: float = 2.0) -> dict[str, Any] | None:
    """The daemon's description of itself (pid, socket, what it watches), or None."""
    answer = ask(ws, "ping", timeout=timeout)
    return {k: v for k, v in answer.items() if k != "ok"} if answer else None


@dataclass(frozen=True)
class StatusAnswer:
    raw: bytes  # the view as ``--json`` prints it when piped (compact, one line)
    warning: str | None = None

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = json.loads(self.raw)  # the daemon's status result: always an object
        return view


def status(ws: Workspace, milestone: str | None, *, timeout: float = ANSWER_TIMEOUT) -> StatusAnswer | None:
    """The ``status`` view from the daemon, for a client standing in the current directory."""
    line = _exchange(ws, {"op": "status", "milestone": milestone, "cwd": os.getcwd()}, timeout)
    if line is None:
        return None
    if line.startswith(RESULT_PREFIX) and line.endswith(b"}\n"):
        return StatusAnswer(line[len(RESULT_PREFIX):-2] + b"\n")
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("ok") is not True or "result" not in data:
        return None

    return StatusAnswer(json_text(data["result"], pretty=False).encode("utf-8"), data.get("warning"))
