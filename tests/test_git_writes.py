"""Git writes that follow a state change happen after its events, and a failure of one is repaired.

The engine writes a change's events first; then what it means in git: the notes of
ingested commits, the state branch's commit, the local copy of a claim pushed to a
remote.  Each of these can fail on its own (a ref another git holds locked, a process
killed between two steps); each case here makes it fail for real and shows what the
user sees and that the next command puts it right.  A checkpoint is the exception that
proves the order: its ref is taken before the event that names it, so a failed save
leaves an unnamed checkpoint, never an event naming nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import at, commit, events, git, invoke, ok, project, share, statuses
from milestoned.core.errors import RuntimeFailure
from milestoned.model import events as eventlog


def lock(repo: Path, ref: str) -> Path:
    """What a concurrent git leaves while it updates ``ref``: its lock file."""
    path = repo / ".git" / f"{ref}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def notes_of(repo: Path, sha: str) -> str:
    return git("notes", "--ref=milestoned", "show", sha, cwd=repo, check=False)


def test_notes_a_drain_cannot_write_come_with_the_next_drain(active: Path) -> None:
    held = lock(active, "refs/notes/milestoned")
    sha = commit(active, "begin T1", "Task: T1")
    result = invoke("status", "m1", "--json")
    assert result.exit_code == 0
    assert "milestoned: warning: commits not fully taken in (the next command tries again): could not write " \
           "notes to refs/notes/milestoned" in result.stderr
    assert json.loads(result.stdout)["tasks"][0]["status"] == "in_progress"  # the events came first
    assert notes_of(active, sha) == ""
    held.unlink()
    assert statuses()["T1"] == "in_progress"
    assert json.loads(notes_of(active, sha))["event"] == "task_started"
    assert [e["commit"] for e in events("task_started")] == [sha]  # once: the retry moved nothing twice


def test_a_state_branch_commit_that_fails_is_made_by_the_next_save(two_task_milestone: Path, repo: Path) -> None:
    assert invoke("activate", "m1").exit_code == 0
    held = lock(repo, "refs/heads/milestoned/state")
    failed = invoke("session", "save")
    assert failed.exit_code == 1
    assert "refs/heads/milestoned/state" in failed.stderr and "run the command again" in failed.stderr
    saved = [e for e in json.loads(invoke("events", "m1", "--json").stdout)["events"] if e["event"] == "session_saved"]
    assert len(saved) == 1  # the save itself is recorded; only its copy on the branch is missing
    assert git("rev-parse", "-q", "--verify", "milestoned/state", cwd=repo, check=False) == ""
    held.unlink()
    assert invoke("session", "save").exit_code == 0
    tree = git("ls-tree", "-r", "--name-only", "milestoned/state", cwd=repo).splitlines()
    assert "logs/m1.jsonl" in tree and any(name.startswith("sessions/") for name in tree)


def test_a_claim_pushed_by_a_process_that_died_before_recording_it_goes_to_the_same_agent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote, a = project(tmp_path, tasks=2)
    b = share(a, remote, tmp_path / "b")
    real_append = eventlog.append

    def dies_after_the_push(path: Path, new_events: list[dict]) -> None:
        if any(e["event"] == "task_claimed" for e in new_events):
            raise RuntimeFailure("the disk is gone")  # the push decided; the log never heard of it
        real_append(path, new_events)

    monkeypatch.setattr(eventlog, "append", dies_after_the_push)
    lost = at(a, "next", "--claim", "--agent", "alice", "--remote", "origin", "--json")
    assert lost.exit_code == 1 and "the disk is gone" in lost.stderr
    monkeypatch.setattr(eventlog, "append", real_append)
    assert "refs/milestoned/claims/m1/T1" in git("ls-remote", str(remote), cwd=a)
    # another agent cannot have it; alice, asking again from here, gets back the claim she pushed
    other = json.loads(ok(b, "next", "--claim", "--agent", "bob", "--remote", "origin", "--json"))
    assert other["claimed"]["id"] == "T2"
    again = json.loads(ok(a, "next", "--claim", "--agent", "alice", "--remote", "origin", "--json"))
    assert again["claimed"]["id"] == "T1" and again["claimed"]["agent"] == "alice"


def test_a_checkpoint_is_taken_before_the_event_that_names_it(two_task_milestone: Path, repo: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("activate", "m1").exit_code == 0
    (repo / "README.md").write_text("work in progress\n")

    real_append = eventlog.append

    def fails(path: Path, new_events: list[dict]) -> None:
        raise RuntimeFailure("the disk is gone")

    monkeypatch.setattr(eventlog, "append", fails)
    assert invoke("checkpoint", "m1").exit_code == 1
    monkeypatch.setattr(eventlog, "append", real_append)
    listed = json.loads(invoke("checkpoint", "m1", "--list", "--json").stdout)["checkpoints"]
    assert len(listed) == 1  # the user's work is kept all the same
    assert git("show", f"{listed[0]['ref']}:README.md", cwd=repo) == "work in progress"
    names = [e["event"] for e in json.loads(invoke("events", "m1", "--json", "-n", "0").stdout)["events"]]
    assert "auto_commit" not in names
