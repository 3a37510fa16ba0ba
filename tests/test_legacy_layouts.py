"""Repositories set up by earlier versions (state in ``.milestones/``) keep their state.

Their logs, sessions and current milestone are imported into the git dir once, by
event id, and left where they are; the statuses those versions projected into the
plan are read as stale copies, not hand edits.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, invoke, log_file, session_file, write_milestone

SESSION = "exec-m1-20260101-abcdef"


def event(n: int, name: str, **fields: object) -> str:
    base = {"id": f"old{n}", "clock": n, "timestamp": f"2026-01-01T00:00:{n:02d}Z", "event": name,
            "milestone_id": "m1", "session_id": SESSION}
    return json.dumps({**base, **fields})


def earlier_version(repo: Path) -> Path:
    """What milestoned 0.1 left: a projected plan, its log, a session and current.txt, all committed."""
    plan = write_milestone(repo, "m1", """
        id: m1
        title: From an earlier version
        status: in_progress
        progress:
          percentage: 33
        tasks:
          - id: T1
            title: one
            status: completed
          - id: T2
            title: two
            status: in_progress
            agent: ada
          - id: T3
            title: three
            status: pending
        """)
    old = repo / ".milestones"
    (old / "logs").mkdir()
    (old / "logs/execution-m1.jsonl").write_text("\n".join([
        event(1, "state_baseline", status="planned", tasks={"T1": {"status": "pending"}, "T2": {"status": "pending"},
                                                            "T3": {"status": "pending"}}),
        event(2, "milestone_activated"),
        event(3, "task_completed", task_id="T1"),
        event(4, "task_started", task_id="T2", agent="ada"),
    ]) + "\n")
    (old / "sessions").mkdir()
    (old / "sessions" / f"{SESSION}.yaml").write_text(
        f"session:\n  id: {SESSION}\n  milestone_id: m1\n  status: active\n  saved_at: '2026-01-01T00:00:05Z'\n")
    (old / "active/current.txt").write_text("m1\n")
    git("add", ".milestones", cwd=repo)
    git("commit", "-qm", "state as milestoned 0.1 kept it", cwd=repo)
    return plan


def status_json(*args: str) -> dict:
    result = invoke("status", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_an_earlier_layout_is_imported_once_and_left_where_it_is(repo: Path) -> None:
    plan = earlier_version(repo)
    tracked = git("ls-files", "-s", cwd=repo)
    view = status_json()  # the current milestone came from current.txt
    assert view["milestone"]["id"] == "m1" and view["milestone"]["status"] == "in_progress"
    assert [(t["id"], t["status"], t["agent"]) for t in view["tasks"]] == [
        ("T1", "completed", None), ("T2", "in_progress", "ada"), ("T3", "pending", None)]
    assert view["warnings"] == []  # what 0.1 projected into the plan is a stale copy, not a hand edit
    assert session_file(repo, SESSION).is_file()
    assert [s["id"] for s in json.loads(invoke("sessions", "--json").stdout)["sessions"]] == [SESSION]
    events = json.loads(invoke("events", "m1", "--json", "-n", "0").stdout)["events"]
    assert [e["id"] for e in events[:4]] == ["old1", "old2", "old3", "old4"]
    assert events[-1]["event"] == "plan_acknowledged"
    # left in place, untouched, and the working tree is as the user committed it
    assert git("ls-files", "-s", cwd=repo) == tracked and git("status", "--porcelain", cwd=repo) == ""
    # once: a second look and a write bring in nothing twice
    assert invoke("task", "done", "T2").exit_code == 0
    again = json.loads(invoke("events", "m1", "--json", "-n", "0").stdout)["events"]
    assert [e["id"] for e in again[: len(events)]] == [e["id"] for e in events]
    assert sum(e["id"] == "old3" for e in again) == 1
    # the plan still says T2 in_progress: stale now, and only a disagreement with a later hand edit is told
    assert status_json("m1")["warnings"] == []
    plan.write_text(plan.read_text().replace("    status: pending", "    status: blocked"))
    assert "the file says task T3 is blocked, milestoned has it pending" in status_json("m1")["warnings"][0]


def test_doctor_says_the_old_files_may_be_deleted(repo: Path) -> None:
    earlier_version(repo)
    assert invoke("status").exit_code == 0
    checks = json.loads(invoke("doctor", "--offline", "--json").stdout)["checks"]
    leftovers = sorted(c["detail"] for c in checks if c["area"] == "leftovers")
    assert leftovers == [
        ".milestones/active/current.txt: imported into .git/milestoned and no longer read",
        ".milestones/logs/execution-m1.jsonl: imported into .git/milestoned and no longer read",
        ".milestones/sessions/exec-m1-20260101-abcdef.yaml: imported into .git/milestoned and no longer read",
    ]
    fields = [c for c in checks if c["area"] == "plan"]
    assert [(c["detail"], c["fix"]) for c in fields] == [(
        ".milestones/active/m1.yaml:4: agent, progress (2 in all) hold state the seed or an earlier version wrote; "
        "milestoned read them once and no longer does",
        "remove them if you like; `milestoned status m1 --format yaml` shows the state")]


def test_a_legacy_log_that_grows_is_taken_in_again_without_doubles(repo: Path) -> None:
    earlier_version(repo)
    assert invoke("status").exit_code == 0
    with (repo / ".milestones/logs/execution-m1.jsonl").open("a") as old:  # an old version still running
        old.write(event(5, "task_completed", task_id="T2") + "\n")
    assert status_json("m1")["tasks"][1]["status"] == "completed"
    ids = [json.loads(line)["id"] for line in log_file(repo, "m1").read_text().splitlines()]
    assert len(ids) == len(set(ids))


def test_a_legacy_log_with_broken_lines_is_imported_as_far_as_it_goes(repo: Path) -> None:
    write_milestone(repo, "m1", "id: m1\ntitle: t\ntasks:\n  - {id: T1, title: a}\n  - {id: T2, title: b}\n")
    old = repo / ".milestones/logs"
    old.mkdir()
    (old / "execution-m1.jsonl").write_text("\n".join([
        '{"event": "milestone_activated", "timestamp": "2026-01-01T00:00:00Z", "milestone_id": "m1"}',
        "{torn",
        '{"event": "task_completed", "task_id": "T1", "timestamp": "2026-01-01T00:00:01Z"}',
        "not json at all",
    ]) + "\n")
    first = invoke("status", "m1", "--json")
    assert first.exit_code == 0
    warnings = [line for line in first.stderr.splitlines() if "importing" in line]
    assert warnings == [
        "milestoned: warning: .milestones/logs/execution-m1.jsonl:2: not valid JSON (Expecting property name "
        "enclosed in double quotes at column 2) (line skipped while importing it)",
        "milestoned: warning: .milestones/logs/execution-m1.jsonl:4: not valid JSON (Expecting value at column 1) "
        "(line skipped while importing it)",
    ]
    view = json.loads(first.stdout)
    assert [t["status"] for t in view["tasks"]] == ["completed", "pending"]
    assert "importing" not in invoke("status", "m1", "--json").stderr  # once
