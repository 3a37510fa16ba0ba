"""Task worktrees and the milestone branch, on real repositories, without touching the user's checkout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import IDENTITY, git
from milestoned.core.errors import UserError
from milestoned.files.workspace import Workspace
from milestoned.git.identity import Identity
from milestoned.git.worktrees import Worktrees

MS_BRANCH = "milestone/m1/_milestone"


@pytest.fixture
def trees(repo: Path) -> Worktrees:
    w = Worktrees(Workspace.discover(repo), "m1", Identity.detect(repo))
    w.ensure_milestone_branch()
    return w


def write_and_commit(trees: Worktrees, task_id: str, name: str, text: str) -> None:
    path = trees.path(task_id)
    (path / name).write_text(text)
    assert trees.commit_leftovers(task_id, f"write {name}") is not None


def test_task_branches_live_beside_the_milestone_branch_started_from_head(repo: Path, trees: Worktrees) -> None:
    head = git("rev-parse", "HEAD", cwd=repo)
    assert git("rev-parse", MS_BRANCH, cwd=repo) == head
    path = trees.create("T1")
    assert path == repo / ".git/milestoned/worktrees/m1/T1"
    assert git("symbolic-ref", "HEAD", cwd=path) == "refs/heads/milestone/m1/T1"
    assert git("rev-parse", "HEAD", cwd=path) == head
    assert (path / "README.md").read_text() == "project\n"
    assert git("symbolic-ref", "HEAD", cwd=repo) == "refs/heads/main"
    assert str(path) in git("worktree", "list", cwd=repo)


def test_leftovers_are_committed_with_trailers_even_without_a_git_identity(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in IDENTITY:
        monkeypatch.delenv(key)
    identity = Identity.detect(repo)
    assert identity.author == identity.committer == ("milestoned", "milestoned@localhost")
    trees = Worktrees(Workspace.discover(repo), "m1", identity)
    trees.ensure_milestone_branch()
    path = trees.create("T1")
    assert trees.commit_leftovers("T1", "Nothing to do") is None
    (path / "new.txt").write_text("new\n")
    sha = trees.commit_leftovers("T1", "Write a\nnew file")
    assert git("log", "-1", "--format=%an <%ae>|%s", sha, cwd=repo) == "milestoned <milestoned@localhost>|T1: Write a new file"
    assert git("log", "-1", "--format=%(trailers:only,unfold)", sha, cwd=repo) == "Milestone: m1\nTask: T1"
    assert git("status", "--porcelain", cwd=path) == ""


def test_each_task_lands_as_a_merge_commit_and_the_checkout_stays_put(repo: Path, trees: Worktrees) -> None:
    before = (git("rev-parse", "HEAD", cwd=repo), (repo / ".git/index").read_bytes())
    for task_id in ("T1", "T2", "T3"):
        trees.create(task_id)
    write_and_commit(trees, "T1", "one.txt", "1\n")
    write_and_commit(trees, "T2", "two.txt", "2\n")
    assert trees.merge("T1").kind == "merged"
    second = trees.merge("T2")
    assert second.kind == "merged" and second.commit == git("rev-parse", MS_BRANCH, cwd=repo)
    assert trees.merge("T3").kind == "nothing"
    assert git("log", "--first-parent", "--format=%s", MS_BRANCH, cwd=repo).splitlines() == [
        "Merge task T2 into milestone m1", "Merge task T1 into milestone m1", "initial"]
    assert git("log", "-1", "--format=%(trailers:only,unfold)", MS_BRANCH, cwd=repo) == "Milestone: m1\nCompletes: T2"
    assert git("ls-tree", "--name-only", MS_BRANCH, cwd=repo).split() == ["README.md", "one.txt", "two.txt"]
    assert (git("rev-parse", "HEAD", cwd=repo), (repo / ".git/index").read_bytes()) == before
    assert git("status", "--porcelain", "--untracked-files=no", cwd=repo) == ""


def test_a_conflict_leaves_the_milestone_branch_alone_and_waits_in_the_worktree(repo: Path, trees: Worktrees) -> None:
    trees.create("T1")
    trees.create("T2")
    write_and_commit(trees, "T1", "a.txt", "one\n")
    write_and_commit(trees, "T2", "a.txt", "two\n")
    tip = trees.merge("T1").commit
    conflict = trees.merge("T2")
    assert (conflict.kind, conflict.paths) == ("conflict", ("a.txt",))
    assert git("rev-parse", MS_BRANCH, cwd=repo) == tip
    assert trees.start_conflict("T2") == ("a.txt",)
    assert trees.resolve("T2", "t").state == "unresolved"
    path = trees.path("T2")
    (path / "a.txt").write_text("one and two\n")
    git("add", "a.txt", cwd=path)
    assert trees.resolve("T2", "t").state == "ready"  # the merge is concluded for them
    assert trees.merge("T2").kind == "merged"
    assert git("show", f"{MS_BRANCH}:a.txt", cwd=repo) == "one and two"


def test_the_milestone_branch_moving_meanwhile_is_merged_on_top_of(repo: Path, trees: Worktrees) -> None:
    trees.create("T1")
    write_and_commit(trees, "T1", "one.txt", "1\n")
    tree = git("rev-parse", "HEAD^{tree}", cwd=repo)
    elsewhere = git("commit-tree", tree, "-p", MS_BRANCH, "-m", "someone else", cwd=repo)
    merge_commits = trees._merging.merge_commits

    def racing(ours, theirs):  # type: ignore[no-untyped-def]
        if git("rev-parse", MS_BRANCH, cwd=repo) != elsewhere:
            git("update-ref", f"refs/heads/{MS_BRANCH}", elsewhere, cwd=repo)  # lands between read and write
        return merge_commits(ours, theirs)

    trees._merging.merge_commits = racing
    result = trees.merge("T1")
    assert result.kind == "merged"
    assert git("rev-parse", f"{MS_BRANCH}^1", cwd=repo) == elsewhere


def test_a_worktree_prepared_ahead_starts_from_the_work_merged_since(repo: Path, trees: Worktrees) -> None:
    trees.create("T1")
    trees.prepare("T2")
    prepared = trees.path("T2")
    (trees.path("T1") / "README.md").unlink()
    write_and_commit(trees, "T1", "one.txt", "1\n")
    tip = trees.merge("T1").commit
    assert trees.create("T2") == prepared
    assert sorted(p.name for p in prepared.iterdir()) == [".git", "one.txt"]
    assert git("rev-parse", "HEAD", cwd=prepared) == tip
    assert git("status", "--porcelain", cwd=prepared) == ""
    trees.prepare("T3")
    trees.discard_prepared()
    assert not trees.path("T3").exists() and git("branch", "--list", "milestone/m1/T3", cwd=repo) == ""


def test_remove_deletes_the_worktree_and_its_branch(repo: Path, trees: Worktrees) -> None:
    path = trees.create("T1")
    (path / "junk.txt").write_text("untracked\n")
    trees.remove("T1")
    trees.tidy()
    assert not path.exists() and not path.parent.exists()
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 1
    assert git("branch", "--list", "milestone/m1/T1", cwd=repo) == ""


def test_creating_again_carries_over_what_an_earlier_run_left_and_discards_an_empty_leftover(
        repo: Path, trees: Worktrees) -> None:
    trees.create("T1")
    write_and_commit(trees, "T1", "half.txt", "half done\n")
    (trees.path("T1") / "scratch.txt").write_text("a fix made here\n")
    path = trees.create("T1")  # reopened and run again: nothing of it is lost
    assert (path / "half.txt").read_text() == "half done\n" and (path / "scratch.txt").exists()
    assert "T1" in trees.carried
    shutil.rmtree(path)  # the folder gone, the branch with its commit still there
    again = trees.create("T1")
    assert (again / "half.txt").read_text() == "half done\n"
    trees.create("T2")
    (trees.path("T2") / ".gitkeep").write_text("")
    (trees.path("T2") / ".gitkeep").unlink()  # touched, but holds nothing
    fresh = trees.create("T2")
    assert sorted(p.name for p in fresh.iterdir()) == [".git", "README.md"] and "T2" not in trees.carried
    assert git("rev-parse", "HEAD", cwd=fresh) == git("rev-parse", MS_BRANCH, cwd=repo)


def test_a_task_branch_checked_out_in_someone_elses_worktree_is_theirs(repo: Path, trees: Worktrees,
                                                                       tmp_path: Path) -> None:
    git("branch", "milestone/m1/T1", cwd=repo)
    git("worktree", "add", "-q", str(tmp_path / "mine"), "milestone/m1/T1", cwd=repo)
    with pytest.raises(UserError, match="branch milestone/m1/T1 is checked out in another worktree"):
        trees.create("T1")
    assert (tmp_path / "mine" / "README.md").exists()


def test_with_filter_drivers_git_itself_makes_the_worktree(repo: Path) -> None:
    git("config", "filter.upper.smudge", "tr a-z A-Z", cwd=repo)
    git("config", "filter.upper.clean", "cat", cwd=repo)
    (repo / ".gitattributes").write_text("*.up filter=upper\n")
    (repo / "shout.up").write_text("hello\n")
    git("add", ".gitattributes", "shout.up", cwd=repo)
    git("commit", "-q", "-m", "filtered", cwd=repo)
    trees = Worktrees(Workspace.discover(repo), "m1", Identity.detect(repo))
    trees.ensure_milestone_branch()
    path = trees.create("T1")
    assert (path / "shout.up").read_text() == "HELLO\n"  # only git runs the smudge filter
    (path / "more.txt").write_text("x\n")
    assert trees.commit_leftovers("T1", "more") is not None
    assert trees.merge("T1").kind == "merged"
    trees.remove("T1")
    assert not path.exists()
    assert subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=repo, capture_output=True,
                          text=True).stdout.count("worktree ") == 1


def _leave_changes(path: Path) -> None:
    (path / "README.md").write_text("changed by the task\n")
    (path / "new.txt").write_text("new\n")
    (path / "old.txt").unlink()
    (path / "ignored.log").write_text("build output\n")


def test_leftovers_commit_the_same_tree_in_process_and_through_the_users_hooks(repo: Path, run) -> None:
    (repo / "old.txt").write_text("old\n")
    (repo / ".gitignore").write_text("*.log\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "old file", cwd=repo)
    ws = Workspace.discover(repo)

    def committed(milestone: str) -> tuple[str, str]:
        trees = Worktrees(ws, milestone, Identity.detect(repo))
        trees.ensure_milestone_branch()
        path = trees.create("T1")
        _leave_changes(path)
        sha = trees.commit_leftovers("T1", "leave changes")
        assert sha is not None and git("status", "--porcelain", cwd=path) == ""
        return sha, git("ls-tree", "-r", "--format=%(path) %(objectname)", sha, cwd=repo)

    plain, plain_tree = committed("m1")  # no hook at all: libgit2, in this process
    paths = {line.split()[0] for line in plain_tree.splitlines()}
    assert {".gitignore", "README.md", "new.txt"} <= paths and not paths & {"old.txt", "ignored.log"}

    marker = repo.parent / "pre-commit-ran"
    hook = repo / ".git/hooks/pre-commit"
    hook.write_text(f"#!/bin/sh\necho ran >> '{marker}'\n")
    hook.chmod(0o755)
    through_git, git_tree = committed("m2")  # the user's hook must run: so git commits
    assert marker.read_text() == "ran\n"
    assert git_tree == plain_tree
    assert git("log", "-1", "--format=%(trailers:only,unfold)", through_git, cwd=repo) == "Milestone: m2\nTask: T1"

    hook.unlink()
    assert run("hooks", "install").exit_code == 0  # only our hooks: in-process, and the inbox told as they would
    ours, ours_tree = committed("m3")
    assert ours_tree == plain_tree
    inbox = (ws.runtime_dir / "inbox").read_text()
    assert f"1\tcommit\t{ours}\trefs/heads/milestone/m3/T1\t\t{ws.runtime_dir / 'worktrees/m3/T1'}\n" in inbox
