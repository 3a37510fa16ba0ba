"""Commands that reach this clone inside a tracked file run by themselves only once approved here.

``config.yaml`` is versioned with the code, so a ``git pull`` can bring a new test
command, and the daemon runs the test command by itself when commits land.  Like
``direnv allow``, the daemon runs only a command this clone's user approved, exactly
that one: ``milestoned trust`` shows the commands of the config and records the hash of
each in ``<state dir>/trust.json`` (per clone, never synced).  A changed command waits
for approval again, and ``status``, ``doctor`` and the daemon's log say so.  Commands
the user starts explicitly (``execute``, ``blockers --recheck``) run what the plan and
the config say: starting them is the approval.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from milestoned.core import clock
from milestoned.core.errors import UserError
from milestoned.engine.engine import Engine
from milestoned.files.durable import atomic_write, read_json
from milestoned.files.workspace import Workspace
from milestoned.model.config import Config, load_config

RECORD = "trust.json"


@dataclass(frozen=True)
class Command:
    setting: str  # where it is written: tests.command
    argv: tuple[str, ...]
    approved: bool

    @property
    def shown(self) -> str:
        return json.dumps(list(self.argv), ensure_ascii=False)


def digest(argv: tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps(list(argv), ensure_ascii=False).encode("utf-8")).hexdigest()


def _record(ws: Workspace) -> Path:
    return ws.state_dir / RECORD


def _approved(ws: Workspace) -> dict[str, dict[str, object]]:
    approved = (read_json(_record(ws)) or {}).get("approved")
    return approved if isinstance(approved, dict) else {}


def commands(ws: Workspace, config: Config) -> list[Command]:
    """The commands of the config that run by themselves, each with whether this clone approved exactly it:
    the test command (the daemon runs it).  The agent command is not one: only ``execute``, which the user
    starts, runs it."""
    if not config.test_command:
        return []
    return [Command("tests.command", config.test_command, digest(config.test_command) in _approved(ws))]


def is_trusted(ws: Workspace, argv: tuple[str, ...]) -> bool:
    return digest(argv) in _approved(ws)


def waiting(ws: Workspace, config: Config) -> list[Command]:
    return [c for c in commands(ws, config) if not c.approved]


def note(command: Command, config_path: Path) -> str:
    """One line for ``status``, ``doctor`` and the daemon's log."""
    return (f"the {command.setting} of {config_path.name} ({command.shown}) awaits your approval before it runs "
            "by itself: milestoned trust")


def status_notes(ws: Workspace, config: Config | None = None) -> list[str]:
    """What ``status`` says first, on either path: the test command ``config.yaml`` brought awaits
    approval, so the daemon will not run it (a config that does not read says nothing here:
    ``validate`` and ``doctor`` report it).  ``config``: as already read, else read now."""
    if config is None:
        try:
            config = load_config(ws.config_path)
        except UserError:
            return []
    return [note(c, ws.config_path) for c in waiting(ws, config) if config.detect_test_failures]


def approve(engine: Engine, config: Config) -> list[Command]:
    """Record approval of exactly the commands the config names now; the ones newly approved."""
    ws = engine.ws
    with engine.lock.held():
        approved = _approved(ws)
        new = [c for c in commands(ws, config) if not c.approved]
        for command in new:
            approved[digest(command.argv)] = {"setting": command.setting, "command": list(command.argv),
                                              "approved_at": clock.now_iso()}
        if new:
            ws.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(ws.writable(_record(ws)), json.dumps({"approved": approved}, indent=1) + "\n", 0o600)
    return new
