"""Real daemon processes for tests: started through the CLI, always stopped afterwards.

Tests never assert how long anything takes; they wait (generously) for what a user
would eventually see, and fail with a message saying what never happened.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from conftest import run_subprocess
from milestoned.daemon import client
from milestoned.daemon import control as daemonctl
from milestoned.files.workspace import Workspace

T = TypeVar("T")


def wait_for(check: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def events_of(root: Path, milestone_id: str) -> list[dict[str, Any]]:
    """The event log exactly as on disk, in the git dir."""
    path = Workspace.discover(root).log_path(milestone_id)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def event_names(root: Path, milestone_id: str) -> list[str]:
    return [e["event"] for e in events_of(root, milestone_id)]


class Daemons:
    """Start daemons for repositories; ``cleanup`` stops every one (SIGKILL if it must)."""

    def __init__(self) -> None:
        self.started: dict[Path, set[int]] = {}

    def start(self, root: Path) -> dict[str, Any]:
        result = run_subprocess("daemon", "start", cwd=root, timeout=60)
        assert result.returncode == 0, result.stderr
        info = self.ping(root)
        assert info is not None, f"the daemon of {root} does not answer: {result.stdout}{result.stderr}"
        self.started.setdefault(root, set()).add(info["pid"])
        return info

    def stop(self, root: Path) -> str:
        result = run_subprocess("daemon", "stop", cwd=root, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    @staticmethod
    def ping(root: Path) -> dict[str, Any] | None:
        return client.ping(Workspace.discover(root))

    @staticmethod
    def ask(root: Path, op: str, **fields: Any) -> dict[str, Any] | None:
        return client.ask(Workspace.discover(root), op, **fields)

    def kill9(self, root: Path) -> int:
        info = self.ping(root)
        assert info is not None
        os.kill(info["pid"], signal.SIGKILL)
        ws = Workspace.discover(root)
        wait_for(lambda: not daemonctl.lock_held(ws), "the killed daemon to let go of its lock")
        return info["pid"]

    def cleanup(self) -> None:
        for root, pids in self.started.items():
            if not root.exists():
                continue
            run_subprocess("daemon", "stop", cwd=root, timeout=60)
            ws = Workspace.discover(root)
            if daemonctl.lock_held(ws):  # still alive: only kill what is provably ours
                pid = (daemonctl.read_record(ws) or {}).get("pid")
                if pid in pids:
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    started = Daemons()
    try:
        yield started
    finally:
        started.cleanup()
