"""Reaching the daemon, and trusting what answers: one JSON line each way over a Unix socket.

The thin path (``cli.thin``) asks through here before anything heavier than ``socket``
and ``json`` is imported, and the full path (``daemon.client``) does too, so the two
refuse the same sockets and the same answers:

- a socket file that is not a socket or is not ours (planted in a shared ``/tmp``, say),
  or a peer process run by another user, is never asked;
- an answer is taken only when it is one whole JSON object that says ``ok`` and comes
  from a daemon of this very version of milestoned (another version may word or
  compute an answer differently, and a daemon only ever makes answers faster).

Anything else — no daemon, a crash's leftover socket, a daemon wedged past the
timeout, garbage — is ``None``, and the caller reads the files itself.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import struct
import sys

from milestoned import __version__

SOCKET_NAME = "daemon.sock"
MAX_SOCKET_PATH = 100  # bytes: sun_path holds 108 on Linux and 104 on macOS, with its NUL
CONNECT_TIMEOUT = 1.0
RECEIVE = 1 << 20  # bytes per read: a 10,000-task status (2.6 MB) in a few reads, not hundreds


def socket_path_for(runtime_dir: str) -> str:
    """``<runtime dir>/daemon.sock``, or, when that path is too long for a Unix socket, a short
    one under ``/tmp/milestoned-<uid>/`` named by a hash of the runtime dir.

    The daemon and its clients compute it alike, so finding the daemon reads no file.
    """
    preferred = os.path.join(runtime_dir, SOCKET_NAME)
    if len(os.fsencode(preferred)) <= MAX_SOCKET_PATH:
        return preferred
    # start-up: only a repository too deep for a socket path pays for hashlib
    import hashlib

    digest = hashlib.sha256(os.fsencode(runtime_dir)).hexdigest()[:20]
    return f"/tmp/milestoned-{os.getuid()}/{digest}.sock"


def is_ours(path: str) -> bool:
    """A socket file that this user owns (never a link, a plain file, or another user's socket)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISSOCK(st.st_mode) and st.st_uid == os.geteuid()


def _peer_is_us(sock: socket.socket) -> bool:
    """The process on the other end runs as this user (Linux says so; elsewhere the file's owner must do)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None or not sys.platform.startswith("linux"):
        return True
    uid: int = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))[1]
    return uid == os.geteuid()


def _client() -> dict[str, object]:
    """What a daemon must share with this process to answer for it: its version, and the pinned
    clock (``MILESTONED_NOW``, which tests and demos set) if any."""
    return {"version": __version__, "pinned_now": os.environ.get("MILESTONED_NOW")}


_silent: set[str] = set()  # sockets that let this process wait in vain: not asked again


def exchange_line(path: str, payload: dict[str, object], timeout: float) -> bytes | None:
    """One request line out, one whole answer line back; None on any failure to talk.

    A daemon that let the timeout pass (stopped, wedged) is not asked again by this process:
    the thin path's wait is not followed by the full path's."""
    if path in _silent or not is_ours(path):
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(min(CONNECT_TIMEOUT, timeout))
            sock.connect(path)
            if not _peer_is_us(sock):
                return None
            sock.settimeout(timeout)
            sock.sendall(json.dumps({**payload, **_client()}).encode("utf-8") + b"\n")
            chunks: list[bytes] = []
            while not chunks or not chunks[-1].endswith(b"\n"):  # the daemon sends one line, then waits
                chunk = sock.recv(RECEIVE)
                if not chunk:
                    return None  # closed before a whole line: torn
                chunks.append(chunk)
    except TimeoutError:
        _silent.add(path)
        return None
    except OSError:  # no socket, nobody listening (a crash's leftover), reset
        return None
    line = b"".join(chunks)
    return line if line.index(b"\n") == len(line) - 1 else None  # one line, nothing after it


def answer_of(line: bytes | None) -> dict[str, object] | None:
    """The parsed answer when it is a successful one from a daemon of our version, else None."""
    if line is None:
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("ok") is not True or data.get("version") != __version__:
        return None
    notes = data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        return None
    data["notes"] = notes
    return data


# -- the answer's frame ------------------------------------------------------------------
_HEAD = b'{"ok":true,"version":' + json.dumps(__version__).encode("utf-8") + b',"notes":'
_PLAIN = _HEAD + b'[],"result":'  # an answer with nothing to warn of: the common case, read without parsing


def framed(result: bytes, notes: list[str] | None = None) -> bytes:
    """The answer line for ``result``, already serialized (a 10,000-task view is never parsed again)."""
    return (_HEAD + json.dumps(notes or [], ensure_ascii=False).encode("utf-8") + b',"result":'
            + result.rstrip(b"\n") + b"}\n")


def result_bytes(line: bytes | None) -> tuple[bytes, list[str]] | None:
    """``(result as the daemon serialized it, newline-ended; notes)`` of a good answer, else None."""
    if line is None:
        return None
    if line.startswith(_PLAIN) and line.endswith(b"}\n"):
        return line[len(_PLAIN):-2] + b"\n", []
    data = answer_of(line)
    if data is None or not isinstance(data.get("result"), dict):
        return None
    # start-up: only an answer with notes is parsed whole and written again
    from milestoned.core.jsonout import json_text

    return json_text(data["result"], pretty=False).encode("utf-8"), data["notes"]  # type: ignore[return-value]


def status_request(milestone: str | None) -> dict[str, object]:
    """The ``status`` request of a client standing in the current directory."""
    return {"op": "status", "milestone": milestone, "cwd": os.getcwd()}
