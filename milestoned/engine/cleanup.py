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


def _landed_target(engine: Engine, milestone_id: str) -> str | None:
    try:
        landed = engine.load(milestone_id).state.landed
    except UserError:
        return None  # no plan here (any more): nothing is known to have landed
    return landed["target"] if landed else None


def sweep(engine: Engine, milestone_id: str, *, dry_run: bool = False) -> list[dict[str, Any]]:
    """One milestone's rows; the caller holds its work lock (``execute`` does, at its end)."""
    ws = engine.ws
    rows: list[dict[str, Any]] = []
    if not dry_run:
        for lock in reflocks.clear(ws, f"heads/milestone/{milestone_id}"):
            rows.append({"kind": "lock", "name": display_path(lock), "action": "removed", "why": None})
        for path in landing.clear_scratch(ws, milestone_id):
            rows.append({"kind": "leftover", "name": display_path(path), "action": "removed", "why": None})
    decisions = cleanup.Sweep(ws, milestone_id, _landed_target(engine, milestone_id))
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

