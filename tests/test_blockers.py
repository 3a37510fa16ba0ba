"""Blocker detection and escalation, each detector provoked for real.

The daemon tests run a real daemon, make the real cause happen (a merge conflict, a
failing test command on a commit, a task left running, a full disk by a lowered
threshold, a forced start, a failing task command), and wait for what a user sees:
the milestone blocked with its blockers listed, the events, the saved session, and
the blocker cleared once the cause is gone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import (
    TWO_TASKS,
    Daemons,
    conflict,
    event_names,
    events_of,
    git,
    invoke,
    run_subprocess,
    session_file,
    wait_for,
    write_milestone,
)
from milestoned.core import clock
from milestoned.engine import blockers
from milestoned.engine.engine import Engine, Transaction
from milestoned.engine.testruns import RunLedger, TestCommand
from milestoned.files.workspace import Workspace
from milestoned.model.config import Config, load_config

MILESTONE = TWO_TASKS


def cli(root: Path, *args: str) -> str:
    result = run_subprocess(*args, cwd=root)
    assert result.returncode == 0, result.stderr
    return result.stdout


def configure(root: Path, text: str) -> None:
    (root / ".milestones/config.yaml").write_text(text)


def milestone_view(root: Path, mid: str = "m1") -> dict:
    return json.loads(cli(root, "status", mid, "--json"))["milestone"]


def blocked_by(root: Path, kind: str, mid: str = "m1") -> list[dict]:
    view = milestone_view(root, mid)
    return [b for b in view["blockers"] if b["type"] == kind] if view["status"] == "blocked" else []


def unblocked(root: Path, mid: str = "m1") -> bool:
    view = milestone_view(root, mid)
    return view["status"] == "in_progress" and not view["blockers"]


@pytest.fixture
def running(repo: Path) -> Path:
    write_milestone(repo, "m1", MILESTONE)
    cli(repo, "activate", "m1")
    return repo


@pytest.mark.slow
def test_a_merge_conflict_blocks_the_milestone_until_it_is_resolved(running: Path, daemons: Daemons) -> None:
    repo = running
    daemons.start(repo)
    conflict(repo)
    head = git("rev-parse", "HEAD", cwd=repo)
    found = wait_for(lambda: blocked_by(repo, "git_conflicts"), "the conflict to block m1")
    assert found[0]["paths"] == ["f.txt"] and found[0]["worktree"] == str(repo)
    names = event_names(repo, "m1")
    assert names.index("blocker_detected") < names.index("blockers_escalated") < len(names)
    escalated = [e for e in events_of(repo, "m1") if e["event"] == "blockers_escalated"][-1]
    assert "commit, then `milestoned resume`" in escalated["message"]
    saved = [e for e in events_of(repo, "m1") if e["event"] == "session_saved"][-1]
    assert saved["reason"] == "blocker_detected" and session_file(repo, saved["session"]).is_file()
    assert "then: resolve the conflicted paths, commit, then `milestoned resume`" in cli(repo, "blockers")
    # the daemon looked, and touched nothing of the user's
    assert git("rev-parse", "HEAD", cwd=repo) == head and (repo / ".git/MERGE_HEAD").exists()

    git("merge", "--abort", cwd=repo)
    wait_for(lambda: unblocked(repo), "the blocker to clear once the merge is aborted")
    cleared = [e for e in events_of(repo, "m1") if e["event"] == "blockers_cleared"][-1]
    assert cleared["remaining"] == [] and cleared["cleared"][0]["type"] == "git_conflicts"


@pytest.mark.slow
def test_a_conflict_in_a_task_worktree_blocks_only_its_milestone(running: Path, daemons: Daemons) -> None:
    repo = running
    write_milestone(repo, "m2", MILESTONE.replace("id: m1", "id: m2"))
    cli(repo, "activate", "m2")
    worktree = repo.parent / "task-T1"
    git("worktree", "add", "-q", "-b", "milestone/m1/T1", str(worktree), cwd=repo)
    daemons.start(repo)
    conflict(worktree, branch="side")
    found = wait_for(lambda: blocked_by(repo, "git_conflicts", "m1"), "the task worktree's conflict to block m1")
    assert found[0]["task_id"] == "T1" and found[0]["worktree"] == str(worktree)
    assert milestone_view(repo, "m2")["status"] == "in_progress"


@pytest.mark.slow
def test_a_failing_test_command_on_a_new_commit_blocks_until_a_commit_passes(running: Path,
                                                                            daemons: Daemons) -> None:
    repo = running
    journal = repo.parent / "runs.txt"
    script = repo.parent / "check.py"
    script.write_text(
        "import pathlib, sys, time\n"
        f"journal = pathlib.Path({str(journal)!r})\n"
        "with journal.open('a') as j: j.write('start\\n')\n"
        "time.sleep(0.3)\n"
        "with journal.open('a') as j: j.write('end\\n')\n"
        "sys.exit(0 if pathlib.Path('ok').exists() else 1)\n"
    )
    configure(repo, f"tests:\n  command: [{json.dumps(sys.executable)}, {json.dumps(str(script))}]\n  timeout: 60s\n")
    cli(repo, "trust")  # this clone's user approves the command: the daemon may run it by itself
    (repo / "ok").write_text("")
    git("add", "ok", cwd=repo)
    git("commit", "-q", "-m", "tests pass", cwd=repo)
    ledger = RunLedger(Workspace.discover(repo))
    daemons.start(repo)
    wait_for(lambda: ledger.get(git("rev-parse", "HEAD", cwd=repo)), "the daemon to test HEAD")
    assert unblocked(repo)

    git("rm", "-q", "ok", cwd=repo)
    git("commit", "-q", "-m", "break the tests", cwd=repo)
    broken = git("rev-parse", "HEAD", cwd=repo)
    found = wait_for(lambda: blocked_by(repo, "test_failures"), "the failing tests to block m1")
    assert found[0]["commit"] == broken and found[0]["exit_code"] == 1
    assert found[0]["detail"].startswith(f"`{shlex.join([sys.executable, str(script)])}` exited 1 on commit")

    (repo / "ok").write_text("")
    git("add", "ok", cwd=repo)
    git("commit", "-q", "-m", "fix the tests", cwd=repo)
    wait_for(lambda: unblocked(repo), "a passing commit to clear the blocker")
    assert len(ledger.runs()) == 3  # once per commit
    assert journal.read_text() == "start\nend\n" * 3  # never two runs at once


def test_a_test_command_past_its_timeout_is_killed_with_its_children(repo: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = (sys.executable, "-c",
               "import os, subprocess, sys, time\n"
               "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
               f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
               "time.sleep(60)\n")
    run = TestCommand(Workspace.discover(repo)).run(command, 1.0, "a" * 40)
    assert run.timed_out and not run.ok and run.exit_code is None
    assert "timed out after 1s" in Path(run.log).read_text()
    for pid in map(int, pids.read_text().split()):
        wait_for(lambda pid=pid: not _alive(pid), f"process {pid} to be gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent to reap it is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@pytest.mark.slow
def test_a_task_in_progress_past_its_threshold_blocks_until_done(running: Path, daemons: Daemons) -> None:
    repo = running
    configure(repo, "blockers:\n  long_running_after: 1s\n")
    daemons.start(repo)
    cli(repo, "task", "start", "T1", "--agent", "slowpoke")
    found = wait_for(lambda: blocked_by(repo, "long_running_tasks"), "the long-running task to block m1")
    assert found[0]["task_id"] == "T1" and "threshold 1s" in found[0]["detail"]
    cli(repo, "task", "done", "T1")
    wait_for(lambda: unblocked(repo), "the blocker to clear once T1 is done")


@pytest.mark.slow
def test_low_disk_blocks_with_a_lowered_threshold(running: Path, daemons: Daemons) -> None:
    repo = running
    configure(repo, "blockers:\n  disk_usage_percent: 0.001\n")
    daemons.start(repo)
    found = wait_for(lambda: blocked_by(repo, "disk_space"), "the disk threshold to block m1")
    assert "threshold 0.001%" in found[0]["detail"]
    configure(repo, "blockers:\n  disk_usage_percent: 100\n")
    wait_for(lambda: unblocked(repo), "the blocker to clear under a sane threshold")


@pytest.mark.slow
def test_a_task_started_before_its_dependencies_blocks(running: Path, daemons: Daemons) -> None:
    repo = running
    daemons.start(repo)
    cli(repo, "task", "start", "T2", "--force")
    found = wait_for(lambda: blocked_by(repo, "dependency_violation"), "the forced start to block m1")
    assert found[0]["task_id"] == "T2" and found[0]["dependencies"] == ["T1"]
    cli(repo, "task", "done", "T1")
    wait_for(lambda: unblocked(repo), "the blocker to clear once T1 is completed")


@pytest.mark.slow
def test_a_failed_task_command_blocks_and_the_daemon_never_runs_it(repo: Path, daemons: Daemons) -> None:
    ran = repo.parent / "ran.txt"
    write_milestone(repo, "m1", f"""
        id: m1
        title: Failing command
        status: planned
        tasks:
          - id: T1
            title: Fails
            run: [{json.dumps(sys.executable)}, "-c", "open({str(ran)!r}, 'a').write('ran\\\\n'); raise SystemExit(3)"]
          - id: T2
            title: Waits
            dependencies: [T1]
        """)
    daemons.start(repo)
    result = run_subprocess("execute", "m1", "--workers", "1", cwd=repo)
    assert result.returncode == 1, result.stderr
    found = wait_for(lambda: blocked_by(repo, "failed_command"), "the failed command to block m1")
    assert found[0]["task_id"] == "T1" and found[0]["exit_code"] == 3
    cli(repo, "task", "reopen", "T1")
    wait_for(lambda: unblocked(repo), "the blocker to clear once T1 is reopened")
    assert ran.read_text() == "ran\n"  # the runner ran it once; the daemon never did


def test_recheck_without_a_daemon_escalates_then_clears(running: Path) -> None:
    repo = running
    conflict(repo)
    result = invoke("blockers", "--recheck")
    assert result.exit_code == 0, result.output
    assert "milestone m1 is blocked (git_conflicts: unmerged paths in" in result.stdout
    assert milestone_view(repo)["status"] == "blocked"
    git("merge", "--abort", cwd=repo)
    result = invoke("blockers", "--recheck", "--json")
    assert "m1: cleared git_conflicts" in result.stderr
    assert json.loads(result.stdout)["milestones"][0]["blockers"] == []
    assert unblocked(repo)
    assert event_names(repo, "m1")[-1] == "blockers_cleared"


def test_a_paused_milestone_has_blockers_cleared_but_never_raised(running: Path) -> None:
    repo = running
    engine = Engine(Workspace.discover(repo))
    conflict(repo)
    with engine.transaction() as txn:
        assert blockers.recheck(txn, txn.milestone("m1")).detected
    cli(repo, "pause", "m1")
    git("merge", "--abort", cwd=repo)
    with engine.transaction() as txn:
        outcome = blockers.recheck(txn, txn.milestone("m1"))
    assert outcome.cleared and not outcome.remaining
    conflict(repo, branch="again")
    with engine.transaction() as txn:
        assert not blockers.recheck(txn, txn.milestone("m1")).detected
    assert milestone_view(repo)["status"] == "paused"


def test_blockers_of_unknown_kinds_are_kept(running: Path) -> None:
    repo = running
    engine = Engine(Workspace.discover(repo))
    foreign = {"type": "waiting_for_review", "detail": "legal must sign off"}
    with engine.transaction() as txn:
        ms = txn.milestone("m1")
        txn.record(ms, "blockers_escalated", blockers=[foreign])
    with engine.transaction() as txn:
        outcome = blockers.recheck(txn, txn.milestone("m1"))
    assert not outcome.changed and milestone_view(repo)["blockers"] == [foreign]


def test_blockers_cli_refuses_an_unknown_milestone(running: Path) -> None:
    result = invoke("blockers", "nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("milestoned: error: no milestone 'nope'")


STATUSES = st.sampled_from(["pending", "in_progress", "completed", "blocked"])


@settings(max_examples=60, deadline=None)
@given(statuses=st.lists(STATUSES, min_size=2, max_size=2), ages=st.lists(st.integers(0, 7200), min_size=2,
                                                                          max_size=2),
       exit_code=st.sampled_from([None, 0, 2]), disk=st.floats(0, 100))
def test_settling_what_was_found_leaves_nothing_to_settle(tmp_path_factory: pytest.TempPathFactory,
                                                          statuses: list[str], ages: list[int],
                                                          exit_code: int | None, disk: float) -> None:
    root = tmp_path_factory.getbasetemp() / "settle"
    if not root.exists():
        write_milestone(root, "m1", MILESTONE)
    engine = Engine(Workspace.discover(root))
    ms = engine.load("m1")
    now = clock.now()
    ms.state.status = "in_progress"
    for (tid, task), status, age in zip(ms.state.tasks.items(), statuses, ages):
        task.status = status
        task.started_at = clock.format_time(now - __import__("datetime").timedelta(seconds=age))
        task.blocker = {"reason": "command failed", "exit_code": exit_code} if status == "blocked" else None
    config = Config(long_running_after=3600.0, disk_usage_percent=50.0)
    probe = blockers.Probe(now=now, conflicts=(), disk_percent=disk)
    found, covered = blockers.detect(ms, config, probe)
    txn = Transaction(engine)  # never committed: nothing is written
    outcome = blockers.settle(txn, ms, found, covered)
    assert {blockers.key_of(b) for b in outcome.remaining} == {blockers.key_of(b) for b in found}
    assert ms.state.status == ("blocked" if found else "in_progress")
    assert not blockers.differs(ms, *blockers.detect(ms, config, probe))


def test_the_default_config_enables_every_detector(repo: Path) -> None:
    config = load_config(Workspace.discover(repo).config_path)
    assert config.detect_conflicts and config.detect_test_failures and config.detect_dependency_violations
    assert config.detect_failed_commands and config.long_running_after == 3600 and config.disk_usage_percent == 90


def test_without_a_daemon_status_and_blockers_see_an_unmerged_merge(running: Path) -> None:
    repo = running
    conflict(repo)
    view = json.loads(cli(repo, "status", "m1", "--json"))
    assert view["milestone"]["status"] == "blocked"
    assert [b["type"] for b in view["milestone"]["blockers"]] == ["git_conflicts"]
    assert "unmerged paths in" in cli(repo, "blockers")
    git("add", "f.txt", cwd=repo)
    git("commit", "-q", "--no-edit", cwd=repo)
    assert unblocked(repo)  # and once resolved, status says so by itself


def test_a_failed_command_says_what_works_and_reopening_it_unblocks(repo: Path) -> None:
    write_milestone(repo, "m1", f"id: m1\ntitle: t\ntasks:\n  - {{id: T1, title: fails, run: [{json.dumps(sys.executable)},"
                                " \"-c\", \"raise SystemExit(3)\"]}\n")
    result = invoke("execute", "m1")
    assert result.exit_code == 1
    message = [e for e in json.loads(cli(repo, "events", "m1", "--json", "-n", "0"))["events"]
               if e["event"] == "blockers_escalated"][-1]["message"]
    assert "`milestoned task reopen T1 -m m1` and `milestoned execute m1 --resume`" in message
    assert "milestoned resume" not in message.replace("execute m1 --resume", "")
    assert milestone_view(repo, "m1")["status"] == "blocked"
    assert "    then: `milestoned task reopen T1 -m m1`, then `milestoned execute m1 --resume`" in cli(repo, "blockers")
    cli(repo, "task", "reopen", "T1", "-m", "m1")
    assert unblocked(repo)  # its one blocker is resolved: it no longer shows blocked


def test_a_task_blocked_by_hand_says_what_to_run_when_it_can_go_on(running: Path) -> None:
    cli(running, "task", "block", "T1", "--reason", "waiting for the API key")
    assert cli(running, "blockers").splitlines()[-2:] == [
        "  task T1 blocked: waiting for the API key",
        "    then: `milestoned task reopen T1 -m m1` puts it back in the queue (or `milestoned task done T1 -m m1`)"]
    [task] = json.loads(cli(running, "blockers", "--json"))["milestones"][0]["blocked_tasks"]
    assert task["then"].startswith("`milestoned task reopen T1 -m m1`")


def test_a_long_running_tasks_age_is_the_age_when_shown() -> None:
    from milestoned.model.statuses import describe

    started = clock.format_time(clock.now() - dt.timedelta(hours=2, minutes=5))
    frozen = {"type": "long_running_tasks", "task_id": "T1", "detail": "T1 in progress for 4s (threshold 1s)",
              "started_at": started, "threshold": 1.0}
    assert describe(frozen) == "long_running_tasks: T1 in progress for 2h05m (threshold 1s)"
