"""``milestoned doctor``: what is set up, what is not, and the command that fixes it.

Each check is a small function returning ``Check`` rows; none of them changes
anything (the daemon check only removes files a dead daemon left, as ``daemon
status`` does).  Asking the remote which refs are not synced is the one network call,
skipped with ``offline``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from milestoned.core import clock
from milestoned.core.errors import MilestonedError, display_path
from milestoned.daemon import client
from milestoned.daemon import control as daemonctl
from milestoned.engine import legacy, trust
from milestoned.engine.engine import Engine
from milestoned.files.runners import gone_runs
from milestoned.git import hookinstall as hooks
from milestoned.git import remotes, statebranch
from milestoned.mcp import integrate as integration
from milestoned.model.config import load_config
from milestoned.model.plan import NotAMilestone, all_problems
from milestoned.model.views import task_rows
from milestoned.runner.taskprocess import agent_not_found, find_executable


@dataclass(frozen=True)
class Check:
    area: str
    status: str  # ok | warn | fail
    detail: str
    fix: str | None = None


def check_config(engine: Engine) -> Iterator[Check]:
    try:
        config = load_config(engine.ws.config_path)
    except MilestonedError as exc:
        yield Check("config", "fail", str(exc), "fix the line it names")
        return
    where = display_path(engine.ws.config_path)
    yield Check("config", "ok", where if engine.ws.config_path.exists() else "no config.yaml: defaults apply")
    if config.agent_command:  # agent.command when set, else the preset: what `execute` would run
        found = find_executable(config.agent_command, engine.ws.worktree)
        yield (Check("agent", "ok", f"{config.agent_source}: {found}") if found else
               Check("agent", "fail", *agent_not_found(config)))
    for command in trust.commands(engine.ws, config):
        if command.approved:
            yield Check("trust", "ok", f"{command.setting} {command.shown} is approved on this clone")
        else:
            yield Check("trust", "warn", trust.note(command, engine.ws.config_path), "milestoned trust")


def check_milestones(engine: Engine) -> Iterator[Check]:
    count = 0
    for path in engine.milestone_paths():
        problems = [p for p in all_problems(path) if not isinstance(p, NotAMilestone)]
        for problem in problems:
            yield Check("milestones", "fail", str(problem), "fix the line it names")
        if problems:
            continue
        count += 1
        milestone = engine.load(path.stem)
        for warning in milestone.event_problems():
            yield Check("event log", "warn", warning)
        for warning in milestone.plan_warnings():
            yield Check("plan", "warn", warning)
        for pid, tasks in gone_runs(task_rows(milestone)).items():
            yield Check("execute", "warn", f"{milestone.id}: {', '.join(tasks)} in progress under `milestoned execute` "
                        f"(pid {pid}), which is no longer running", f"milestoned execute {milestone.id} --resume")
        fields = milestone.plan.state_fields
        if fields and milestone.state.has_baseline:
            names = sorted({str(keypath[-1]) for keypath in fields})
            yield Check("plan", "warn", f"{display_path(path)}:{milestone.plan.line_of(*fields[0], key=True) or 1}: "
                        f"{', '.join(names)} ({len(fields)} in all) hold state the seed or an earlier version "
                        "wrote; milestoned read them once and no longer does",
                        f"remove them if you like; `milestoned status {milestone.id} --format yaml` shows the state")
    yield Check("milestones", "ok", f"{count} milestone file(s) read without error")


def check_leftovers(engine: Engine) -> Iterator[Check]:
    """What earlier versions kept in .milestones/: imported into the git dir, now only clutter."""
    waiting = {s.path for s in legacy.pending(engine.ws)}
    folders: dict[Path, list[Path]] = {}
    for source in legacy.sources(engine.ws):
        folders.setdefault(source.path.parent, []).append(source.path)
    for folder, paths in folders.items():
        if any(p in waiting for p in paths):
            yield Check("leftovers", "warn", f"{display_path(folder)}: not imported yet", "run any milestoned command")
            continue
        what = display_path(paths[0]) if len(paths) == 1 else f"{display_path(folder)}/ ({len(paths)} files)"
        yield Check("leftovers", "warn", f"{what}: imported into {display_path(engine.ws.state_dir)} and no "
                    "longer read", f"delete it (git rm -r if it is tracked): {what.split(' ')[0]}")


def check_hooks(engine: Engine) -> Iterator[Check]:
    if not engine.ws.is_git:
        yield Check("hooks", "warn", "not a git repository: commits cannot feed task state", "git init")
        return
    rows = hooks.status(engine.ws)
    broken = [h for h in rows if h.state not in ("ours", "chained")]
    stale = [h for h in rows if h.state in ("ours", "chained") and not h.current]
    for hook in broken:
        yield Check("hooks", "warn", f"{hook.name}: {hook.state} ({hook.detail}) at {hook.path}",
                    "milestoned hooks install")
    for hook in stale:
        yield Check("hooks", "warn", f"{hook.name}: installed by another version of milestoned",
                    "milestoned hooks install")
    if not broken and not stale:
        yield Check("hooks", "ok", f"{len(rows)} hooks installed in {rows[0].path.parent}" if rows else "no hooks")
        ran = hooks.last_run(engine.ws, "post-commit")
        if ran is None:
            yield Check("hooks", "warn", "git has not run the post-commit hook since it was installed",
                        "make a commit; if this stays, git does not reach the hooks: check `git config core.hooksPath` "
                        "and the hooks directory git uses (`git rev-parse --git-path hooks`)")
        else:
            when = clock.format_time(dt.datetime.fromtimestamp(ran, dt.timezone.utc))
            yield Check("hooks", "ok", f"git ran the post-commit hook at {when}: commits reach milestoned")
    if not hooks.config_view(engine.ws)["notes.rewriteRef"]:
        yield Check("notes", "warn", "notes.rewriteRef is not set: amend and rebase drop milestoned notes",
                    "milestoned hooks install")


def check_daemon(engine: Engine) -> Iterator[Check]:
    if not engine.ws.is_git:
        return
    info = client.ping(engine.ws)
    if info is None:
        for path in daemonctl.clean_stale(engine.ws):
            yield Check("daemon", "warn", f"removed {path}, left by a daemon that died")
        yield Check("daemon", "warn", "not running: no blocker detection while you work",
                    "milestoned daemon start (or milestoned daemon install)")
        return
    yield Check("daemon", "ok", f"pid {info['pid']} since {info['started_at']}")
    for problem in info.get("problems") or []:
        yield Check("daemon", "warn", problem)


def check_refs(engine: Engine, *, offline: bool) -> Iterator[Check]:
    if not engine.ws.is_git:
        return
    repo = statebranch.open_repo(engine.ws)
    if statebranch.tip(repo) is None:
        yield Check("state branch", "warn", f"{statebranch.REF} does not exist yet: no session saved",
                    "milestoned session save")
    else:
        yield Check("state branch", "ok", f"{statebranch.REF} at {str(statebranch.tip(repo))[:12]}")
    remote = remotes.default_remote(engine.ws)
    if remote is None or offline:
        return
    try:
        rows = remotes.unsynced(engine.ws, remote)
    except MilestonedError as exc:
        yield Check("sync", "warn", f"could not ask {remote}: {exc}")
        return
    for row in rows:
        said = {"ahead": f"this clone is ahead of {remote} (not pushed yet)",
                "behind": f"{remote} is ahead of this clone (not fetched yet)",
                "not pushed": f"not pushed to {remote} yet", "not fetched": f"on {remote}, not fetched here"}
        yield Check("sync", "warn", f"{row['ref']}: {said.get(row['status'], row['status'] + ' with ' + remote)}",
                    f"milestoned sync {remote}")
    if not rows:
        yield Check("sync", "ok", f"state, notes and claims match {remote}")


def check_integration(engine: Engine) -> Iterator[Check]:
    """The claude-code integration, where there is one: the server registered, the commands ours."""
    found = integration.state(engine.ws)
    if found["server"] == "missing" and all(state == "missing" for state in found["commands"].values()):
        return
    fix = "milestoned integrate claude-code"
    runs = f"`{found.get('runs')}`"
    if found["server"] == "broken":
        yield Check("claude-code", "fail", found["problem"], "fix the line it names")
    elif found["server"] == "missing":
        yield Check("claude-code", "warn", ".mcp.json: the milestoned server is missing", fix)
    elif found["server"] == "yours" and found["found"]:
        yield Check("claude-code", "ok", f".mcp.json: the milestoned server is yours, kept as you set it (runs {runs})")
    elif found["server"] == "yours":
        yield Check("claude-code", "warn", f".mcp.json: your milestoned server runs {runs}, and its command is not "
                    "found here", "correct its command in .mcp.json")
    elif not found["found"]:
        yield Check("claude-code", "warn", f".mcp.json runs {runs}, and its command is not found here",
                    f"{fix} (it writes the path of this install when milestoned is not on PATH)")
    else:
        yield Check("claude-code", "ok", f".mcp.json registers the milestoned server (runs {runs})")
    missing = [name for name, state in found["commands"].items() if state == "missing"]
    edited = [name for name, state in found["commands"].items() if state == "edited"]
    if missing:
        yield Check("claude-code", "warn", f"/milestone: commands missing: {', '.join(missing)}", fix)
    if edited:
        yield Check("claude-code", "ok", f"/milestone: commands edited by you (kept as they are): {', '.join(edited)}")
    if not missing and not edited:
        yield Check("claude-code", "ok", "the /milestone:execute, status, next and block commands are in place")


CHECKS: tuple[Callable[..., Iterator[Check]], ...] = (check_config, check_milestones, check_leftovers, check_hooks,
                                                      check_daemon, check_integration)


def diagnose(engine: Engine, *, offline: bool = False) -> list[Check]:
    rows = [row for check in CHECKS for row in check(engine)]
    rows += list(check_refs(engine, offline=offline))
    return rows


def as_json(rows: list[Check]) -> dict[str, object]:
    return {"schema": 1, "ok": not any(r.status == "fail" for r in rows), "checks": [asdict(r) for r in rows]}
