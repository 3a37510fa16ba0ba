"""The milestone life cycle through the real CLI: activate, tasks, completion, refusals."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import invoke, must, write_milestone


def status_json(*args: str) -> dict:
    result = invoke("status", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_activate_sets_status_session_and_current_without_touching_the_plan(two_task_milestone: Path) -> None:
    before = two_task_milestone.read_bytes()
    result = invoke("activate", "m1")
    assert result.exit_code == 0, result.output
    view = status_json("m1")
    assert view["milestone"]["status"] == "in_progress"
    assert view["milestone"]["session_id"].startswith("exec-m1-")
    assert status_json()["milestone"]["id"] == "m1"  # the current milestone, with no argument
    assert two_task_milestone.read_bytes() == before  # the plan is the user's: no status written into it


def test_completing_every_task_completes_the_milestone_and_leaves_the_plan_where_it_is(
        two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    assert invoke("task", "done", "T1").exit_code == 0
    result = invoke("task", "done", "T2")
    assert "milestone completed; `milestoned archive m1` moves its plan to completed/" in result.stdout
    assert two_task_milestone.exists() and not (repo / ".milestones/completed/m1.yaml").exists()
    assert status_json("m1")["milestone"]["status"] == "completed"
    names = [e["event"] for e in json.loads(invoke("events", "m1", "--json").stdout)["events"]
             if e["event"] != "auto_commit"]  # the uncommitted plan is kept in a checkpoint
    assert names[-2:] == ["milestone_completed", "session_saved"] and "progress_updated" in names
    assert status_json()["current"] is None  # no current milestone any more: the overview


def test_archive_moves_a_completed_plan_and_refuses_an_open_one(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    must("task", "done", "T1")
    refused = invoke("archive", "m1")
    assert refused.exit_code == 2
    assert refused.stderr.strip() == ("milestoned: error: milestone m1 is in_progress (1/2 tasks): "
                                      "only a completed milestone is archived")
    must("task", "done", "T2")
    assert invoke("archive", "m1").exit_code == 0
    assert not two_task_milestone.exists() and (repo / ".milestones/completed/m1.yaml").is_file()
    assert status_json("m1")["milestone"]["status"] == "completed"


def test_completing_a_task_with_open_dependencies_is_refused(two_task_milestone: Path) -> None:
    must("activate", "m1")
    before = two_task_milestone.read_bytes()
    result = invoke("task", "done", "T2")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "milestoned: error: task T2 depends on T1, not completed yet (complete those first, or pass --force)"
    )
    assert two_task_milestone.read_bytes() == before


def test_force_completes_and_logs_that_it_was_forced(two_task_milestone: Path) -> None:
    must("activate", "m1")
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
    must("activate", "m0")
    must("task", "done", "A", "-m", "m0")
    names = [e["event"] for e in json.loads(invoke("events", "m1", "--json").stdout)["events"]]
    assert "required_milestone_activated" in names and "milestone_startable" in names
    assert invoke("activate", "m1").exit_code == 0


def test_pause_then_activate_again_keeps_the_work_done(two_task_milestone: Path) -> None:
    must("activate", "m1")
    must("task", "done", "T1")
    assert invoke("pause", "m1").exit_code == 0
    assert status_json("m1")["milestone"]["status"] == "paused"
    assert invoke("task", "start", "T2").exit_code == 2
    assert invoke("activate", "m1").exit_code == 0
    view = status_json("m1")
    assert view["milestone"]["status"] == "in_progress"
    assert [t["status"] for t in view["tasks"]] == ["completed", "pending"]


def test_reopening_a_task_of_a_completed_milestone_brings_it_back(two_task_milestone: Path, repo: Path) -> None:
    must("activate", "m1")
    must("task", "done", "T1")
    must("task", "done", "T2")
    assert invoke("task", "reopen", "T2", "-m", "m1").exit_code == 0
    assert status_json("m1")["milestone"]["status"] == "in_progress"
    names = [e["event"] for e in json.loads(invoke("events", "m1", "--json").stdout)["events"]]
    assert names.count("milestone_reopened") == 1
    write_milestone(repo, "m2", "id: m2\ntitle: another\ntasks: [{id: X, title: x}]\n")
    assert status_json()["milestone"]["id"] == "m1"  # its completion left none current; the reopen made it so


def test_activating_a_running_milestone_makes_it_current_and_keeps_its_session(two_task_milestone: Path,
                                                                               repo: Path) -> None:
    write_milestone(repo, "m2", "id: m2\ntitle: another\ntasks: [{id: X, title: x}]\n")
    must("activate", "m1")
    session = status_json("m1")["milestone"]["session_id"]
    must("activate", "m2")
    again = must("activate", "m1")
    assert again.stdout == f"m1 is in_progress already (session {session}): it is the current milestone\nready: T1\n"
    assert status_json()["milestone"]["id"] == "m1"
    assert status_json("m1")["milestone"]["session_id"] == session


def test_with_one_milestone_and_none_current_commands_take_that_one(repo: Path) -> None:
    write_milestone(repo, "solo", "id: solo\ntitle: the only one\ntasks: [{id: A, title: a, dependencies: [B]},"
                                  " {id: B, title: b}]\n")
    assert must("validate").stdout == "ok .milestones/active/solo.yaml\n"
    assert "A" in must("graph").stdout
    write_milestone(repo, "broken", "id: broken\ntitle: x\ntasks: [{id: A, title: a, dependencies: [Z]}]\n")
    checked = invoke("validate")  # two now, none current: every one is checked
    assert checked.exit_code == 2 and "ok .milestones/active/solo.yaml" in checked.stdout and "depends on unknown task Z" in checked.stderr


def test_a_status_edited_into_the_plan_is_reported_with_its_command_never_applied(two_task_milestone: Path) -> None:
    must("activate", "m1")
    text = two_task_milestone.read_text()
    two_task_milestone.write_text(text.replace("status: pending", "status: completed", 1))
    view = status_json("m1")
    assert view["tasks"][0]["status"] == "pending"  # the state is ours: a file edit is not a command
    assert view["warnings"] == [
        ".milestones/active/m1.yaml:7: the file says task T1 is completed, milestoned has it pending "
        "(to record it: milestoned task done T1 -m m1; else remove the line)"]
    validated = invoke("validate", "m1")
    assert validated.exit_code == 0 and view["warnings"][0] in validated.stderr
    doctor = json.loads(invoke("doctor", "--offline", "--json").stdout)
    assert any(c["area"] == "plan" and c["detail"] == view["warnings"][0] for c in doctor["checks"])
    assert invoke("task", "start", "T2").exit_code == 2  # T1 is still open
    names = [e["event"] for e in json.loads(invoke("events", "m1", "--json", "-n", "0").stdout)["events"]]
    assert "status_set_manually" not in names


def test_a_seed_plan_whose_tasks_are_all_completed_is_completed(repo: Path) -> None:
    write_milestone(repo, "old", """
        id: old
        title: Done long ago
        tasks:
          - {id: A, title: a, status: completed}
          - {id: B, title: b, status: completed}
        """)
    view = status_json("old")
    assert view["milestone"]["status"] == "completed" and view["milestone"]["progress"]["percentage"] == 100
