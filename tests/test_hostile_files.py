"""A repository someone tampered with: links planted where milestoned writes, a shared umask.

Writes never follow a link out of the repository or the git dir, crash reports go to a
private place, and nothing milestoned creates is writable by other users, whatever the
umask it was started with.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TWO_TASKS, git, invoke, log_file, must, run_subprocess, write_milestone


@pytest.fixture
def active(repo: Path) -> Path:
    write_milestone(repo, "m1", TWO_TASKS)
    must("activate", "m1")
    return repo


def test_a_log_planted_as_a_link_to_a_file_elsewhere_is_refused(active: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    log = log_file(active, "m1")
    log.unlink()
    log.symlink_to(victim)
    result = invoke("task", "start", "T1")
    assert result.exit_code == 2
    assert result.stderr == (f"milestoned: error: .git/milestoned/log/m1.jsonl: is a link to {victim}: milestoned "
                             "never writes through a link (replace the link with the file itself)\n")
    assert victim.read_text() == "precious\n"


def test_a_state_folder_planted_as_a_link_elsewhere_is_refused(active: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sessions = active / ".git/milestoned/sessions"
    if sessions.exists():
        sessions.rmdir()
    sessions.symlink_to(elsewhere)
    result = invoke("session", "save")
    assert result.exit_code == 2
    assert "leads to" in result.stderr and "milestoned never writes through a link" in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_a_plan_folder_that_is_a_link_out_of_the_repository_is_never_written(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "m1.yaml").write_text("id: m1\ntitle: t\ntasks: []\n")
    active_dir = repo / ".milestones/active"
    active_dir.rmdir()
    active_dir.symlink_to(outside)  # a tracked link, as a hostile branch can bring one
    assert invoke("status", "m1").exit_code == 0  # reading through it is only reading
    result = invoke("task", "add", "T1", "-m", "m1", "--title", "x")
    assert result.exit_code == 2 and "outside the repository" in result.stderr
    assert (outside / "m1.yaml").read_text() == "id: m1\ntitle: t\ntasks: []\n"


def test_a_crash_report_goes_to_a_private_place_never_to_a_fixed_name_in_tmp(active: Path, tmp_path: Path) -> None:
    # a bug, provoked for real: the engine's load replaced by one that breaks
    script = ("import sys\nfrom milestoned.engine import engine\n"
              "engine.Engine.load = lambda self, mid: 1 / 0\n"
              "from milestoned.cli import main\nsys.exit(main(['status', 'm1']))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=active, capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 3
    report = active / ".git/milestoned/crash.log"
    assert f"the details are in {report}" in proc.stderr
    assert "ZeroDivisionError" in report.read_text()
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("milestoned-crash-*"))


def test_outside_a_repository_a_crash_report_goes_to_the_users_state_home(tmp_path: Path) -> None:
    script = ("import sys\nfrom milestoned.cli import cli, main\n"
              "import click\n@cli.command('boom')\ndef boom():\n    raise RuntimeError('boom')\n"
              "sys.exit(main(['boom']))\n")
    state_home = tmp_path / "state"
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "XDG_STATE_HOME": str(state_home)})
    assert proc.returncode == 3
    assert (state_home / "milestoned/crash.log").is_file()
    assert stat.S_IMODE((state_home / "milestoned").stat().st_mode) == 0o700


@pytest.mark.slow
def test_nothing_milestoned_creates_is_writable_by_others_under_umask_000(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git("init", "-q", "-b", "main", cwd=root)
    git("commit", "-q", "--allow-empty", "-m", "start", cwd=root)
    before = {p for p in root.rglob("*")}
    script = "import os, sys\nos.umask(0)\nfrom milestoned.cli import main\nsys.exit(main(sys.argv[1:]))\n"

    def run(*args: str) -> None:
        proc = subprocess.run([sys.executable, "-c", script, *args], cwd=root, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr

    run("init")
    run("new", "m1", "--title", "t")
    run("task", "add", "T1", "-m", "m1", "--title", "one", "--run", "true")
    run("hooks", "install")
    run("activate", "m1")
    run("execute", "m1", "--resume")
    run("session", "save", "m1")
    run("daemon", "start")
    try:
        created = sorted(p for p in root.rglob("*") if p not in before and not p.is_symlink())
        writable = [str(p.relative_to(root)) for p in created if p.stat().st_mode & 0o022]
        assert not writable, writable
        assert created  # there is something to check
    finally:
        run_subprocess("daemon", "stop", cwd=root)
