"""The daemon's memory of each milestone: folded once, refolded only by what changed.

``status`` over the socket must cost about the same at 10,000 tasks as at 10, so each
milestone's view is kept folded and already serialized: a request costs two ``stat``
calls (which prove the files did not change behind the watcher's back, so the answer
is always the one reading the files would give) and a copy of bytes.

When only the log grew, the new lines are folded into the kept state
(``LogFold.extend``).  When the plan changed (an edit, a checkout), the milestone is
read again through the engine like any reader.  Only the most recent events stay in
memory: the fold needs each event once, the views only the last few.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milestoned.core.errors import UserError
from milestoned.core.jsonout import json_text
from milestoned.engine import claims
from milestoned.engine.engine import Engine
from milestoned.files import readcache
from milestoned.model import views
from milestoned.model.milestone import RECENT_EVENTS, Milestone
from milestoned.model.plan import NotAMilestone

OTHER_DIRECTORIES = 8  # client directories whose rendering of a view is kept


def compact_json(data: Any) -> bytes:
    """What ``--json`` prints when its output is not a terminal (``core.jsonout.json_text``)."""
    return json_text(data, pretty=False).encode("utf-8")


@dataclass
class Entry:
    milestone: Milestone  # its fold keeps only the last RECENT_EVENTS events
    plan_stamp: readcache.Stamp
    log_stamp: readcache.Stamp
    rendered: bytes  # the status view as `status --json` prints it, for a client in the root
    elsewhere: dict[str, bytes] = dataclasses.field(default_factory=dict)  # the same for other directories
    ready: bytes | None = None  # what `next --json` prints, once asked for
    lease_ends: tuple[dt.datetime | None] | None = None  # (claims.earliest_lease,), once asked for

    @property
    def path(self) -> Path:
        return self.milestone.path

    @property
    def complete(self) -> bool:
        """The kept events are the whole log."""
        return self.milestone.fold.lines <= RECENT_EVENTS


class ViewCache:
    """Milestones by id, each refreshed on demand when its files changed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._entries: dict[str, Entry] = {}
        self.errors: dict[str, str] = {}  # milestone id -> why its file cannot be read now

    def ids(self) -> list[str]:
        return sorted(self._entries)

    def known(self, milestone_id: str) -> Entry | None:
        """The last good entry, without looking at the files (for detectors on a broken edit)."""
        return self._entries.get(milestone_id)

    def forget(self, milestone_id: str) -> None:
        self._entries.pop(milestone_id, None)
        self.errors.pop(milestone_id, None)

    def get(self, milestone_id: str) -> Entry:
        """The milestone as the files say now; a ``UserError`` when they cannot be read."""
        try:
            entry = self._refresh(milestone_id)
        except NotAMilestone:
            raise
        except UserError as exc:
            if self.engine.exists(milestone_id):  # its file does not read: say so until it does
                self.errors[milestone_id] = str(exc)
            else:  # no such milestone (a typo in a request): nothing to remember
                self.forget(milestone_id)
            raise
        self.errors.pop(milestone_id, None)
        return entry

    def _refresh(self, milestone_id: str) -> Entry:
        path = self.engine.path_of(milestone_id)
        log_path = self.engine.ws.log_path(milestone_id)
        entry = self._entries.get(milestone_id)
        plan_stamp = readcache.stamp(path)
        if entry is not None and entry.path == path and entry.plan_stamp == plan_stamp:
            log_stamp = readcache.stamp(log_path)
            if log_stamp == entry.log_stamp:
                return entry
            if self._extend(entry, log_path, log_stamp):
                return entry
        entry = self._load(milestone_id, path, plan_stamp, log_path)
        self._entries[milestone_id] = entry
        return entry

    def _load(self, milestone_id: str, path: Path, plan_stamp: readcache.Stamp, log_path: Path) -> Entry:
        """Through the engine (and its caches); stamps taken first make a change while reading
        show as a stale entry, read again at the next request."""
        log_stamp = readcache.stamp(log_path)
        milestone = self.engine.load(milestone_id)
        milestone.forget_events()
        return Entry(milestone, plan_stamp, log_stamp, self._render(milestone))

    def _extend(self, entry: Entry, log_path: Path, log_stamp: readcache.Stamp) -> bool:
        """Fold what was appended to the log; False when a full read is needed instead."""
        old = entry.log_stamp
        fold = entry.milestone.fold
        if old is None or log_stamp is None or log_stamp[0] != old[0] or log_stamp[1] < fold.size:
            return False  # replaced (a merge rewrites logs) or truncated
        with log_path.open("rb") as handle:
            handle.seek(fold.size)
            data = handle.read(log_stamp[1] - fold.size)
        if not fold.extend(data):
            return False
        entry.log_stamp = log_stamp
        entry.rendered = self._render(entry.milestone)
        entry.elsewhere.clear()
        entry.ready = entry.lease_ends = None
        return True

    @staticmethod
    def _render(milestone: Milestone) -> bytes:
        return compact_json(views.status(milestone))

    # -- answers --------------------------------------------------------------------
    def status(self, milestone_id: str, cwd: str, seen_from: Engine | None = None) -> bytes:
        """The view for a client in ``cwd``, whose checkout ``seen_from`` reads (default: ours; the
        same state, through its own plan when it has one)."""
        entry = self.get(milestone_id)
        if cwd == os.getcwd():
            return entry.rendered
        shown = entry.elsewhere.get(cwd)
        if shown is None:  # an agent in a task worktree, a person in a subdirectory: paths read differently
            if seen_from not in (None, self.engine) and seen_from.path_of(milestone_id) != entry.path:
                return compact_json(for_cwd(views.status(seen_from.load(milestone_id)), cwd))
            if len(entry.elsewhere) >= OTHER_DIRECTORIES:
                entry.elsewhere.clear()
            shown = entry.elsewhere[cwd] = compact_json(for_cwd(views.status(entry.milestone), cwd))
        return shown

    def ready(self, milestone_id: str) -> bytes:
        """The ``next`` view, serialized once per change (at 10,000 tasks the rows take a while)."""
        entry = self.get(milestone_id)
        if entry.ready is None:
            entry.ready = compact_json(views.ready_view(entry.milestone))
        return entry.ready

    def lapsed(self, milestone_id: str) -> bool:
        """Whether a claim's lease ran out, as of now, in the last good state (no file read)."""
        entry = self.known(milestone_id)
        if entry is None:
            return False
        if entry.lease_ends is None:
            entry.lease_ends = (claims.earliest_lease(entry.milestone),)
        return claims.ran_out(entry.lease_ends[0])

    def overview(self, cwd: str) -> bytes:
        return compact_json(for_cwd(views.overview(_FromMemory(self)), cwd))

    def events(self, milestone_id: str) -> tuple[list[dict[str, Any]], list[tuple[int, str]], bool]:
        """(recent events, log problems, whether those events are the whole log)."""
        entry = self.get(milestone_id)
        return entry.milestone.fold.recent, entry.milestone.fold.problems, entry.complete


