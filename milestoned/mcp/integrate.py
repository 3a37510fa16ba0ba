"""``milestoned integrate claude-code``: register the MCP server and write the ``/milestone:…`` commands.

Two things land in the repository, both the user's to commit and share (so ``git status``
shows them):

- ``.mcp.json`` at the root gets a ``milestoned`` server (``milestoned mcp`` over stdio),
  spliced into what the file holds: the user's other servers, keys and layout stay as they are;
- ``.claude/commands/milestone/`` gets ``execute.md``, ``status.md``, ``next.md`` and
  ``block.md``: the seed's ``/milestone/execute`` workflow, as instructions to the agent that
  call the server's tools.

The server's command is plain ``milestoned`` when that name on PATH is this install, else the
path of this install's ``milestoned`` (an agent started without the virtualenv on its PATH
still finds it), and the user is told so.

What is ours is told by its content: a command file equal to the one this version writes, a
server entry that runs this install (by name, by path, or through its interpreter).  A second
run changes nothing; an entry the user changed is kept, saying so; ``--uninstall`` removes only
what is still exactly ours, and gives ``.mcp.json`` back byte for byte when nothing else touched
it since (the bytes it had are kept in the state dir until then).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from milestoned.core.errors import UserError, display_path
from milestoned.files import jsonsplice
from milestoned.files.durable import atomic_write, read_json
from milestoned.files.workspace import Workspace

SERVER_NAME = "milestoned"
SERVER_PATH = ("mcpServers", SERVER_NAME)
COMMANDS = ("execute", "status", "next", "block")
COMMANDS_DIR = Path(".claude") / "commands" / "milestone"
RECORD = "integrate.json"  # in the state dir: .mcp.json as it was before we wrote it, per worktree


def _template(name: str) -> str:
    return resources.files("milestoned.mcp").joinpath("claude").joinpath(f"{name}.md").read_text(encoding="utf-8")


def _config_path(ws: Workspace) -> Path:
    return ws.worktree / ".mcp.json"


# -- which command runs the server ------------------------------------------------------------
def _entry(command: str, *args: str) -> dict[str, Any]:
    return {"type": "stdio", "command": command, "args": [*args, "mcp"]}


BY_NAME = _entry("milestoned")


def _this_script() -> Path | None:
    """This install's ``milestoned``: beside its interpreter, where pip and pipx put it."""
    script = Path(sys.executable).parent / "milestoned"
    return script if os.access(script, os.X_OK) else None


def _ours() -> list[dict[str, Any]]:
    """Every entry that runs this install: by name, by the path of its script, through its interpreter."""
    script = _this_script()
    return [BY_NAME, *([_entry(str(script))] if script else []), _entry(sys.executable, "-m", "milestoned")]


def _chosen() -> tuple[dict[str, Any], str | None]:
    """The entry to write, and why it is not the plain name (None when it is)."""
    script, found = _this_script(), shutil.which("milestoned")
    if found and (script is None or os.path.realpath(found) == os.path.realpath(script)):
        return BY_NAME, None
    entry = _entry(str(script)) if script else _entry(sys.executable, "-m", "milestoned")
    where = f"the milestoned on PATH ({found}) is another install" if found else "milestoned is not on PATH here"
    return entry, f"it runs `{shown(entry)}`: {where}"


def shown(entry: Any) -> str:
    """The command line an entry runs, as a person would type it."""
    if not isinstance(entry, dict):
        return json.dumps(entry)
    args = entry.get("args")
    return shlex.join(str(part) for part in [entry.get("command", ""), *(args if isinstance(args, list) else [])])


def _runs(entry: Any) -> bool:
    """Whether the entry's command is found here (by PATH or as the path it is)."""
    return isinstance(entry, dict) and isinstance(entry.get("command"), str) and bool(shutil.which(entry["command"]))


# -- .mcp.json ----------------------------------------------------------------------------------
def _read(ws: Workspace) -> tuple[dict[str, Any], str | None]:
    """``.mcp.json`` as data and text (``{}`` and None when there is none; empty counts as ``{}``); a
    malformed one is a user error, untouched."""
    path = _config_path(ws)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read it: {exc}", path=path, hint="fix or remove it; it was left as it is") from None
    if not text.strip():
        return {}, text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno,
                        hint="fix that line; milestoned left the file as it is") from None
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers", {}), dict):
        raise UserError("not an MCP configuration: expected an object with an \"mcpServers\" object", path=path,
                        line=1, hint="fix it; milestoned left the file as it is")
    return data, text


