"""``milestoned execute`` makespan against the ideal bound and against ``make -j8`` (SPEC §12).

The graph: 32 tasks of ``sleep 0.5`` in 4 levels of 8; each task needs two tasks of the
level before (``L<k>.<i>`` needs ``L<k-1>.<i>`` and ``L<k-1>.<i+1 mod 8>``).  8 workers.
The ideal is max(critical path, total work / workers) = max(4 x 0.5, 32 x 0.5 / 8) = 2.0 s.

Every task notes when it starts and ends (``date +%s.%N``), so *makespan* — first start to
last end — is measured the same way for both tools.  Also printed: the wall time of the
whole command, which for milestoned includes Python's start-up, activation, the worktrees,
the merges and the session save.  Candidates run interleaved, median of the rounds.
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

WIDTH, LEVELS, SECONDS, WORKERS = 8, 4, 0.5, 8


def graph() -> dict[str, list[str]]:
    deps: dict[str, list[str]] = {}
    for level in range(LEVELS):
        for i in range(WIDTH):
            deps[f"L{level}.{i}"] = [] if level == 0 else [f"L{level - 1}.{i}", f"L{level - 1}.{(i + 1) % WIDTH}"]
    return deps


def recipe(spans: Path) -> str:
    return f"echo s $(date +%s.%N) >> {spans}; sleep {SECONDS}; echo e $(date +%s.%N) >> {spans}"


def makespan(spans: Path) -> float:
    marks = [line.split() for line in spans.read_text().splitlines()]
    starts = [float(t) for kind, t in marks if kind == "s"]
    ends = [float(t) for kind, t in marks if kind == "e"]
    assert len(starts) == len(ends) == WIDTH * LEVELS, f"{len(starts)} tasks ran"
    return max(ends) - min(starts)


def run_milestoned() -> tuple[float, float]:
    root = scratch_repo("execute")
    try:
        spans = root.parent / f"{root.name}.spans"
        lines = ["id: bench", "title: execute benchmark", "status: planned", "tasks:"]
        for task, needs in graph().items():
            lines += [f"  - id: {task}", f"    title: {task}", f"    dependencies: {json.dumps(needs)}",
                      f"    run: {json.dumps(['sh', '-c', recipe(spans)])}"]
        (root / ".milestones/active/bench.yaml").write_text("\n".join(lines) + "\n")
        start = time.perf_counter()
        subprocess.run([*MILESTONED, "execute", "bench", "--workers", str(WORKERS)], cwd=root, env=ENV,
                       stdout=subprocess.DEVNULL, check=True)
        wall = time.perf_counter() - start
        result = makespan(spans), wall
        spans.unlink()
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_make() -> tuple[float, float]:
    root = Path(tempfile.mkdtemp(prefix="bench-make-"))
    try:
        spans = root / "spans"
        rules = [f"all: {' '.join(graph())}", ""]
        for task, needs in graph().items():
            rules += [f"{task}: {' '.join(needs)}", "\t@" + recipe(spans).replace("$", "$$"), ""]
        (root / "Makefile").write_text("\n".join(rules))
        start = time.perf_counter()
        subprocess.run(["make", "-s", f"-j{WORKERS}"], cwd=root, check=True, stdout=subprocess.DEVNULL)
        return makespan(spans), time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    plan = graph()
    longest, _ = critical_path(plan, {task: SECONDS for task in plan})  # the engine's own function
    ideal = max(longest, len(plan) * SECONDS / WORKERS)
    ours: list[tuple[float, float]] = []
    make: list[tuple[float, float]] = []
    for _ in range(rounds):
        ours.append(run_milestoned())
        make.append(run_make())
    ours_span, ours_wall = (statistics.median(v) for v in zip(*ours))
    make_span, make_wall = (statistics.median(v) for v in zip(*make))
    print(f"== execute: {WIDTH * LEVELS} x sleep {SECONDS}, width {WIDTH}, {WORKERS} workers, "
          f"median of {rounds} interleaved rounds")
    print(f"   ideal bound                        {ideal * 1000:8.1f} ms")
    print(f"   milestoned makespan                {ours_span * 1000:8.1f} ms   wall {ours_wall * 1000:8.1f} ms")
    print(f"   make -j{WORKERS} makespan                {make_span * 1000:8.1f} ms   wall {make_wall * 1000:8.1f} ms")
    ratio = ours_span / ideal
    print(f"   makespan / ideal                   {ratio:6.2f}x  (goal <= 1.10x: {'met' if ratio <= 1.10 else 'NOT met'})")
    ratio = ours_span / make_span
    print(f"   makespan / make makespan           {ratio:6.2f}x  (goal <= 1.00x: {'met' if ratio <= 1.0 else 'NOT met'})")
    print(f"   wall / make wall                   {ours_wall / make_wall:6.2f}x")


if __name__ == "__main__":
    main()
