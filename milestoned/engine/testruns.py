"""The configured test command, run once per new commit and never twice at once.

The daemon runs ``tests.command`` from ``config.yaml`` when a commit lands on the
main worktree's HEAD (SPEC §7: "when new commits land, with a timeout — not every
two minutes").  A failing run is a ``test_failures`` blocker until a later run
passes.  Runs are recorded per commit in a small ledger in the runtime dir (machine
local, like the inbox), so a restarted daemon does not run a commit again; a
``flock`` around each run keeps the daemon and ``milestoned blockers --recheck``
from ever running it concurrently.  The command is an argv list, never a shell line,
and runs in its own process group so a timeout kills all of it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from milestoned.core import clock
from milestoned.files.durable import atomic_write, open_fresh
from milestoned.files.workspace import Workspace
from milestoned.git import queries as gitutil

log = logging.getLogger("milestoned.tests")

KEEP_RUNS = 500  # commits remembered in the ledger
KEEP_LOGS = 20  # output files kept
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL on a timeout


@dataclass(frozen=True)
class TestRun:
    __test__ = False  # not a pytest test class, despite its name

    commit: str
    ok: bool
    exit_code: int | None
    timed_out: bool
    finished_at: str
    log: str  # where its output is
    command: tuple[str, ...] = ()

    @property
    def outcome(self) -> str:
        if self.timed_out:
            return "timed out"
        return "passed" if self.ok else f"exited {self.exit_code}"


class RunLedger:
    """Test runs by commit, newest last: ``<runtime dir>/<name>.json`` (``tests``: the daemon's,
    which its blocker detector reads; ``land``: the runs that gate ``land``)."""

    def __init__(self, ws: Workspace, name: str = "tests") -> None:
        self.path = ws.runtime_dir / f"{name}.json"

    def runs(self) -> list[TestRun]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [TestRun(**{**row, "command": tuple(row.get("command", ()))}) for row in data["runs"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []  # a lost or torn ledger only means a commit may be tested again

    def last(self) -> TestRun | None:
        runs = self.runs()
        return runs[-1] if runs else None

    def get(self, commit: str) -> TestRun | None:
        return next((r for r in reversed(self.runs()) if r.commit == commit), None)

    def record(self, run: TestRun) -> None:
        runs = [r for r in self.runs() if r.commit != run.commit][-(KEEP_RUNS - 1):] + [run]
        rows = [asdict(r) for r in runs]
        atomic_write(self.path, json.dumps({"runs": rows}, indent=1) + "\n", 0o600)


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class TestCommand:
    """Runs the test command on a commit; ``cancel`` stops a run in progress (daemon shutdown)."""

    __test__ = False

    def __init__(self, ws: Workspace, name: str = "tests") -> None:
        self.ws = ws
        self.name = name
        self.ledger = RunLedger(ws, name)
        self._proc: subprocess.Popen[bytes] | None = None
        self._cancelled = False

    def run(self, command: tuple[str, ...], timeout: float, commit: str, cwd: Path | None = None) -> TestRun:
        """The run for ``commit`` (checked out in ``cwd``, by default the main worktree): the recorded
        one, or a new one (waiting for any other run first)."""
        logs = self.ws.runtime_dir / self.name
        with _exclusive(self.ws.runtime_dir / "tests.lock"):
            known = self.ledger.get(commit)
            if known is not None and known.command == command:
                return known
            logs.mkdir(mode=0o700, parents=True, exist_ok=True)
            log_path = logs / f"{commit[:12]}.log"
            code, timed_out = self._execute(command, timeout, log_path, cwd or self.ws.root)
            if self._cancelled:
                raise InterruptedError("test run cancelled")
            run = TestRun(commit, code == 0, code, timed_out, clock.now_iso(), str(log_path), command)
            self.ledger.record(run)
            _prune(logs)
        log.info("test command %s on %s", run.outcome, commit[:12])
        return run

    def _execute(self, command: tuple[str, ...], timeout: float, log_path: Path,
                 cwd: Path) -> tuple[int | None, bool]:
        with os.fdopen(open_fresh(self.ws.writable(log_path)), "wb") as out:
            try:
                proc = subprocess.Popen(
                    list(command), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True,
                    env=gitutil.git_env(),
                )
            except OSError as exc:
                out.write(f"milestoned: cannot run {command[0]!r}: {exc.strerror}\n".encode())
                return 127, False
            self._proc = proc
            try:
                return proc.wait(timeout=timeout), False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                out.write(f"\nmilestoned: the test command timed out after {timeout:g}s\n".encode())
                return None, True
            finally:
                self._proc = None

    def cancel(self) -> None:
        self._cancelled = True
        proc = self._proc
        if proc is not None:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=KILL_GRACE)
            return
        except subprocess.TimeoutExpired:
            continue


def _prune(logs: Path) -> None:
    files = sorted(logs.glob("*.log"), key=lambda p: p.stat().st_mtime)
    for old in files[:-KEEP_LOGS]:
        old.unlink(missing_ok=True)


class TestWorker:
    """One background thread: the newest wanted commit is tested; older wishes are dropped."""

    __test__ = False

    def __init__(self, command: TestCommand, on_done: Callable[[TestRun], None]) -> None:
        self.command = command
        self.on_done = on_done
        self._cond = threading.Condition()
        self._wanted: tuple[str, tuple[str, ...], float] | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="milestoned-tests", daemon=True)
        self.running: str | None = None  # the commit under test, for `daemon status`

    def start(self) -> None:
        self._thread.start()

    def want(self, commit: str, argv: tuple[str, ...], timeout: float) -> None:
        with self._cond:
            self._wanted = (commit, argv, timeout)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self.command.cancel()
        self._thread.join(timeout=KILL_GRACE * 2)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._wanted is None and not self._stopping:
                    self._cond.wait()
                wanted = self._wanted
                if self._stopping or wanted is None:  # not stopping: the wait ended on a wish
                    return
                commit, argv, timeout = wanted
                self._wanted = None
            self.running = commit
            try:
                run = self.command.run(argv, timeout, commit)
            except InterruptedError:
                return
            except Exception:  # noqa: BLE001 - a broken run must not kill the daemon's tester
                log.exception("running the test command on %s failed", commit[:12])
                continue
            finally:
                self.running = None
            self.on_done(run)
