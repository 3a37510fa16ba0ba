"""Installing the git hooks so that they run next to whatever hooks are already there.

The directory is the one git itself uses (``git rev-parse --git-path hooks``): it
honours ``core.hooksPath`` and, in a linked worktree, points at the common dir, so
one install serves every worktree.  For each hook:

- nothing there: our script (``hooks/<name>`` shipped in the package) is written;
- a shell script there (pre-commit's, lefthook's, husky's, the user's own): our lines
  go between START/END markers right after its ``#!`` line, inside a subshell that
  cannot exit it, print or fail it (post-rewrite's stdin is read once and handed on);
- anything else (another interpreter, a binary, a symlink, a file that is not
  executable): it is moved to ``<name>.milestoned-chained`` and our script runs it after our lines,
  with the same arguments and stdin, returning its exit status.

Installing again updates our lines in place and changes nothing else; uninstall
removes exactly what install added (the original bytes come back), including our
script where pre-commit (``.legacy``) or lefthook (``.old``) moved it.  Install also
sets ``notes.rewriteRef`` so notes follow amend and rebase, and ``cat_sort_uniq`` as
the rewrite mode and the notes merge strategy when the user has not chosen one;
what it set is remembered and unset again by uninstall.

``hold_task`` writes the per-worktree "held task" file that prepare-commit-msg reads
when the branch does not name a task.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from milestoned.core.errors import UserError
from milestoned.core.ids import id_problem
from milestoned.files.durable import atomic_write, read_json
from milestoned.files.inbox import ensure_dir
from milestoned.files.workspace import Workspace
from milestoned.git import refwatch
from milestoned.git.notes import REF as NOTES_REF
from milestoned.git.queries import git_path, run_git

HOOKS = ("post-commit", "post-merge", "post-rewrite", "post-checkout", "prepare-commit-msg")
ID_LINE = "# milestoned-hook: "
START = "# >>> milestoned START (added by `milestoned hooks install`, removed by `milestoned hooks uninstall`) >>>"
END = "# <<< milestoned END <<<"
CHAINED = ".milestoned-chained"
MOVED = {".old": "lefthook", ".legacy": "pre-commit"}  # where other tools put a hook they replace
HELD_TASK_FILE = "milestoned-task"
_SH = re.compile(rb"^#!\s*(?:/\S*/)?(?:env\s+(?:-\S+\s+)*)?(sh|bash|dash|ash|ksh|mksh|busybox sh)\b")
CONFIG_DEFAULTS = {"notes.rewriteMode": "cat_sort_uniq", "notes.milestoned.mergeStrategy": "cat_sort_uniq"}


def script(name: str) -> str:
    """Our hook script as shipped in the package (``milestoned.hook_scripts``)."""
    return resources.files("milestoned.hook_scripts").joinpath(name).read_text(encoding="utf-8")


def block(name: str) -> str:
    """Our lines for the inside of another shell hook: they never exit, print or fail it."""
    body = script(name).split("\n", 1)[1]
    if name == "post-rewrite":  # stdin is read once: feed it to us, then give it back to the host
        return (f"{START}\n_milestoned_in=$(cat)\n(\n{body}) <<_MILESTONED_IN_ >/dev/null 2>&1 || :\n"
                "$_milestoned_in\n_MILESTONED_IN_\nexec <<_MILESTONED_IN_\n$_milestoned_in\n_MILESTONED_IN_\n"
                f"unset _milestoned_in\n{END}\n")
    return f"{START}\n(\n{body}) </dev/null >/dev/null 2>&1 || :\n{END}\n"


def chain_script(name: str) -> str:
    """Our script for a hook we moved aside: our lines, then the original, as it was run."""
    return (f"#!/bin/sh\n{ID_LINE}{name} (runs {name}{CHAINED} after its own lines)\n{block(name)}"
            f'h="${{0%/*}}/{name}{CHAINED}"\n[ -x "$h" ] || exit 0\nexec "$h" "$@"\n')


def hooks_dir(ws: Workspace) -> Path:
    """Where git looks for hooks from this worktree (core.hooksPath, common dir)."""
    if not ws.is_git:
        raise UserError(f"{ws.worktree} is not in a git repository", hint="run `git init` first")
    return git_path(ws.worktree, "hooks")


# -- reading what is there ---------------------------------------------------------------
def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _is_ours(data: bytes | None) -> bool:
    """Our script (plain or chaining) carries its id on the line after ``#!``."""
    lines = (data or b"").split(b"\n", 2)
    return len(lines) > 1 and lines[1].startswith(ID_LINE.encode())


