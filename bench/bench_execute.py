"""``milestoned execute`` makespan against the ideal bound and against ``make -j6`` (SPEC §12, issue 13).

The graph: 24 tasks of ``sleep 1`` that each leave a new file, in 4 levels of 6; each task
needs two tasks of the level before (``L<k>.<i>`` needs ``L<k-1>.<i>`` and
``L<k-1>.<i+1 mod 6>``).  6 workers.  The ideal is max(critical path, total work / workers)
= max(4 x 1, 24 x 1 / 6) = 4.0 s.  Goals: makespan <= 1.05x the ideal, and <= make -j6's
makespan + 3 %, in the same run.

Every task notes when it starts and ends (``date +%s.%N``), so *makespan* — first start to
last end — is measured the same way for both tools.  Also printed: the wall time of the
whole command, which for milestoned includes Python's start-up, activation, the worktrees,
the merges and the session save.  Candidates run interleaved, median of the rounds.

Where the gap goes: ``MILESTONED_TRACE`` (``runner/trace.py``) has the runner note each
step of each task.  For every task of levels 1-3, the time from the end of the dependency
that ended last to the task's own first line is split into those steps, and the median of
each is printed beside make's whole gap.
Run: ``python bench/bench_execute.py [rounds]``.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ENV, MILESTONED, scratch_repo  # noqa: E402
from milestoned.core.graph import critical_path  # noqa: E402

WIDTH, LEVELS, SECONDS, WORKERS = 6, 4, 1.0, 6


def graph() -> dict[str, list[str]]:
    deps: dict[str, list[str]] = {}
    for level in range(LEVELS):
        for i in range(WIDTH):
            deps[f"L{level}.{i}"] = [] if level == 0 else [f"L{level - 1}.{i}", f"L{level - 1}.{(i + 1) % WIDTH}"]
    return deps


# the steps of runner/trace.py, in order: (from, to, label); "end"/"start" are the tasks' own lines
STEPS = [
    ("end", "ended", "the process exits, its waiter wakes"),
    ("ended", "committed", "what it left committed"),
    ("committed", "picked up", "the scheduler takes it up"),
    ("picked up", "merged", "merged into the milestone branch"),
    ("merged", "dispatched", "the unlocked task handed to a starter"),
    ("dispatched", "worktree", "its worktree ready"),
    ("worktree", "spawned", "its process spawned"),
    ("spawned", "start", "sh runs its first line"),
]
OF_THE_DEPENDENCY = ("ended", "committed", "picked up", "merged")
OF_THE_TASK = ("dispatched", "worktree", "spawned")


def recipe(spans: Path, task: str) -> str:
    """Note the start, work a second, leave a file (milestoned commits and merges it), note the end."""
    return (f"echo s {task} $(date +%s.%N) >> {spans}; sleep {SECONDS}; echo {task} > out-{task}.txt; "
            f"echo e {task} $(date +%s.%N) >> {spans}")


def spans_of(spans: Path) -> dict[str, dict[str, float]]:
    """task -> {"start": t, "end": t}, from the lines the tasks wrote."""
    found: dict[str, dict[str, float]] = {}
    for kind, task, t in (line.split() for line in spans.read_text().splitlines()):
        found.setdefault(task, {})["start" if kind == "s" else "end"] = float(t)
    assert len(found) == WIDTH * LEVELS and all(len(v) == 2 for v in found.values()), f"{len(found)} tasks ran"
    return found


def makespan(spans: dict[str, dict[str, float]]) -> float:
    return max(s["end"] for s in spans.values()) - min(s["start"] for s in spans.values())


def gaps(spans: dict[str, dict[str, float]], trace: dict[str, dict[str, float]]) -> list[dict[str, float]]:
    """For each task with dependencies: the seconds of each step from its last dependency's end to its start."""
    rows = []
    for task, needs in graph().items():
        if not needs:
            continue
        last = max(needs, key=lambda d: spans[d]["end"])
        marks = {**{k: v for k, v in trace.get(last, {}).items() if k in OF_THE_DEPENDENCY},
                 **{k: v for k, v in trace.get(task, {}).items() if k in OF_THE_TASK},
                 "end": spans[last]["end"], "start": spans[task]["start"]}
        row = {label: marks[b] - marks[a] for a, b, label in STEPS if a in marks and b in marks}
        row["whole gap"] = marks["start"] - marks["end"]
        rows.append(row)
    first = [spans[f"L0.{i}"]["start"] for i in range(WIDTH)]
    rows.append({"the first level's starts, first to last": max(first) - min(first)})
    return rows


