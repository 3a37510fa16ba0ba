"""``gc``: what is merged goes, what holds work stays and says why; and ``land``/``gc`` killed at random.

Real ``execute`` runs make the branches and worktrees; real ``kill -9`` interrupts
``land`` and ``gc`` at random instants, and the next run must reach the same end with
no commit and no change lost.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BRANCH, events_named, git, invoke, make_repo, must, plan

TASKS = [
    {"id": "ok", "run": ["sh", "-c", "echo ok > ok.txt"]},
    {"id": "committed", "run": ["sh", "-c", "echo c > c.txt && git add c.txt && git commit -qm 'c work' && exit 3"]},
    {"id": "dirty", "run": ["sh", "-c", "echo d > d.txt; exit 4"]},
]
TREES = ".git/milestoned/worktrees/m1"


def executed(repo: Path) -> None:
    plan(repo, TASKS)
    git("add", ".milestones", cwd=repo)
    git("commit", "-q", "-m", "plan m1", cwd=repo)
    assert invoke("execute", "m1").exit_code == 1  # two tasks fail


def branches(repo: Path) -> list[str]:
    return git("for-each-ref", "--format=%(refname:short)", "refs/heads/milestone/", cwd=repo).split()


def reachable(repo: Path) -> set[str]:
    return set(git("rev-list", "--all", cwd=repo).split())


def gc_rows(repo: Path, *args: str) -> list[dict]:
    result = invoke("gc", "--json", *args)
    assert result.exit_code == 0, result.output
    return [row for group in json.loads(result.stdout)["milestones"] for row in group["items"]]


def test_gc_keeps_unmerged_commits_and_uncommitted_work_and_removes_the_rest(repo: Path) -> None:
    executed(repo)
    assert branches(repo) == ["milestone/m1/_milestone", "milestone/m1/committed", "milestone/m1/dirty"]
    listed = must("gc", "--dry-run").stdout.splitlines()
    assert listed == [
        f"kept         m1: branch milestone/m1/committed (worktree {TREES}/committed): 1 commit merged nowhere",
        f"kept         m1: branch milestone/m1/dirty (worktree {TREES}/dirty): its worktree has 1 uncommitted file(s)",
        "kept         m1: branch milestone/m1/_milestone: not landed yet (milestoned land)",
    ]
    must("land", "m1")
    before = reachable(repo)
    rows = {row["name"]: (row["action"], row["why"]) for row in gc_rows(repo)}
    assert rows == {
        "milestone/m1/committed": ("kept", "1 commit merged nowhere"),
        "milestone/m1/dirty": ("kept", "its worktree has 1 uncommitted file(s)"),
        # landed, but blocked: its next tasks still merge there
        "milestone/m1/_milestone": ("kept", "the milestone is not completed: its next tasks merge here"),
    }
    assert branches(repo) == ["milestone/m1/_milestone", "milestone/m1/committed", "milestone/m1/dirty"]
    assert (repo / TREES / "dirty" / "d.txt").read_text() == "d\n"  # the work is where it was
    assert git("log", "-1", "--format=%s", "milestone/m1/committed", cwd=repo) == "c work"
    assert reachable(repo) == before  # no commit lost
    assert gc_rows(repo, "--dry-run") == gc_rows(repo)  # nothing more to do: the same answer


def test_gc_removes_a_task_once_its_work_is_merged_and_prunes_what_was_deleted_by_hand(repo: Path) -> None:
    executed(repo)
    (repo / TREES / "dirty" / "d.txt").unlink()  # the dirty task's change given up: a clean, empty branch
    git("worktree", "add", "-q", "--detach", str(repo / TREES / "stray"), "main", cwd=repo)  # a stray of ours
    gone = repo / TREES / "committed"
    subprocess.run(["rm", "-rf", str(gone)], check=True)  # a folder deleted by hand: its registration stays
    worktrees = git("worktree", "list", cwd=repo)
    assert "committed" in worktrees and "stray" in worktrees
    rows = {(row["kind"], row["name"]): row["action"] for row in gc_rows(repo)}
    assert rows[("branch", "milestone/m1/dirty")] == "removed"
    assert rows[("worktree", f"{TREES}/stray")] == "removed"
    assert rows[("branch", "milestone/m1/committed")] == "kept"  # its commit is on no other ref
    assert rows[("registration", f"{TREES}/committed")] == "removed"
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 1
    assert branches(repo) == ["milestone/m1/_milestone", "milestone/m1/committed"]


def test_gc_leaves_a_milestone_that_is_being_executed_alone(repo: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    plan(repo, [{"id": "long", "run": [sys.executable, "-c", f"import os, time\nwhile not os.path.exists("
                                                             f"{str(release)!r}): time.sleep(0.05)"]}])
    runner = subprocess.Popen([sys.executable, "-m", "milestoned", "execute", "m1"], cwd=repo,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (repo / TREES / "long").exists():
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.05)
        [row] = gc_rows(repo)
        assert row["action"] == "kept" and row["why"].startswith("milestone m1 is already being executed by pid")
        assert (repo / TREES / "long").is_dir()
    finally:
        release.touch()
        runner.communicate(timeout=60)


# -- killed at random instants -----------------------------------------------------------------
def _landable(root: Path) -> str:
    """A repository where land must make a merge commit, test it and bring the checkout along."""
    make_repo(root)
    must_at = lambda *args: subprocess.run([sys.executable, "-m", "milestoned", *args], cwd=root,  # noqa: E731
                                           capture_output=True, text=True, check=True)
    must_at("init")
    plan(root, [{"id": "A", "title": "a"}])
    (root / "check.py").write_text("import pathlib, sys, time\ntime.sleep(0.1)\n"
                                   "sys.exit(0 if pathlib.Path('work-0.txt').exists() else 1)\n")
    (root / ".milestones/config.yaml").write_text(f"tests:\n  command: [{json.dumps(sys.executable)}, "
                                                  f"{json.dumps(str(root / 'check.py'))}]\n")
    git("add", ".", cwd=root)
    git("commit", "-q", "-m", "plan", cwd=root)
    must_at("activate", "m1")
    git("checkout", "-q", "-b", BRANCH, cwd=root)
    for i in range(3):
        (root / f"work-{i}.txt").write_text(f"work {i}\n")
        git("add", ".", cwd=root)
        git("commit", "-q", "-m", f"work {i}", cwd=root)
    git("checkout", "-q", "main", cwd=root)
    (root / "main.txt").write_text("main moved on\n")
    git("add", "main.txt", cwd=root)
    git("commit", "-q", "-m", "main moves on", cwd=root)
    return git("rev-parse", BRANCH, cwd=root)


@pytest.mark.slow
def test_land_killed_at_random_then_run_again_lands_once_with_a_clean_checkout(tmp_path: Path) -> None:
    rng = random.Random(11)
    for round_ in range(10):
        root = tmp_path / f"r{round_}"
        work = _landable(root)
        proc = subprocess.Popen([sys.executable, "-m", "milestoned", "land", "m1"], cwd=root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 0.9))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        again = subprocess.run([sys.executable, "-m", "milestoned", "land", "m1"], cwd=root, capture_output=True,
                               text=True)
        assert again.returncode == 0, (round_, again.stdout, again.stderr)
        git("merge-base", "--is-ancestor", work, "main", cwd=root)  # landed (raises otherwise)
        assert git("status", "--porcelain", cwd=root) == "", round_
        assert (root / "work-2.txt").read_text() == "work 2\n" and (root / "main.txt").exists()
        landed = [e for e in _events(root) if e["event"] == "milestone_landed"]
        assert len(landed) == 1 and landed[0]["commit"] == git("rev-parse", "main", cwd=root), round_
        assert git("worktree", "list", "--porcelain", cwd=root).count("worktree ") == 1  # no scratch left
        assert not (root / ".git/milestoned/land-m1.json").exists()


def _events(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / ".git/milestoned/log/m1.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_gc_killed_at_random_then_run_again_removes_the_same_and_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(7)
    for round_ in range(8):
        root = tmp_path / f"g{round_}"
        make_repo(root)
        subprocess.run([sys.executable, "-m", "milestoned", "init"], cwd=root, capture_output=True, check=True)
        base = root / TREES
        for i in range(6):  # six merged task branches with clean worktrees, one with an unmerged commit
            name = f"milestone/m1/T{i}"
            git("worktree", "add", "-q", "-b", name, str(base / f"T{i}"), "main", cwd=root)
        (base / "T5" / "x.txt").write_text("unmerged\n")
        git("add", "x.txt", cwd=base / "T5")
        git("commit", "-q", "-m", "unmerged work", cwd=base / "T5")
        git("branch", BRANCH, "main", cwd=root)
        before = reachable(root)
        proc = subprocess.Popen([sys.executable, "-m", "milestoned", "gc"], cwd=root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        subprocess.run([sys.executable, "-m", "milestoned", "gc"], cwd=root, capture_output=True, check=True)
        assert branches(root) == ["milestone/m1/T5", "milestone/m1/_milestone"], round_
        assert reachable(root) == before, round_
        assert sorted(p.name for p in base.iterdir()) == ["T5"], round_
        assert git("worktree", "list", "--porcelain", cwd=root).count("worktree ") == 2


def test_land_then_gc_leaves_only_what_holds_work(repo: Path) -> None:
    plan(repo, TASKS[:1])
    git("add", ".milestones", cwd=repo)
    git("commit", "-q", "-m", "plan m1", cwd=repo)
    must("execute", "m1")
    out = must("land", "m1").stdout
    assert "`milestoned gc` would now remove 1 branch" in out and "note:" not in out  # completed: all of it
    must("gc")
    assert branches(repo) == []
    assert [e["kind"] for e in events_named("milestone_landed")] == ["fast-forward"]
    assert must("land", "m1").stdout.startswith("nothing to land: m1's work is in main since ")  # after gc too


def test_a_partial_land_says_so_and_gc_keeps_a_process_s_worktree(repo: Path, tmp_path: Path) -> None:
    executed(repo)
    out = must("land", "m1").stdout
    assert "note: m1 is blocked: only its completed tasks' work landed; land again once the rest is done" in out
    worker = subprocess.Popen(["sleep", "30"], cwd=repo / TREES / "dirty")  # a task that outlived its run
    try:
        (repo / TREES / "dirty" / "d.txt").unlink()  # nothing uncommitted: only the process keeps it
        [row] = [r for r in gc_rows(repo) if r["name"] == "milestone/m1/dirty"]
        assert (row["action"], row["why"]) == ("kept", f"a process still works in its worktree (pid {worker.pid})")
    finally:
        worker.kill()
        worker.wait()
    assert [r["action"] for r in gc_rows(repo) if r["name"] == "milestone/m1/dirty"] == ["removed"]


def test_gc_removes_a_ref_lock_a_killed_git_left_and_no_live_one(repo: Path) -> None:
    executed(repo)
    stale = repo / ".git/refs/heads/milestone/m1/committed.lock"
    stale.write_text("")  # as a git killed inside its ref update leaves it
    held = repo / ".git/refs/heads/milestone/m1/dirty.lock"
    with held.open("w"):  # a live process has this one open: it stays
        rows = [row for row in gc_rows(repo) if row["kind"] == "lock"]
        assert [row["name"] for row in rows] == [".git/refs/heads/milestone/m1/committed.lock"]
        assert not stale.exists() and held.exists()
    held.unlink()


def test_reopened_failed_tasks_run_again_on_the_work_their_first_run_left(repo: Path) -> None:
    executed(repo)
    kept = git("rev-parse", "milestone/m1/committed", cwd=repo)
    plan(repo, [TASKS[0], {"id": "committed", "run": ["sh", "-c", "echo fixed > fix.txt"]},
                {"id": "dirty", "run": ["sh", "-c", "test -f d.txt"]}])  # the causes fixed in the plan
    must("task", "reopen", "committed", "-m", "m1")
    must("task", "reopen", "dirty", "-m", "m1")
    result = invoke("execute", "m1", "--resume")
    assert result.exit_code == 0, result.output
    assert "committed runs again on what its earlier run left" in result.stdout
    git("merge-base", "--is-ancestor", kept, BRANCH, cwd=repo)  # the first run's commit landed, not dropped
    for name, text in (("c.txt", "c"), ("fix.txt", "fixed"), ("d.txt", "d")):
        assert git("show", f"{BRANCH}:{name}", cwd=repo) == text
