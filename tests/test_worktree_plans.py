"""Which plan a command reads: the one checked out where it runs, over the one shared state.

Every worktree reads and writes the one state in the common git dir; the plan is read
from the worktree the command runs in, as git reads any file, and from the main
worktree when that checkout has none.  ``execute`` keeps the plan it started with.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import as_json, fake, git, invoke, ok, plan, status_of, tasks_by_id, wait_for, write_milestone

PLAN = "id: m1\ntitle: shared\ntasks:\n  - {id: T1, title: one}\n  - {id: T2, title: two}\n"


def test_each_worktree_reads_its_own_plan_over_one_state(repo: Path) -> None:
    write_milestone(repo, "m1", PLAN)
    git("add", ".milestones", cwd=repo)
    git("commit", "-qm", "plan", cwd=repo)
    linked = repo.parent / "feature"
    git("worktree", "add", "-q", "-b", "feature", str(linked), cwd=repo)
    plan_there = linked / ".milestones/active/m1.yaml"
    plan_there.write_text(plan_there.read_text() + "  - {id: T3, title: only on feature}\n")
    ok(repo, "activate", "m1")
    ok(linked, "task", "done", "T1")  # a write from the other worktree, to the one state
    ok(linked, "task", "start", "T3")
    here = {t["id"]: t["status"] for t in as_json(repo, "status", "m1")["tasks"]}
    there = {t["id"]: t["status"] for t in as_json(linked, "status", "m1")["tasks"]}
    assert here == {"T1": "completed", "T2": "pending"}
    assert there == {"T1": "completed", "T2": "pending", "T3": "in_progress"}
    assert as_json(linked, "status")["milestone"]["id"] == "m1"  # one current milestone for the clone


def test_a_checkout_without_the_plan_reads_the_main_worktrees(repo: Path) -> None:
    write_milestone(repo, "m1", PLAN)  # never committed: it exists in the main worktree only
    linked = repo.parent / "elsewhere"
    git("worktree", "add", "-q", "-b", "elsewhere", str(linked), cwd=repo)
    assert not (linked / ".milestones").exists()
    ok(repo, "activate", "m1")
    ok(linked, "task", "done", "T1")
    view = as_json(linked, "status", "m1")
    assert view["milestone"]["path"] == str(repo / ".milestones/active/m1.yaml")
    assert [t["status"] for t in view["tasks"]] == ["completed", "pending"]
    assert not (linked / ".milestones").exists()  # and nothing was written there


def test_execute_keeps_the_plan_it_started_with_whatever_is_checked_out_meanwhile(
        repo: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    plan(repo, [{"id": "hold", "run": fake("--hold", str(release), "--write", "held.txt", "x")},
                {"id": "after", "dependencies": ["hold"], "run": fake("--write", "after.txt", "y")}])
    git("add", ".milestones", cwd=repo)
    git("commit", "-qm", "plan with two tasks", cwd=repo)
    git("checkout", "-q", "-b", "other", cwd=repo)
    other = repo / ".milestones/active/m1.yaml"
    other.write_text("id: m1\ntitle: another plan\ntasks:\n  - {id: unrelated, title: u, run: [\"false\"]}\n")
    git("commit", "-qam", "another plan on another branch", cwd=repo)
    git("checkout", "-q", "main", cwd=repo)
    runner = subprocess.Popen([sys.executable, "-m", "milestoned", "execute", "m1", "--workers", "2"], cwd=repo,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: tasks_by_id(status_of())["hold"]["status"] == "in_progress", "the first task to run")
        git("checkout", "-q", "other", cwd=repo)  # the user moves on while it runs
        release.touch()
        out, err = runner.communicate(timeout=120)
    finally:
        runner.kill()
    assert runner.returncode == 0, out + err
    assert "milestone m1 completed: 2/2 tasks" in out
    git("checkout", "-q", "main", cwd=repo)
    assert [(t["id"], t["status"]) for t in status_of()["tasks"]] == [("hold", "completed"), ("after", "completed")]
    assert git("show", "milestone/m1/_milestone:after.txt", cwd=repo) == "y"
    names = [e["event"] for e in json.loads(invoke("events", "m1", "--json", "-n", "0").stdout)["events"]]
    assert "commit_refused" not in names and names.count("task_completed") == 2