def _block_span(data: bytes) -> tuple[int, int] | None:
    """Byte offsets of our START..END lines inside a foreign hook."""
    start = data.find(b"\n" + START.encode() + b"\n")
    if start < 0:
        return None
    end = data.find(b"\n" + END.encode() + b"\n", start)
    return (start + 1, end + len(END) + 2) if end >= 0 else None


def _is_shell(data: bytes) -> bool:
    return bool(_SH.match(data)) and b"\n" in data


def _executable(path: Path) -> bool:
    return os.access(path, os.X_OK)


@dataclass(frozen=True)
class HookStatus:
    name: str
    state: str  # ours | chained | moved | missing | inactive
    path: Path
    detail: str
    current: bool  # our lines are those of this version

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "path": str(self.path), "detail": self.detail,
                "current": self.current}


def _status_of(directory: Path, name: str) -> HookStatus:
    path = directory / name
    data = _read(path)
    if data is not None:
        text = data.decode("utf-8", "replace")
        inactive = not _executable(path)
        if _is_ours(data):
            chained = (directory / f"{name}{CHAINED}").exists()
            state = "inactive" if inactive else ("chained" if chained else "ours")
            current = text in (script(name), chain_script(name))
            return HookStatus(name, state, path, f"runs {name}{CHAINED} too" if chained else "our script", current)
        span = _block_span(data)
        if span is not None:
            current = data[span[0]:span[1]].decode("utf-8", "replace") == block(name)
            return HookStatus(name, "inactive" if inactive else "chained", path,
                              "our lines inside the existing hook", current)
    for suffix, tool in MOVED.items():
        moved = directory / f"{name}{suffix}"
        moved_data = _read(moved)
        if moved_data is not None and (_is_ours(moved_data) or _block_span(moved_data)):
            if _runs_ours_as_legacy(directory, name, data):
                current = moved_data.decode("utf-8", "replace") in (script(name), chain_script(name)) or (
                    _block_span(moved_data) is not None)
                return HookStatus(name, "chained", moved, "run by pre-commit as its legacy hook", current)
            return HookStatus(name, "moved", moved, f"moved to {moved.name} (by {tool}?) and no longer run", False)
    return HookStatus(name, "missing", path, "another hook, without our lines" if data is not None else "no hook",
                      False)


COMMIT_HOOKS = ("pre-commit", "prepare-commit-msg", "commit-msg", "post-commit")


def only_ours_on_commit(directory: Path) -> bool:
    """Whether a commit runs no hook of ``directory`` (``hooks_dir``) but our own plain scripts: so
    one made in-process, with the trailers in its message and the inbox line written
    (``inbox.report``), skips nothing."""
    for name in COMMIT_HOOKS:
        path = directory / name
        data = _read(path)
        if data is None or not _executable(path):
            continue
        if not _is_ours(data) or (directory / f"{name}{CHAINED}").exists():
            return False
    return True


def reports_commits(directory: Path) -> bool:
    """Our post-commit hook is installed in ``directory`` and runs (it tells the inbox of each commit)."""
    return _status_of(directory, "post-commit").state in ("ours", "chained")


def status(ws: Workspace) -> list[HookStatus]:
    directory = hooks_dir(ws)
    return [_status_of(directory, name) for name in HOOKS]


