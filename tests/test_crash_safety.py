"""A ``kill -9`` at any instant loses at most the change in flight, never one already recorded.

Real processes, killed for real at random instants: the write path (lock, append,
fsync, cache) must leave a state that only ever moves forward.  The plan carries hand
edits (a status written in it, comments) because that is where earlier versions lost
completions: a crash between the log append and the file rewrite made the next write
take the stale file for a hand edit.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import git, invoke, log_file, write_milestone

KILLS = 60


def completed_and_started() -> tuple[set[str], set[str]]:
    result = invoke("status", "m1", "--json")
    assert result.exit_code == 0, result.output
    tasks = json.loads(result.stdout)["tasks"]
    return ({t["id"] for t in tasks if t["status"] == "completed"},
            {t["id"] for t in tasks if t["status"] != "pending"})


def recorded(root: Path, name: str) -> set[str]:
    """Tasks the log holds a ``name`` event for (a torn last line is skipped, as every reader skips it)."""
    found = set()
    for line in log_file(root, "m1").read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == name:
            found.add(event["task_id"])
    return found


@pytest.mark.slow
def test_sixty_random_kills_of_task_done_revert_no_recorded_start_or_completion(repo: Path) -> None:
    tasks = "\n".join(f"  - id: T{i}   # written by hand\n    title: task {i}\n    status: pending"
                      for i in range(KILLS))
    path = write_milestone(repo, "m1", f"# my plan\nid: m1\ntitle: crash test\ntasks:\n{tasks}\n")
    git("add", ".milestones", cwd=repo)
    git("commit", "-qm", "plan", cwd=repo)
    assert invoke("activate", "m1").exit_code == 0
    assert invoke("task", "start", "T0").exit_code == 0
    # a hand edit after the baseline: reported, never applied, and it must not confuse a write
    path.write_text(path.read_text().replace("    status: pending", "    status: completed", 1))
    rng = random.Random(20261201)
    done_before, started_before = completed_and_started()
    outcomes = {"recorded": 0, "lost in flight": 0}
    for i in range(1, KILLS):
        proc = subprocess.Popen([sys.executable, "-m", "milestoned", "task", "done", f"T{i}", "-m", "m1"],
                                cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done, started = completed_and_started()
        assert done_before <= done, f"kill {i} reverted completions: {done_before - done}"
        assert started_before <= started, f"kill {i} reverted starts: {started_before - started}"
        assert recorded(repo, "task_completed") == done  # shown completed exactly when recorded
        outcomes["recorded" if f"T{i}" in done else "lost in flight"] += 1
        done_before, started_before = done, started
    # every recorded change is still there after more writes, and nothing was taken from the file
    assert invoke("task", "done", "T0").exit_code == 0
    done, _ = completed_and_started()
    assert recorded(repo, "task_completed") <= done
    assert "status_set_manually" not in {e["event"] for e in json.loads(
        invoke("events", "m1", "--json", "-n", "0").stdout)["events"]}
    assert git("status", "--porcelain", cwd=repo) == "M .milestones/active/m1.yaml"  # the hand edit alone
    assert outcomes["recorded"] and outcomes["lost in flight"], outcomes  # the kills hit both sides of the write
