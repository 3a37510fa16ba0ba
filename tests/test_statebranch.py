"""The ``milestoned/state`` branch: one commit per save, readable, out of the user's way, kept by gc."""

from __future__ import annotations

import shutil
from pathlib import Path

import pygit2
import pytest

from conftest import as_json, git, invoke, log_file, make_repo, must, ok, session_file
from milestoned.core.errors import RuntimeFailure
from milestoned.files.workspace import Workspace
from milestoned.git import statebranch

BRANCH = "milestoned/state"


def saved_session(root: Path) -> str:
    return as_json(root, "session", "save")["session"]["id"]


def test_a_save_commits_the_state_to_its_own_branch_for_people_to_read(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    must("task", "done", "T1")
    head_before = git("rev-parse", "HEAD", cwd=repo)
    session_id = saved_session(repo)
    tree = git("ls-tree", "-r", "--name-only", BRANCH, cwd=repo).splitlines()
    assert tree == ["README", "logs/m1.jsonl", "milestones/m1.yaml", "plans/m1.yaml", f"sessions/{session_id}.yaml"]
    assert git("show", f"{BRANCH}:sessions/{session_id}.yaml", cwd=repo) == \
        session_file(repo, session_id).read_text().rstrip("\n")
    assert git("show", f"{BRANCH}:logs/m1.jsonl", cwd=repo) == log_file(repo, "m1").read_text().rstrip()
    assert git("show", f"{BRANCH}:plans/m1.yaml", cwd=repo) == two_task_milestone.read_text().rstrip()
    readable = invoke("status", "m1", "--format", "yaml").stdout
    assert git("show", f"{BRANCH}:milestones/m1.yaml", cwd=repo) == readable.rstrip()
    assert "status: in_progress" in readable and "    status: completed" in readable
    assert "written by milestoned" in git("show", f"{BRANCH}:README", cwd=repo)
    # no common history with the code, and the user's HEAD has not moved
    assert git("rev-list", "--count", BRANCH, cwd=repo) == "1"
    assert git("merge-base", "main", BRANCH, cwd=repo, check=False) == ""
    assert git("rev-parse", "HEAD", cwd=repo) == head_before
    assert git("symbolic-ref", "HEAD", cwd=repo) == "refs/heads/main"


def test_every_save_is_one_commit_saying_what_changed(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    session_id = saved_session(repo)
    must("task", "done", "T1")
    saved_session(repo)
    subjects = git("log", "--format=%s", BRANCH, cwd=repo).splitlines()
    assert subjects == [
        f"save session {session_id}: m1 in_progress, 50% (manual_save)",
        f"save session {session_id}: m1 in_progress, 0% (manual_save)",
    ]
    body = git("log", "-1", "--format=%b", BRANCH, cwd=repo).splitlines()
    assert body == ["M logs/m1.jsonl", "M milestones/m1.yaml", f"M sessions/{session_id}.yaml"]


def test_pausing_and_completing_save_the_session_by_themselves(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    assert invoke("pause", "m1").exit_code == 0
    paused = as_json(repo, "sessions")["sessions"]
    assert [(s["save_reason"], s["milestone_status"]) for s in paused] == [("paused", "paused")]
    assert git("log", "-1", "--format=%s", BRANCH, cwd=repo).endswith("m1 paused, 0% (paused)")
    must("activate", "m1")
    must("task", "done", "T1")
    must("task", "done", "T2")
    latest = as_json(repo, "sessions")["sessions"][0]
    assert (latest["save_reason"], latest["milestone_status"], latest["progress_percentage"]) == \
        ("milestone_completed", "completed", 100)
    assert "status: completed" in git("show", f"{BRANCH}:milestones/m1.yaml", cwd=repo)


def test_saved_state_survives_gc_and_comes_back_from_the_branch(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    must("task", "done", "T1")
    session_id = saved_session(repo)
    events = as_json(repo, "events", "m1", "-n", "0")["events"]
    git("reflog", "expire", "--expire=now", "--all", cwd=repo)
    git("gc", "-q", "--prune=now", cwd=repo)
    git("fsck", "--no-dangling", cwd=repo)
    assert session_id in git("show", f"{BRANCH}:sessions/{session_id}.yaml", cwd=repo)
    state = Workspace.discover(repo).state_dir
    shutil.rmtree(state / "log")
    shutil.rmtree(state / "sessions")
    ok(repo, "resume", "--no-fetch")
    assert as_json(repo, "events", "m1", "-n", "0")["events"][: len(events)] == events
    assert as_json(repo, "session", "show", session_id)["session"]["status"] == "resumed"


def test_a_machine_without_any_git_identity_still_saves(two_task_milestone: Path, repo: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.delenv(f"GIT_{role}_NAME")
        monkeypatch.delenv(f"GIT_{role}_EMAIL")
    must("activate", "m1")
    saved_session(repo)
    assert git("log", "-1", "--format=%an <%ae> / %cn <%ce>", BRANCH, cwd=repo) == \
        "milestoned <milestoned@localhost> / milestoned <milestoned@localhost>"
    git("config", "user.name", "Repo User", cwd=repo)
    git("config", "user.email", "repo@example.com", cwd=repo)
    saved_session(repo)
    assert git("log", "-1", "--format=%an <%ae>", BRANCH, cwd=repo) == "Repo User <repo@example.com>"


def test_a_linked_worktree_saves_the_one_shared_state(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    linked = repo.parent / "linked"
    git("worktree", "add", "-q", "-b", "side", str(linked), cwd=repo)
    ok(linked, "task", "done", "T1")
    ok(linked, "session", "save")
    assert git("rev-parse", BRANCH, cwd=linked) == git("rev-parse", BRANCH, cwd=repo)
    assert '"task_id":"T1"' in git("show", f"{BRANCH}:logs/m1.jsonl", cwd=repo)
    assert git("symbolic-ref", "HEAD", cwd=linked) == "refs/heads/side"


def test_the_branch_moves_only_from_the_commit_it_was_read_at(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    repo = pygit2.Repository(str(root))
    first = repo.head.target
    statebranch.move_ref(repo, first, None, "create")
    with pytest.raises(RuntimeFailure, match="moved while milestoned was writing it"):
        statebranch.move_ref(repo, first, None, "create again")
    git("commit", "-q", "--allow-empty", "-m", "second", cwd=root)
    second = pygit2.Repository(str(root)).head.target
    statebranch.move_ref(repo, second, first, "advance")
    with pytest.raises(RuntimeFailure):
        statebranch.move_ref(repo, first, first, "stale")  # it is at `second` now
    assert statebranch.tip(repo) == second
    assert Workspace.discover(root).is_git
