"""A command that reaches this clone inside a tracked file runs by itself only once trusted here.

The daemon runs the test command of ``config.yaml`` when commits land; a pull can bring
a new one.  It runs only what this clone's user approved with ``milestoned trust``,
exactly that; a changed command waits again, and ``status``, ``doctor`` and the daemon's
log say so.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from conftest import TWO_TASKS, Daemons, at, clone, git, make_repo, ok, wait_for, write_milestone
from milestoned.engine.testruns import RunLedger
from milestoned.files.workspace import Workspace


def config_running(marker: Path, word: str) -> str:
    code = f"open({str(marker)!r}, 'a').write({word!r} + '\\n')"
    return f"tests:\n  command: [{json.dumps(sys.executable)}, \"-c\", {json.dumps(code)}]\n"


@pytest.fixture
def shared(tmp_path: Path) -> tuple[Path, Path]:
    """Two clones of one project; the second runs a daemon with m1 active and its hooks installed."""
    origin = make_repo(tmp_path / "origin")
    write_milestone(origin, "m1", TWO_TASKS)
    (origin / ".milestones/config.yaml").write_text("# no command yet\n")
    git("add", ".milestones", cwd=origin)
    git("commit", "-q", "-m", "plan", cwd=origin)
    mine = clone(origin, tmp_path / "mine")
    ok(mine, "hooks", "install")
    ok(mine, "activate", "m1")
    return origin, mine


@pytest.mark.slow
def test_a_test_command_that_arrives_by_pull_waits_for_approval(shared: tuple[Path, Path], tmp_path: Path,
                                                                daemons: Daemons) -> None:
    origin, mine = shared
    marker = tmp_path / "ran.txt"
    daemons.start(mine)
    (origin / ".milestones/config.yaml").write_text(config_running(marker, "first"))
    git("commit", "-q", "-am", "a teammate adds a test command", cwd=origin)
    git("pull", "-q", cwd=mine)  # it arrives; a commit lands too
    wait_for(lambda: any("awaits your approval" in p for p in (daemons.ping(mine) or {}).get("problems", [])),
             "the daemon to say the command waits")
    time.sleep(1.5)  # the daemon had every chance to run it
    assert not marker.exists()
    log = (mine / ".git/milestoned/daemon.log").read_text()
    assert "the tests.command of config.yaml" in log and "awaits your approval" in log
    status = at(mine, "status", "m1")
    assert "awaits your approval before it runs by itself: milestoned trust" in status.stderr
    doctor = json.loads(at(mine, "doctor", "--offline", "--json").stdout)
    assert [c["fix"] for c in doctor["checks"] if c["area"] == "trust"] == ["milestoned trust"]

    shown = ok(mine, "trust")
    assert "tests.command: " in shown and ": approved now" in shown
    head = git("rev-parse", "HEAD", cwd=mine)
    wait_for(lambda: RunLedger(Workspace.discover(mine)).get(head), "the daemon to run the approved command")
    assert marker.read_text() == "first\n"

    (origin / ".milestones/config.yaml").write_text(config_running(marker, "second"))
    git("commit", "-q", "-am", "the command changes", cwd=origin)
    git("pull", "-q", cwd=mine)
    wait_for(lambda: any("awaits your approval" in p for p in (daemons.ping(mine) or {}).get("problems", [])),
             "the changed command to wait again")
    time.sleep(1.5)
    assert marker.read_text() == "first\n"  # a changed command is a new command


def test_trust_list_changes_nothing_and_a_command_run_by_hand_needs_no_approval(shared: tuple[Path, Path],
                                                                                 tmp_path: Path) -> None:
    _, mine = shared
    marker = tmp_path / "ran.txt"
    (mine / ".milestones/config.yaml").write_text(config_running(marker, "by hand"))
    listed = json.loads(ok(mine, "trust", "--list", "--json"))
    assert [(c["setting"], c["approved"]) for c in listed["commands"]] == [("tests.command", False)]
    assert json.loads(ok(mine, "trust", "--list", "--json"))["commands"][0]["approved"] is False
    ok(mine, "blockers", "--recheck")  # the user asked: it runs
    assert marker.read_text() == "by hand\n"

