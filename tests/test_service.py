"""Service units: the contrib files, `daemon install`/`uninstall`, and the unit actually running."""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import invoke, must
from milestoned.daemon import client, service
from milestoned.files.workspace import Workspace

CONTRIB = Path(__file__).resolve().parent.parent / "contrib"
UNIT = CONTRIB / "systemd" / "milestoned@.service"
PLIST = CONTRIB / "launchd" / "io.milestoned.daemon.plist"


def unit_settings(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def verify(unit_dir: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify --user`` on units in ``unit_dir`` (a private runtime dir for it)."""
    runtime = Path(tempfile.mkdtemp(prefix="sdrt-", dir="/tmp"))
    os.chmod(runtime, 0o700)
    try:
        return subprocess.run(
            ["systemd-analyze", "verify", "--user", *(str(unit_dir / n) for n in names)],
            capture_output=True, text=True, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)}, timeout=120,
        )
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def test_the_contrib_unit_is_a_notify_template_that_restarts_on_failure() -> None:
    text = UNIT.read_text()
    assert text == service.systemd_unit(service.CONTRIB_COMMAND)  # one source: service.py
    settings = unit_settings(text)
    assert settings["Type"] == "notify" and settings["Restart"] == "on-failure"
    assert int(settings["WatchdogSec"]) > 0 and settings["WorkingDirectory"] == "%f"
    assert settings["ExecStart"].split()[-2:] == ["daemon", "run"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_passes_on_the_template_and_an_instance(tmp_path: Path) -> None:
    shutil.copy(UNIT, tmp_path / UNIT.name)
    instance = service.instance_name(tmp_path)
    shutil.copy(UNIT, tmp_path / instance)
    result = verify(tmp_path, [UNIT.name, instance])
    assert result.returncode == 0, result.stderr
    assert "milestoned@" not in result.stderr + result.stdout, result.stderr


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="systemd-escape is not installed")
@pytest.mark.parametrize("path", ["/srv/repo", "/home/ana/my repo/x-y", "/tmp/.hidden/été", "/a//b/./c/"])
def test_instance_names_are_what_systemd_escape_makes(path: str) -> None:
    expected = subprocess.run(["systemd-escape", "--path", path], capture_output=True, text=True, check=True)
    assert service.escape_path(path) == expected.stdout.strip()


def test_the_contrib_plist_keeps_the_daemon_alive_in_its_repository() -> None:
    agent = plistlib.loads(PLIST.read_bytes())
    assert PLIST.read_bytes() == service.contrib_plist()
    assert agent["ProgramArguments"] == ["/usr/local/bin/milestoned", "daemon", "run"]
    assert agent["KeepAlive"] == {"SuccessfulExit": False} and agent["RunAtLoad"] is True
    assert agent["WorkingDirectory"] == "/path/to/repository"
    assert agent["StandardOutPath"] == agent["StandardErrorPath"] == "/path/to/repository/.git/milestoned/daemon.log"


def test_install_writes_a_systemd_unit_that_runs_this_milestoned(repo: Path) -> None:
    result = invoke("daemon", "install", "--systemd")
    assert result.exit_code == 0, result.output
    unit = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user" / "milestoned@.service"
    assert result.stdout.splitlines()[0] == f"wrote {unit}"
    name = service.instance_name(repo)
    assert f"systemctl --user enable --now {shlex.quote(name)}" in result.stdout
    settings = unit_settings(unit.read_text())
    assert shlex.split(settings["ExecStart"]) == [sys.executable, "-m", "milestoned", "daemon", "run"]
    if shutil.which("systemd-analyze"):
        shutil.copy(unit, unit.parent / name)
        checked = verify(unit.parent, [name])
        assert checked.returncode == 0 and "milestoned@" not in checked.stderr, checked.stderr
        (unit.parent / name).unlink()


def test_uninstall_disables_this_repository_and_keeps_the_template_for_others(repo: Path) -> None:
    must("daemon", "install", "--systemd")
    unit_dir = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user"
    wants = unit_dir / "default.target.wants"
    wants.mkdir()
    mine, other = service.instance_name(repo), service.instance_name(Path("/srv/other"))
    for name in (mine, other):  # what `systemctl --user enable` leaves behind
        (wants / name).symlink_to(unit_dir / "milestoned@.service")
    result = invoke("daemon", "uninstall", "--systemd")
    assert result.exit_code == 0, result.output
    assert not (wants / mine).is_symlink() and (wants / other).is_symlink()
    assert (unit_dir / "milestoned@.service").exists() and "other repositories use it" in result.stdout
    (wants / other).unlink()
    assert invoke("daemon", "uninstall", "--systemd").exit_code == 0
    assert not (unit_dir / "milestoned@.service").exists()


def test_install_and_uninstall_a_launchd_agent(repo: Path) -> None:
    result = invoke("daemon", "install", "--launchd")
    assert result.exit_code == 0, result.output
    path = Path.home() / "Library" / "LaunchAgents" / f"{service.launchd_label(repo)}.plist"
    assert result.stdout.splitlines()[0] == f"wrote {path}"
    agent = plistlib.loads(path.read_bytes())
    assert agent["ProgramArguments"] == [sys.executable, "-m", "milestoned", "daemon", "run"]
    assert agent["WorkingDirectory"] == str(repo) and agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["StandardErrorPath"] == str(repo / ".git" / "milestoned" / "daemon.log")
    assert invoke("daemon", "uninstall", "--launchd").exit_code == 0
    assert not path.exists()


def test_choosing_both_kinds_is_refused_in_one_line(repo: Path) -> None:
    result = invoke("daemon", "install", "--systemd", "--launchd")
    assert result.exit_code == 2
    assert result.stderr == "milestoned: error: --systemd and --launchd exclude each other (pick one)\n"


@pytest.mark.slow
def test_the_installed_unit_starts_a_daemon_that_speaks_sd_notify(repo: Path) -> None:
    """What systemd does with the unit: run ExecStart= in WorkingDirectory= with NOTIFY_SOCKET."""
    must("daemon", "install", "--systemd")
    unit = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user" / "milestoned@.service"
    settings = unit_settings(unit.read_text())
    notify_dir = Path(tempfile.mkdtemp(prefix="sdn-", dir="/tmp"))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_dir / "notify"))
    listener.settimeout(60)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_dir / "notify"), "WATCHDOG_USEC": "500000"}
    proc = subprocess.Popen(shlex.split(settings["ExecStart"]), cwd=settings["WorkingDirectory"].replace("%f", str(repo)),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = listener.recv(4096).decode().splitlines()
        assert "READY=1" in ready and f"MAINPID={proc.pid}" in ready
        assert client.ping(Workspace.discover(repo))["pid"] == proc.pid  # type: ignore[index]
        assert listener.recv(4096) == b"WATCHDOG=1"
        proc.send_signal(signal.SIGTERM)
        messages = [listener.recv(4096)]
        while messages[-1] != b"STOPPING=1":
            messages.append(listener.recv(4096))
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
        shutil.rmtree(notify_dir, ignore_errors=True)
