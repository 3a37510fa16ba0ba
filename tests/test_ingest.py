"""Commits move tasks: trailers, branches, rewrites, merges, worktrees and hookless clients.

Commits are real ``git commit``s firing the installed hooks; every assertion reads the
state the way a user does (``status``/``events``), right after the next command
drained the inbox.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pygit2
import pytest

from conftest import commit, events, git, inbox_lines, invoke, log_file, must, statuses, write_milestone
from milestoned.engine import ingest
from milestoned.engine.engine import Engine
from milestoned.files import inbox
from milestoned.files.workspace import Workspace
from milestoned.git import refwatch


def drain_here() -> int:
    return ingest.drain(Engine(Workspace.discover()))


def test_task_trailer_starts_the_task(active: Path) -> None:
    sha = commit(active, "begin T1", "Task: T1")
    assert statuses() == {"T1": "in_progress", "T2": "pending", "T3": "pending"}
    started = events("task_started")
    assert [(e["task_id"], e["commit"], e["via"]) for e in started] == [("T1", sha, "commit")]


def test_completes_trailer_completes_and_the_last_one_completes_the_milestone(active: Path) -> None:
    commit(active, "T1 done", "Completes: T1")
    commit(active, "T2 and T3 done", "Completes: T2", "Completes: T3")
    result = invoke("status", "m1", "--json")
    view = json.loads(result.stdout)
    assert view["milestone"]["status"] == "completed"
    assert {t["id"]: t["status"] for t in view["tasks"]} == {"T1": "completed", "T2": "completed", "T3": "completed"}
    assert (active / ".milestones" / "active" / "m1.yaml").exists()  # the plan stays where the user keeps it


def test_completing_a_task_with_open_dependencies_is_refused_with_an_event(active: Path) -> None:
    sha = commit(active, "T2 too early", "Completes: T2")
    assert statuses()["T2"] == "pending"
    refused = events("commit_refused")
    assert [(e["commit"], e["task_id"], e["reason"], e["dependencies"]) for e in refused] == [
        (sha, "T2", "task T2 depends on T1, not completed yet", ["T1"])]


def test_a_task_trailer_on_a_paused_milestone_changes_nothing_and_says_why(active: Path) -> None:
    assert invoke("pause", "m1").exit_code == 0
    sha = commit(active, "while paused", "Task: T1")
    assert statuses()["T1"] == "pending"
    refused = events("commit_refused")
    assert [(e["commit"], e["task_id"], e["reason"]) for e in refused] == [(sha, "T1", "cannot start T1: milestone m1 is paused")]


def test_with_no_milestone_current_a_task_trailer_counts_for_the_one_plan_that_has_the_task(active: Path) -> None:
    write_milestone(active, "m2", "id: m2\ntitle: later\ntasks: [{id: L1, title: later one}, {id: T1, title: x}]\n")
    (active / ".git/milestoned/current").unlink()  # as a completed milestone leaves it
    on_m2 = commit(active, "on the planned one", "Task: L1")
    ambiguous = commit(active, "T1 is in both plans", "Task: T1")
    assert invoke("status", "m2").exit_code == 0  # drains
    assert [(e["commit"], e["reason"]) for e in events("commit_refused", "m2")] == [
        (on_m2, "cannot start L1: milestone m2 is planned")]  # refused aloud, not dropped
    assert all(ambiguous != e.get("commit") for name in ("m1", "m2") for e in events("commit_refused", name))
    assert statuses()["T1"] == "pending"


def test_a_commit_ingested_after_its_milestone_completed_is_credited_not_refused(active: Path) -> None:
    """The runner completes tasks itself; their own commits may be drained after the milestone ends."""
    for task in ("T1", "T2", "T3"):
        assert invoke("task", "done", task, "-m", "m1").exit_code == 0
    sha = commit(active, "late news of T2", "Milestone: m1", "Task: T2")
    assert statuses()["T2"] == "completed"
    assert not events("commit_refused")
    assert json.loads(git("notes", "--ref=milestoned", "show", sha, cwd=active))["event"] == "commit_ingested"


def test_an_unknown_task_is_refused_and_an_unknown_milestone_ignored(active: Path) -> None:
    sha = commit(active, "typo", "Task: T9")
    commit(active, "elsewhere", "Milestone: nope", "Task: T1")
    assert statuses()["T1"] == "pending"
    assert [(e["commit"], e["reason"]) for e in events("commit_refused")] == [(sha, "milestone m1 has no task 'T9' (tasks: T1, T2, T3)")]


def test_a_milestone_branch_implies_the_trailers_even_without_hooks(active: Path) -> None:
    """pygit2 (libgit2) runs no hook: the next command reconciles the moved ref."""
    checkout = git("status", "--porcelain", cwd=active)
    repo = pygit2.Repository(str(active))
    sig = pygit2.Signature("Agent", "agent@example.com")
    head = repo.head.peel(pygit2.Commit)
    blob = repo.create_blob(b"agent work\n")
    builder = repo.TreeBuilder(head.tree)
    builder.insert("agent.txt", blob, pygit2.GIT_FILEMODE_BLOB)
    sha = repo.create_commit("refs/heads/milestone/m1/T3", sig, sig, "agent work\n", builder.write(), [head.id])
    assert inbox_lines(active) == []
    assert statuses()["T3"] == "in_progress"
    assert events("task_started")[0]["commit"] == str(sha)
    assert git("status", "--porcelain", cwd=active) == checkout  # the user's checkout is untouched


def test_a_hookless_commit_on_the_checked_out_branch_is_caught(active: Path) -> None:
    repo = pygit2.Repository(str(active))
    sig = pygit2.Signature("Tool", "tool@example.com")
    head = repo.head.peel(pygit2.Commit)
    repo.create_commit("HEAD", sig, sig, "tool commit\n\nCompletes: T1\n", head.tree.id, [head.id])
    assert statuses()["T1"] == "completed"


def test_replaying_the_inbox_changes_nothing(active: Path) -> None:
    commit(active, "start", "Task: T1")
    commit(active, "finish", "Completes: T1")
    saved = inbox_lines(active)
    assert len(saved) == 2
    log = log_file(active, "m1")
    assert drain_here() == 2
    before = log.read_bytes()
    (active / ".git" / "milestoned" / "inbox").write_text("\n".join(saved) + "\n")
    assert drain_here() == 0
    assert log.read_bytes() == before


def test_a_drain_that_died_after_claiming_the_inbox_is_finished_by_the_next(active: Path) -> None:
    commit(active, "start", "Task: T1")
    claimed = inbox.claim(active / ".git" / "milestoned")  # renamed, then the process "died"
    assert len(claimed) == 1 and not (active / ".git" / "milestoned" / "inbox").exists()
    commit(active, "more", "Task: T3")  # a hook appends to a fresh inbox meanwhile
    assert statuses() == {"T1": "in_progress", "T2": "pending", "T3": "in_progress"}
    assert inbox.claimed_files(active / ".git" / "milestoned") == []


def test_lines_appended_while_draining_wait_for_the_next_drain(active: Path) -> None:
    runtime = active / ".git" / "milestoned"
    first = commit(active, "first", "Task: T1")
    claimed = inbox.claim(runtime)
    sha = commit(active, "during the drain", "Task: T3")
    assert [e.sha for e in inbox.read(claimed)] == [first]
    assert [e.sha for e in inbox.read([inbox.Claim(runtime / "inbox", 0)])] == [sha]


def test_amend_keeps_the_task_and_never_completes_it_twice(active: Path) -> None:
    old = commit(active, "T1 done", "Completes: T1")
    assert statuses()["T1"] == "completed"
    assert invoke("task", "reopen", "T1").exit_code == 0
    git("commit", "-q", "--amend", "-m", "T1 done, reworded", "--trailer", "Completes: T1", cwd=active)
    new = git("rev-parse", "HEAD", cwd=active)
    assert statuses()["T1"] == "pending"
    assert [e["commit"] for e in events("task_completed")] == [old]
    rows = [row for e in events("commits_ingested") for row in e["commits"]]
    assert [new, "T1", "task_completed"] in [row[:3] for row in rows]


def test_rebase_keeps_each_commit_with_its_task(active: Path) -> None:
    git("checkout", "-q", "-b", "feature", cwd=active)
    commit(active, "T1 done", "Completes: T1")
    commit(active, "T3 begins", "Task: T3")
    git("checkout", "-q", "main", cwd=active)
    commit(active, "main moves on", name="main.txt")
    assert statuses() == {"T1": "completed", "T2": "pending", "T3": "in_progress"}
    must("task", "reopen", "T1")
    git("checkout", "-q", "feature", cwd=active)
    git("rebase", "-q", "main", cwd=active)
    assert statuses() == {"T1": "pending", "T2": "pending", "T3": "in_progress"}
    assert len(events("task_completed")) == 1 and len(events("task_started")) == 1
    notes = git("log", "--format=%N", "--notes=milestoned", "-2", cwd=active)
    assert '"task":"T1"' in notes and '"task":"T3"' in notes


def test_a_squash_keeps_both_tasks_on_the_new_commit(active: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit(active, "T1 done", "Completes: T1")
    commit(active, "T3 begins", "Task: T3")
    statuses()
    monkeypatch.setenv("GIT_SEQUENCE_EDITOR", "sed -i -e 2s/^pick/squash/")
    monkeypatch.setenv("GIT_EDITOR", "true")
    git("rebase", "-q", "-i", "HEAD~2", cwd=active)
    assert statuses() == {"T1": "completed", "T2": "pending", "T3": "in_progress"}
    note = git("log", "-1", "--format=%N", "--notes=milestoned", cwd=active).splitlines()
    assert [json.loads(line)["task"] for line in note if line] == ["T1", "T3"]
    assert len(events("task_completed")) == 1 and len(events("task_started")) == 1


def test_a_cherry_pick_of_a_completing_commit_is_a_duplicate(active: Path) -> None:
    git("checkout", "-q", "-b", "feature", cwd=active)
    original = commit(active, "T1 done", "Completes: T1", name="feature.txt")
    git("checkout", "-q", "main", cwd=active)
    commit(active, "main moves on", name="main.txt")  # so the pick is a new commit, not the same one
    assert statuses()["T1"] == "completed"
    must("task", "reopen", "T1")
    git("cherry-pick", original, cwd=active)
    assert git("rev-parse", "HEAD", cwd=active) != original
    assert statuses()["T1"] == "pending"
    duplicate = events("commit_duplicate")
    assert [(e["task_id"], e["duplicate_of"]) for e in duplicate] == [("T1", original)]


def test_a_merge_brings_branch_commits_in_once(active: Path) -> None:
    git("checkout", "-q", "-b", "feature", cwd=active)
    commit(active, "T1 done", "Completes: T1", name="feature.txt")
    git("checkout", "-q", "main", cwd=active)
    commit(active, "main work", name="main.txt")
    assert statuses()["T1"] == "completed"
    log = log_file(active, "m1")
    before = log.read_bytes()
    git("merge", "-q", "--no-ff", "--no-edit", "feature", cwd=active)
    assert drain_here() == 0
    assert log.read_bytes() == before


def test_a_second_worktree_seeing_the_same_commit_changes_nothing(active: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    linked = tmp_path / "linked"
    git("worktree", "add", "-q", "-b", "milestone/m1/T1", str(linked), cwd=active)
    sha = commit(linked, "T1 work in its worktree")
    monkeypatch.chdir(linked)
    assert statuses()["T1"] == "in_progress"
    git("merge", "-q", "--ff-only", "milestone/m1/T1", cwd=active)  # the main worktree now has it too
    monkeypatch.chdir(active)
    assert statuses()["T1"] == "in_progress"
    assert [e["commit"] for e in events("task_started")] == [sha]


def test_a_broken_milestone_file_keeps_the_commits_for_later(active: Path) -> None:
    path = active / ".milestones" / "active" / "m1.yaml"
    good = path.read_text()
    commit(active, "T1 done", "Completes: T1")
    path.write_text("id: m1\ntasks: [\n")
    result = invoke("status", "--json")
    assert "milestoned: warning: commits not fully taken in" in result.stderr
    assert len(inbox_lines(active)) + len(inbox.claimed_files(active / ".git" / "milestoned")) >= 1
    path.write_text(good)
    assert statuses()["T1"] == "completed"


def _age_refs(common: Path) -> None:
    """Make every ref stamp look old, as if the last change were long ago (no racy stamps)."""
    past = time.time() - 60
    for root, dirs, files in os.walk(common / "refs"):
        for name in (*dirs, *files):
            os.utime(os.path.join(root, name), (past, past))
        os.utime(root, (past, past))
    for name in ("HEAD", "packed-refs"):
        if (common / name).exists():
            os.utime(common / name, (past, past))


def test_nothing_new_costs_no_git_process(active: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit(active, "start", "Task: T1")
    _age_refs(active / ".git")
    drain_here()
    ws = Workspace.discover()
    assert refwatch.nothing_new(ws)

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    with monkeypatch.context() as patched:
        patched.setattr(subprocess, "Popen", no_process)
        assert drain_here() == 0
        assert invoke("status", "m1", "--json").exit_code == 0
    git("branch", "moved", cwd=active)
    assert not refwatch.nothing_new(ws)


def test_a_commit_made_without_milestoned_on_path_is_recorded_by_the_hook(active: Path) -> None:
    """An IDE or GUI client runs hooks with a PATH of its own: recording a commit needs only sh."""
    (active / "f").write_text("x\n")
    git("add", "f", cwd=active)
    subprocess.run(["git", "commit", "-q", "-m", "from an IDE", "--trailer", "Task: T3"], cwd=active, check=True,
                   env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert len(inbox_lines(active)) == 1  # the hook wrote its line all the same
    assert statuses()["T3"] == "in_progress"


def test_a_commit_made_without_any_hook_is_caught_by_reconciliation(active: Path) -> None:
    must("hooks", "uninstall")
    (active / "f").write_text("x\n")
    git("add", "f", cwd=active)
    git("commit", "-q", "-m", "no hooks", "--trailer", "Task: T3", cwd=active)
    assert inbox_lines(active) == []
    assert statuses()["T3"] == "in_progress"


def test_an_uninitialized_repository_drains_nothing(tmp_path: Path) -> None:
    from conftest import make_repo

    root = make_repo(tmp_path / "plain")
    assert ingest.drain(Engine(Workspace.discover(root))) == 0
    assert not (root / ".git" / "milestoned").exists()


def test_hooks_appending_while_drains_rename_the_inbox_lose_no_line(active: Path) -> None:
    """Real post-commit hooks fire in a loop while the inbox is claimed and read over and over."""
    runtime = active / ".git" / "milestoned"
    hook = active / ".git" / "hooks" / "post-commit"
    writer = subprocess.Popen(["sh", "-c", f'i=0; while [ $i -lt 300 ]; do "{hook}"; i=$((i+1)); done'],
                              cwd=active)
    seen = 0
    while writer.poll() is None:
        claimed = inbox.claim(runtime)
        seen += len(inbox.read(claimed))
        inbox.release(runtime, claimed)
    claimed = inbox.claim(runtime)
    seen += len(inbox.read(claimed))
    assert writer.returncode == 0
    assert seen == 300


def test_a_drained_file_is_deleted_once_quiet_and_a_late_line_in_it_is_still_read(active: Path) -> None:
    """A hook that opened the inbox just before the rename writes into the claimed file."""
    runtime = active / ".git" / "milestoned"
    (runtime / "inbox").write_text(f"1\tcommit\t{'a' * 40}\trefs/heads/main\t\t{active}\n")
    claimed = inbox.claim(runtime)
    assert len(inbox.read(claimed)) == 1
    with claimed[0].path.open("a") as late:  # the late writer, after our read
        late.write(f"1\tcommit\t{'b' * 40}\trefs/heads/main\t\t{active}\n")
    inbox.release(runtime, claimed)
    assert inbox.has_pending(runtime)
    again = inbox.claim(runtime)
    assert [e.sha for e in inbox.read(again)] == ["b" * 40]
    inbox.release(runtime, again)
    assert not inbox.has_pending(runtime) and list(runtime.glob("inbox.draining.*"))  # kept while fresh
    old = time.time() - inbox.GRACE - 1
    for path in runtime.glob("inbox.draining.*"):
        os.utime(path, (old, old))
    inbox.release(runtime, [])
    assert not list(runtime.glob("inbox.draining.*"))


def test_a_pull_brings_a_teammates_commits_in_through_post_merge(active: Path, tmp_path: Path) -> None:
    teammate = tmp_path / "teammate"
    git("clone", "-q", str(active), str(teammate), cwd=tmp_path)
    done = commit(teammate, "T1 finished elsewhere", "Milestone: m1", "Completes: T1")
    git("pull", "-q", "--no-rebase", str(teammate), "main", cwd=active)
    assert any(line.startswith(f"1\tmerge\t{done}\t") for line in inbox_lines(active))
    assert statuses()["T1"] == "completed"
    assert [e["commit"] for e in events("task_completed")] == [done]


def test_the_state_branch_moving_costs_no_drain(active: Path) -> None:
    """milestoned/state holds plumbing commits, not task work: its moves are not walked."""
    git("update-ref", "refs/heads/milestoned/state", "HEAD", cwd=active)
    _age_refs(active / ".git")
    drain_here()
    ws = Workspace.discover()
    assert refwatch.nothing_new(ws)
    tree = git("rev-parse", "HEAD^{tree}", cwd=active)
    saved = git("commit-tree", tree, "-p", "HEAD", "-m", "session saved\n\nTask: T1", cwd=active)
    git("update-ref", "refs/heads/milestoned/state", saved, cwd=active)
    assert refwatch.nothing_new(ws)
    assert statuses()["T1"] == "pending"


def test_a_task_started_here_gives_this_worktrees_commits_its_trailers_until_done(active: Path) -> None:
    assert invoke("task", "start", "T1", "--agent", "ada").exit_code == 0
    commit(active, "work on the user model")
    message = git("log", "-1", "--format=%B", cwd=active)
    assert message.rstrip().endswith("Milestone: m1\nTask: T1")
    assert invoke("task", "done", "T1").exit_code == 0
    commit(active, "unrelated")
    assert "Task:" not in git("log", "-1", "--format=%B", cwd=active)


def test_a_claimed_task_gives_the_agents_commits_its_trailers_until_done(active: Path) -> None:
    claimed = json.loads(invoke("next", "--claim", "--agent", "bot", "--json").stdout)["claimed"]["id"]
    commit(active, "the agent works")
    assert f"Task: {claimed}" in git("log", "-1", "--format=%B", cwd=active)
    assert invoke("done", claimed, "--agent", "bot").exit_code == 0
    commit(active, "after")
    assert "Task:" not in git("log", "-1", "--format=%B", cwd=active)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "a/b", "m1; rm -rf /"])
def test_an_invalid_milestone_trailer_ignores_the_commits_trailers_with_one_refusal(active: Path, bad: str) -> None:
    sha = commit(active, "hostile", f"Milestone: {bad}", "Task: T1", "Completes: T3")
    assert statuses() == {"T1": "pending", "T2": "pending", "T3": "pending"}  # no fall-back to the current one
    refused = events("commit_refused")
    assert [(e["commit"], e.get("task_id")) for e in refused] == [(sha, None)]
    assert refused[0]["reason"] == f"Milestone: {bad!r} is not a milestone id: the commit's trailers are ignored"


def test_a_flood_of_trailers_is_capped_and_the_excess_refused_in_one_event(active: Path) -> None:
    from milestoned.git.trailers import MAX_MOVES

    sha = commit(active, "flood", "Task: T1", *(f"Task: X{i}" for i in range(10_000)))
    assert statuses()["T1"] == "in_progress"
    refused = [e for e in events("commit_refused") if e["commit"] == sha]
    assert len(refused) == MAX_MOVES  # the unknown tasks among the first ones read, and the excess at once
    assert [e["reason"] for e in refused if e.get("task_id") is None] == [
        f"10001 task trailers, more than {MAX_MOVES}: the first {MAX_MOVES} are read, the rest refused"]
    assert len(json.loads(invoke("events", "m1", "--json", "-n", "0").stdout)["events"]) < 100


def test_one_drain_judges_each_commit_on_the_state_the_commits_before_it_left(active: Path) -> None:
    """Commits read in one drain, parents first: a refusal is asked again once an earlier commit changed
    the milestone, and repeats of one move are credited, not applied twice."""
    early = [commit(active, f"T2 too early {i}", "Completes: T2") for i in range(2)]
    commit(active, "T1 done", "Completes: T1")
    late = commit(active, "T2 now", "Completes: T2")
    t3 = [commit(active, f"T3 work {i}", "Task: T3") for i in range(3)]
    assert len(inbox_lines(active)) == 7  # nothing drained yet: the next command reads all seven
    assert statuses() == {"T1": "completed", "T2": "completed", "T3": "in_progress"}
    assert [e["commit"] for e in events("commit_refused")] == early
    assert [e["commit"] for e in events("task_completed") if e["task_id"] == "T2"] == [late]
    assert [e["commit"] for e in events("task_started") if e["task_id"] == "T3"] == [t3[0]]
    for sha in t3[1:]:
        note = git("notes", "--ref=milestoned", "show", sha, cwd=active)
        assert json.loads(note) == {"event": "commit_ingested", "milestone": "m1", "session": events(
            "task_started")[-1]["session_id"], "task": "T3"}


def test_a_walk_git_cannot_finish_takes_nothing_in_and_the_next_drain_does(active: Path) -> None:
    must("hooks", "uninstall")  # found by reconciling the moved branch
    commit(active, "start T1", "Task: T1")
    middle = commit(active, "T1 done", "Completes: T1")
    commit(active, "start T3", "Task: T3")
    loose = active / ".git" / "objects" / middle[:2] / middle[2:]
    good = loose.read_bytes()
    loose.chmod(0o644)
    loose.write_bytes(b"not a git object")
    result = invoke("status", "m1", "--json")
    assert result.exit_code == 0
    assert "milestoned: warning: commits not fully taken in" in result.stderr and "git log failed" in result.stderr
    assert {t["id"]: t["status"] for t in json.loads(result.stdout)["tasks"]} == {
        "T1": "pending", "T2": "pending", "T3": "pending"}
    loose.write_bytes(good)
    assert statuses() == {"T1": "completed", "T2": "pending", "T3": "in_progress"}


def test_damaged_inbox_lines_are_skipped_and_the_sound_ones_read(active: Path) -> None:
    """A power loss leaves NUL runs and torn lines; a stray writer leaves anything.  Commits made and
    reset away, so that only the inbox names them."""
    must("hooks", "uninstall")
    base = git("rev-parse", "HEAD", cwd=active)
    t1 = commit(active, "start T1", "Task: T1")
    t3 = commit(active, "start T3", "Task: T3")
    git("reset", "-q", "--hard", base, cwd=active)
    zero = "0" * 40
    lines = [
        "\0" * 300 + f"1\tcommit\t{t3}\trefs/heads/main\t\t{active}",  # NULs before: not a line we wrote
        f"1\tcommit\t{t1}\trefs/heads/main\tnot-a-sha\t{active}",  # a bad EXTRA is dropped, the line kept
        f"1\tbogus\t{t3}\trefs/heads/main\t\t{active}",
        f"1\tcommit\t{zero}\trefs/heads/main\t\t{active}",
        f"2\tcommit\t{t3}\trefs/heads/main\t\t{active}",
        f"1\tcommit\t{t3[:39]}\trefs/heads/main\t\t{active}",
        f"1\tcommit\t{t3}",
    ]
    (active / ".git/milestoned/inbox").write_bytes(("\n".join(lines) + "\n").encode() + b"1\tcommit\t" + t3.encode())
    assert statuses() == {"T1": "in_progress", "T2": "pending", "T3": "pending"}
    started = events("task_started")
    assert [(e["task_id"], e["commit"]) for e in started] == [("T1", t1)]


def test_a_drain_leaves_the_garbage_collector_as_it_found_it_with_nothing_to_collect(active: Path) -> None:
    """The collector is paused while a drain runs (a daemon's whole heap would be walked), never left off;
    and what the drain read is freed when it returns, not left in cycles for a full collection."""
    import gc

    commit(active, "start T1", "Task: T1")
    assert gc.isenabled() and drain_here() == 1 and gc.isenabled()
    for i in range(50):
        commit(active, f"more on T3 {i}", "Task: T3")
    gc.collect()
    gc.disable()  # so that no collection runs between the drain and the count
    try:
        assert drain_here() == 50 and not gc.isenabled()
        assert gc.collect() < 50  # a cycle through the transaction kept every commit read (50 commits: 300+)
    finally:
        gc.enable()


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen to sign a commit")
def test_a_signed_commit_with_log_show_signature_set_is_read_by_its_sha(active: Path, tmp_path: Path) -> None:
    """``log.showSignature`` makes git print the signature check before each signed commit's format."""
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "allowed").write_text(f"t@example.com {(tmp_path / 'key.pub').read_text()}")
    for name, value in (("gpg.format", "ssh"), ("user.signingkey", str(key)), ("commit.gpgsign", "true"),
                        ("gpg.ssh.allowedSignersFile", str(tmp_path / "allowed")), ("log.showSignature", "true")):
        git("config", name, value, cwd=active)
    sha = commit(active, "signed", "Completes: T1")
    assert "Good" in git("log", "-1", cwd=active)  # git does print the check here
    assert statuses()["T1"] == "completed"
    assert [e["commit"] for e in events("task_completed")] == [sha]
    assert json.loads(git("notes", "--ref=milestoned", "show", sha, cwd=active))["event"] == "task_completed"
    assert not list((active / ".git").glob("fast_import_crash_*"))


@pytest.mark.parametrize("name", ["inbox", "inbox.draining.1234-abcd.0"])
def test_a_directory_where_the_inbox_goes_is_left_alone_and_commits_still_count(active: Path, name: str) -> None:
    (active / ".git/milestoned" / name).mkdir()
    commit(active, "start T1", "Task: T1")  # its hook cannot append: reconciliation finds the commit
    result = invoke("status", "m1", "--json")
    assert result.exit_code == 0, result.output
    assert {t["id"]: t["status"] for t in json.loads(result.stdout)["tasks"]}["T1"] == "in_progress"
    assert (active / ".git/milestoned" / name).is_dir()
    assert invoke("events", "m1").exit_code == 0
