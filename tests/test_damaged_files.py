"""What a crash, a power loss or a hand leaves in milestoned's own files never stops a command.

Each damaged line is skipped with one warning naming its file and line, and every
command goes on: reads answer from what is sound, writes append after the damage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import TWO_TASKS, fake, invoke, log_file, must, plan, write_milestone
from milestoned.cli import render
from milestoned.core import clock
from milestoned.core.jsonout import json_text
from milestoned.engine.blockers import Probe, detect
from milestoned.model import views
from milestoned.model.config import Config
from milestoned.model.milestone import LogFold, Milestone
from milestoned.model.plan import Plan, Recorded, TaskPlan
from milestoned.model.state import STATE_EVENTS, fold, initial

READ_COMMANDS = [("status", "m1", "--json"), ("status",), ("events", "m1"), ("next", "m1", "--json"),
                 ("blockers", "m1"), ("graph", "m1"), ("validate", "m1"), ("doctor", "--offline")]


@pytest.fixture
def running(repo: Path) -> Path:
    write_milestone(repo, "m1", TWO_TASKS)
    must("activate", "m1")
    must("task", "start", "T1")
    return repo


def lines_of(path: Path) -> int:
    return len(path.read_bytes().splitlines())


@pytest.mark.parametrize("count", [10, 4095])
def test_a_run_of_nul_bytes_at_the_end_of_a_log_is_skipped_and_named(running: Path, count: int) -> None:
    log = log_file(running, "m1")
    with log.open("ab") as handle:
        handle.write(b"\x00" * count)  # what a power loss leaves after the last append
    line = lines_of(log)
    warning = (f".git/milestoned/log/m1.jsonl:{line}: {count} NUL bytes, the leftover of a crash or a power loss "
               "(line skipped)")
    for command in READ_COMMANDS:
        result = invoke(*command)
        assert result.exit_code == 0, (command, result.output)
        assert "internal error" not in result.output
    assert warning in invoke("status", "m1").stderr
    must("task", "done", "T1")  # a write goes on after the damage, on a line of its own
    view = json.loads(must("status", "m1", "--json").stdout)
    assert [t["status"] for t in view["tasks"]] == ["completed", "pending"]
    assert warning in view["warnings"]


def test_an_event_with_wrong_types_is_survived(running: Path) -> None:
    log = log_file(running, "m1")
    with log.open("a") as handle:
        for line in ('{"event":"state_baseline","tasks":[1,2],"clock":100}',
                     '{"event":"task_blocked","task_id":"T2","paths":7,"tail":"x","exit_code":"no","clock":101}',
                     '{"event":"blockers_escalated","blockers":"everything","clock":102}',
                     '{"event":"task_started","task_id":["T1"],"clock":"late","timestamp":5}'):
            handle.write(line + "\n")
    for command in READ_COMMANDS:
        result = invoke(*command)
        assert result.exit_code in (0, 1), (command, result.output)  # blockers may exit 1: T2 is blocked
        assert "internal error" not in result.output
    tasks = json.loads(must("status", "m1", "--json").stdout)["tasks"]
    assert [t["status"] for t in tasks] == ["pending", "blocked"]  # the baseline of no tasks, then T2 blocked
    must("task", "reopen", "T2")


def test_a_current_milestone_file_that_is_not_utf8_is_ignored(running: Path) -> None:
    (running / ".git/milestoned/current").write_bytes(b"\xff\xfe m1\n")
    result = invoke("status", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["current"] is None  # the overview
    write_milestone(running, "m2", "id: m2\ntitle: another\ntasks: [{id: T1, title: one}]\n")
    refused = invoke("task", "done", "T1")  # two milestones and none current: which one is not guessed
    assert refused.exit_code == 2 and refused.stderr.startswith("milestoned: error: no milestone given")


def test_a_milestone_file_that_is_a_directory_is_named(repo: Path) -> None:
    (repo / ".milestones/active/m1.yaml").mkdir()
    result = invoke("status", "m1")
    assert result.exit_code == 2
    assert result.stderr == ("milestoned: error: .milestones/active/m1.yaml: is a directory, not a milestone file "
                             "(move it away; a milestone is one YAML file)\n")


# -- any event at all, as the fold and every view meet it ---------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                    max_leaves=6)
FIELDS = ("task_id", "agent", "timestamp", "clock", "status", "tasks", "blockers", "remaining", "lease_until",
          "reason", "paths", "output", "tail", "exit_code", "worktree", "to", "session_id", "execution_session_id",
          "started_at", "completed_at", "commit")
EVENT = st.fixed_dictionaries(
    {"event": st.sampled_from(sorted(STATE_EVENTS) + ["commit_refused", "note"])},
    optional={field: st.one_of(JSON, st.sampled_from(["T1", "T2", "2026-01-01T00:00:00Z"])) for field in FIELDS},
)
PLAN = Plan("m1", "m", (), (TaskPlan("T1", "one"), TaskPlan("T2", "two", ("T1",), index=1)), Recorded("planned"),
            Path("m1.yaml"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EVENT, max_size=12))
@example([{"event": "task_blocked", "task_id": "T1", "paths": 7, "tail": "x", "exit_code": True}])
@example([{"event": "blockers_escalated", "blockers": [{"type": 1, "key": [], "detail": None}]}])
def test_no_event_log_makes_a_view_crash(events: list[dict]) -> None:
    state = fold(events, initial(PLAN))
    milestone = Milestone(PLAN, LogFold(state, events[-50:], []), Path("m1.jsonl"))
    view = views.status(milestone)
    json_text(view, pretty=False)
    list(render.status_lines(view))
    render.mermaid(view)
    render.dot(view)
    detect(milestone, Config(), Probe(now=clock.now(), conflicts=(), disk_percent=0.0))
    views.summary(milestone)
    assert os.environ.get("MILESTONED_NOW") is None


def test_a_ref_lock_a_killed_run_left_is_cleared_by_the_next_run(repo: Path) -> None:
    plan(repo, [{"id": "T1", "run": fake("--write", "t1.txt", "x")}])
    lock = repo / ".git/refs/heads/milestone/m1/T1.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")  # git was killed while it created the task's branch
    result = invoke("execute", "m1")
    assert result.exit_code == 0, result.output
    assert "removed .git/refs/heads/milestone/m1/T1.lock, a lock a killed run left on a task branch" in result.stdout
    assert not lock.exists()
    assert json.loads(must("status", "m1", "--json").stdout)["milestone"]["status"] == "completed"


def test_a_ref_lock_a_live_process_holds_is_left_and_the_blocker_names_it(repo: Path) -> None:
    plan(repo, [{"id": "T1", "run": fake("--write", "t1.txt", "x")}])
    lock = repo / ".git/refs/heads/milestone/m1/T1.lock"
    lock.parent.mkdir(parents=True)
    with lock.open("w"):  # held open, as by a git still at work
        result = invoke("execute", "m1")
    assert lock.exists()
    blocker = json.loads(must("status", "m1", "--json").stdout)["tasks"][0]["blocker"]
    assert "could not make its worktree" in blocker["reason"]
    assert result.exit_code == 1
