"""``.milestones/config.yaml``: optional settings, each with a sensible default.

A bad value is a user error naming the file, the line and the fix, like any other
bad input.  Durations are written as people write them (``90s``, ``30m``, ``1h``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from milestoned.core import clock
from milestoned.core.errors import UserError
from milestoned.files import yamlread as yamlio

DEFAULT_CONFIG = """\
# milestoned settings. Every key is optional; what is shown is the default.

# The coding agent that works tasks that have a `prompt:` instead of `run:`.
# An argv list: {prompt}, {task_id}, {milestone_id} and {workdir} are replaced as
# whole arguments, never through a shell.
agent:
  preset: null           # claude-code, codex or aider: the argv each takes to work one prompt unattended
  command: []            # or your own, for example ["my-agent", "--print", "{prompt}"] (wins over the preset)

execute:
  workers: 4             # tasks run at once by `milestoned execute`
  task_timeout: null     # e.g. 30m; a task running longer is stopped and blocked

tests:
  command: []            # e.g. ["pytest", "-q"]: run by the daemon when commits land, by `land` before it lands
  timeout: 10m

blockers:
  git_conflicts: true            # unmerged paths in the repository or a task worktree
  test_failures: true            # the test command above failing on a new commit
  long_running_after: 1h         # a task in progress for longer is a blocker
  disk_usage_percent: 90         # the disk holding the repository fuller than this
  dependency_violations: true    # a task started before its dependencies completed
  failed_commands: true          # a task's command exiting non-zero

claims:
  lease: 30m             # how long `next --claim` holds a task without a heartbeat
"""


# Each agent's own way to do one prompt and exit, editing files in its working directory and
# leaving the commit to `execute` (which adds the trailers): from each tool's documentation.
AGENT_PRESETS: dict[str, tuple[str, ...]] = {
    "claude-code": ("claude", "-p", "{prompt}", "--permission-mode", "acceptEdits"),
    "codex": ("codex", "exec", "--sandbox", "workspace-write", "{prompt}"),
    "aider": ("aider", "--message", "{prompt}", "--yes-always", "--no-auto-commits"),
}


@dataclass(frozen=True)
class Config:
    agent_command: tuple[str, ...] = ()
    agent_preset: str | None = None
    agent_source: str | None = None  # where agent_command comes from, for messages: agent.command, agent.preset X
    workers: int = 4
    task_timeout: float | None = None
    test_command: tuple[str, ...] = ()
    test_timeout: float = 600.0
    detect_conflicts: bool = True
    detect_test_failures: bool = True
    long_running_after: float | None = 3600.0
    disk_usage_percent: float | None = 90.0
    detect_dependency_violations: bool = True
    detect_failed_commands: bool = True
    lease: float = 1800.0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


class _Reader:
    def __init__(self, data: dict[str, Any], text: str, path: Path) -> None:
        self.data, self.text, self.path = data, text, path

    def get(self, section: str, key: str) -> Any:
        block = self.data.get(section)
        if block is None:
            return None
        if not isinstance(block, dict):
            self.fail((section,), f"{section} must be a mapping of settings")
        return block.get(key)

    def fail(self, keypath: tuple[str, ...], message: str, hint: str | None = None) -> NoReturn:
        raise UserError(message, path=self.path, line=yamlio.locate(self.text, keypath) or 1, hint=hint)

    def argv(self, section: str, key: str) -> tuple[str, ...]:
        value = self.get(section, key)
        if value in (None, ""):
            return ()
        if not isinstance(value, list) or not all(isinstance(a, (str, int, float)) for a in value):
            self.fail((section, key), f"{section}.{key} must be a list of arguments", 'write ["cmd", "arg", ...]')
        return tuple(str(a) for a in value)

    def boolean(self, section: str, key: str, default: bool) -> bool:
        value = self.get(section, key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail((section, key), f"{section}.{key} must be true or false")
        return value

    def duration(self, section: str, key: str, default: float | None) -> float | None:
        value = self.get(section, key)
        if value is None:
            return default
        if value is False:
            return None
        seconds = clock.parse_duration(value)
        if seconds is None or seconds <= 0:
            self.fail((section, key), f"{section}.{key} must be a duration", "write e.g. 90s, 30m or 1h")
        return seconds

    def number(self, section: str, key: str, default: float | None, *, integer: bool = False,
               may_be_off: bool = False) -> Any:
        """A number above 0; ``false`` turns the setting off where that means something."""
        value = self.get(section, key)
        if value is None:
            return default
        if value is False and may_be_off:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (
            integer and not isinstance(value, int)
        ):
            kind = "a whole number" if integer else "a number"
            self.fail((section, key), f"{section}.{key} must be {kind} above 0")
        return value


def load_config(path: Path) -> Config:
    if not path.exists():
        return Config()
    data, text = yamlio.load(path, allow_empty=True)
    if data is None:
        return Config()
    if not isinstance(data, dict):
        raise UserError("config must be a mapping of sections", path=path, line=1)
    r = _Reader(data, text, path)
    preset = r.get("agent", "preset")
    if preset is not None and not (isinstance(preset, str) and preset in AGENT_PRESETS):
        what = "is unknown" if isinstance(preset, str) else "is not a preset name"
        r.fail(("agent", "preset"), f"agent.preset {yamlio.shown(preset)} {what}",
               f"use one of {', '.join(sorted(AGENT_PRESETS))}, or set agent.command")
    command = r.argv("agent", "command")
    return Config(
        agent_command=command or AGENT_PRESETS.get(preset or "", ()),
        agent_preset=preset,
        agent_source="agent.command" if command else f"agent.preset {preset}" if preset else None,
        workers=r.number("execute", "workers", 4, integer=True),
        task_timeout=r.duration("execute", "task_timeout", None),
        test_command=r.argv("tests", "command"),
        test_timeout=r.duration("tests", "timeout", 600.0) or 600.0,
        detect_conflicts=r.boolean("blockers", "git_conflicts", True),
        detect_test_failures=r.boolean("blockers", "test_failures", True),
        long_running_after=r.duration("blockers", "long_running_after", 3600.0),
        disk_usage_percent=r.number("blockers", "disk_usage_percent", 90.0, may_be_off=True),
        detect_dependency_violations=r.boolean("blockers", "dependency_violations", True),
        detect_failed_commands=r.boolean("blockers", "failed_commands", True),
        lease=r.duration("claims", "lease", 1800.0) or 1800.0,
        raw=data,
    )
