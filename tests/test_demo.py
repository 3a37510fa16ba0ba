"""``milestoned demo`` end to end, as a new user runs it: no git identity, no configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IDENTITY, git, run_subprocess


@pytest.mark.slow
def test_demo_runs_a_sample_milestone_to_completion_without_a_git_identity(tmp_path: Path) -> None:
    base = tmp_path / "demo"
    root = base / "greeter"
    no_identity = {key: value for key, value in os.environ.items() if key not in IDENTITY}
    proc = subprocess.run([sys.executable, "-m", "milestoned", "demo", "--dir", str(base), "--workers", "4"],
                          cwd=tmp_path, env=no_identity, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "milestone greeter completed: 12/12 tasks" in proc.stdout
    assert f"  cd {root}" in proc.stdout and "  milestoned status greeter" in proc.stdout

    status = json.loads(run_subprocess("status", "greeter", "--json", cwd=root).stdout)
    assert status["milestone"]["status"] == "completed"
    branch = "milestone/greeter/_milestone"
    # landed into main, tested, and the milestone branch removed by gc: all of it is on main
    assert "milestoned land greeter: fast-forward of main to" in proc.stdout and "passed on the merge result" in proc.stdout
    assert (root / "greeter/core.py").read_text().strip().startswith("def greet(")  # the checkout brought along
    assert git("show", "main:CHANGES.md", cwd=root) == "# 0.1: first greetings"
    assert git("branch", "--list", "milestone/*", cwd=root) == ""
    assert "Ran 2 tests" in (root / ".git/milestoned/output/greeter/test.log").read_text()
    assert git("status", "--porcelain", cwd=root) == ""  # the plan is committed; nothing of ours is left
    assert "  git status:         clean: the state is not in your working tree" in proc.stdout
    assert set(git("log", "--format=%an <%ae>", "main", cwd=root).splitlines()) == {
        "milestoned demo <demo@milestoned.invalid>"}
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=root) == "main"
    # hooks, daemon, session, sync and a resume in a fresh clone were part of it
    assert "milestoned hooks install: post-commit" in proc.stdout
    assert "milestoned daemon start: pid" in proc.stdout and "milestoned daemon stop: stopped" in proc.stdout
    assert "the same state" in proc.stdout
    assert "sync origin: the milestoned/state branch and the notes pushed to" in proc.stdout
    assert f"git push origin main {branch}: the code, pushed by the demo itself" in proc.stdout
    clone = json.loads(run_subprocess("status", "greeter", "--json", cwd=base / "clone").stdout)
    assert [(t["id"], t["status"]) for t in clone["tasks"]] == [(t["id"], t["status"]) for t in status["tasks"]]
    assert git("show", "milestoned/state:README", cwd=base / "clone")
    assert run_subprocess("daemon", "status", cwd=root).returncode == 1  # nothing left running


def test_demo_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me\n")
    proc = run_subprocess("demo", "--dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == f"milestoned: error: {tmp_path} is not empty (give --dir a new or empty directory)\n"
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
