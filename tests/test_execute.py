"""``milestoned execute``: real processes in real worktrees, merged into the milestone branch."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    BRANCH,
    events_named,
    fake,
    git,
    invoke,
    plan,
    session_file,
    show,
    snapshot_tree,
    status_of,
    tasks_by_id,
)


def test_ready_tasks_run_at_once_up_to_the_worker_limit(repo: Path, tmp_path: Path) -> None:
    spans = tmp_path / "spans.jsonl"
    plan(repo, [{"id": f"T{i}", "run": fake("--spans", str(spans), "--sleep", "0.4",
                                            "--write", f"out/T{i}.txt", f"made by T{i}")} for i in range(1, 7)])
    result = invoke("execute", "m1", "--workers", "3")
    assert result.exit_code == 0, result.output
    intervals = [json.loads(line) for line in spans.read_text().splitlines()]
    assert sorted(i["task"] for i in intervals) == [f"T{i}" for i in range(1, 7)]
    most = max(sum(1 for o in intervals if o["start"] < i["end"] and i["start"] < o["end"]) for i in intervals)
    assert 2 <= most <= 3, f"{most} tasks overlapped with 3 workers"
    for i in range(1, 7):
        assert show(repo, f"out/T{i}.txt") == f"made by T{i}"
    messages = git("log", "--format=%B%x00", BRANCH, cwd=repo)
    assert "Milestone: m1\nCompletes: T4" in messages
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 1
    assert git("branch", "--list", "milestone/m1/T*", cwd=repo) == ""
    assert "milestone m1 completed: 6/6 tasks" in result.stdout
    assert f"work:  branch {BRANCH}" in result.stdout


def test_a_task_works_on_top_of_what_its_dependencies_merged(repo: Path) -> None:
    plan(repo, [
        {"id": "first", "run": fake("--sleep", "0.3", "--write", "a.txt", "from first")},
        {"id": "other", "run": fake("--write", "b.txt", "from other")},
        {"id": "then", "dependencies": ["first", "other"], "run": ["sh", "-c", "cat a.txt b.txt > c.txt"]},
    ])
    result = invoke("execute", "m1", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert show(repo, "c.txt") == "from first\nfrom other"


def test_an_agent_that_commits_while_commits_are_ingested_still_completes_once(repo: Path) -> None:
    script = (f"echo work > work.txt && git add work.txt && git commit -q -m 'agent work' && "
              f"{sys.executable} -m milestoned status m1 > /dev/null")  # drains: ingest sees the commit
    plan(repo, [{"id": "T1", "run": ["sh", "-c", script]},
                {"id": "T2", "dependencies": ["T1"], "run": fake("--write", "more.txt", "more")}])
    result = invoke("execute", "m1")
    assert result.exit_code == 0, result.output
    assert "note:" not in result.stdout
    assert [e["task_id"] for e in events_named("task_completed")] == ["T1", "T2"]
    assert show(repo, "work.txt") == "work"
    assert git("log", "--format=%s", f"{BRANCH}~1^2", cwd=repo).splitlines()[0] == "agent work"


def test_a_failing_command_blocks_only_its_dependents(repo: Path) -> None:
    plan(repo, [
        {"id": "bad", "run": fake("--lines", "30", "--exit", "3")},
        {"id": "after-bad", "dependencies": ["bad"], "run": fake()},
        {"id": "good", "run": fake("--write", "good.txt", "ok")},
        {"id": "after-good", "dependencies": ["good"], "run": fake("--write", "after.txt", "ok")},
        {"id": "missing", "run": ["no-such-command-here"]},
    ])
    result = invoke("execute", "m1", "--workers", "2")
    assert result.exit_code == 1
    tasks = tasks_by_id(status_of())
    assert {t: tasks[t]["status"] for t in tasks} == {
        "bad": "blocked", "after-bad": "pending", "good": "completed", "after-good": "completed",
        "missing": "blocked"}
    log = ".git/milestoned/output/m1/bad.log"  # in the git dir: the working tree is the user's
    assert tasks["bad"]["output"] == log
    assert (repo / log).read_text().splitlines()[0] == "line 1"
    blocker = tasks["bad"]["blocker"]
    assert blocker["reason"] == "command exited with status 3" and blocker["exit_code"] == 3
    assert blocker["tail"] == [f"line {n}" for n in range(11, 31)]
    assert tasks["after-bad"]["waiting_on_blocked"]
    assert f"  blocked   bad  command exited with status 3 — log {log}" in result.stdout
    assert "  waiting   after-bad  needs bad" in result.stdout
    assert "next:  milestoned task reopen bad -m m1" in result.stdout
    assert show(repo, "after.txt") == "ok"
    assert tasks["missing"]["blocker"]["reason"] == (
        "could not start 'no-such-command-here': No such file or directory")
    # escalated without a daemon: the milestone is blocked, its blockers listed, the session saved
    milestone = status_of()["milestone"]
    assert milestone["status"] == "blocked"
    assert sorted(b.get("task_id") for b in milestone["blockers"]) == ["bad", "missing"]
    names = [e["event"] for e in json.loads(invoke("events", "m1", "--json", "-n", "0").stdout)["events"]]
    assert "blocker_detected" in names and "blockers_escalated" in names
    assert names.index("blockers_escalated") < len(names) - 1 - names[::-1].index("session_saved")


def test_a_prompt_reaches_the_agent_as_one_argument_and_no_shell_runs(repo: Path, tmp_path: Path) -> None:
    argv_file = tmp_path / "argv.jsonl"
    config = repo / ".milestones/config.yaml"
    command = fake("--record-argv", str(argv_file), "--task", "{task_id}", "--workdir", "{workdir}",
                   "--prompt", "{prompt}")
    config.write_text(f"agent:\n  command: {json.dumps(command)}\n")
    prompt = "Say \"hi\"; it's {task_id} $(touch hacked) `touch ticks` && touch pwned > out | cat"
    plan(repo, [{"id": "T1", "title": "Ask the agent", "prompt": prompt}])
    result = invoke("execute", "m1")
    assert result.exit_code == 0, result.output
    record = json.loads(argv_file.read_text())
    assert record["argv"][-2:] == ["--prompt", prompt]
    assert record["argv"][record["argv"].index("--task") + 1] == "T1"
    assert record["cwd"] == str(repo / ".git/milestoned/worktrees/m1/T1")
    assert not [p for p in tmp_path.rglob("*") if p.name in ("hacked", "ticks", "pwned", "out")]
    assert show(repo, "NOTES.md") == prompt
    task_commit = git("log", "-1", "--format=%B", f"{BRANCH}^2", cwd=repo)
    assert task_commit.startswith("T1: Ask the agent") and task_commit.endswith("Milestone: m1\nTask: T1")
    assert git("log", "-1", "--format=%B", BRANCH, cwd=repo).endswith("Milestone: m1\nCompletes: T1")
    started = events_named("task_started")[0]
    assert started["agent"] == f"{Path(sys.executable).name}-1" and started["runner_pid"] > 0


def test_a_prompt_task_without_an_agent_command_is_refused_and_nothing_changes(repo: Path) -> None:
    plan(repo, [{"id": "T1", "prompt": "do it"}])
    before = snapshot_tree(repo)
    result = invoke("execute", "m1")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "milestoned: error: .milestones/config.yaml: task T1 has a prompt but no agent command is configured "
        '(set agent.preset (claude-code, codex or aider) or agent.command, for example ["my-agent", "--print", '
        '"{prompt}"])']
    assert snapshot_tree(repo) == before


def test_execute_needs_a_git_repository_with_a_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, make_git in (("plain", False), ("unborn", True)):
        root = tmp_path / name
        root.mkdir()
        monkeypatch.chdir(root)
        if make_git:
            git("init", "-q", "-b", "main", cwd=root)
        assert invoke("init").exit_code == 0
        plan(root, [{"id": "T1", "run": fake()}])
        before = snapshot_tree(root)
        result = invoke("execute", "m1")
        assert result.exit_code == 2
        expected = ("execute needs a git repository (run `git init` and commit something first)" if not make_git
                    else "the repository has no commit yet (commit something first: the milestone branch "
                         "starts from HEAD)")
        assert result.stderr == f"milestoned: error: {expected}\n"
        assert snapshot_tree(root) == before


def test_a_running_milestone_needs_resume(repo: Path) -> None:
    plan(repo, [{"id": "T1", "run": fake()}])
    assert invoke("activate", "m1").exit_code == 0
    result = invoke("execute", "m1")
    assert result.exit_code == 2
    assert "milestone m1 is in_progress, not planned or paused (continue it with `milestoned execute m1 --resume`)" \
        in result.stderr
    assert invoke("execute", "m1", "--resume").exit_code == 0
    assert status_of()["milestone"]["status"] == "completed"


def test_a_merge_conflict_blocks_that_task_keeps_its_worktree_and_resume_finishes(repo: Path) -> None:
    plan(repo, [
        {"id": "left", "run": fake("--write", "shared.txt", "left")},
        {"id": "right", "run": fake("--write", "shared.txt", "right")},
        {"id": "after", "dependencies": ["left", "right"], "run": fake("--write", "after.txt", "after")},
    ])
    result = invoke("execute", "m1", "--workers", "2")
    assert result.exit_code == 1
    tasks = tasks_by_id(status_of())
    blocked = [t for t in ("left", "right") if tasks[t]["status"] == "blocked"]
    assert len(blocked) == 1 and tasks["after"]["status"] == "pending"
    loser = blocked[0]
    blocker = tasks[loser]["blocker"]
    worktree = repo / f".git/milestoned/worktrees/m1/{loser}"
    assert blocker["reason"] == "merge conflict" and blocker["paths"] == ["shared.txt"]
    assert blocker["worktree"] == str(worktree)
    assert "<<<<<<<" in (worktree / "shared.txt").read_text()
    assert git("diff", "--name-only", "--diff-filter=U", cwd=worktree) == "shared.txt"
    assert f"resolve it in {worktree}, commit, then `milestoned execute m1 --resume`" in result.stdout

    (worktree / "shared.txt").write_text("left and right\n")
    git("add", "shared.txt", cwd=worktree)
    git("commit", "-q", "--no-edit", cwd=worktree)
    result = invoke("execute", "m1", "--resume")
    assert result.exit_code == 0, result.output
    assert status_of()["milestone"]["status"] == "completed"
    assert show(repo, "shared.txt") == "left and right"
    assert show(repo, "after.txt") == "after"
    assert not worktree.exists()


def test_execute_leaves_the_users_head_index_and_working_tree_alone(repo: Path) -> None:
    (repo / "staged.txt").write_text("staged\n")
    git("add", "staged.txt", cwd=repo)
    (repo / "README.md").write_text("my unsaved edit\n")
    (repo / "untracked.txt").write_text("mine\n")
    plan(repo, [
        {"id": "T1", "run": fake("--write", "README.md", "rewritten by T1")},
        {"id": "T2", "dependencies": ["T1"], "run": fake("--write", "staged.txt", "T2")},
    ])
    head = (git("symbolic-ref", "HEAD", cwd=repo), git("rev-parse", "HEAD", cwd=repo))
    index = (repo / ".git/index").read_bytes()
    status = git("status", "--porcelain", cwd=repo)
    files = {k: v for k, v in snapshot_tree(repo).items() if not k.startswith(".milestones")}
    result = invoke("execute", "m1")
    assert result.exit_code == 0, result.output
    assert (git("symbolic-ref", "HEAD", cwd=repo), git("rev-parse", "HEAD", cwd=repo)) == head
    assert (repo / ".git/index").read_bytes() == index
    assert {k: v for k, v in snapshot_tree(repo).items() if not k.startswith(".milestones")} == files
    assert git("status", "--porcelain", cwd=repo) == status
    assert show(repo, "README.md") == "rewritten by T1" and show(repo, "staged.txt") == "T2"


def test_a_task_past_its_timeout_is_stopped_and_blocked(repo: Path, tmp_path: Path) -> None:
    (repo / ".milestones/config.yaml").write_text("execute:\n  task_timeout: 300ms\n")
    pid_file = tmp_path / "pid"
    plan(repo, [{"id": "slow", "run": fake("--pid-file", str(pid_file), "--sleep", "60")}])
    result = invoke("execute", "m1")
    assert result.exit_code == 1
    assert tasks_by_id(status_of())["slow"]["blocker"]["reason"] == "timed out after 0.3s"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_on_a_terminal_a_live_panel_shows_progress_tasks_agents_and_events(repo: Path) -> None:
    from rich.console import Console

    from milestoned.engine.engine import Engine
    from milestoned.files.workspace import Workspace
    from milestoned.runner.display import LiveDisplay
    from milestoned.runner.scheduler import Runner

    plan(repo, [{"id": "T1", "title": "First thing", "run": fake("--sleep", "0.3")},
                {"id": "T2", "title": "Second thing", "dependencies": ["T1"], "run": fake()}])
    screen = io.StringIO()
    display = LiveDisplay(Console(file=screen, force_terminal=True, width=120, color_system=None))
    outcome = Runner(Engine(Workspace.discover(repo)), "m1", workers=2, display=display).execute()
    display.end()
    last_frame = screen.getvalue().rsplit("m1 — Runner test", 1)[1]
    assert outcome.exit_code == 0
    assert "2/2 tasks" in last_frame
    bar_line = next(line for line in last_frame.splitlines() if "█" in line)
    assert bar_line.strip(" │") == "█" * 40  # the progress bar, whole, on a line of its own, no colour needed
    assert any("task" in line and "status" in line and "agent" in line for line in last_frame.splitlines())
    rows = [line.replace("│", " ").split() for line in last_frame.splitlines() if line.strip().startswith("T")]
    assert [row[:3] for row in rows] == [["T1", "completed", "First"], ["T2", "completed", "Second"]]
    assert "active agents: none" in last_frame
    assert "started T1 (worker-1)" in last_frame and "completed T2: merged" not in last_frame


# -- interruptions: a real runner process, stopped from outside ---------------------------------
def start_runner(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "milestoned", "execute", "m1", *args], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_9_then_resume_runs_no_completed_task_again(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    plan(repo, [{"id": f"T{i}", "dependencies": [f"T{i - 2}"] if i > 2 else [],
                 "run": fake("--marker", str(marker), "--sleep", "0.3", "--write", f"T{i}.txt", "x")}
                for i in range(1, 9)])
    runner = start_runner(repo, "--workers", "2")

    def progressed() -> bool:
        tasks = status_of()["tasks"]
        return sum(t["status"] == "completed" for t in tasks) >= 2 and any(t["status"] == "in_progress" for t in tasks)

    wait_for(progressed)
    runner.kill()
    runner.communicate()
    done_before = {t["id"] for t in status_of()["tasks"] if t["status"] == "completed"}
    running_before = {t["id"] for t in status_of()["tasks"] if t["status"] == "in_progress"}
    said = invoke("status", "m1").stderr
    assert f"in progress under `milestoned execute` (pid {runner.pid}), which is no longer running: " \
           "`milestoned execute m1 --resume` runs them again" in said
    assert all(task in said for task in running_before)
    assert f"(pid {runner.pid}), which is no longer running" in invoke("doctor", "--offline").stdout

    result = invoke("execute", "m1", "--resume")
    assert result.exit_code == 0, result.output
    assert status_of()["milestone"]["status"] == "completed"
    runs = marker.read_text().split()
    assert all(runs.count(t) == 1 for t in done_before), runs
    assert set(runs) == {f"T{i}" for i in range(1, 9)}
    assert {e["task_id"] for e in events_named("task_requeued")} == running_before
    assert [e["workers"] for e in events_named("execute_resumed")] == [2]  # as many as the run it resumes
    assert events_named("milestone_activated")[-1]["workers"] == 2
    assert all(show(repo, f"T{i}.txt") == "x" for i in range(1, 9))
    assert not events_named("status_set_manually")
    assert git("status", "--porcelain", cwd=repo) == "?? .milestones/"  # the plan, and nothing of ours


@pytest.mark.slow
def test_ctrl_c_stops_the_tasks_saves_the_session_and_resume_finishes(repo: Path, tmp_path: Path) -> None:
    pid_file, release = tmp_path / "pid", tmp_path / "release"
    plan(repo, [
        {"id": "quick", "run": fake("--write", "quick.txt", "q")},
        {"id": "long", "run": fake("--pid-file", str(pid_file), "--hold", str(release))},
    ])
    runner = start_runner(repo, "--workers", "2")
    wait_for(lambda: pid_file.exists() and tasks_by_id(status_of())["long"]["status"] == "in_progress")
    second = invoke("execute", "m1", "--resume")
    assert second.exit_code == 2 and "milestone m1 is already being executed by pid" in second.stderr
    assert "no longer running" not in invoke("status", "m1").stderr  # its runner is alive

    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=30)
    assert runner.returncode == 130, err
    assert "requeued   long  interrupted" in out
    assert "next:  milestoned execute m1 --resume" in out
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    tasks = tasks_by_id(status_of())
    assert (tasks["long"]["status"], tasks["long"]["started_at"]) == ("pending", None)  # back in the queue
    saved = events_named("session_saved")[-1]
    assert saved["reason"] == "execute interrupted by SIGINT" and session_file(repo, saved["session"]).is_file()

    release.touch()
    result = invoke("execute", "m1", "--resume")
    assert result.exit_code == 0, result.output
    assert status_of()["milestone"]["status"] == "completed"


@pytest.mark.slow
def test_sigterm_stops_the_run_with_status_143_and_requeues_its_task(repo: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    plan(repo, [{"id": "long", "run": fake("--pid-file", str(pid_file), "--hold", str(tmp_path / "never"))}])
    runner = start_runner(repo)
    wait_for(lambda: pid_file.exists() and tasks_by_id(status_of())["long"]["status"] == "in_progress")
    runner.terminate()
    out, err = runner.communicate(timeout=30)
    assert runner.returncode == 143, err
    assert tasks_by_id(status_of())["long"]["status"] == "pending"
    assert events_named("task_requeued")[-1]["reason"] == "interrupted"
