"""Service units: the daemon as a systemd user service or a launchd agent, per repository.

systemd gets one template, ``milestoned@.service``, whose instance name is the
repository path escaped as ``systemd-escape --path`` does (``%f`` turns it back into
the path); one repository is one instance.  launchd has no templates, so each
repository gets its own agent plist.

The files in ``contrib/`` are these same texts rendered for a generic install (the
command found on PATH, an example path); a test keeps them equal to what this module
renders, so there is one source.  ``daemon install`` renders them with the Python
running now, so the unit starts the milestoned the user actually installed.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from milestoned.files.durable import atomic_write
from milestoned.files.workspace import Workspace

TEMPLATE_NAME = "milestoned@.service"
# The daemon pings between turns of its loop; one turn may hold a write to a very big
# milestone (tens of seconds at 10,000 tasks), which is slow, not wedged.
WATCHDOG_SEC = 120
CONTRIB_COMMAND = ("/usr/bin/env", "milestoned", "daemon", "run")
CONTRIB_PLIST_COMMAND = ("/usr/local/bin/milestoned", "daemon", "run")
CONTRIB_PLIST_ROOT = Path("/path/to/repository")
CONTRIB_PLIST_LABEL = "io.milestoned.daemon.example"

_PLAIN = re.compile(rb"[A-Za-z0-9:_.]")


def installed_command() -> tuple[str, ...]:
    """The daemon as this installation runs it: this interpreter, this package."""
    return (sys.executable, "-m", "milestoned", "daemon", "run")


# -- systemd ----------------------------------------------------------------------------
def escape_path(path: str | os.PathLike[str]) -> str:
    """``systemd-escape --path``: the unit instance name for an absolute path."""
    parts = [p for p in os.fspath(path).split("/") if p and p != "."]
    if not parts:
        return "-"
    out = []
    for index, byte in enumerate("/".join(parts).encode("utf-8")):
        char = bytes([byte])
        if char == b"/":
            out.append("-")
        elif _PLAIN.fullmatch(char) and not (index == 0 and char == b"."):
            out.append(char.decode())
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def instance_name(root: Path) -> str:
    return f"milestoned@{escape_path(root)}.service"


def _exec_quote(arg: str) -> str:
    """One ExecStart= word: systemd's own quoting, with % and $ kept literal."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not re.search(r"[\s\"'\\;]", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_unit(command: tuple[str, ...] | list[str]) -> str:
    """The ``milestoned@.service`` template, starting ``command`` in the repository."""
    exec_start = " ".join(_exec_quote(a) for a in command)
    return f"""\
# milestoned: the daemon of one git repository, as a systemd user service.
# The instance name is the repository path, escaped:
#   systemctl --user enable --now "milestoned@$(systemd-escape --path /path/to/repository).service"
# `milestoned daemon install` writes this file and prints that command for you.
[Unit]
Description=milestoned daemon for %f
ConditionPathIsDirectory=%f/.milestones

[Service]
Type=notify
NotifyAccess=main
WorkingDirectory=%f
ExecStart={exec_start}
Restart=on-failure
RestartSec=2
WatchdogSec={WATCHDOG_SEC}
TimeoutStopSec=30

[Install]
WantedBy=default.target
"""


def user_unit_dir() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user"


def _wants_links(unit_dir: Path, pattern: str) -> list[Path]:
    return sorted(p for p in unit_dir.glob(f"*.wants/{pattern}") if p.is_symlink() or p.exists())


# -- launchd ----------------------------------------------------------------------------
def launchd_label(root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", root.name).strip("-") or "repository"
    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:8]
    return f"io.milestoned.daemon.{name}.{digest}"


def launchd_plist(label: str, command: tuple[str, ...] | list[str], root: Path, log_path: Path) -> bytes:
    """A launchd agent keeping the daemon of ``root`` alive (restarted unless it exits cleanly)."""
    agent: dict[str, Any] = {
        "Label": label,
        "ProgramArguments": list(command),
        "WorkingDirectory": str(root),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ProcessType": "Background",
        "StandardOutPath": str(log_path),
        "StandardErrorPath": str(log_path),
    }
    return plistlib.dumps(agent, sort_keys=False)


def launch_agents_dir() -> Path:
    return Path.home() / "Library" / "LaunchAgents"


def contrib_plist() -> bytes:
    """``contrib/launchd/io.milestoned.daemon.plist``: the example for one repository."""
    root = CONTRIB_PLIST_ROOT
    return launchd_plist(CONTRIB_PLIST_LABEL, CONTRIB_PLIST_COMMAND, root, root / ".git" / "milestoned" / "daemon.log")


# -- install / uninstall ----------------------------------------------------------------
def default_kind() -> str:
    return "launchd" if sys.platform == "darwin" else "systemd"


def install(ws: Workspace, kind: str) -> list[str]:
    """Write the unit for this repository; the lines to print (what was written, how to enable)."""
    if kind == "systemd":
        path = user_unit_dir() / TEMPLATE_NAME
        atomic_write(path, systemd_unit(installed_command()))
        name = shlex.quote(instance_name(ws.root))
        return [f"wrote {path}", "enable the daemon of this repository with:",
                "  systemctl --user daemon-reload", f"  systemctl --user enable --now {name}"]
    label = launchd_label(ws.root)
    path = launch_agents_dir() / f"{label}.plist"
    atomic_write(path, launchd_plist(label, installed_command(), ws.root, ws.runtime_dir / "daemon.log"))
    return [f"wrote {path}", "load it with:",
            f"  launchctl bootstrap gui/{os.getuid()} {shlex.quote(str(path))}"]


def uninstall(ws: Workspace, kind: str) -> list[str]:
    """Remove this repository's unit; the shared systemd template goes with the last instance."""
    lines: list[str] = []
    if kind == "systemd":
        unit_dir = user_unit_dir()
        name = instance_name(ws.root)
        for link in _wants_links(unit_dir, name):
            link.unlink()
            lines.append(f"disabled {name} (removed {link})")
        template = unit_dir / TEMPLATE_NAME
        others = _wants_links(unit_dir, "milestoned@*.service")
        if template.exists() and not others:
            template.unlink()
            lines.append(f"removed {template}")
        elif others:
            lines.append(f"kept {template}: other repositories use it")
        if not lines:
            lines.append(f"nothing to remove: no {TEMPLATE_NAME} in {unit_dir}")
        lines += ["stop a running instance with:", f"  systemctl --user stop {shlex.quote(name)}",
                  "  systemctl --user daemon-reload"]
        return lines
    label = launchd_label(ws.root)
    path = launch_agents_dir() / f"{label}.plist"
    if not path.exists():
        return [f"nothing to remove: no {path}"]
    path.unlink()
    return [f"removed {path}", "stop a running agent with:", f"  launchctl bootout gui/{os.getuid()}/{label}"]
