"""The append-only event log: ``<git common dir>/milestoned/log/<milestone>.jsonl``.

One JSON object per line with ``id`` (unique across clones), ``clock`` (a Lamport
clock: one more than the largest clock in the log), ``timestamp``, ``event``,
``milestone_id`` and ``session_id``, plus the event's own fields.  Ordering by
``(clock, id)`` is deterministic on every clone, so two clones that take the union
of their logs fold to the same state.

A line that is not valid JSON (a torn write, a hand edit, the seed's own bugs) is
reported with its file and line and skipped; it never stops the rest being read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milestoned.core import clock as clocks
from milestoned.core.ids import new_event_id
from milestoned.files.durable import open_append

Event = dict[str, Any]


@dataclass
class LogRead:
    events: list[Event] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, what is wrong)


def make(name: str, milestone_id: str, session_id: str | None, clock: int, fields: dict[str, Any]) -> Event:
    """A new event; ``None`` fields are left out so logs stay small."""
    event: Event = {
        "id": new_event_id(),
        "clock": clock,
        "timestamp": clocks.now_iso(),
        "event": name,
        "milestone_id": milestone_id,
        "session_id": session_id or "",
    }
    event.update({k: v for k, v in fields.items() if v is not None})
    return event


def parse_lines(data: bytes, first_line: int = 1) -> LogRead:
    """Events from JSON lines; the whole log in one C-level parse when every line is sound."""
    lines = [line for line in data.splitlines() if line.strip()]
    if first_line == 1 and lines:
        try:
            parsed = json.loads(b"[" + b",".join(lines) + b"]")
        except ValueError:
            parsed = None
        if parsed is not None and all(
            isinstance(e, dict) and isinstance(e.get("event", e.get("event_type")), str) for e in parsed
        ):
            return LogRead(events=parsed)
    out = LogRead()
    for number, raw in enumerate(data.splitlines(), start=first_line):
        if not raw.strip():
            continue
        if not raw.strip(b"\x00 \t"):
            out.problems.append((number, f"{raw.count(0)} NUL bytes, the leftover of a crash or a power loss"))
            continue
        try:
            event = json.loads(raw)
        except json.JSONDecodeError as exc:
            out.problems.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        except ValueError:  # json.loads decodes the bytes first: a line that is not UTF-8 text
            out.problems.append((number, "not valid JSON (not UTF-8 text)"))
            continue
        if not isinstance(event, dict) or not isinstance(event.get("event", event.get("event_type")), str):
            out.problems.append((number, "not an event object (no 'event' name)"))
            continue
        out.events.append(event)
    return out


def read_legacy(path: Path) -> LogRead:
    """The seed's older ``state/events`` log: ``event_type`` and a ``data`` map, shown as ours."""
    result = read(path)
    for event in result.events:
        event.setdefault("event", event.get("event_type"))
        data = event.pop("data", None)
        if isinstance(data, dict):
            for key, value in data.items():
                event.setdefault(key, value)
        event["legacy"] = True
    return result


def sort_key(event: Event) -> tuple[int, str, str]:
    clock = event.get("clock")
    return (clock if isinstance(clock, int) else 0, str(event.get("timestamp", "")), str(event.get("id", "")))


def read(path: Path) -> LogRead:
    """Every readable event of a log, in fold order, and the lines that could not be read.

    A log that is a link (planted to pass some other file off as ours) is not read."""
    if path.is_symlink():
        return LogRead(problems=[(1, "is a link, not our log: not read")])
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return LogRead()
    result = parse_lines(data)
    keys = [sort_key(e) for e in result.events]
    if any(a > b for a, b in zip(keys, keys[1:])):
        result.events.sort(key=sort_key)
    return result


def tail(path: Path, count: int) -> list[Event]:
    """The last ``count`` readable events, reading only the end of the file."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            chunk = 4096 * max(1, count)
            while True:
                start = max(0, size - chunk)
                handle.seek(start)
                data = handle.read()
                lines = data.splitlines()
                if start > 0:
                    lines = lines[1:]  # the first line may be cut
                if len(lines) > count or start == 0:
                    break
                chunk *= 4
    except FileNotFoundError:
        return []
    return parse_lines(b"\n".join(lines[-count * 2 :])).events[-count:]


def identity(event: Event) -> str:
    """An event's identity: its id, or for id-less (seed era) lines, its content."""
    ident = event.get("id")
    return str(ident) if ident else json.dumps(event, sort_keys=True, ensure_ascii=False)


def union(local: list[Event], incoming: list[Event]) -> tuple[list[Event], int]:
    """Both logs' events once each, in fold order; and how many came from ``incoming`` only.

    This is how clones merge (``sync``) and old logs come in (``legacy``): events are
    facts with ids unique across clones, so nothing is ever lost or doubled.
    """
    seen = {identity(e) for e in local}
    added = [e for e in incoming if identity(e) not in seen]
    if not added:
        return local, 0
    merged = {identity(e): e for e in added}
    merged.update({identity(e): e for e in local})
    return sorted(merged.values(), key=sort_key), len(added)


def log_text(events: list[Event], unreadable: Sequence[bytes] = ()) -> str:
    """A whole log; lines that could not be read are kept (first), never dropped by a merge."""
    lines = [raw.decode("utf-8", "replace") for raw in unreadable]
    lines += [_line(e) for e in events]
    return "".join(line + "\n" for line in lines)


def _line(event: Event) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def append(path: Path, new_events: list[Event]) -> None:
    """Append events durably.  Callers hold the engine lock.

    A crash can leave a last line without its newline; the next append starts on a
    fresh line so that the torn line stays the only casualty.
    """
    if not new_events:
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    payload = "".join(_line(e) + "\n" for e in new_events)
    fd = open_append(path)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            payload = "\n" + payload
        os.write(fd, payload.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
