"""Checkpoints keep uncommitted work in a ref, never on a branch, never touching the checkout."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, invoke, must


def test_checkpoint_snapshots_tracked_and_untracked_work_without_touching_anything(
        two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    (repo / "README.md").write_text("edited\n")
    (repo / "notes.txt").write_text("new file\n")
    git("add", "README.md", cwd=repo)  # something staged too: the index must stay exactly so
    before = (git("rev-parse", "HEAD", cwd=repo), (repo / ".git/index").read_bytes(),
              git("status", "--porcelain", cwd=repo), git("branch", "--list", cwd=repo))
    result = json.loads(invoke("checkpoint", "m1", "--json").stdout)["checkpoint"]
    after = (git("rev-parse", "HEAD", cwd=repo), (repo / ".git/index").read_bytes(),
             git("status", "--porcelain", cwd=repo), git("branch", "--list", cwd=repo))
    assert after == before
    ref = result["ref"]
    assert ref.startswith("refs/milestoned/checkpoints/m1/")
    assert git("show", f"{ref}:README.md", cwd=repo) == "edited"
    assert git("show", f"{ref}:notes.txt", cwd=repo) == "new file"
    assert "id: m1" in git("show", f"{ref}:.milestones/active/m1.yaml", cwd=repo)  # an uncommitted plan is work too
    assert git("rev-parse", f"{ref}^", cwd=repo) == before[0]
    assert result["restore"] == f"git restore --source={ref} --worktree -- ."
    # the same work twice is one checkpoint; the seed's auto_commit event names it
    assert json.loads(invoke("checkpoint", "m1", "--json").stdout)["checkpoint"]["ref"] == ref
    listed = json.loads(invoke("checkpoint", "m1", "--list", "--json").stdout)["checkpoints"]
    assert [row["ref"] for row in listed] == [ref]
    events = json.loads(invoke("events", "m1", "--json", "--event", "auto_commit").stdout)["events"]
    assert [e["checkpoint"] for e in events] == [ref, ref] and events[0]["files_changed"] == 3


def test_a_clean_tree_needs_no_checkpoint(two_task_milestone: Path, repo: Path) -> None:
    git("add", ".milestones", cwd=repo)
    git("commit", "-qm", "plan", cwd=repo)
    assert invoke("checkpoint", "m1").stdout.strip() == "nothing uncommitted: no checkpoint needed"
    assert git("for-each-ref", "refs/milestoned/checkpoints/", cwd=repo) == ""


def test_a_same_size_edit_right_after_a_commit_is_still_seen(two_task_milestone: Path, repo: Path) -> None:
    """git trusts file stats unless an entry is as new as the index file ("racy clean")."""
    (repo / "README.md").write_text("before\n")
    git("add", "README.md", cwd=repo)
    git("commit", "-qm", "racy", cwd=repo)
    (repo / "README.md").write_text("after!\n")  # same size, same second
    import time

    time.sleep(1.1)  # the copy of the index is made in a later second than the edit
    ref = json.loads(invoke("checkpoint", "m1", "--json").stdout)["checkpoint"]["ref"]
    assert git("show", f"{ref}:README.md", cwd=repo) == "after!"
