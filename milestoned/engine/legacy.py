"""What earlier layouts kept in the working tree, taken into the git dir once.

Earlier versions of milestoned, and the seed workflow before them, kept execution
state beside the plan, in ``.milestones/``::

    logs/execution-<id>.jsonl        event logs (ours, and the seed's)
    logs/<id>.jsonl                  event logs under another name
    state/events/milestone-<id>.jsonl  the seed's older log (``event_type`` and ``data``)
    sessions/<session-id>.yaml       saved sessions
    active/current.txt               the current milestone

Each is imported once into the state directory: events by union (by event id, or by
content for the seed's id-less lines, so importing twice changes nothing), sessions
and the current milestone only where the state directory has none of its own.  The
files are left where they are; ``doctor`` says they may be deleted.  What was taken
is remembered by stamp in ``<state>/imported.json``, so a later command reads nothing
again, and a file that grew since (an old version still running) is taken again,
harmlessly.

A log that earlier milestoned versions wrote comes with the statuses they projected
into the plan file; importing it acknowledges them (``plan_acknowledged``), so they
are read as stale copies of the state, not as hand edits to report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from milestoned.core import ids
from milestoned.core.errors import UserError, display_path
from milestoned.files import readcache
from milestoned.files.durable import atomic_write
from milestoned.files.workspace import Workspace
from milestoned.model import events as eventlog
from milestoned.model.state import baseline_fields

if TYPE_CHECKING:
    from milestoned.engine.engine import Engine

RECORD = "imported.json"


@dataclass(frozen=True)
class Source:
    path: Path
    kind: str  # log | seed-log | session | current
    milestone_id: str | None = None


def sources(ws: Workspace) -> list[Source]:
    """Every file of an earlier layout that exists under the plan folders."""
    found: list[Source] = []
    for base in ws.legacy_dirs():
        logs = base / "logs"
        for path in sorted(logs.glob("*.jsonl")) if logs.is_dir() else ():
            mid = path.stem.removeprefix("execution-")
            if ids.is_valid_id(mid):
                found.append(Source(path, "log", mid))
        seed = base / "state" / "events"
        for path in sorted(seed.glob("milestone-*.jsonl")) if seed.is_dir() else ():
            mid = path.stem.removeprefix("milestone-")
            if ids.is_valid_id(mid):
                found.append(Source(path, "seed-log", mid))
        sessions = base / "sessions"
        for path in sorted(sessions.glob("*.yaml")) if sessions.is_dir() else ():
            if ids.is_valid_id(path.stem):
                found.append(Source(path, "session"))
        current = base / "active" / "current.txt"
        if current.is_file():
            found.append(Source(current, "current"))
    return found


def _record_path(ws: Workspace) -> Path:
    return ws.state_dir / RECORD


def _taken(ws: Workspace) -> dict[str, list[int] | None]:
    try:
        data = json.loads(_record_path(ws).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _stamp(path: Path) -> list[int] | None:
    found = readcache.stamp(path)
    return list(found) if found else None


def pending(ws: Workspace) -> list[Source]:
    """What is there and not yet taken (as it is now)."""
    taken = _taken(ws)
    return [s for s in sources(ws) if taken.get(str(s.path)) != _stamp(s.path)]


def import_all(engine: Engine) -> list[str]:
    """Take in what is pending; the caller holds the engine lock.  Returns warnings (bad lines)."""
    ws = engine.ws
    todo = pending(ws)
    if not todo:
        return []
    warnings: list[str] = []
    by_milestone: dict[str, list[Source]] = {}
    for source in todo:
        if source.milestone_id is not None:
            by_milestone.setdefault(source.milestone_id, []).append(source)
    for milestone_id, logs in sorted(by_milestone.items()):
        warnings += _import_logs(engine, milestone_id, logs)
    for source in todo:
        if source.kind == "session":
            _import_session(ws, source.path)
        elif source.kind == "current":
            _import_current(ws, source.path)
    taken = _taken(ws)
    taken.update({str(s.path): _stamp(s.path) for s in todo})
    atomic_write(_record_path(ws), json.dumps(taken, indent=1, sort_keys=True) + "\n", 0o600)
    return warnings


def _import_logs(engine: Engine, milestone_id: str, logs: list[Source]) -> list[str]:
    ws = engine.ws
    warnings: list[str] = []
    incoming: list[eventlog.Event] = []
    for source in logs:
        read = eventlog.read_legacy(source.path) if source.kind == "seed-log" else eventlog.read(source.path)
        warnings += [f"{display_path(source.path)}:{line}: {why} (line skipped while importing it)"
                     for line, why in read.problems]
        incoming += read.events
    target = ws.log_path(milestone_id)
    local = eventlog.read(target)
    merged, added = eventlog.union(local.events, incoming)
    if not added:
        return warnings
    keep = [raw for n, raw in enumerate(target.read_bytes().splitlines(), 1)
            if n in {line for line, _ in local.problems}] if local.problems else []
    events = list(merged)
    acknowledged = _acknowledgement(engine, milestone_id, events)
    if acknowledged is not None:
        events.append(acknowledged)
    ws.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(target, eventlog.log_text(events, keep), 0o600)
    return warnings


def _acknowledgement(engine: Engine, milestone_id: str, events: list[eventlog.Event]) -> eventlog.Event | None:
    """A log with a baseline was written by an earlier milestoned, which projected statuses into
    the plan: acknowledge what the plan says now, so those copies are not taken for hand edits."""
    if not any(e.get("event") == "state_baseline" for e in events):
        return None
    try:
        plan = engine._plan(milestone_id)
    except UserError:
        return None
    clock = max((e["clock"] for e in events if isinstance(e.get("clock"), int)), default=0)
    fields = baseline_fields(plan)
    return eventlog.make("plan_acknowledged", milestone_id, None, clock + 1,
                         {"status": fields["status"], "tasks": fields["tasks"], "reason": "imported"})


def _import_session(ws: Workspace, path: Path) -> None:
    target = ws.session_path(path.stem)
    if not target.exists():
        ws.sessions_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(target, path.read_bytes(), 0o600)


def _import_current(ws: Workspace, path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return
    if ids.is_valid_id(text) and not ws.current_path.exists():
        atomic_write(ws.current_path, text + "\n", 0o600)
