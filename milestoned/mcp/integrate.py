"""``milestoned integrate claude-code``: register the MCP server and write the ``/milestone:…`` commands.

Two things land in the repository, both the user's to commit and share:

- ``.mcp.json`` at the root gets a ``milestoned`` server (``milestoned mcp`` over stdio),
  merged with what the file holds: the user's other servers and keys stay as they are;
- ``.claude/commands/milestone/`` gets ``execute.md``, ``status.md``, ``next.md`` and
  ``block.md``: the seed's ``/milestone/execute`` workflow, as instructions to the agent that
  call the server's tools.

What is ours is told by its content: a command file equal to the one this version writes,
the server entry equal to ours.  A second run changes nothing, and ``--uninstall`` removes
only what is still exactly ours; a file the user edited is left, saying so.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from milestoned.core.errors import UserError, display_path
from milestoned.files.durable import atomic_write
from milestoned.files.workspace import Workspace

SERVER_NAME = "milestoned"
SERVER = {"type": "stdio", "command": "milestoned", "args": ["mcp"]}
COMMANDS = ("execute", "status", "next", "block")
COMMANDS_DIR = Path(".claude") / "commands" / "milestone"


def _template(name: str) -> str:
    return resources.files("milestoned.mcp").joinpath("claude").joinpath(f"{name}.md").read_text(encoding="utf-8")


def _config_path(ws: Workspace) -> Path:
    return ws.worktree / ".mcp.json"


def read_config(ws: Workspace) -> dict[str, Any] | None:
    """``.mcp.json`` as it is (None when there is none); a malformed one is a user error, untouched."""
    path = _config_path(ws)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read it: {exc}", path=path, hint="fix or remove it; it was left as it is") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno,
                        hint="fix that line; milestoned left the file as it is") from None
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers", {}), dict):
        raise UserError("not an MCP configuration: expected an object with an \"mcpServers\" object", path=path,
                        line=1, hint="fix it; milestoned left the file as it is")
    return data


def _write(ws: Workspace, path: Path, text: str) -> None:
    atomic_write(ws.writable(path), text, 0o644)


def install(ws: Workspace) -> list[str]:
    """Register the server and write the commands; what changed (nothing on a second run)."""
    data = read_config(ws)  # first: a malformed file stops everything before any write
    changed = []
    servers = dict((data or {}).get("mcpServers", {}))
    if servers.get(SERVER_NAME) != SERVER:
        verb = "updated" if SERVER_NAME in servers else "added"
        servers[SERVER_NAME] = SERVER
        _write(ws, _config_path(ws), json.dumps({**(data or {}), "mcpServers": servers}, indent=2) + "\n")
        changed.append(f"{verb} the {SERVER_NAME} server in {display_path(_config_path(ws))}")
    for name in COMMANDS:
        path = ws.worktree / COMMANDS_DIR / f"{name}.md"
        text = _template(name)
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        if path.exists():
            changed.append(f"kept {display_path(path)}: it is not ours as written (edited?); remove it to get ours")
            continue
        _write(ws, path, text)
        changed.append(f"wrote {display_path(path)} (/milestone:{name})")
    return changed


def uninstall(ws: Workspace) -> list[str]:
    """Remove what is exactly ours; what changed, and what was left and why."""
    data = read_config(ws)
    said = []
    servers = dict((data or {}).get("mcpServers", {}))
    if SERVER_NAME in servers:
        if servers[SERVER_NAME] != SERVER:
            said.append(f"kept the {SERVER_NAME} server in {display_path(_config_path(ws))}: it was changed since")
        else:
            del servers[SERVER_NAME]
            rest = {key: value for key, value in (data or {}).items() if key != "mcpServers"}
            if not servers and not rest:
                _config_path(ws).unlink()
                said.append(f"removed {display_path(_config_path(ws))} (it held only our server)")
            else:
                _write(ws, _config_path(ws), json.dumps({**(data or {}), "mcpServers": servers}, indent=2) + "\n")
                said.append(f"removed the {SERVER_NAME} server from {display_path(_config_path(ws))}")
    folder = ws.worktree / COMMANDS_DIR
    for name in COMMANDS:
        path = folder / f"{name}.md"
        if not path.is_file():
            continue
        if path.read_text(encoding="utf-8") == _template(name):
            path.unlink()
            said.append(f"removed {display_path(path)}")
        else:
            said.append(f"kept {display_path(path)}: edited since milestoned wrote it")
    for empty in (folder, folder.parent, folder.parent.parent):
        try:
            empty.rmdir()  # only when nothing else is in it
        except OSError:
            break
    return said


def state(ws: Workspace) -> dict[str, Any]:
    """What ``doctor`` reports: is the server registered, are the commands ours and current."""
    try:
        data = read_config(ws)
    except UserError as exc:
        return {"server": "broken", "problem": str(exc), "commands": {}}
    server = (data or {}).get("mcpServers", {}).get(SERVER_NAME)
    commands = {}
    for name in COMMANDS:
        path = ws.worktree / COMMANDS_DIR / f"{name}.md"
        commands[name] = ("missing" if not path.is_file() else
                          "ours" if path.read_text(encoding="utf-8") == _template(name) else "edited")
    return {"server": "missing" if server is None else "ours" if server == SERVER else "changed",
            "problem": None, "commands": commands}
