"""A write at 10,000 tasks / 100,000 events, and the status read right after it (SPEC §12).

Measured side by side in one run, interleaved, each round:

- ``task done`` of the next task (a state change: lock, event append, fsync, the read
  cache refreshed by the writer);
- ``status --json`` right after it (what a user or an agent reads next);
- a bare libyaml parse of the same plan in a fresh interpreter (the floor: any reader
  of that file pays at least this).

Goals: the write within 1.5x the status read, and that read within 1.5x the parse.
The status read with its caches cold (the plan edited, the log replaced) is printed
for scale.  Run: ``python bench/bench_writes.py [rounds]``.
"""

from __future__ import annotations

import itertools
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import MILESTONED, paired_medians, report, scratch_repo, timed, write_big_milestone  # noqa: E402

TASKS, EVENTS = 10_000, 100_000


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    root = scratch_repo("writes")
    try:
        write_big_milestone(root, "big", tasks=TASKS, events=EVENTS)
        plan = root / ".milestones/active/big.yaml"
        cache = root / ".git/milestoned/cache"
        timed([*MILESTONED, "status", "big", "--json"], root)  # the plan is parsed once; its cache is made later
        next_task = (f"T{i}" for i in itertools.count())  # a chain of width 10: each is ready in turn

        def cold_status() -> float:
            shutil.rmtree(cache, ignore_errors=True)
            return timed([*MILESTONED, "status", "big", "--json"], root)

        parse = [sys.executable, "-c",
                 f"import yaml; yaml.load(open({str(plan)!r}, encoding='utf-8'), Loader=yaml.CSafeLoader)"]
        cold = paired_medians({"status --json, caches cold": cold_status}, 3)
        timed([*MILESTONED, "status", "big", "--json"], root)  # warm again (the plan is older than RACY now)
        medians = paired_medians(
            {
                "task done (10k tasks, 100k ev)": lambda: timed([*MILESTONED, "task", "done", next(next_task),
                                                                 "-m", "big"], root),
                "status --json right after": lambda: timed([*MILESTONED, "status", "big", "--json"], root),
                "libyaml parse of the plan": lambda: timed(parse, root),
            },
            rounds,
        )
        medians.update(cold)
        report(
            f"writes and the read after them at {TASKS:,} tasks / {EVENTS:,} events",
            medians,
            {
                "write vs status": ("task done (10k tasks, 100k ev)", "status --json right after", 1.5),
                "status after a write vs parse": ("status --json right after", "libyaml parse of the plan", 1.5),
                "status, caches cold vs parse": ("status --json, caches cold", "libyaml parse of the plan", None),
            },
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
