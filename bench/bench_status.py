"""``milestoned status --json`` at 10,000 tasks / 100,000 events against 10 tasks (files, no daemon).

Also the small case against ``python -c "import click"`` (SPEC §12: within 3x).
Run: ``python bench/bench_status.py [rounds]``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import MILESTONED, paired_medians, report, scratch_repo, timed, write_big_milestone  # noqa: E402


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    root = scratch_repo("status")
    try:
        write_big_milestone(root, "big", tasks=10_000, events=100_000)
        write_big_milestone(root, "small", tasks=10, events=10)
        timed([*MILESTONED, "status", "big", "--json"], root)  # first read records the baseline
        medians = paired_medians(
            {
                "import click": lambda: timed([sys.executable, "-c", "import click"], root),
                "status --json (10 tasks)": lambda: timed([*MILESTONED, "status", "small", "--json"], root),
                "status --json (10k tasks, 100k ev)": lambda: timed([*MILESTONED, "status", "big", "--json"], root),
            },
            rounds,
        )
        report(
            "status from the files (no daemon)",
            medians,
            {
                "10k/100k vs 10 tasks": ("status --json (10k tasks, 100k ev)", "status --json (10 tasks)", None),
                "10 tasks vs import click": ("status --json (10 tasks)", "import click", 3.0),
            },
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
