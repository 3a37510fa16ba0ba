"""Helpers shared by the benchmarks: scratch repositories and paired, interleaved timing.

The machines are shared and noisy, so every benchmark measures its candidates side by
side in one run (interleaved, median of many) and prints ratios, never bare seconds
against a fixed bar.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
}
MILESTONED = [sys.executable, "-m", "milestoned"]


def scratch_repo(name: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=ENV)
    (root / "README").write_text("bench\n")
    subprocess.run(["git", "add", "README"], cwd=root, check=True, env=ENV)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=root, check=True, env=ENV)
    subprocess.run([*MILESTONED, "init"], cwd=root, check=True, env=ENV, stdout=subprocess.DEVNULL)
    return root


def write_big_milestone(root: Path, milestone_id: str, tasks: int, events: int) -> None:
    """A milestone of ``tasks`` tasks (a chain of width 10) and a log of ``events`` events."""
    lines = [f"id: {milestone_id}", "title: benchmark", "status: in_progress", "tasks:"]
    for i in range(tasks):
        dep = f"[T{i - 10}]" if i >= 10 else "[]"
        lines += [f"  - id: T{i}", f"    title: task number {i}", "    status: pending", f"    dependencies: {dep}"]
    (root / ".milestones/active" / f"{milestone_id}.yaml").write_text("\n".join(lines) + "\n")
    log = root / ".git/milestoned/log" / f"{milestone_id}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        base = {"milestone_id": milestone_id, "session_id": "exec-bench", "timestamp": "2026-01-01T00:00:00Z"}
        handle.write(json.dumps({**base, "id": "e0", "clock": 1, "event": "state_baseline", "status": "in_progress",
                                 "tasks": {}}) + "\n")
        for n in range(1, events):  # start/reopen pairs: every task ends pending, as the file says
            task = f"T{((n - 1) // 2) % tasks}"  # events 2k+1 and 2k+2: start then reopen one task
            name = "task_started" if n % 2 else "task_reopened"
            handle.write(json.dumps({**base, "id": f"e{n}", "clock": n + 1, "event": name, "task_id": task}) + "\n")


def timed(argv: Sequence[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def paired_medians(candidates: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Run each candidate once per round, interleaved; the median time of each."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, run in candidates.items():
            samples[name].append(run())
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, medians: dict[str, float], ratios: dict[str, tuple[str, str, float | None]]) -> None:
    print(f"== {title}")
    for name, value in medians.items():
        print(f"   {name:<34} median {value * 1000:8.1f} ms")
    for label, (a, b, goal) in ratios.items():
        ratio = medians[a] / medians[b]
        verdict = "" if goal is None else ("  (goal <= %.2fx: %s)" % (goal, "met" if ratio <= goal else "NOT met"))
        print(f"   {label:<34} {ratio:6.2f}x{verdict}")
