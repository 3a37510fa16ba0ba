"""``land`` and ``gc`` against the git commands they stand for, side by side in one run.

A template repository runs ``execute`` once on a 24-task milestone (a chain of width 6),
and main moves on meanwhile, so landing makes a real merge commit.  Each round copies
the template twice and times, interleaved:

- ``milestoned land m1 --no-test`` (nothing to test: the same work as a merge by hand),
  against ``git merge --no-edit`` of the milestone branch in a fresh clone of the same;
- for scale, ``milestoned status m1 --json``: what any milestoned process costs to start and read;
- after it, ``milestoned gc`` with 24 merged task worktrees left behind (as killed runs
  leave them), against the 24 ``git worktree remove`` and 25 ``git branch -d`` it replaces.

Every round checks the outcome: main holds the milestone's work, gc left no branch.
Run: ``python bench/bench_land.py [rounds]``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ENV, MILESTONED, paired_medians, report, scratch_repo  # noqa: E402

TASKS = 24
BRANCH = "milestone/m1/_milestone"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, env=ENV, check=True, capture_output=True, text=True).stdout.strip()


def template() -> Path:
    root = scratch_repo("land")
    lines = ["id: m1", "title: land benchmark", "tasks:"]
    for i in range(TASKS):
        deps = f"[T{i - 6}]" if i >= 6 else "[]"
        lines += [f"  - id: T{i}", f"    title: task {i}", f"    dependencies: {deps}",
                  f'    run: ["sh", "-c", "echo {i} > file-{i}.txt"]']
    (root / ".milestones/active/m1.yaml").write_text("\n".join(lines) + "\n")
    git(root, "add", ".milestones")
    git(root, "commit", "-qm", "plan")
    subprocess.run([*MILESTONED, "execute", "m1", "--workers", "6"], cwd=root, env=ENV, check=True,
                   stdout=subprocess.DEVNULL)
    (root / "main.txt").write_text("main moved on\n")
    git(root, "add", "main.txt")
    git(root, "commit", "-qm", "main moves on")
    subprocess.run([*MILESTONED, "status"], cwd=root, env=ENV, check=True, stdout=subprocess.DEVNULL)  # takes it in
    return root


def copy(source: Path) -> Path:
    target = Path(tempfile.mkdtemp(prefix="bench-land-copy-")) / "repo"
    shutil.copytree(source, target, symlinks=True)
    return target


def leave_worktrees(root: Path) -> None:
    """24 task worktrees and branches of merged work, as a killed run leaves them."""
    base = root / ".git/milestoned/worktrees/m1"
    for i in range(TASKS):
        git(root, "worktree", "add", "-q", "-b", f"milestone/m1/T{i}", str(base / f"T{i}"), "main")


def timed_run(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    source = template()
    work = git(source, "rev-parse", BRANCH)

    def land() -> float:
        root = copy(source)
        spent = timed_run([*MILESTONED, "land", "m1", "--no-test"], root)
        git(root, "merge-base", "--is-ancestor", work, "main")
        return spent

    def merge_by_hand() -> float:
        clone = Path(tempfile.mkdtemp(prefix="bench-land-clone-")) / "clone"
        git(source.parent, "clone", "-q", str(source), str(clone))
        spent = timed_run(["git", "merge", "-q", "--no-edit", f"origin/{BRANCH}"], clone)
        git(clone, "merge-base", "--is-ancestor", work, "main")
        return spent

    def landed_copy() -> Path:
        root = copy(source)
        subprocess.run([*MILESTONED, "land", "m1", "--no-test"], cwd=root, env=ENV, check=True,
                       stdout=subprocess.DEVNULL)
        leave_worktrees(root)
        return root

    def gc() -> float:
        root = landed_copy()
        spent = timed_run([*MILESTONED, "gc"], root)
        assert git(root, "branch", "--list", "milestone/*") == "", "gc left branches"
        return spent

    def gc_by_hand() -> float:
        root = landed_copy()
        start = time.perf_counter()
        for i in range(TASKS):
            git(root, "worktree", "remove", str(root / f".git/milestoned/worktrees/m1/T{i}"))
            git(root, "branch", "-q", "-d", f"milestone/m1/T{i}")
        git(root, "branch", "-q", "-d", BRANCH)
        return time.perf_counter() - start

    def start_up() -> float:
        return timed_run([*MILESTONED, "status", "m1", "--json"], source)

    medians = paired_medians({"milestoned land --no-test": land, "git merge by hand (fresh clone)": merge_by_hand,
                              "status --json (start-up and a read)": start_up,
                              "milestoned gc (24 worktrees)": gc,
                              "git worktree remove + branch -d": gc_by_hand}, rounds)
    report(f"land a {TASKS}-task milestone, then gc, {rounds} paired rounds", medians, {
        "land / git merge": ("milestoned land --no-test", "git merge by hand (fresh clone)", None),
        "land / a status read": ("milestoned land --no-test", "status --json (start-up and a read)", None),
        "gc / the git calls it replaces": ("milestoned gc (24 worktrees)", "git worktree remove + branch -d", None),
    })


if __name__ == "__main__":
    main()