class _FromMemory:
    """What ``views.overview`` asks of an engine, answered from the cache."""

    def __init__(self, cache: ViewCache) -> None:
        self.cache = cache

    def milestone_paths(self) -> list[Path]:
        return self.cache.engine.milestone_paths()

    def current_id(self) -> str | None:
        return self.cache.engine.current_id()

    def load(self, milestone_id: str) -> Milestone:
        return self.cache.get(milestone_id).milestone


def _shown_for(text: str, cwd: Path) -> str:
    """``text`` that starts with a path shown from the daemon's directory, shown from ``cwd`` instead.

    The same rule as ``errors.display_path``: relative when below the directory, else absolute.
    """
    head, sep, rest = text.partition(":")
    absolute = Path(head) if os.path.isabs(head) else Path.cwd() / head
    if not head or not absolute.exists():
        return text
    shown = os.path.relpath(absolute, cwd) if cwd in absolute.parents else str(absolute)
    return shown + sep + rest


def for_cwd(view: dict[str, Any], cwd: str) -> dict[str, Any]:
    """A view whose file paths read as they would for a client standing in ``cwd``."""
    where = Path(cwd)
    if "milestones" in view:  # the overview
        rows = [{**row, "path": _shown_for(row["path"], where), "log": _shown_for(row["log"], where)}
                for row in view["milestones"]]
        return {**view, "milestones": rows, "errors": [_shown_for(e, where) for e in view["errors"]]}
    summary = {**view["milestone"], "path": _shown_for(view["milestone"]["path"], where),
               "log": _shown_for(view["milestone"]["log"], where)}
    return {**view, "milestone": summary, "warnings": [_shown_for(w, where) for w in view["warnings"]]}
