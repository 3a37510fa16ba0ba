"""``milestoned daemon ...`` (start, stop, status, run, install, uninstall) and ``blockers``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from milestoned.cli.base import F, cli, json_option, milestone_argument, open_engine, print_json, say, warn

if TYPE_CHECKING:
    from milestoned.engine.engine import Engine
    from milestoned.files.workspace import Workspace


def _workspace() -> Workspace:
    # start-up: loaded only when this command runs
    from milestoned.files.workspace import Workspace

    ws = Workspace.discover()
    ws.require_initialized()
    return ws


@cli.group()
def daemon() -> None:
    """The repository's background daemon: watches, detects blockers, answers status fast.

    One daemon serves a repository and all of its worktrees.  Commands work the same
    without it; with it, `status` answers from memory and blockers are escalated as
    soon as they appear.
    """


@daemon.command()
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for it to answer.")
def start(timeout: float) -> None:
    """Start the daemon in the background; returns once it answers on its socket."""
    # start-up: loaded only when this command runs
    from milestoned.daemon import control as daemonctl

    ws = _workspace()
    started, info = daemonctl.start(ws, timeout=timeout)
    if started:
        say(f"milestoned daemon started for {ws.root} (pid {info['pid']}, socket {info['socket']})")
    else:
        say(f"milestoned daemon already running for {ws.root} (pid {info['pid']}, socket {info['socket']})")


@daemon.command()
def stop() -> None:
    """Stop the daemon (it saves the current session first)."""
    # start-up: loaded only when this command runs
    from milestoned.daemon import control as daemonctl

    ws = _workspace()
    pid = daemonctl.stop(ws)
    say(f"milestoned daemon stopped (pid {pid})" if pid else f"no milestoned daemon runs for {ws.root}")


@daemon.command("status")
@json_option
def daemon_status(as_json: bool) -> int:
    """Whether the daemon runs, and what it watches.  Exits 1 when it does not run."""
    # start-up: loaded only when this command runs
    from milestoned.daemon import client
    from milestoned.daemon import control as daemonctl

    ws = _workspace()
    info = client.ping(ws)
    cleaned = [] if info else daemonctl.clean_stale(ws)
    if as_json:
        print_json({"schema": 1, "running": info is not None, "daemon": info,
                    "stale_files_removed": [str(p) for p in cleaned]})
        return 0 if info else 1
    if info is None:
        say(f"no milestoned daemon runs for {ws.root}")
        for path in cleaned:
            say(f"removed {path}, left by a daemon that died")
        return 1
    say(f"milestoned daemon running for {info['root']}")
    say(f"  pid {info['pid']}, since {info['started_at']}, socket {info['socket']}")
    say(f"  milestones: {', '.join(info['milestones']) or 'none'}")
    say(f"  watching {len(info['watching'])} directories" + ("" if info["watcher_alive"] else " (watcher down)"))
    if info.get("last_test"):
        run = info["last_test"]
        outcome = "passed" if run["ok"] else ("timed out" if run["timed_out"] else f"failed ({run['exit_code']})")
        say(f"  last test run: {outcome} on {run['commit'][:12]}")
    for problem in info["problems"]:
        warn(problem)
    if info.get("warning"):
        warn(info["warning"])
    return 0


@daemon.command()
def run() -> int:
    """Serve in the foreground (for systemd, launchd, or a terminal) until stopped."""
    # start-up: loaded only when this command runs
    from milestoned.daemon import server as daemon_process

    return daemon_process.run(_workspace())


def _kind(systemd: bool, launchd: bool) -> str:
    # start-up: loaded only when this command runs
    from milestoned.core.errors import UserError
    from milestoned.daemon import service

    if systemd and launchd:
        raise UserError("--systemd and --launchd exclude each other", hint="pick one")
    return "systemd" if systemd else "launchd" if launchd else service.default_kind()


def service_kind_options(func: F) -> F:
    """``--systemd`` / ``--launchd``: which service manager (default: this system's)."""
    func = click.option("--launchd", is_flag=True, help="A launchd agent (the default on macOS).")(func)
    return click.option("--systemd", is_flag=True, help="A systemd user service (the default on Linux).")(func)


@daemon.command()
@service_kind_options
def install(systemd: bool, launchd: bool) -> None:
    """Write the service unit that runs this repository's daemon, and say how to enable it."""
    # start-up: loaded only when this command runs
    from milestoned.daemon import service

    for line in service.install(_workspace(), _kind(systemd, launchd)):
        say(line)


@daemon.command()
@service_kind_options
def uninstall(systemd: bool, launchd: bool) -> None:
    """Remove this repository's service unit."""
    # start-up: loaded only when this command runs
    from milestoned.daemon import service

    for line in service.uninstall(_workspace(), _kind(systemd, launchd)):
        say(line)


# -- blockers ---------------------------------------------------------------------------
def _recheck(engine: Engine, mid: str, *, err: bool) -> None:
    """Run the test command on HEAD if it was never run there, then judge the blockers again."""
    # start-up: loaded only when this command runs
    from milestoned.engine import blockers
    from milestoned.engine.testruns import TestCommand
    from milestoned.git import queries as gitutil
    from milestoned.model.config import load_config

    config = load_config(engine.ws.config_path)
    head = gitutil.head_commit(engine.ws.root) if engine.ws.is_git else None
    if head and config.test_command and config.detect_test_failures:
        run = TestCommand(engine.ws).run(config.test_command, config.test_timeout, head)
        say(f"test command {run.outcome} on {head[:12]}", err=err)
    probe = blockers.gather(engine.ws, config)
    with engine.transaction() as txn:
        outcome = blockers.recheck(txn, txn.milestone(mid), config=config, probe=probe)
    for cleared in outcome.cleared:
        say(f"{mid}: cleared {cleared.get('type')}: {cleared.get('detail')}", err=err)
    if outcome.message:
        say(outcome.message, err=err)


@cli.command("blockers")
@milestone_argument
@json_option
@click.option("--recheck", is_flag=True, help="Look again now: clear what is resolved, escalate what is new.")
def blockers_command(milestone: str | None, as_json: bool, recheck: bool) -> None:
    """What blocks a milestone (default: the current one, else every active milestone)."""
    # start-up: loaded only when this command runs
    from milestoned.core.errors import UserError
    from milestoned.engine import blockers
    from milestoned.model.plan import NotAMilestone
    from milestoned.model.views import describe

    engine = open_engine()
    if milestone is None and engine.current_id() is None:
        mids = [p.stem for p in engine.milestone_paths() if p.parent.name != "completed"]
    else:
        mids = [engine.resolve(milestone)]
    chosen = []
    for mid in mids:
        try:
            if recheck:
                _recheck(engine, mid, err=as_json)  # --json keeps stdout for the JSON
            chosen.append(engine.load(mid))
        except NotAMilestone:
            continue
        except UserError as exc:
            if len(mids) == 1:
                raise
            warn(str(exc))
    view = blockers.view(chosen)
    if as_json:
        print_json(view)
        return
    for row in view["milestones"]:
        if not row["blockers"] and not row["blocked_tasks"]:
            say(f"{row['milestone_id']} ({row['status']}): no blockers")
            continue
        say(f"{row['milestone_id']} ({row['status']})")
        for blocker in row["blockers"]:
            since = f"  (since {blocker['since']})" if blocker.get("since") else ""
            say(f"  {describe(blocker)}{since}")
        for task in row["blocked_tasks"]:
            say(f"  task {task['id']} blocked: {task.get('reason', '')}")
        if row["resume"]:
            say(f"resolve them, then run `{row['resume']}`")
