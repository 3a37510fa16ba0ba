"""Claims for agents: local leases under the engine lock, and remote claims by atomic push."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import (
    as_json,
    at,
    bare_remote,
    git,
    invoke,
    log_file,
    must,
    ok,
    project,
    run_subprocess,
    share,
    tasks_yaml,
    write_milestone,
)


def claim_json(root: Path, agent: str, *extra: str) -> dict:
    return as_json(root, "next", "--claim", "--agent", agent, *extra)


def events_named(root: Path, name: str) -> list[dict]:
    return as_json(root, "events", "m1", "-n", "0", "--event", name)["events"]


def remote_claims(remote: Path) -> dict[str, dict]:
    """The claims on a bare remote: ``{ref: the claim commit's JSON}``."""
    out = git("for-each-ref", "refs/milestoned/claims/", "--format=%(refname)", cwd=remote)
    return {ref: json.loads(git("log", "-1", "--format=%b", ref, cwd=remote)) for ref in out.split()}


@pytest.fixture
def milestone(repo: Path) -> Path:
    write_milestone(repo, "m1", f"id: m1\ntitle: agents\ntasks:\n{tasks_yaml(8)}\n  - {{id: T9, title: last, "
                                "dependencies: [T1]}\n")
    assert invoke("activate", "m1").exit_code == 0
    return repo


def test_two_local_agents_never_get_the_same_task(milestone: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-m", "milestoned", "next", "--claim", "--agent", f"agent-{k}", "--json"],
                         cwd=milestone, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(6)
    ]
    answers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        answers.append(json.loads(out))
    claimed = [a["claimed"]["id"] for a in answers]
    assert len(set(claimed)) == 6 and set(claimed) <= {f"T{i}" for i in range(1, 9)}
    claims = events_named(milestone, "task_claimed")
    assert sorted(e["task_id"] for e in claims) == sorted(claimed)
    view = as_json(milestone, "status", "m1")
    holders = {t["id"]: t["agent"] for t in view["tasks"] if t["status"] == "in_progress"}
    assert holders == {a["claimed"]["id"]: a["agent"] for a in answers}


def test_an_agent_asking_again_keeps_its_task_and_done_frees_the_next(milestone: Path) -> None:
    first = claim_json(milestone, "a1")
    assert first["claimed"]["id"] == "T1" and first["claimed"]["agent"] == "a1" and not first["already_held"]
    again = claim_json(milestone, "a1")
    assert again["claimed"]["id"] == "T1" and again["already_held"]
    assert "T9" not in [r["id"] for r in as_json(milestone, "next")["ready"]]
    finished = as_json(milestone, "done", "--agent", "a1")
    assert finished["completed"] == "T1" and "T9" in finished["ready"]
    assert claim_json(milestone, "a1")["claimed"]["id"] == "T2"


def test_an_expired_lease_returns_the_task_with_an_event(milestone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILESTONED_NOW", "2030-01-01T10:00:00Z")
    assert claim_json(milestone, "slow", "--lease", "30m")["claimed"]["lease_until"] == "2030-01-01T10:30:00Z"
    monkeypatch.setenv("MILESTONED_NOW", "2030-01-01T10:20:00Z")
    beat = as_json(milestone, "heartbeat", "--agent", "slow")
    assert beat["renewed"] == [{"task_id": "T1", "lease_until": "2030-01-01T10:50:00Z"}]
    monkeypatch.setenv("MILESTONED_NOW", "2030-01-01T10:40:00Z")
    assert claim_json(milestone, "quick")["claimed"]["id"] == "T2"  # T1's renewed lease still holds
    monkeypatch.setenv("MILESTONED_NOW", "2030-01-01T11:00:00Z")
    ready = [r["id"] for r in as_json(milestone, "next")["ready"]]
    assert ready[0] == "T1"
    expired = events_named(milestone, "claim_expired")
    assert [(e["task_id"], e["agent"], e["lease_until"]) for e in expired] == \
        [("T1", "slow", "2030-01-01T10:50:00Z"), ("T2", "quick", "2030-01-01T11:10:00Z")][:1]
    assert claim_json(milestone, "other")["claimed"]["id"] == "T1"
    late = at(milestone, "heartbeat", "--agent", "slow")
    assert late.exit_code == 2
    assert late.stderr.startswith("milestoned: error: agent slow holds no task in m1: its claim on T1 lapsed at "
                                  "2030-01-01T10:50:00Z (no heartbeat in time), and T1 is held by other now (")
    named = at(milestone, "done", "T1", "--agent", "slow")
    assert named.exit_code == 2 and named.stderr.startswith(
        "milestoned: error: task T1 is not held by slow (it is held by other): the claim slow had lapsed at "
        "2030-01-01T10:50:00Z (no heartbeat in time) (")
    assert at(milestone, "release", "--agent", "never-claimed").stderr.startswith(
        "milestoned: error: agent never-claimed holds no task in m1 (")  # nothing lapsed: nothing more to say


def test_release_gives_the_task_back(milestone: Path) -> None:
    claim_json(milestone, "a1")
    released = as_json(milestone, "release", "--agent", "a1")
    assert released["released"] == ["T1"] and released["ready"][0] == "T1"
    task = next(t for t in as_json(milestone, "status", "m1")["tasks"] if t["id"] == "T1")
    assert (task["status"], task["agent"], task["started_at"]) == ("pending", None, None)  # as if never started
    assert claim_json(milestone, "a2")["claimed"]["id"] == "T1"
    refused = at(milestone, "done", "T1", "--agent", "a1")
    assert refused.exit_code == 2
    assert "task T1 is not held by a1 (it is held by a2)" in refused.stderr


def test_claim_input_is_checked_before_anything_is_written(milestone: Path) -> None:
    log = log_file(milestone, "m1")
    before = log.read_bytes()
    cases = [
        (("next", "--claim"), "--claim needs --agent NAME"),
        (("next", "--claim", "--agent", "a", "--lease", "soon"), "--lease 'soon' is not a duration"),
        (("next", "--agent", "a"), "--agent, --lease and --remote go with --claim"),
        (("next", "--claim", "--agent", "a", "--remote", "--upload-pack=touch pwned"), "is not a remote"),
        (("next", "--claim", "--agent", "a", "--remote", "nowhere"), "no remote named 'nowhere'"),
        (("heartbeat", "--agent", "nobody"), "agent nobody holds no task in m1"),
    ]
    for args, message in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("milestoned: error: ") and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert log.read_bytes() == before
    assert not (milestone / "pwned").exists()
    must("pause", "m1")
    paused = invoke("next", "--claim", "--agent", "a")
    assert paused.exit_code == 2 and "cannot claim a task: milestone m1 is paused" in paused.stderr


def test_remote_claim_one_winner_the_other_told_who_holds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote, a = project(tmp_path, tasks=2)
    b = share(a, remote, tmp_path / "b")
    monkeypatch.setenv("MILESTONED_NOW", "2030-01-01T10:00:00Z")
    won = claim_json(a, "alice", "--remote", "origin")
    assert won["claimed"]["id"] == "T1" and won["remote"] == "origin"
    told = claim_json(b, "bob", "--remote", "origin", "--lease", "3h")
    assert told["claimed"]["id"] == "T2"
    assert [(h["task_id"], h["agent"], h["status"]) for h in told["held_elsewhere"]] == [("T1", "alice", "claimed")]
    claims = remote_claims(remote)
    assert {ref: c["agent"] for ref, c in claims.items()} == {
        "refs/milestoned/claims/m1/T1": "alice", "refs/milestoned/claims/m1/T2": "bob"}
    # each claim is its own object: the same task pushed twice could not both "win"
    assert len({git("rev-parse", ref, cwd=remote) for ref in claims}) == 2

    ok(a, "heartbeat", "--agent", "alice")
    assert remote_claims(remote)["refs/milestoned/claims/m1/T1"]["lease_until"] == "2030-01-01T10:30:00Z"
    # alice's lease runs out; a clone that sees it may take the task over, atomically
    monkeypatch.setenv("MILESTONED_NOW", "2030-01-01T11:00:00Z")
    took = claim_json(b, "carol", "--remote", "origin")
    assert took["claimed"]["id"] == "T1"
    assert remote_claims(remote)["refs/milestoned/claims/m1/T1"]["agent"] == "carol"
    assert [e["previous"]["agent"] for e in events_named(b, "claim_taken_over")] == ["alice"]
    lost = at(a, "heartbeat", "--agent", "alice")
    assert lost.exit_code == 1 and "alice no longer holds T1 (now carol)" in lost.stderr
    assert events_named(a, "claim_expired")[-1]["holder"] == "carol"

    finished = as_json(b, "done", "T1", "--agent", "carol")
    assert finished["warnings"] == [] and finished["completed"] == "T1"
    assert remote_claims(remote)["refs/milestoned/claims/m1/T1"]["status"] == "done"
    released = as_json(b, "release", "--agent", "bob")
    assert released["released"] == ["T2"]
    assert "refs/milestoned/claims/m1/T2" not in remote_claims(remote)
    # a finished task stays claimed on the remote: no other clone takes it again
    again = claim_json(a, "dave", "--remote", "origin")
    assert again["claimed"]["id"] == "T2"
    assert ("T1", "carol", "done") in [(h["task_id"], h["agent"], h["status"]) for h in again["held_elsewhere"]]


def test_claims_through_a_git_daemon_have_exactly_one_winner(tmp_path: Path, git_daemon: tuple[Path, str]) -> None:
    served, url = git_daemon
    bare_remote(served / "shared.git")
    remote, a = project(tmp_path, tasks=1, remote=served / "shared.git")
    git("remote", "set-url", "origin", url + "shared.git", cwd=a)
    b = share(a, url + "shared.git", tmp_path / "b")
    procs = [
        subprocess.Popen([sys.executable, "-m", "milestoned", "next", "--claim", "--agent", agent, "--remote",
                          "origin", "--json"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for root, agent in ((a, "alice"), (b, "bob"))
    ]
    answers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        answers.append(json.loads(out))
    winners = [x for x in answers if x["claimed"]]
    losers = [x for x in answers if not x["claimed"]]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0]["held_elsewhere"][0]["agent"] == winners[0]["agent"]
    assert remote_claims(served / "shared.git")["refs/milestoned/claims/m1/T1"]["agent"] == winners[0]["agent"]


@pytest.mark.slow
def test_eight_processes_in_two_clones_give_each_of_twenty_tasks_one_owner(tmp_path: Path) -> None:
    remote, a = project(tmp_path, tasks=20)
    b = share(a, remote, tmp_path / "b")

    def agent(root: Path, name: str) -> tuple[list[str], dict]:
        """Claim, finish, claim again, until nothing is left: what a real agent loop does."""
        won = []
        while True:
            proc = run_subprocess("next", "--claim", "--agent", name, "--remote", "origin", "--json", cwd=root)
            assert proc.returncode == 0, proc.stderr
            answer = json.loads(proc.stdout)
            if answer["claimed"] is None:
                return won, answer
            won.append(answer["claimed"]["id"])
            finished = run_subprocess("done", "--agent", name, "--json", cwd=root)
            assert finished.returncode == 0, finished.stderr

    names = [(root, f"{tag}{k}") for root, tag in ((a, "a"), (b, "b")) for k in range(4)]
    with ThreadPoolExecutor(len(names)) as pool:
        results = list(pool.map(lambda job: agent(*job), names))
    owner: dict[str, str] = {}
    for (_, name), (won, _) in zip(names, results):
        for task in won:
            assert task not in owner, f"{task} claimed by {owner[task]} and {name}"
            owner[task] = name
    assert sorted(owner, key=lambda t: int(t[1:])) == [f"T{i}" for i in range(1, 21)]
    claims = remote_claims(remote)
    assert {ref.rsplit("/", 1)[1]: (c["agent"], c["status"]) for ref, c in claims.items()} == \
        {task: (name, "done") for task, name in owner.items()}
    for _, (_, last) in zip(names, results):  # the losers were told who holds each task
        for held in last["held_elsewhere"]:
            assert owner[held["task_id"]] == held["agent"]


def test_finishing_while_the_remote_is_away_is_pushed_by_the_next_sync(tmp_path: Path) -> None:
    remote, a = project(tmp_path, tasks=2)
    assert claim_json(a, "alice", "--remote", "origin")["claimed"]["id"] == "T1"
    away = remote.rename(tmp_path / "away.git")
    finished = at(a, "done", "--agent", "alice", "--json")
    assert finished.exit_code == 0, finished.output
    assert "the claim on T1 changed here only; `milestoned sync origin` pushes it" in finished.stderr
    assert as_json(a, "status", "m1")["tasks"][0]["status"] == "completed"
    away.rename(remote)
    assert remote_claims(remote)["refs/milestoned/claims/m1/T1"]["status"] == "claimed"
    report = as_json(a, "sync")
    assert report["claims"] == {"pushed": ["refs/milestoned/claims/m1/T1"], "lost": []}
    assert remote_claims(remote)["refs/milestoned/claims/m1/T1"]["status"] == "done"


def test_a_stale_expiry_merged_from_another_clone_does_not_undo_the_new_claim() -> None:
    """Clone A's lease lapsed and B took the task over; A's late ``claim_expired`` sorts after
    B's claim in the merged log, yet the task stays B's (and a completed task stays completed)."""
    from pathlib import Path as _Path

    from milestoned.model.plan import Plan, Recorded, TaskPlan
    from milestoned.model.state import fold, initial

    plan = Plan("m1", "m", (), (TaskPlan("T1", "t"),), Recorded("in_progress"), _Path("m1.yaml"))
    base = {"milestone_id": "m1", "session_id": "s", "timestamp": "2026-01-01T00:00:00Z", "task_id": "T1"}
    claimed_by_b = {**base, "id": "b", "clock": 2, "event": "task_claimed", "agent": "bob"}
    late_expiry_of_a = {**base, "id": "a", "clock": 3, "event": "claim_expired", "agent": "alice"}
    state = fold([claimed_by_b, late_expiry_of_a], initial(plan))
    assert (state.tasks["T1"].status, state.tasks["T1"].agent) == ("in_progress", "bob")
    done = {**base, "id": "c", "clock": 3, "event": "task_completed", "agent": "bob"}
    expiry_after_done = {**base, "id": "d", "clock": 4, "event": "claim_expired", "agent": "bob"}
    assert fold([claimed_by_b, done, expiry_after_done], initial(plan)).tasks["T1"].status == "completed"


def test_a_claim_read_as_text_says_what_to_do(repo: Path) -> None:
    write_milestone(repo, "m1", """
        id: m1
        title: agents
        tasks:
          - {id: T1, title: write it, prompt: "Add a /login endpoint\\nwith tests"}
          - {id: T2, title: check it, run: [pytest, -q, "tests/a b.py"]}
        """)
    must("activate", "m1")
    first = must("next", "--claim", "--agent", "a").stdout.splitlines()
    assert first[0].startswith("a claimed T1  write it") and first[1] == "  prompt: Add a /login endpoint\\nwith tests"
    second = must("next", "--claim", "--agent", "b").stdout.splitlines()
    assert second[1] == "  run: pytest -q 'tests/a b.py'"
