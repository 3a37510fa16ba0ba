"""``milestoned daemon ...``: start, stop, status, run, install, uninstall."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from milestoned.cli.base import F, cli, json_option, print_json, say, warn

if TYPE_CHECKING:
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
    if info is None and daemonctl.lock_held(ws):
        warn(f"{daemonctl.wedged(ws)}: `milestoned daemon stop` ends it")
        return 1
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
