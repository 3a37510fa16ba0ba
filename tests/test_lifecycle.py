"""The milestone life cycle through the real CLI: activate, tasks, completion, refusals."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import invoke, write_milestone


def status_json(*args: str) -> dict:
    result = invoke("status", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_activate_sets_status_session_and_current(two_task_milestone: Path, repo: Path) -> None:
    result = invoke("activate", "m1")
    assert result.exit_code == 0, result.output
    view = status_json("m1")
    assert view["milestone"]["status"] == "in_progress"
    assert view["milestone"]["session_id"].startswith("exec-m1-")
    assert (repo / ".milestones/active/current.txt").read_text().strip() == "m1"
    text = two_task_milestone.read_text()
    assert "status: in_progress" in text and view["milestone"]["session_id"] in text


def test_completing_every_task_completes_and_moves_the_milestone(two_task_milestone: Path, repo: Path) -> None:
    invoke("activate", "m1")
    assert invoke("task", "done", "T1").exit_code == 0
    result = invoke("task", "done", "T2")
    assert "milestone completed" in result.stdout
    assert not two_task_milestone.exists()
    moved = repo / ".milestones/completed/m1.yaml"
    assert "status: completed" in moved.read_text()
    names = [e["event"] for e in json.loads(invoke("events", "m1", "--json").stdout)["events"]]
    assert names[-2:] == ["milestone_completed", "session_saved"] and "progress_updated" in names
    assert not (repo / ".milestones/active/current.txt").exists()


def test_completing_a_task_with_open_dependencies_is_refused(two_task_milestone: Path) -> None:
    invoke("activate", "m1")
    before = two_task_milestone.read_bytes()
    result = invoke("task", "done", "T2")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "milestoned: error: task T2 depends on T1, not completed yet (complete those first, or pass --force)"
    )
    assert two_task_milestone.read_bytes() == before


def test_force_completes_and_logs_that_it_was_forced(two_task_milestone: Path) -> None:
    invoke("activate", "m1")
    assert invoke("task", "done", "T2", "--force").exit_code == 0
    events = json.loads(invoke("events", "m1", "--json", "--event", "task_completed").stdout)["events"]
    assert events[-1]["task_id"] == "T2" and events[-1]["forced"] is True


def test_activating_a_completed_milestone_is_refused(repo: Path) -> None:
    write_milestone(repo, "done", """
        id: done
        status: completed
        tasks: [{id: A, title: a, status: completed}]
        """, folder="completed")
    result = invoke("activate", "done")
    assert result.exit_code == 2
    assert "milestone done is completed, not planned or paused" in result.stderr


def test_required_milestone_must_be_completed_first(repo: Path) -> None:
    write_milestone(repo, "m0", "id: m0\ntitle: base\ntasks: [{id: A, title: a}]\n")
    write_milestone(repo, "m1", "id: m1\ntitle: next\ndependencies: {requires: [m0]}\ntasks: [{id: B, title: b}]\n")
    result = invoke("activate", "m1")
    assert result.exit_code == 2
    assert "m1.yaml:3: milestone m1 requires m0, not completed yet" in result.stderr
    invoke("activate", "m0")
    invoke("task", "done", "A", "-m", "m0")
    names = [e["event"] for e in json.loads(invoke("events", "m1", "--json").stdout)["events"]]
    assert "required_milestone_activated" in names and "milestone_startable" in names
    assert invoke("activate", "m1").exit_code == 0


def test_pause_then_activate_again_keeps_the_work_done(two_task_milestone: Path) -> None:
    invoke("activate", "m1")
    invoke("task", "done", "T1")
    assert invoke("pause", "m1").exit_code == 0
    assert status_json("m1")["milestone"]["status"] == "paused"
    assert invoke("task", "start", "T2").exit_code == 2
    assert invoke("activate", "m1").exit_code == 0
    view = status_json("m1")
    assert view["milestone"]["status"] == "in_progress"
    assert [t["status"] for t in view["tasks"]] == ["completed", "pending"]


def test_reopening_a_task_of_a_completed_milestone_brings_it_back(two_task_milestone: Path, repo: Path) -> None:
    invoke("activate", "m1")
    invoke("task", "done", "T1")
    invoke("task", "done", "T2")
    assert invoke("task", "reopen", "T2", "-m", "m1").exit_code == 0
    assert two_task_milestone.exists()
    assert status_json("m1")["milestone"]["status"] == "in_progress"


def test_hand_edited_status_is_recorded_not_lost(two_task_milestone: Path) -> None:
    invoke("activate", "m1")
    text = two_task_milestone.read_text()
    two_task_milestone.write_text(text.replace("status: pending", "status: completed", 1))
    assert status_json("m1")["tasks"][0]["status"] == "completed"
    invoke("task", "start", "T2")
    events = json.loads(invoke("events", "m1", "--json", "--event", "status_set_manually").stdout)["events"]
    assert events and events[0]["task_id"] == "T1" and events[0]["to"] == "completed"
