"""``milestoned gc`` (and the end of every ``execute``): remove what is merged, keep the rest, say why.

For each milestone with branches or worktrees of ours, under its work lock (a milestone
that ``execute`` or ``land`` is working on is left alone, saying so): stale ref locks
and scratch worktrees of a killed ``land`` go, then ``git/cleanup.py`` decides branch by
branch and worktree by worktree, against the milestone branch, the branch the milestone
landed in (from its events) and the checkpoints.
"""

from __future__ import annotations

from typing import Any

from milestoned.core.errors import UserError, display_path
from milestoned.engine.engine import Engine
from milestoned.files.runlock import milestone_lock
from milestoned.git import cleanup, landing, reflocks

SCHEMA = 1


def _landing(engine: Engine, milestone_id: str) -> tuple[str | None, bool]:
    """Where the milestone landed (None: not yet), and whether it is completed."""
    try:
        ms = engine.load(milestone_id)
    except UserError:
        return None, False  # no plan here (any more): nothing is known to have landed
    return (ms.state.landed["target"] if ms.state.landed else None), ms.status == "completed"


def sweep(engine: Engine, milestone_id: str, *, dry_run: bool = False) -> list[dict[str, Any]]:
    """One milestone's rows; the caller holds its work lock (``execute`` does, at its end)."""
    ws = engine.ws
    rows: list[dict[str, Any]] = []
    namespace = f"heads/milestone/{milestone_id}"
    locks = reflocks.stale(ws, namespace) if dry_run else reflocks.clear(ws, namespace)
    scratch = landing.scratch_left(ws, milestone_id) if dry_run else landing.clear_scratch(ws, milestone_id)
    action = "would remove" if dry_run else "removed"
    rows += [{"kind": "lock", "name": display_path(lock), "action": action, "why": None} for lock in locks]
    rows += [{"kind": "leftover", "name": display_path(path), "action": action, "why": None} for path in scratch]
    target, completed = _landing(engine, milestone_id)
    decisions = cleanup.Sweep(ws, milestone_id, target, completed=completed)
    items = decisions.decide()
    if not dry_run:
        decisions.apply()
    rows += [{**item.row(removed=not dry_run), "name": _shown(item)} for item in items]
    return rows


def _shown(item: cleanup.Item) -> str:
    return display_path(item.name) if item.kind in ("worktree", "leftover", "registration") else item.name


def gc(engine: Engine, *, dry_run: bool = False, only: str | None = None) -> dict[str, Any]:
    """Every milestone's sweep (or ``only`` one's): ``gc --json``."""
    ws = engine.ws
    if not ws.is_git:
        raise UserError("gc needs a git repository")
    milestones = []
    for milestone_id in cleanup.milestones_with_work(ws):
        if only is not None and milestone_id != only:
            continue
        try:
            with milestone_lock(ws, milestone_id, "being cleaned up (gc)"):
                rows = sweep(engine, milestone_id, dry_run=dry_run)
        except UserError as exc:  # busy: someone is working on it
            rows = [{"kind": "milestone", "name": milestone_id, "action": "kept", "why": exc.message}]
        milestones.append({"milestone": milestone_id, "items": rows})
    return {"schema": SCHEMA, "dry_run": dry_run, "milestones": milestones}