def _digest(text: str | None) -> str | None:
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text is not None else None


def _records(ws: Workspace) -> dict[str, Any]:
    return read_json(ws.state_dir / RECORD) or {}


def _save_records(ws: Workspace, records: dict[str, Any]) -> None:
    ws.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(ws.writable(ws.state_dir / RECORD), json.dumps(records, indent=1) + "\n", 0o600)


def _write_config(ws: Workspace, before: str | None, after: str) -> None:
    """Write ``.mcp.json``, first keeping the bytes it had before integrate ever wrote it (not those
    of our own earlier write), so that ``--uninstall`` can give them back."""
    records, key = _records(ws), str(_config_path(ws))
    kept = records.get(key)
    ours_before = isinstance(kept, dict) and kept.get("written") == _digest(before)
    records[key] = {"original": kept.get("original") if ours_before and isinstance(kept, dict) else before,
                    "written": _digest(after)}
    _save_records(ws, records)
    _write(ws, _config_path(ws), after)


def _write(ws: Workspace, path: Path, text: str) -> None:
    atomic_write(ws.writable(path), text, 0o644)


def install(ws: Workspace) -> list[str]:
    """Register the server and write the commands; what changed (nothing on a second run)."""
    data, text = _read(ws)  # first: a malformed file stops everything before any write
    changed = []
    entry, why = _chosen()
    current = data.get("mcpServers", {}).get(SERVER_NAME)
    stale = current in _ours() and current != entry and (current == BY_NAME or not _runs(current))
    where = display_path(_config_path(ws))
    if current is None or stale:
        fresh = text is None or not text.strip()
        after = (json.dumps({"mcpServers": {SERVER_NAME: entry}}, indent=2) + "\n" if fresh else
                 jsonsplice.put(text or "", SERVER_PATH, entry))
        _write_config(ws, text, after)
        changed.append(f"{'updated' if stale else 'added'} the {SERVER_NAME} server in {where}"
                       + (f"; {why}" if why else ""))
    elif current not in _ours():
        changed.append(f"kept the {SERVER_NAME} server in {where} as you set it (it runs `{shown(current)}`); "
                       "remove it to get ours")
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


def _uninstall_server(ws: Workspace) -> list[str]:
    data, text = _read(ws)
    path, where = _config_path(ws), display_path(_config_path(ws))
    records = _records(ws)
    kept = records.pop(str(path), None)
    current = data.get("mcpServers", {}).get(SERVER_NAME)
    if isinstance(kept, dict) and text is not None and kept.get("written") == _digest(text):
        original = kept.get("original")
        if isinstance(original, str):
            _write(ws, path, original)
            said = [f"restored {where} as it was before `milestoned integrate`"]
        else:
            path.unlink()
            said = [f"removed {where} (`milestoned integrate` created it)"]
    elif current is None:
        said = []
    elif current not in _ours():
        said = [f"kept the {SERVER_NAME} server in {where}: it is yours (it runs `{shown(current)}`)"]
    else:
        after = jsonsplice.remove(text or "", SERVER_PATH)
        rest = json.loads(after)
        if rest in ({}, {"mcpServers": {}}):
            path.unlink()
            said = [f"removed {where} (it held only our server)"]
        else:
            _write(ws, path, after)
            said = [f"removed the {SERVER_NAME} server from {where}"]
    if kept is not None:
        _save_records(ws, records)
    return said


def uninstall(ws: Workspace) -> list[str]:
    """Remove what is exactly ours; what changed, and what was left and why."""
    said = _uninstall_server(ws)
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
    """What ``doctor`` reports: is the server registered (ours, or as the user set it), does its command
    run here, are the commands ours and current."""
    try:
        data, _ = _read(ws)
    except UserError as exc:
        return {"server": "broken", "problem": str(exc), "commands": {}}
    server = data.get("mcpServers", {}).get(SERVER_NAME)
    commands = {}
    for name in COMMANDS:
        path = ws.worktree / COMMANDS_DIR / f"{name}.md"
        commands[name] = ("missing" if not path.is_file() else
                          "ours" if path.read_text(encoding="utf-8") == _template(name) else "edited")
    return {"server": "missing" if server is None else "ours" if server in _ours() else "yours",
            "problem": None, "runs": shown(server) if server is not None else None, "found": _runs(server),
            "commands": commands}
