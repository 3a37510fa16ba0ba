"""Files as the seed's users have them on disk load, and rewrites keep what a person wrote."""

from __future__ import annotations

import difflib
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import invoke

FIXTURES = Path(__file__).parent / "fixtures"
OUR_KEYS = re.compile(
    r"^\s*(-\s+)?(status|progress|percentage|tasks_completed|last_update|started_at|completed_at|agent|"
    r"execution|session_id|blockers):"
)


@pytest.fixture
def legacy(repo: Path) -> Path:
    shutil.rmtree(repo / ".milestones")
    shutil.copytree(FIXTURES / "legacy" / ".milestones", repo / ".milestones")
    return repo


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_every_legacy_milestone_loads_and_road_maps_are_not_milestones(legacy: Path) -> None:
    result = invoke("validate", "--all", "--json")
    report = json.loads(result.stdout)
    assert report["ok"], report
    assert sorted(Path(f["path"]).stem for f in report["files"]) == [
        "finished-one", "planning-stage", "reactive-updates", "simple-active",
    ]
    overview = json.loads(invoke("status", "--json").stdout)
    assert overview["milestone"]["id"] == "reactive-updates"  # current.txt is not a milestone


def test_legacy_quirks_are_understood(legacy: Path) -> None:
    reactive = json.loads(invoke("status", "reactive-updates", "--json").stdout)
    assert reactive["milestone"]["title"] == "Réactivité des statuts — 状態の自動更新"
    assert reactive["milestone"]["status"] == "in_progress"
    assert [t["status"] for t in reactive["tasks"]] == ["completed", "completed", "completed", "pending"]
    assert reactive["tasks"][2]["dependencies"] == ["r-1"]  # depends_on
    assert reactive["ready"] == ["r-4"]
    simple = json.loads(invoke("status", "simple-active", "--json").stdout)
    assert simple["milestone"]["status"] == "in_progress"  # status: active
    assert simple["milestone"]["progress"]["percentage"] == 25  # recomputed from the tasks
    planning = json.loads(invoke("status", "planning-stage", "--json").stdout)
    assert planning["milestone"]["status"] == "planned"  # status: planning
    # the current milestone comes from active/current.txt
    assert json.loads(invoke("status", "--json").stdout)["milestone"]["id"] == "reactive-updates"


def test_unreadable_legacy_event_line_is_reported_with_file_and_line(legacy: Path) -> None:
    result = invoke("events", "reactive-updates")
    assert result.exit_code == 0
    assert ".milestones/state/events/milestone-reactive-updates.jsonl:1: not valid JSON" in result.stderr


def yaml_document(*args: str) -> str:
    result = invoke("status", *args, "--format", "yaml")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_activating_a_planning_milestone_works_and_leaves_its_file_alone(legacy: Path) -> None:
    path = legacy / ".milestones/active/planning-stage.yaml"
    before = path.read_bytes()
    assert invoke("activate", "planning-stage").exit_code == 0
    assert json.loads(invoke("status", "planning-stage", "--json").stdout)["milestone"]["status"] == "in_progress"
    assert path.read_bytes() == before
    document = yaml_document("planning-stage")
    assert "status: in_progress" in document and "requirements:\n  tools: [yq, git]" in document


def test_a_legacy_file_is_never_rewritten_and_its_yaml_view_touches_only_the_seeds_fields(legacy: Path) -> None:
    path = legacy / ".milestones/active/reactive-updates.yaml"
    before = path.read_text()
    assert invoke("task", "start", "r-4", "-m", "reactive-updates", "--agent", "ada").exit_code == 0
    assert path.read_text() == before
    document = yaml_document("reactive-updates")
    changes = changed_lines(before, document)
    assert changes, "the task status should show"
    assert all(OUR_KEYS.match(line[1:]) for line in changes), changes
    assert '    status: "in_progress"' in document  # the quoting style of the file is kept
    assert '  - id: "r-2"' in document and "assigned_to: \"claude\"" in document


def test_bare_number_progress_stays_a_number(legacy: Path) -> None:
    assert invoke("task", "done", "s-2", "-m", "simple-active").exit_code == 0
    document = yaml_document("simple-active")
    assert "\nprogress: 50\n" in document  # 2 of 4 tasks
    assert "  - {id: s-1, title: First, status: completed}" in document


def test_a_hand_formatted_plan_stays_byte_for_byte_while_its_tasks_move(repo: Path) -> None:
    path = repo / ".milestones/active/m1.yaml"
    original = (FIXTURES / "hand-written.yaml").read_text()
    path.write_text(original)
    assert invoke("activate", "m1").exit_code == 0
    assert invoke("task", "start", "T1").exit_code == 0
    assert path.read_text() == original
    document = yaml_document("m1")
    changes = changed_lines(original, document)
    assert all(OUR_KEYS.match(line[1:]) for line in changes), changes
    for kept in ("# Milestone written by hand.  Keep my comments!",
                 "title: 'Authentication — with “quotes”'   # single-quoted on purpose",
                 "owner: {name: Ada, team: core}            # a field milestoned does not know",
                 '    -   id: T1\n        title: "User model"               # double-quoted',
                 "            Multi-line notes\n            that must survive.",
                 '        run: ["pytest", "-q", "tests/test_login.py"]\n        custom_field: 42',
                 "# trailing comment"):
        assert kept in document
    removed = [line for line in changes if line.startswith("-")]
    assert removed == ["-status: planned", "-        status: pending"]
