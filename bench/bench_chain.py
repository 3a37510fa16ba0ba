"""A 20,000-task chain: ``activate`` and ``task start`` against ``status`` on the same file (issue 13).

The plan is one chain, ``T1 <- T2 <- ... <- T20000`` (each task depends on the one
before), in a fresh repository copied for every round outside the timing.  Each round
measures, as fresh processes, without a daemon:

- cold, the first command to read the new file (so it parses 20,000 tasks of YAML): in
  one copy ``status --json``, in another ``activate``;
- warm, the file read before (as after a ``validate``): ``status --json``, ``activate``,
  ``status --json`` of the activated milestone, ``task start T1`` (the one ready task),
  and ``status --json`` again.

Goal: activate and task start at most 2x a status on the same file, cold and warm.
Run: ``python bench/bench_chain.py [rounds] [tasks]``.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import MILESTONED, scratch_repo, timed  # noqa: E402


def template(tasks: int) -> Path:
    root = scratch_repo("chain")
    lines = ["id: chain", "title: a long chain", "tasks:"]
    for i in range(1, tasks + 1):
        lines += [f"  - id: T{i}", f"    title: step {i} of the chain",
                  f"    dependencies: [{f'T{i - 1}' if i > 1 else ''}]"]
    (root / ".milestones/active/chain.yaml").write_text("\n".join(lines) + "\n")
    return root


def copy(base: Path) -> Path:
    root = Path(tempfile.mkdtemp(prefix="bench-chain-copy-")) / "repo"
    shutil.copytree(base, root, symlinks=True)
    return root


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    base = template(tasks)
    steps = [("cold: status", "status"), ("cold: activate", "activate"), ("warm: status (planned)", "status"),
             ("warm: activate", "activate"), ("warm: status (activated)", "status"), ("warm: task start T1", "start"),
             ("warm: status (T1 started)", "status")]
    argv = {"status": ["status", "chain", "--json"], "activate": ["activate", "chain"],
            "start": ["task", "start", "T1", "-m", "chain"]}
    samples: dict[str, list[float]] = {name: [] for name, _ in steps}
    try:
        for _ in range(rounds):
            roots = [copy(base), copy(base)]
            for name, step in steps:
                where = roots[1] if name == "cold: activate" else roots[0]
                samples[name].append(timed([*MILESTONED, *argv[step]], where))
            for root in roots:
                shutil.rmtree(root.parent)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"== a {tasks:,}-task chain, median of {rounds} rounds (fresh processes, no daemon)")
    for name, value in medians.items():
        print(f"   {name:<30} {value * 1000:9.1f} ms")
    for name, against in (("cold: activate", "cold: status"), ("warm: activate", "warm: status (planned)"),
                          ("warm: task start T1", "warm: status (activated)")):
        ratio = medians[name] / medians[against]
        print(f"   {name + ' / status':<30} {ratio:6.2f}x  (goal <= 2.00x: {'met' if ratio <= 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