def run_milestoned() -> tuple[float, float, list[dict[str, float]]]:
    root = scratch_repo("execute")
    spans = root.parent / f"{root.name}.spans"
    traced = root.parent / f"{root.name}.trace"
    try:
        lines = ["id: bench", "title: execute benchmark", "status: planned", "tasks:"]
        for task, needs in graph().items():
            lines += [f"  - id: {task}", f"    title: {task}", f"    dependencies: {json.dumps(needs)}",
                      f"    run: {json.dumps(['sh', '-c', recipe(spans, task)])}"]
        (root / ".milestones/active/bench.yaml").write_text("\n".join(lines) + "\n")
        start = time.perf_counter()
        subprocess.run([*MILESTONED, "execute", "bench", "--workers", str(WORKERS)], cwd=root,
                       env={**ENV, "MILESTONED_TRACE": str(traced)}, stdout=subprocess.DEVNULL, check=True)
        wall = time.perf_counter() - start
        trace: dict[str, dict[str, float]] = {}
        for line in traced.read_text().splitlines():
            mark = json.loads(line)
            trace.setdefault(mark["task"], {})[mark["step"]] = mark["t"]
        found = spans_of(spans)
        return makespan(found), wall, gaps(found, trace)
    finally:
        spans.unlink(missing_ok=True)
        traced.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)


def run_make() -> tuple[float, float, list[dict[str, float]]]:
    root = Path(tempfile.mkdtemp(prefix="bench-make-"))
    try:
        spans = root / "spans"
        rules = [f"all: {' '.join(graph())}", ""]
        for task, needs in graph().items():
            rules += [f"{task}: {' '.join(needs)}", "\t@" + recipe(spans, task).replace("$", "$$"), ""]
        (root / "Makefile").write_text("\n".join(rules))
        start = time.perf_counter()
        subprocess.run(["make", "-s", f"-j{WORKERS}"], cwd=root, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        found = spans_of(spans)
        return makespan(found), wall, gaps(found, {})
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    plan = graph()
    longest, _ = critical_path(plan, {task: SECONDS for task in plan})  # the engine's own function
    ideal = max(longest, len(plan) * SECONDS / WORKERS)
    ours: list[tuple[float, float]] = []
    make: list[tuple[float, float]] = []
    our_gaps: list[dict[str, float]] = []
    make_gaps: list[dict[str, float]] = []
    for _ in range(rounds):
        span, wall, found = run_milestoned()
        ours.append((span, wall))
        our_gaps += found
        span, wall, found = run_make()
        make.append((span, wall))
        make_gaps += found
    ours_span, ours_wall = (statistics.median(v) for v in zip(*ours))
    make_span, make_wall = (statistics.median(v) for v in zip(*make))
    print(f"== execute: {WIDTH * LEVELS} x sleep {SECONDS:g}, width {WIDTH}, {WORKERS} workers, "
          f"median of {rounds} interleaved rounds")
    print(f"   ideal bound                        {ideal * 1000:8.1f} ms")
    print(f"   milestoned makespan                {ours_span * 1000:8.1f} ms   wall {ours_wall * 1000:8.1f} ms")
    print(f"   make -j{WORKERS} makespan                {make_span * 1000:8.1f} ms   wall {make_wall * 1000:8.1f} ms")
    ratio = ours_span / ideal
    print(f"   makespan / ideal                   {ratio:6.3f}x  (goal <= 1.05x: {'met' if ratio <= 1.05 else 'NOT met'})")
    ratio = ours_span / make_span
    print(f"   makespan / make makespan           {ratio:6.3f}x  (goal <= 1.03x: {'met' if ratio <= 1.03 else 'NOT met'})")
    print(f"   wall / make wall                   {ours_wall / make_wall:6.2f}x")
    print(f"== where a task's start waits after the dependency that ended last ({len(our_gaps)} hand-overs, "
          "median ms of each step)")
    for label in [label for _, _, label in STEPS] + ["whole gap", "the first level's starts, first to last"]:
        values = [row[label] for row in our_gaps if label in row]
        if values:
            print(f"   {label:<44} {statistics.median(values) * 1000:7.1f}   (max {max(values) * 1000:7.1f})")
    for label in ("whole gap", "the first level's starts, first to last"):
        values = [row[label] for row in make_gaps if label in row]
        print(f"   {'make -j' + str(WORKERS) + ', ' + label:<44} {statistics.median(values) * 1000:7.1f}   "
              f"(max {max(values) * 1000:7.1f})")


if __name__ == "__main__":
    main()
