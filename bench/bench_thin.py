"""The thin path: agents' polls answered by the daemon before any heavy import.

With the daemon up, ``status --json`` and ``next --json`` at 10 and at 10,000 tasks
(100,000 events), against a bare ``python -c pass`` of the same interpreter (goal: at
most 2x), measured side by side, interleaved.  The full command line on the same
question (click, PyYAML, pygit2 loaded, then the daemon asked) shows what the thin
path saves, and ``next --claim`` / ``release`` what a write through the daemon costs.

Run: ``python bench/bench_thin.py [rounds]``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ENV, MILESTONED, paired_medians, report, scratch_repo, timed, write_big_milestone  # noqa: E402

FULL = [sys.executable, "-c", "import sys; from milestoned.cli.app import main; sys.exit(main(sys.argv[1:]))"]


def claim_and_release(root: Path) -> float:
    """One claim and its release, through the daemon: the write an agent's loop makes."""
    took = timed([*MILESTONED, "next", "small", "--claim", "--agent", "bench", "--json"], root)
    subprocess.run([*MILESTONED, "release", "-m", "small", "--agent", "bench"], cwd=root, env=ENV, check=True,
                   capture_output=True)
    return took


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    root = scratch_repo("thin")
    try:
        write_big_milestone(root, "big", tasks=10_000, events=100_001)
        write_big_milestone(root, "small", tasks=10, events=10)
        subprocess.run([*MILESTONED, "daemon", "start"], cwd=root, env=ENV, check=True, capture_output=True)
        for mid in ("small", "big"):  # the daemon has read both before the clock starts
            timed([*MILESTONED, "status", mid, "--json"], root)
        reads = paired_medians(
            {
                "python -c pass": lambda: timed([sys.executable, "-c", "pass"], root),
                "status --json (10 tasks)": lambda: timed([*MILESTONED, "status", "small", "--json"], root),
                "status --json (10k tasks)": lambda: timed([*MILESTONED, "status", "big", "--json"], root),
                "next --json (10 tasks)": lambda: timed([*MILESTONED, "next", "small", "--json"], root),
                "next --json (10k tasks)": lambda: timed([*MILESTONED, "next", "big", "--json"], root),
                "full path: status --json (10 tasks)": lambda: timed([*FULL, "status", "small", "--json"], root),
            },
            rounds,
        )
        report(
            "the thin path, daemon up: reads",
            reads,
            {
                "status --json 10 / python -c pass": ("status --json (10 tasks)", "python -c pass", 2.0),
                "status --json 10k / python -c pass": ("status --json (10k tasks)", "python -c pass", 2.0),
                "next --json 10 / python -c pass": ("next --json (10 tasks)", "python -c pass", 2.0),
                "next --json 10k / python -c pass": ("next --json (10k tasks)", "python -c pass", 2.0),
                "full path / thin (status, 10 tasks)": ("full path: status --json (10 tasks)",
                                                        "status --json (10 tasks)", None),
            },
        )
        # apart: after a write the daemon takes in the change before its next answer
        writes = paired_medians({"python -c pass": lambda: timed([sys.executable, "-c", "pass"], root),
                                 "next --claim through the daemon": lambda: claim_and_release(root)}, rounds)
        report("the thin path, daemon up: a claim", writes,
               {"next --claim / python -c pass": ("next --claim through the daemon", "python -c pass", None)})
    finally:
        subprocess.run([*MILESTONED, "daemon", "stop"], cwd=root, env=ENV, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
