"""Sessions: save, list, show, and resume on a fresh clone exactly where the other one stopped."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from conftest import (
    as_json,
    at,
    clone,
    conflict,
    git,
    invoke,
    must,
    ok,
    project,
    session_file,
    snapshot_tree,
    write_milestone,
)
from milestoned.engine import blockers
from milestoned.engine.engine import Engine
from milestoned.files.workspace import Workspace


def session_record(root: Path, session_id: str) -> dict:
    return yaml.safe_load(session_file(root, session_id).read_text())


def events_of(root: Path, name: str) -> list[dict]:
    return as_json(root, "events", "m1", "--event", name, "-n", "0")["events"]


def test_a_session_holds_the_seed_fields(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    must("task", "start", "T1", "--agent", "claude-1")
    (repo / "README.md").write_text("changed\n")
    saved = as_json(repo, "session", "save", "--reason", "lunch")
    record = session_record(repo, saved["session"]["id"])
    session, context = record["session"], record["context"]
    assert session["id"].startswith("exec-m1-") and session["milestone_id"] == "m1"
    assert (session["status"], session["save_reason"]) == ("active", "lunch")
    assert session["saved_at"].endswith("Z")
    assert context == {"working_directory": str(repo), "git_branch": "main",
                       "git_commit": git("rev-parse", "HEAD", cwd=repo)}
    assert record["execution_state"] == {
        "milestone_status": "in_progress", "active_agents": ["claude-1"], "current_task": "T1",
        "tasks_in_progress": ["T1"], "progress_percentage": 0, "landed": None,
    }
    # .milestones/ itself is untracked here, so two entries: README.md and .milestones/
    checkpoint = record["resume_points"].pop("checkpoint")
    assert record["resume_points"] == {"next_tasks": [], "pending_commits": 2, "uncommitted_changes": True}
    # the uncommitted work is kept in a checkpoint, off every branch, the checkout untouched
    assert checkpoint.startswith("refs/milestoned/checkpoints/m1/")
    assert git("show", f"{checkpoint}:README.md", cwd=repo) == "changed"
    assert git("status", "--porcelain", cwd=repo).splitlines() == ["M README.md", "?? .milestones/"]  # unstaged, as before
    assert git("rev-parse", "HEAD", cwd=repo) == context["git_commit"]
    assert [e["checkpoint"] for e in events_of(repo, "auto_commit")] == [checkpoint]
    record["resume_points"]["checkpoint"] = checkpoint
    listed = as_json(repo, "sessions")["sessions"]
    assert listed == as_json(repo, "session", "list")["sessions"] == [saved["session"]]
    assert listed[0]["active_agents"] == ["claude-1"] and listed[0]["git_branch"] == "main"
    shown = invoke("session", "show")
    assert shown.exit_code == 0 and yaml.safe_load(shown.stdout) == record
    assert as_json(repo, "session", "show", session["id"])["context"]["git_branch"] == "main"


def test_resume_on_a_fresh_clone_gives_back_exactly_the_saved_state(tmp_path: Path) -> None:
    remote, a = project(tmp_path, tasks=5)
    write_milestone(a, "m0", "id: m0\ntitle: groundwork\ntasks:\n  - {id: G1, title: base}\n")
    ok(a, "activate", "m0")
    ok(a, "task", "done", "G1", "-m", "m0")
    ok(a, "activate", "m1", "--force")
    ok(a, "next", "m1", "--claim", "--agent", "alice")
    ok(a, "done", "--agent", "alice", "-m", "m1")
    ok(a, "task", "start", "T2", "--agent", "bob", "-m", "m1")
    ok(a, "task", "block", "T3", "--reason", "waiting for the API key", "-m", "m1")
    ok(a, "task", "add", "T6", "--title", "added after planning", "--depends-on", "T2", "-m", "m1")
    # the user commits the plans, as they are, and pushes them: the clone starts from that
    git("add", ".milestones", cwd=a)
    git("commit", "-q", "-m", "plan m0 and m1", cwd=a)
    git("push", "-q", "origin", "main", cwd=a)
    session_id = as_json(a, "session", "save", "m1")["session"]["id"]
    ok(a, "sync")

    b = clone(remote, tmp_path / "b")
    result = at(b, "resume")
    assert result.exit_code == 0, result.output
    assert f"resumed session {session_id} (m1," in result.stdout
    assert "ready: T4, T5" in result.stdout and "next: milestoned execute m1 --resume" in result.stdout
    assert "hooks: not installed in this clone, so commits do not move tasks yet: milestoned hooks install" \
        in result.stdout

    def status(root: Path, milestone: str) -> dict:
        view = as_json(root, "status", milestone)
        view.pop("recent_events")
        return view

    assert status(b, "m1") == status(a, "m1")
    assert status(b, "m0") == status(a, "m0")
    events_a = as_json(a, "events", "m1", "-n", "0")["events"]
    events_b = as_json(b, "events", "m1", "-n", "0")["events"]
    assert events_b[:-1] == events_a
    assert (events_b[-1]["event"], events_b[-1]["session_id"]) == ("session_resumed", session_id)
    assert as_json(b, "events", "m0", "-n", "0") == as_json(a, "events", "m0", "-n", "0")
    saved, resumed = session_record(a, session_id), session_record(b, session_id)
    assert resumed["session"].pop("status") == "resumed" and saved["session"].pop("status") == "active"
    assert resumed["session"].pop("resumed_at").endswith("Z")
    assert resumed == saved
    assert [s["id"] for s in as_json(b, "sessions")["sessions"]] == [s["id"] for s in as_json(a, "sessions")["sessions"]]
    assert as_json(b, "status")["milestone"]["id"] == "m1"  # the current milestone, here too
    assert git("status", "--porcelain", cwd=b) == ""  # all of it in the git dir: the clone is clean


def test_a_fresh_clone_says_it_has_state_to_take_in_until_it_does(tmp_path: Path) -> None:
    remote, a = project(tmp_path)
    ok(a, "session", "save")
    ok(a, "sync")
    lacking = clone(remote, tmp_path / "lacking")  # the plan was never committed: nothing of it here
    refused = at(lacking, "sessions")
    assert refused.exit_code == 2 and refused.stderr.endswith(
        "(this clone's origin has milestoned's state: `milestoned resume` brings it here, with the plans)\n")
    git("add", ".milestones", cwd=a)
    git("commit", "-q", "-m", "the plan", cwd=a)
    git("push", "-q", "origin", "main", cwd=a)
    b = clone(remote, tmp_path / "b")
    hint = ("milestoned: warning: this clone has not taken in the state on origin/milestoned/state yet: "
            "`milestoned resume` picks up the newest session, `milestoned sync` takes in the state alone\n")
    for args in (("sessions",), ("status",)):
        assert at(b, *args).stderr == hint, args
    ok(b, "resume")
    assert at(b, "status").stderr == "" and at(a, "status").stderr == ""


def test_resume_restores_a_plan_the_branch_lacks_as_an_untracked_file(tmp_path: Path) -> None:
    remote, a = project(tmp_path)  # m1's plan was never committed
    ok(a, "task", "done", "T1")
    ok(a, "session", "save")
    ok(a, "sync")
    b = clone(remote, tmp_path / "b")
    answer = as_json(b, "resume")
    assert answer["plan_restored"] == (
        "restored the plan .milestones/active/m1.yaml from milestoned/state: this branch never had it, "
        "so it is an untracked file (commit it to version it with your code)")
    assert (b / ".milestones/active/m1.yaml").read_bytes() == (a / ".milestones/active/m1.yaml").read_bytes()
    assert git("status", "--porcelain", cwd=b) == "?? .milestones/"
    assert as_json(b, "status", "m1")["tasks"] == as_json(a, "status", "m1")["tasks"]


def test_resume_checks_out_the_recorded_branch_but_never_over_uncommitted_work(tmp_path: Path) -> None:
    remote, a = project(tmp_path)
    git("checkout", "-q", "-b", "feature", cwd=a)
    (a / "feature.txt").write_text("work in progress\n")
    git("add", "feature.txt", cwd=a)
    git("commit", "-q", "-m", "feature work", cwd=a)
    git("push", "-q", "origin", "feature", cwd=a)
    ok(a, "session", "save")
    ok(a, "sync")

    b = clone(remote, tmp_path / "b")
    (b / "README.md").write_text("my unsaved edit\n")
    before = snapshot_tree(b)
    refused = at(b, "resume")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == ("milestoned: error: cannot check out feature: uncommitted changes in "
                                      "README.md (commit or stash them, then run `milestoned resume` again)")
    assert snapshot_tree(b) == before
    assert git("symbolic-ref", "--short", "HEAD", cwd=b) == "main"

    git("checkout", "-q", "--", "README.md", cwd=b)
    answer = as_json(b, "resume")
    assert answer["checkout"] == "checked out feature (fetched from origin)"
    assert git("symbolic-ref", "--short", "HEAD", cwd=b) == "feature"
    assert (b / "feature.txt").read_text() == "work in progress\n"
    assert answer["milestone"]["id"] == "m1" and answer["ready"] == ["T1", "T2", "T3", "T4"]


def test_resume_fetches_a_branch_this_clone_lacks_and_stops_when_it_is_nowhere(tmp_path: Path) -> None:
    remote, a = project(tmp_path)
    git("checkout", "-q", "-b", "feature", cwd=a)
    git("commit", "-q", "--allow-empty", "-m", "feature work", cwd=a)
    session_id = as_json(a, "session", "save")["session"]["id"]
    ok(a, "sync")  # the state and the notes: not the feature branch, which is the user's to push
    b = clone(remote, tmp_path / "b")

    def untouched() -> tuple[object, ...]:
        return (snapshot_tree(b), git("for-each-ref", "refs/heads", "refs/notes", cwd=b),
                git("symbolic-ref", "HEAD", cwd=b), (b / ".git/milestoned").exists())

    before = untouched()
    refused = at(b, "resume")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (
        f"milestoned: error: session {session_id} was saved on branch feature, which is neither on this clone "
        f"nor on origin (push it from the clone that saved the session (`git push origin feature`), then run "
        f"`milestoned resume` again; nothing was changed here)")
    assert untouched() == before

    git("push", "-q", "origin", "feature", cwd=a)  # after b was cloned: b's remote-tracking refs know nothing of it
    answer = as_json(b, "resume")
    assert answer["checkout"] == "checked out feature (fetched from origin)"
    assert git("rev-parse", "--abbrev-ref", "feature@{upstream}", cwd=b) == "origin/feature"
    assert git("rev-parse", "HEAD", cwd=b) == git("rev-parse", "feature", cwd=a)


def test_a_second_resume_takes_the_session_as_it_was_saved_since_not_as_this_clone_kept_it(tmp_path: Path) -> None:
    remote, a = project(tmp_path)
    session_id = as_json(a, "session", "save")["session"]["id"]
    ok(a, "sync")
    b = clone(remote, tmp_path / "b")
    ok(b, "resume")  # b now keeps its own copy of the session, marked resumed
    git("checkout", "-q", "-b", "later", cwd=a)
    git("commit", "-q", "--allow-empty", "-m", "later work", cwd=a)
    git("push", "-q", "origin", "later", cwd=a)
    ok(a, "task", "done", "T1")
    assert as_json(a, "session", "save")["session"]["id"] == session_id  # saved again, on branch later
    ok(a, "sync")
    answer = as_json(b, "resume")
    assert answer["checkout"] == "checked out later (fetched from origin)"
    assert answer["session"]["git_branch"] == "later" and answer["milestone"]["progress_percentage"] == 25


def test_resume_marks_the_session_logs_it_and_commits_it(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    session_id = as_json(repo, "session", "save")["session"]["id"]
    answer = as_json(repo, "resume", session_id)
    assert answer["session"]["status"] == "resumed" and answer["session"]["resumed_at"]
    assert answer["state"] == "none" and answer["checkout"] is None
    resumed = as_json(repo, "events", "m1", "--event", "session_resumed")["events"]
    assert [e["session_id"] for e in resumed] == [session_id]
    on_branch = yaml.safe_load(git("show", f"milestoned/state:sessions/{session_id}.yaml", cwd=repo))
    assert on_branch["session"]["status"] == "resumed"


def test_resume_clears_blockers_that_are_resolved(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    conflict(repo)
    engine = Engine(Workspace.discover(repo))
    with engine.transaction() as txn:
        escalated = blockers.recheck(txn, txn.milestone("m1"))
    assert [b["type"] for b in escalated.detected] == ["git_conflicts"]
    git("add", "f.txt", cwd=repo)
    git("commit", "-q", "--no-edit", cwd=repo)  # the cause is gone; no command looked since
    result = invoke("resume")
    assert result.exit_code == 0, result.output
    assert "cleared blocker: git_conflicts: unmerged paths in" in result.stdout
    assert as_json(repo, "status", "m1")["milestone"]["status"] == "in_progress"


def test_a_blocker_that_a_task_move_resolves_is_cleared_at_once(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    must("task", "start", "T2", "--force")  # before T1: a dependency violation
    engine = Engine(Workspace.discover(repo))
    with engine.transaction() as txn:
        blockers.recheck(txn, txn.milestone("m1"))
    assert as_json(repo, "status", "m1")["milestone"]["status"] == "blocked"
    must("task", "done", "T1")  # the cause is gone, and the state alone says so
    assert as_json(repo, "status", "m1")["milestone"]["status"] == "in_progress"


def test_sessions_show_a_paused_and_a_completed_session_as_such(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")

    def listed() -> list[tuple[str, str]]:
        return [(row["status"], row["save_reason"]) for row in as_json(repo, "sessions")["sessions"]]

    must("session", "save")
    assert listed() == [("active", "manual_save")]
    must("pause", "m1")
    assert listed() == [("paused", "paused")]
    must("activate", "m1")
    must("task", "done", "T1")
    must("task", "done", "T2")  # the last task: the milestone completes, and its session with it
    assert listed()[0][0] == "completed"
    assert "completed" in invoke("sessions").stdout


def test_bad_session_requests_are_one_line_and_change_nothing(two_task_milestone: Path, repo: Path) -> None:
    before = snapshot_tree(repo)
    no_session = invoke("session", "save", "m1")
    assert no_session.exit_code == 2
    assert no_session.stderr.strip() == ("milestoned: error: milestone m1 has no session yet "
                                         "(activate it: milestoned activate m1)")
    for args in (("session", "show", "../../etc/passwd"), ("resume", "exec-nope"), ("resume",)):
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert snapshot_tree(repo) == before
    assert json.loads(invoke("sessions", "--json").stdout) == {"schema": 1, "sessions": []}
