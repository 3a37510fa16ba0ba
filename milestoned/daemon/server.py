"""The per-repository daemon (SPEC §6): watch, detect blockers, answer on a socket.

One daemon per repository — its common git dir — serves every worktree.  That it is
the only one is proven by an ``flock`` on ``<runtime dir>/daemon.lock`` held for its
whole life (the kernel drops it when the process dies, even by ``kill -9``) plus a
socket that answers: a socket file nobody answers on, or a record whose pid no longer
holds the lock, is the stale leftover of a crash and is removed by whoever finds it.

The daemon is a thin door.  All state changes go through the engine; what it keeps
in memory (``viewcache``) is only a faster way to read the files, checked against
them on every request.  It never runs a task command and never commits to a user
branch; the only command it runs is the configured test command (``testruns``).

Threads: the main thread is the work loop (take debounced changes from the watcher,
refresh, detect, escalate; time-based checks every ``TICK``; a full look every
``SWEEP``; WATCHDOG=1 to systemd while it turns).  Socket clients are served each on
a thread; everything that touches the cache or the engine holds ``self.work``, so one
thing happens at a time.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import os
import signal
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from milestoned import __version__
from milestoned.core import clock
from milestoned.core.errors import MilestonedError, RuntimeFailure, UserError
from milestoned.daemon import client, sdnotify, wire
from milestoned.daemon.client import socket_path
from milestoned.daemon.control import LOCK_NAME, RECORD_NAME, private_dir, read_record, remove_files, try_lock
from milestoned.daemon.viewcache import ViewCache
from milestoned.daemon.watch import Change, Watcher
from milestoned.engine import blockers, claims, ingest, legacy, sessions, trust
from milestoned.engine.blockers import Probe
from milestoned.engine.engine import Engine
from milestoned.engine.testruns import RunLedger, TestCommand, TestRun, TestWorker
from milestoned.files import readcache
from milestoned.files.durable import atomic_write
from milestoned.files.workspace import Workspace
from milestoned.git import queries as gitutil
from milestoned.model import events as eventlog
from milestoned.model import views
from milestoned.model.config import Config, load_config
from milestoned.model.plan import NotAMilestone

log = logging.getLogger("milestoned.daemon")

MAX_REQUEST = 1 << 20
TICK = 1.0  # seconds between time-based checks (long-running tasks, disk usage)
SWEEP = 30.0  # seconds between full looks (git conflicts, every file, the watches themselves)
OPS = ("ping", "status", "events", "next", "blockers", "claim", "heartbeat", "release", "done")
OTHER_WORKTREES = 8  # engines kept for clients standing in other worktrees (their own plan and config)
BUSY_WAIT = 3.0  # seconds a request waits for the work loop before the client is told to read the files


# -- the daemon itself ------------------------------------------------------------------
class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, path: Path, daemon: Daemon) -> None:
        self.milestoned = daemon
        super().__init__(str(path), _Handler)


class _Handler(socketserver.StreamRequestHandler):
    timeout = 300  # an idle client is dropped after this many seconds

    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Server)  # the only server this handler is given to
        daemon = server.milestoned
        while True:
            try:
                line = self.rfile.readline(MAX_REQUEST)
            except OSError:
                return
            if not line:
                return
            try:
                self.wfile.write(daemon.answer(line))
                self.wfile.flush()
            except OSError:
                return


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, default=str).encode("utf-8") + b"\n"


def _ok(result: Any, **extra: Any) -> bytes:
    """A successful answer (``wire`` reads it): our version, nothing to warn of, the result."""
    return _line({"ok": True, "version": __version__, "notes": [], "result": result, **extra})


def _text(request: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    """A string field of a request (None allowed when ``optional``)."""
    value = request.get(key)
    if not (isinstance(value, str) or (optional and value is None)):
        raise UserError(f"{key} must be a string")
    return value


class Daemon:
    """The work loop, its memory and its answers."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.engine = Engine(ws)
        self.cache = ViewCache(self.engine)
        self.watcher = Watcher(ws)
        self.work = threading.RLock()
        self.config = Config()
        self.config_error: str | None = None
        self.untrusted_said: set[tuple[str, ...]] = set()  # test commands whose wait was logged
        self.probe = Probe(now=clock.now())
        self.tests = TestWorker(TestCommand(ws), self._tests_done)
        self.head: str | None = None
        self.started_at = clock.now_iso()
        self.stopping = threading.Event()
        self.resyncs = 0
        self.socket = socket_path(ws)
        self._server: _Server | None = None
        self._engines: dict[Path, Engine] = {}  # by worktree: clients in other checkouts
        self._configs: dict[Path, tuple[readcache.Stamp, Config | UserError]] = {}  # clients' configs, as read

    # -- life -------------------------------------------------------------------------
    def serve(self) -> int:
        server = self._bind()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.watcher.start()
        with self.work:
            self._resync("start", quiet=True)
        self.tests.start()
        server_thread = threading.Thread(target=server.serve_forever, name="milestoned-socket",
                                         kwargs={"poll_interval": 0.5}, daemon=True)
        server_thread.start()
        log.info("milestoned %s serving %s on %s (pid %d)", __version__, self.ws.root, self.socket, os.getpid())
        sdnotify.notify("READY=1", f"STATUS=watching {self.ws.root}", f"MAINPID={os.getpid()}")
        try:
            self._loop(server_thread)
        finally:
            self._shutdown()
        return 0

    def _bind(self) -> _Server:
        private_dir(self.socket.parent)
        if wire.is_ours(str(self.socket)):
            self.socket.unlink()  # we hold the lock: a socket there is a crashed daemon's
        elif os.path.lexists(self.socket):
            raise UserError(f"{self.socket} is in the way of the daemon's socket and is not one milestoned made",
                            hint="move it away, then start the daemon again")
        old = os.umask(0o177)
        try:
            server = self._server = _Server(self.socket, self)
        finally:
            os.umask(old)
        os.chmod(self.socket, 0o600)
        record = {"pid": os.getpid(), "socket": str(self.socket), "root": str(self.ws.root),
                  "started_at": self.started_at, "version": __version__}

        atomic_write(self.ws.runtime_dir / RECORD_NAME, json.dumps(record, indent=1) + "\n", 0o600)
        return server

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stopping.set()
        self.watcher.push(Change("wake"))

    def _loop(self, server_thread: threading.Thread) -> None:
        pet = sdnotify.watchdog_interval()
        next_tick = next_pet = 0.0
        next_sweep = time.monotonic() + SWEEP
        while not self.stopping.is_set():
            changes = self.watcher.take(timeout=TICK)
            if self.stopping.is_set():
                break
            now = time.monotonic()
            if not self.ws.runtime_dir.is_dir():  # the repository was deleted under us
                log.warning("%s is gone: stopping", self.ws.runtime_dir)
                break
            try:
                with self.work:
                    if changes:
                        self._react(changes)
                    if now >= next_sweep:
                        self._sweep()
                        next_sweep = now + SWEEP
                    if now >= next_tick:
                        self._evaluate(git=False)
                        next_tick = now + TICK
            except Exception:  # noqa: BLE001 - one bad turn must not take the daemon down
                log.exception("unexpected error while reacting to %s", sorted(c.kind for c in changes))
            if pet and now >= next_pet and server_thread.is_alive():
                sdnotify.notify("WATCHDOG=1")
                next_pet = now + pet

    def _shutdown(self) -> None:
        sdnotify.notify("STOPPING=1")
        self.tests.stop()
        self.watcher.stop()
        with self.work:
            self._save_session("daemon_stopped")
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        remove_files(self.ws)
        log.info("stopped")

    def _save_session(self, reason: str) -> None:
        mid = self.engine.current_id()
        if mid is None:
            return
        try:
            with self.engine.transaction() as txn:
                ms = txn.milestone(mid)
                if ms.state.session_id:
                    path = sessions.save(txn, ms, reason)
                    log.info("session saved: %s", path)
        except MilestonedError as exc:
            log.warning("could not save the session of %s: %s", mid, exc)

    # -- reacting ---------------------------------------------------------------------
    def _react(self, changes: set[Change]) -> None:
        kinds = {c.kind for c in changes}
        lost = self.watcher.rescan() if kinds & {"rescan", "resync"} else False
        if "resync" in kinds or lost:
            reasons = sorted(c.name or "a watch was lost" for c in changes if c.kind == "resync") or ["a watch was lost"]
            self._resync("; ".join(reasons))
            return
        if "config" in kinds:
            self._load_config()
            self._maybe_test(self.head)  # a command approved, or changed, just now
        if kinds & {"inbox", "git"}:
            self._drain()  # refs that moved without a hook (libgit2 clients) are ingested too
        touched = {c.name for c in changes if c.kind in ("milestone", "log") and c.name}
        if "current" in kinds and (current := self.engine.current_id()):
            touched.add(current)
        for mid in sorted(touched):
            self._refresh(mid)
        if "git" in kinds:
            self._look_at_git()
        self._evaluate(git="git" in kinds)

    def _resync(self, reason: str, *, quiet: bool = False) -> None:
        """Forget everything in memory and read it all again (start, lost events, dead watches)."""
        if not quiet:
            self.resyncs += 1
            log.warning("re-reading everything: %s", reason)
        self._load_config()
        self._drain()
        for mid in self.cache.ids():
            self.cache.forget(mid)
        self._load_all()
        self._look_at_git()
        self._evaluate(git=True)
        self._release_memory()

    @staticmethod
    def _release_memory() -> None:
        """Hand freed heap back to the OS: reading a big milestone peaks far above what is kept,
        and glibc keeps a freed heap unless asked.  A no-op where there is no ``malloc_trim``."""
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):
            pass

    def _sweep(self) -> None:
        """The slow safety net: watches, every file's stamps, git conflicts."""
        if not self.watcher.healthy():
            self.watcher.stop()

            self.watcher = Watcher(self.ws)
            self.watcher.start()
            self._resync("the file watcher stopped; restarted it")
            return
        if self.watcher.rescan():
            self._resync("a watched directory was replaced")
            return
        self._load_all()
        self._look_at_git()
        self._maybe_test(self.head)  # a milestone activated since the last commit wants it tested
        self._evaluate(git=True)
        self._release_memory()

    def _load_config(self) -> None:
        try:
            self.config = load_config(self.ws.config_path)
            self.config_error = None
        except UserError as exc:
            self.config_error = str(exc)
            log.warning("invalid config, keeping the previous settings: %s", exc)

    def _drain(self, *, strict: bool = False) -> int:
        """Ingest the hooks' inbox and commits that arrived without hooks (``engine.ingest``).

        ``strict`` (before an answer): a failure is raised, so that the client reads the files
        and says what went wrong as it would without a daemon."""
        try:
            count = ingest.drain(self.engine)
        except MilestonedError as exc:
            if strict:
                raise
            log.warning("could not drain the inbox: %s", exc)
            return 0
        if count:
            log.info("ingested %d inbox line(s)", count)
            self._load_all()
        return count

    def _load_all(self) -> None:
        present = set()
        for path in self.engine.milestone_paths():
            present.add(path.stem)
            self._refresh(path.stem)
        for mid in self.cache.ids():
            if mid not in present:
                self.cache.forget(mid)

    def _refresh(self, mid: str) -> None:
        """Read a milestone again; an invalid plan edit is reported once and changes no state."""
        reported = self.cache.errors.get(mid)
        try:
            self.cache.get(mid)
        except NotAMilestone:
            self.cache.forget(mid)
        except UserError as exc:
            if not self.engine.exists(mid):
                self.cache.forget(mid)  # deleted, or swapped by a checkout mid-read
            elif str(exc) != reported:
                log.warning("invalid plan, its last good state is kept: %s", exc)

    def _look_at_git(self) -> None:
        if not self.ws.is_git:
            return
        try:
            head = gitutil.head_commit(self.ws.root)
        except MilestonedError:
            return
        if head != self.head:
            self.head = head
            self._maybe_test(head)

    def _maybe_test(self, head: str | None) -> None:
        cfg = self.config
        if not (head and cfg.test_command and cfg.detect_test_failures):
            return
        if not trust.is_trusted(self.ws, cfg.test_command):  # it came with a pull, say: not ours to run yet
            if cfg.test_command not in self.untrusted_said:
                self.untrusted_said.add(cfg.test_command)
                log.warning("%s", self._trust_notes()[0])
            return
        running = any(entry.milestone.running for m in self.cache.ids() if (entry := self.cache.known(m)))
        known = RunLedger(self.ws).get(head)
        if running and (known is None or known.command != cfg.test_command):
            self.tests.want(head, cfg.test_command, cfg.test_timeout)

    def _trust_notes(self) -> list[str]:
        """The test command awaits approval: the daemon will not run it (the agent command it never runs)."""
        return trust.status_notes(self.ws, self.config)

    def _tests_done(self, run: TestRun) -> None:
        self.watcher.push(Change("tests"))

    def _evaluate(self, *, git: bool) -> None:
        """Run the detectors over every monitored milestone; escalate or clear what changed."""
        cfg = self.config
        if git:
            self.probe = blockers.gather(self.ws, cfg)
        else:
            self.probe = dataclasses.replace(
                self.probe, now=clock.now(), tests=RunLedger(self.ws).last(),
                disk_percent=blockers.disk_percent(self.ws) if cfg.disk_usage_percent is not None else None,
            )
        for mid in self.cache.ids():
            entry = self.cache.known(mid)
            if entry is None or mid in self.cache.errors:
                continue
            ms = entry.milestone
            if not ms.running and not ms.blockers:
                continue
            self._expire_claims(mid)
            entry = self.cache.known(mid)  # expiring claims refreshed it
            if entry is None:
                continue
            ms = entry.milestone
            found, covered = blockers.detect(ms, cfg, self.probe)
            if not blockers.differs(ms, found, covered):
                continue
            try:
                with self.engine.transaction() as txn:
                    outcome = blockers.recheck(txn, txn.milestone(mid), config=cfg, probe=self.probe)
            except MilestonedError as exc:
                log.warning("could not update the blockers of %s: %s", mid, exc)
                continue
            if outcome.message:
                log.warning("%s", outcome.message)
            for cleared in outcome.cleared:
                log.info("%s: blocker cleared: %s: %s", mid, cleared.get("type"), cleared.get("detail"))
            self._refresh(mid)

    # -- answering --------------------------------------------------------------------
    def answer(self, line: bytes) -> bytes:
        """One response line for one request line; never raises."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
        except ValueError as exc:
            return _line({"ok": False, "error": f"bad request: {exc}", "exit_code": 2})
        op = request.get("op")
        if op not in OPS:
            return _line({"ok": False, "error": f"unknown op {op!r} (ops: {', '.join(OPS)})", "exit_code": 2})
        try:
            if op == "ping":
                return _line({"ok": True, **self.info()})
            if request.get("version") != __version__ or request.get("pinned_now") != os.environ.get("MILESTONED_NOW"):
                # another version words or computes answers its own way; a pinned clock is another time
                return _line({"ok": False, "error": "not this daemon's client: read the files", "exit_code": 1})
            if not self.work.acquire(timeout=BUSY_WAIT):
                # a long write (a huge milestone) is under way: the client reads the files meanwhile
                return _line({"ok": False, "error": "the daemon is busy; read the files", "exit_code": 1})
            try:
                if request.get("sync", True):
                    self._drain(strict=True)  # the cookie: what the hooks wrote so far is in the answer
                handler: Callable[[dict[str, Any]], bytes] = getattr(self, f"_op_{op}")
                return handler(request)
            finally:
                self.work.release()
        except MilestonedError as exc:
            return _line({"ok": False, "error": str(exc), "exit_code": exc.exit_code})
        except Exception as exc:  # noqa: BLE001 - a bug answers as an error, the daemon lives on
            log.exception("answering %s", op)
            return _line({"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}", "exit_code": 1})

    def _engine_for(self, request: dict[str, Any], *, outside: bool = False) -> Engine:
        """The engine a client in ``request["cwd"]`` (default: our root) would open: ours, or one
        seeing that worktree's plan and config (the state is the same).  A client outside the
        repository gets ours when ``outside`` (a dashboard reading status).  Files earlier
        versions left to import first are refused: the client's own command line imports them."""
        cwd = request.setdefault("cwd", os.getcwd())
        if not isinstance(cwd, str) or not os.path.isabs(cwd):
            raise UserError("cwd must be an absolute path")
        ws = Workspace.discover(cwd)
        if ws.common_dir != self.ws.common_dir or ws.root != self.ws.root:
            if outside:
                return self.engine
            raise UserError(f"{cwd} is not in {self.ws.root}")
        ws.require_initialized()
        if legacy.pending(ws):
            raise UserError("files of an earlier version wait to be imported")
        self._config_reads(ws)
        if ws.worktree == self.ws.worktree:
            return self.engine
        engine = self._engines.get(ws.worktree)
        if engine is None:
            if len(self._engines) >= OTHER_WORKTREES:
                self._engines.clear()
            engine = self._engines[ws.worktree] = Engine(ws)
        return engine

    def _config_reads(self, ws: Workspace) -> Config:
        """The client's ``config.yaml``, or what reading it raises (the full command line reports
        it; a daemon answering on would hide it), remembered per version of the file."""
        path = ws.config_path
        stamp = readcache.stamp(path)
        known = self._configs.get(path)
        if known is None or known[0] != stamp:
            try:
                known = (stamp, load_config(path))
            except UserError as exc:
                known = (stamp, exc)
            self._configs[path] = known
        if isinstance(known[1], UserError):
            raise known[1]
        return known[1]

    def _op_status(self, request: dict[str, Any]) -> bytes:
        engine = self._engine_for(request, outside=True)
        cwd = request["cwd"]
        try:
            notes = trust.status_notes(engine.ws, self._config_reads(engine.ws))
        except UserError:  # only a client outside the repository gets here: `validate` says what is wrong
            notes = []
        if request.get("milestone") is None and self.engine.current_id() is None:
            body = self.cache.overview(cwd)
        elif request.get("sync", True):
            body = self.cache.status(self._resolve(engine, request), cwd, engine)
        else:  # answer from memory as the watcher left it (to measure the watcher alone)
            entry = self.cache.known(self._resolve(engine, request))
            if entry is None:
                raise UserError("not in the daemon's memory yet")
            body = entry.rendered
        return wire.framed(body, notes)

    def _op_events(self, request: dict[str, Any]) -> bytes:
        mid = self._resolve(self.engine, request)
        names = set(request.get("names") or ())
        task_id = request.get("task_id")
        limit = request.get("limit", 50)
        if not isinstance(limit, int) or limit < 0:
            raise UserError("limit must be a whole number, 0 for all")
        events, problems, complete = self.cache.events(mid)
        if not (complete or (not names and task_id is None and 0 < limit <= len(events))):
            events = eventlog.read(self.ws.log_path(mid)).events

        def keep(event: dict[str, Any]) -> bool:
            name = event.get("event", event.get("event_type"))
            return (not names or name in names) and (task_id is None or event.get("task_id") == task_id)

        chosen = [e for e in events if keep(e)]
        chosen = chosen[-limit:] if limit else chosen
        return _ok({"schema": 1, "milestone_id": mid, "events": chosen}, problems=problems)

    def _expire_claims(self, mid: str) -> None:
        """Give back tasks whose claim lease ran out (the daemon is the lease reaper, like `next`)."""
        if not self.cache.lapsed(mid):
            return
        try:
            with self.engine.transaction() as txn:
                expired = claims.expire(txn, txn.milestone(mid))
        except MilestonedError as exc:
            log.warning("could not expire the lapsed claims of %s: %s", mid, exc)
            return
        log.info("%s: lease ran out, back to the queue: %s", mid, ", ".join(expired))
        self._refresh(mid)

    def _op_next(self, request: dict[str, Any]) -> bytes:
        engine = self._engine_for(request)
        mid = self._resolve(engine, request)
        if engine is self.engine or engine.path_of(mid) == self.cache.get(mid).path:
            self._expire_claims(mid)
            return wire.framed(self.cache.ready(mid))
        return _ok(views.ready_view(claims.load(engine, mid)))  # that checkout has a plan of its own

    # the agents' writes: the engine's verbs, as the command line calls them from the client's checkout
    def _op_claim(self, request: dict[str, Any]) -> bytes:
        lease = _text(request, "lease", optional=True)
        return self._write(request, lambda engine, mid: claims.claim_next(
            engine, mid, _text(request, "agent"), lease=claims.lease_seconds(engine, lease)))

    def _op_heartbeat(self, request: dict[str, Any]) -> bytes:
        lease, task_id = _text(request, "lease", optional=True), _text(request, "task_id", optional=True)
        return self._write(request, lambda engine, mid: claims.heartbeat(
            engine, mid, _text(request, "agent"), task_id, lease=claims.lease_seconds(engine, lease)))

    def _op_release(self, request: dict[str, Any]) -> bytes:
        task_id = _text(request, "task_id", optional=True)
        return self._write(request, lambda engine, mid: claims.release(engine, mid, _text(request, "agent"), task_id))

    def _op_done(self, request: dict[str, Any]) -> bytes:
        task_id = _text(request, "task_id", optional=True)
        return self._write(request, lambda engine, mid: claims.done(engine, mid, _text(request, "agent"), task_id))

    def _write(self, request: dict[str, Any], act: Callable[[Engine, str], dict[str, Any]]) -> bytes:
        """``act`` for a client that waits for the answer until its ``deadline`` and then does the
        write itself from the files: so it is done only if the engine lock is ours before then
        (a request read late — the daemon stopped, or busy — changes nothing)."""
        deadline = request.get("deadline")
        if not isinstance(deadline, (int, float)) or isinstance(deadline, bool):
            raise UserError("a write needs its client's deadline")
        engine = self._engine_for(request)
        mid = self._resolve(engine, request)
        with engine.transaction():
            if time.time() > deadline:
                raise RuntimeFailure("the client gave up waiting; it does this itself")
            answer = act(engine, mid)
        self._refresh(answer["milestone_id"])
        return _ok(answer)

    @staticmethod
    def _resolve(engine: Engine, request: dict[str, Any]) -> str:
        return engine.resolve(_text(request, "milestone", optional=True))

    def _op_blockers(self, request: dict[str, Any]) -> bytes:
        if request.get("milestone") is None and self.engine.current_id() is None:
            chosen = [self.cache.get(m).milestone for m in self.cache.ids() if m not in self.cache.errors]
        else:
            chosen = [self.cache.get(self._resolve(self.engine, request)).milestone]
        return _ok(blockers.view(chosen))

    def info(self) -> dict[str, Any]:
        """The ``ping`` answer, also what ``daemon status`` shows."""
        run = self.probe.tests
        return {
            "pid": os.getpid(),
            "version": __version__,
            "root": str(self.ws.root),
            "socket": str(self.socket),
            "started_at": self.started_at,
            "milestones": self.cache.ids(),
            "problems": [self.cache.errors[m] for m in sorted(self.cache.errors)]
            + ([self.config_error] if self.config_error else []) + self._trust_notes(),
            "watching": self.watcher.watched(),
            "watcher_alive": self.watcher.healthy(),
            "resyncs": self.resyncs,
            "testing": self.tests.running,
            "last_test": dataclasses.asdict(run) if run else None,
        }


def run(ws: Workspace) -> int:
    """``milestoned daemon run``: serve in the foreground until SIGTERM or Ctrl-C."""
    ws.require_initialized()
    private_dir(ws.runtime_dir)
    fd = try_lock(ws.runtime_dir / LOCK_NAME)
    if fd is None:
        answer = client.ping(ws)
        pid = answer.get("pid") if answer else (read_record(ws) or {}).get("pid")
        print(f"milestoned: a daemon already serves {ws.root} (pid {pid})", file=sys.stderr)
        # under systemd: started and done (a clean exit, not a protocol failure to restart on)
        sdnotify.notify("READY=1", f"STATUS=pid {pid} already serves this repository")
        return 0
    try:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        os.chdir(ws.root)  # views show paths relative to the repository, as a client in it sees them
        return Daemon(ws).serve()
    finally:
        os.close(fd)