# -- installing and removing ---------------------------------------------------------------
def _write(path: Path, data: bytes, mode: int) -> None:
    atomic_write(path, data, mode=mode)


def _runs_ours_as_legacy(directory: Path, name: str, data: bytes | None) -> bool:
    """pre-commit moved our hook to ``<name>.legacy`` and runs it from its own."""
    legacy = _read(directory / f"{name}.legacy")
    return (data is not None and b"File generated by pre-commit" in data and legacy is not None
            and (_is_ours(legacy) or _block_span(legacy) is not None))


def _install_one(directory: Path, name: str) -> str:
    """Put our lines in hook ``name``; returns what was done."""
    path = directory / name
    data = _read(path)
    if _runs_ours_as_legacy(directory, name, data):
        return _install_at(directory / f"{name}.legacy", name, _read(directory / f"{name}.legacy"))
    return _install_at(path, name, data)


def _install_at(path: Path, name: str, data: bytes | None) -> str:
    chained = path.with_name(f"{name}{CHAINED}")
    if data is None and not os.path.lexists(path):
        _write(path, script(name).encode(), 0o755)
        return "installed"
    if data is None:  # a dangling symlink: keep it, chained, exactly as it is
        data = b""
    mode = os.lstat(path).st_mode & 0o7777
    if _is_ours(data):
        wanted = (chain_script(name) if os.path.lexists(chained) else script(name)).encode()
    elif (span := _block_span(data)) is not None:
        wanted = data[:span[0]] + block(name).encode() + data[span[1]:]
    elif _is_shell(data) and _executable(path) and not path.is_symlink():
        first = data.index(b"\n") + 1
        _write(path, data[:first] + block(name).encode() + data[first:], mode)
        return "added to the existing hook"
    else:
        if os.path.lexists(chained):
            raise UserError(f"{chained} already exists next to another {name} hook",
                            hint="move one of them away, then run `milestoned hooks install` again")
        os.replace(path, chained)
        _write(path, chain_script(name).encode(), 0o755)
        return f"chained (the existing hook runs from {chained.name})"
    if data == wanted:
        return "up to date"
    _write(path, wanted, mode)
    return "updated"


def _remove_from(path: Path, name: str) -> bool:
    """Take our lines out of ``path``, or our script itself; True if anything changed.

    ``path`` is the hook or where another tool moved it (``.old``, ``.legacy``); a hook
    we had moved aside comes back to where our script now is.
    """
    data = _read(path)
    if data is None:
        return False
    if _is_ours(data):
        chained = path.with_name(f"{name}{CHAINED}")
        if os.path.lexists(chained):
            os.replace(chained, path)
        else:
            path.unlink()
        return True
    span = _block_span(data)
    if span is None:
        return False
    _write(path, data[:span[0]] + data[span[1]:], os.stat(path).st_mode & 0o7777)
    return True


def _uninstall_one(directory: Path, name: str) -> str:
    changed = _remove_from(directory / name, name)
    for suffix in MOVED:
        changed = _remove_from(directory / f"{name}{suffix}", name) or changed
    return "removed" if changed else "not installed"


def _config_record(ws: Workspace) -> Path:
    return ws.runtime_dir / "hooks-install.json"


def _config_get_all(ws: Workspace, key: str) -> list[str]:
    out = run_git(["config", "--get-all", key], ws.worktree, check=False)
    return out.stdout.splitlines() if out.returncode == 0 else []


def _configure(ws: Workspace) -> dict[str, str]:
    """Set what notes need; remember what we set so uninstall can take exactly that back."""
    record: dict[str, str] = read_json(_config_record(ws)) or {}
    if NOTES_REF not in _config_get_all(ws, "notes.rewriteRef"):
        run_git(["config", "--add", "notes.rewriteRef", NOTES_REF], ws.worktree)
        record["notes.rewriteRef"] = NOTES_REF
    for key, value in CONFIG_DEFAULTS.items():
        if not _config_get_all(ws, key):
            run_git(["config", key, value], ws.worktree)
            record[key] = value
    ensure_dir(ws.runtime_dir)
    atomic_write(_config_record(ws), json.dumps(record, sort_keys=True) + "\n", mode=0o600)
    return record


