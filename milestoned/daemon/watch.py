"""Watching exactly what the daemon needs, and saying so when events may have been lost.

Watched, each non-recursively unless noted: the plan — ``.milestones/``
(``config.yaml``), ``active/`` and ``completed/`` (milestone files) — and the state —
the state dir (the hooks' inbox, the current milestone) and its ``log/`` (event logs
written by other processes) — and in the common git dir
``HEAD``/``index``/``packed-refs``/``MERGE_HEAD``, ``refs/heads`` (recursive: branch
names hold slashes) and ``worktrees`` (recursive: each task worktree's HEAD and
index).  Never ``.git/objects``.

Changes are classified into a small set of ``Change`` values and handed out in
batches by ``take``, after a short debounce, so a burst (an editor's save, a rebase)
costs one refresh.  Editors that save by writing a temp file and renaming it over the
original are seen through the move's destination.

A watch can die (its directory deleted and recreated) and inotify can drop events
(queue overflow, which watchdog only logs).  Both surface as a ``resync`` change,
so the daemon re-reads everything instead of answering from a stale cache.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from milestoned.files.workspace import PLAN_SUFFIXES, Workspace

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver, ObservedWatch

log = logging.getLogger("milestoned.watch")

# files of a git dir (common or per-worktree) whose change may mean a commit or a conflict
GIT_FILES = frozenset({"HEAD", "index", "packed-refs", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "AUTO_MERGE"})


@dataclass(frozen=True)
class Change:
    """One kind of thing that changed: ``milestone``/``log`` carry the milestone id."""

    kind: str  # milestone | current | config | log | inbox | git | rescan | resync; tests | wake (pushed)
    name: str | None = None


class _LostEvents(logging.Handler):
    """watchdog reports a dropped inotify queue or a failed re-watch only as a log record."""

    def __init__(self, watcher: Watcher) -> None:
        super().__init__(logging.WARNING)
        self.watcher = watcher

    def emit(self, record: logging.LogRecord) -> None:
        self.watcher.push(Change("resync", f"watchdog: {record.getMessage()}"))


class Watcher:
    """Filesystem events for one repository, classified, debounced, taken in batches."""

    def __init__(self, ws: Workspace, *, debounce: float = 0.03) -> None:
        self.ws = ws
        self.debounce = debounce
        self._cond = threading.Condition()
        self._pending: set[Change] = set()
        self._observer: BaseObserver | None = None  # made by start
        self._handler: FileSystemEventHandler | None = None
        self._watches: dict[Path, tuple[ObservedWatch, tuple[int, int]]] = {}  # path -> (watch, (dev, inode))
        self._lost = _LostEvents(self)
        common = ws.common_dir
        self._common = common
        self._refs = common / "refs" / "heads" if common else None
        self._worktrees = common / "worktrees" if common else None

    # -- what is watched ------------------------------------------------------------
    def targets(self) -> list[tuple[Path, bool]]:
        """(directory, recursive) pairs; missing ones are picked up by ``rescan`` once created."""
        ws = self.ws
        found = [(ws.milestones_dir, False), (ws.active_dir, False), (ws.completed_dir, False),
                 (ws.state_dir, False), (ws.log_dir, False)]
        common, refs, worktrees = self._common, self._refs, self._worktrees
        if common is not None and refs is not None and worktrees is not None:  # all three, or none
            found += [(common, False), (refs, True), (worktrees, True)]
        return found

    def watched(self) -> list[str]:
        return sorted(str(p) for p in self._watches)

    def classify(self, path: str) -> Change | None:
        """What a changed path means to the daemon, or None when it means nothing."""
        p = Path(path)
        name, parent = p.name, p.parent
        ws = self.ws
        if parent in (ws.active_dir, ws.completed_dir):
            if p.suffix in PLAN_SUFFIXES and not name.startswith("."):
                return Change("milestone", p.stem)
            return None
        if parent == ws.milestones_dir:
            return Change("config") if name == "config.yaml" else None
        if parent == ws.log_dir:
            return Change("log", name[:-len(".jsonl")]) if name.endswith(".jsonl") else None
        if parent == ws.state_dir:
            if name == ws.inbox_path.name:
                return Change("inbox")
            if name == "trust.json":
                return Change("config")  # a command approved: the daemon may run it now
            return Change("current") if name == ws.current_path.name else None
        if self._common is None or name.endswith(".lock"):
            return None
        if parent == self._common and name in GIT_FILES:
            return Change("git")
        if self._refs is not None and self._refs in p.parents:
            return Change("git")
        if self._worktrees is not None and self._worktrees in p.parents and name in GIT_FILES:
            return Change("git")
        return None

    # -- life cycle -----------------------------------------------------------------
    def start(self) -> None:
        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                watcher._on_event(event)

        self._handler = Handler()
        observer = self._observer = Observer()
        observer.daemon = True
        self.rescan()
        observer.start()
        logging.getLogger("watchdog").addHandler(self._lost)

    def stop(self) -> None:
        logging.getLogger("watchdog").removeHandler(self._lost)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)

    def healthy(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def rescan(self) -> bool:
        """Watch every target that exists; re-watch any whose directory was replaced.

        Returns True when a watch had died or been replaced: events may have been missed.
        """
        kinds = [FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent,
                 DirCreatedEvent, DirDeletedEvent, DirMovedEvent]
        observer, handler = self._observer, self._handler
        if observer is None or handler is None:  # not started: nothing to watch with yet
            return False
        dead = {str(e.watch.path) for e in list(observer.emitters) if not e.is_alive()} if observer.is_alive() else set()
        lost = False
        for path, recursive in self.targets():
            identity = _identity(path)
            current = self._watches.get(path)
            if current is not None and (current[1] != identity or str(path) in dead):
                self._unschedule(current[0])
                del self._watches[path]
                lost = True
            if identity is not None and path not in self._watches:
                try:
                    watch = observer.schedule(handler, str(path), recursive=recursive, event_filter=kinds)
                except OSError as exc:  # raced with a removal: the next rescan tries again
                    log.warning("cannot watch %s: %s", path, exc)
                    continue
                self._watches[path] = (watch, identity)
        return lost

    def _unschedule(self, watch: ObservedWatch) -> None:
        if self._observer is None:
            return
        try:
            self._observer.unschedule(watch)
        except (KeyError, OSError):
            pass

    # -- events in, batches out -----------------------------------------------------
    def _on_event(self, event: FileSystemEvent) -> None:
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        if event.is_directory and event.event_type in ("created", "deleted", "moved"):
            self.push(Change("rescan"))
        for path in paths:
            if path:
                change = self.classify(os.fsdecode(path))
                if change is not None:
                    self.push(change)

    def push(self, change: Change) -> None:
        """Queue a change (from any thread: watchdog's, the test runner's, a signal handler)."""
        with self._cond:
            self._pending.add(change)
            self._cond.notify()

    def take(self, timeout: float) -> set[Change]:
        """The changes queued so far, waiting up to ``timeout`` for a first one, then debouncing."""
        with self._cond:
            if not self._pending:
                self._cond.wait(timeout)
            if not self._pending:
                return set()
        time.sleep(self.debounce)
        with self._cond:
            batch, self._pending = self._pending, set()
        return batch


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
