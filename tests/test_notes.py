"""Notes on refs/notes/milestoned: what ``git log --notes=milestoned`` shows, across rewrites and at scale."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import commit, git, log_file, statuses
from milestoned.git import notes


def note_of(repo: Path, rev: str = "HEAD") -> list[dict]:
    text = git("log", "-1", "--format=%N", "--notes=milestoned", rev, cwd=repo)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_an_ingested_commit_shows_its_note_in_git_log(active: Path) -> None:
    commit(active, "begin T1", "Task: T1")
    statuses()
    shown = git("log", "-1", "--notes=milestoned", cwd=active)
    assert "Notes (milestoned):" in shown
    [fact] = note_of(active)
    session = json.loads(log_file(active, "m1").read_text().splitlines()[1])
    assert fact == {"milestone": "m1", "task": "T1", "event": "task_started", "session": session["session_id"]}


def test_a_commit_without_a_task_gets_no_note(active: Path) -> None:
    commit(active, "unrelated")
    statuses()
    assert note_of(active) == []


def test_notes_follow_amend_and_rebase_without_duplicate_lines(active: Path) -> None:
    commit(active, "begin T1", "Task: T1")
    statuses()
    before = note_of(active)
    git("commit", "-q", "--amend", "-m", "begin T1, reworded", "--trailer", "Task: T1", cwd=active)
    statuses()
    assert note_of(active) == before
    git("checkout", "-q", "-b", "side", "HEAD~1", cwd=active)
    commit(active, "side work", name="side.txt")
    git("checkout", "-q", "main", cwd=active)
    git("rebase", "-q", "side", cwd=active)
    statuses()
    assert note_of(active) == before
    raw = git("notes", "--ref=milestoned", "show", "HEAD", cwd=active)
    assert raw.count("\n") == 0  # one line: the copy by git and ours merged as one


def test_post_rewrite_carries_the_note_when_rewrite_ref_is_not_set(active: Path) -> None:
    git("config", "--unset-all", "notes.rewriteRef", cwd=active)
    commit(active, "begin T3", "Task: T3")
    statuses()
    before = note_of(active)
    git("commit", "-q", "--amend", "-m", "no trailer any more", cwd=active)
    statuses()
    assert note_of(active) == before


def test_a_note_already_on_the_commit_is_merged_not_replaced(active: Path) -> None:
    sha = commit(active, "begin T1", "Task: T1")
    git("notes", "--ref=milestoned", "add", "-m", '{"from":"another clone"}', sha, cwd=active)
    statuses()
    lines = git("notes", "--ref=milestoned", "show", sha, cwd=active).splitlines()
    assert lines == sorted(lines) and len(lines) == 2  # cat_sort_uniq
    assert '{"from":"another clone"}' in lines and json.loads(lines[0])["task"] == "T1"


def test_merge_is_cat_sort_uniq() -> None:
    assert notes.merge("b\na\n\n", ["a", "c", ""]) == "a\nb\nc\n"
    assert notes.line("m1", "T1", "s", "task_started") == notes.line("m1", "T1", "s", "task_started")


def _fast_import_commits(repo: Path, count: int) -> None:
    """``count`` commits with trailers on main, written by a tool that runs no hook."""
    tip = git("rev-parse", "HEAD", cwd=repo)
    chunks = [f"reset refs/heads/main\nfrom {tip}\n\n"]
    for i in range(count):
        message = f"step {i}\n\nMilestone: m1\nTask: T{1 + i % 3}\n"
        chunks.append(f"commit refs/heads/main\ncommitter Tool <tool@example.com> {1700000000 + i} +0000\n"
                      f"data {len(message)}\n{message}M 644 inline file{i % 10}.txt\ndata {len(str(i)) + 1}\n{i}\n\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input="".join(chunks).encode(), check=True)


def test_thousands_of_notes_are_written_fanned_out_and_none_is_lost(active: Path) -> None:
    first = git("rev-parse", "HEAD", cwd=active)
    statuses()
    _fast_import_commits(active, 3000)
    flat = git("rev-list", "-1", "main~10", cwd=active)
    git("notes", "--ref=milestoned", "add", "-m", '{"from":"before"}', flat, cwd=active)  # a flat note
    assert statuses() == {"T1": "in_progress", "T2": "in_progress", "T3": "in_progress"}
    listed = git("notes", "--ref=milestoned", "list", cwd=active).splitlines()
    assert len(listed) == 3000
    root = git("ls-tree", "refs/notes/milestoned", cwd=active).splitlines()
    assert all(len(row.split("\t")[1]) in (2, 40) for row in root)
    assert any(len(row.split("\t")[1]) == 2 for row in root)
    paths = [p for p in git("ls-tree", "-r", "--name-only", "refs/notes/milestoned", cwd=active).splitlines()
             if p.replace("/", "") == flat]
    assert len(paths) == 1  # replaced where it was, not written twice
    assert '{"from":"before"}' in git("notes", "--ref=milestoned", "show", flat, cwd=active).splitlines()
    assert git("notes", "--ref=milestoned", "list", first, cwd=active, check=False) == ""


def test_notes_begun_alongside_a_write_move_the_ref_only_when_finished(repo: Path) -> None:
    first, second = commit(repo, "one"), commit(repo, "two")
    fact = notes.line("m1", "T1", None, "task_started")

    abandoned = notes.start(repo, {first: fact + "\n"})
    abandoned.abandon()  # the transaction failed: nothing moved
    assert git("rev-parse", "-q", "--verify", notes.REF, cwd=repo, check=False) == ""

    writing = notes.start(repo, {first: fact + "\n"})
    assert git("rev-parse", "-q", "--verify", notes.REF, cwd=repo, check=False) == ""  # not before finish
    writing.finish()
    assert note_of(repo, first) == [json.loads(fact)]

    # another writer moves the ref while a write is under way: it builds again on the new tip
    writing = notes.start(repo, {second: fact + "\n"})
    git("notes", f"--ref={notes.REF}", "add", "-m", "by hand", "HEAD~2", cwd=repo)
    writing.finish()
    assert note_of(repo, second) == [json.loads(fact)] and note_of(repo, first) == [json.loads(fact)]
    assert git("notes", f"--ref={notes.REF}", "show", "HEAD~2", cwd=repo) == "by hand"