def _unconfigure(ws: Workspace) -> None:
    record = read_json(_config_record(ws))
    if record is None:
        return
    for key, value in record.items():
        if key == "notes.rewriteRef":
            run_git(["config", "--fixed-value", "--unset", key, value], ws.worktree, check=False)
        elif _config_get_all(ws, key) == [value]:  # still what we set: the user did not change it
            run_git(["config", "--unset", key], ws.worktree, check=False)
    _config_record(ws).unlink()


def install(ws: Workspace) -> dict[str, str]:
    """Install every hook (idempotent); returns what was done per hook."""
    directory = hooks_dir(ws)
    directory.mkdir(parents=True, exist_ok=True)
    _configure(ws)
    done = {name: _install_one(directory, name) for name in HOOKS}
    refwatch.baseline(ws)  # hookless commits from now on are reconciled against these refs
    return done


def uninstall(ws: Workspace) -> dict[str, str]:
    directory = hooks_dir(ws)
    done = {name: _uninstall_one(directory, name) for name in HOOKS}
    _unconfigure(ws)
    return done


def last_run(ws: Workspace, name: str) -> float | None:
    """When git last ran our hook ``name`` (each leaves a marker), if it did since it was installed."""
    try:
        ran = (ws.state_dir / f"seen.{name}").stat().st_mtime
        installed = _config_record(ws).stat().st_mtime
    except OSError:
        return None
    return ran if ran >= installed else None


def config_view(ws: Workspace) -> dict[str, Any]:
    return {
        "notes.rewriteRef": _config_get_all(ws, "notes.rewriteRef"),
        **{key: values[-1] if (values := _config_get_all(ws, key)) else None for key in CONFIG_DEFAULTS},
    }


# -- the held task ---------------------------------------------------------------------------
def hold_task(ws: Workspace, milestone_id: str | None, task_id: str | None) -> None:
    """Tell prepare-commit-msg which task this worktree works on (None, None: none any more).

    The file lives in this worktree's git dir, so each worktree holds its own task.
    """
    if ws.git_dir is None:
        return
    path = ws.git_dir / HELD_TASK_FILE
    if milestone_id is None or task_id is None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        return
    for value, what in ((milestone_id, "milestone id"), (task_id, "task id")):
        problem = id_problem(value, what)
        if problem:
            raise UserError(problem)

    atomic_write(path, f"{milestone_id} {task_id}\n")


def held_task(ws: Workspace) -> tuple[str, str] | None:
    """The (milestone, task) this worktree holds for prepare-commit-msg, if any."""
    if ws.git_dir is None:
        return None
    try:
        fields = (ws.git_dir / HELD_TASK_FILE).read_text(encoding="utf-8").split()
    except OSError:
        return None
    return (fields[0], fields[1]) if len(fields) >= 2 else None


def let_go(ws: Workspace, milestone_id: str, task_ids: list[str]) -> None:
    """Stop adding trailers for a task that is done, blocked or given back here."""
    held = held_task(ws)
    if held is not None and held[0] == milestone_id and held[1] in task_ids:
        hold_task(ws, None, None)


def let_go_of_finished(ws: Workspace, finished: set[tuple[str, str]]) -> None:
    """Tasks a commit finished (``Completes:``): no worktree adds their trailers any more."""
    if ws.common_dir is None or not finished:
        return
    linked = ws.common_dir / "worktrees"
    git_dirs = [ws.common_dir, *(sorted(linked.iterdir()) if linked.is_dir() else ())]
    for git_dir in git_dirs:
        path = git_dir / HELD_TASK_FILE
        try:
            fields = tuple(path.read_text(encoding="utf-8").split()[:2])
        except (OSError, UnicodeDecodeError):
            continue
        if fields in finished:
            path.unlink(missing_ok=True)
