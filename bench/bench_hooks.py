"""What our hooks add to ``git commit`` (SPEC §12: at most 2.5x a plain commit).

Side by side in one run, interleaved, median of paired rounds, ``git commit
--allow-empty -m ...`` in:

- a repository without hooks;
- the same with ``milestoned hooks install`` (prepare-commit-msg and post-commit fire:
  two ``sh`` processes that only read files and append one inbox line);
- the same on a task branch ``milestone/<mid>/<tid>``, where prepare-commit-msg also
  adds the trailers (one ``git interpret-trailers``);
- for scale, pre-commit's post-commit hook with a config that has no hook for it.

Every round checks that the hooks really ran (one inbox line per commit, the trailers
on the task branch).  Run: ``python bench/bench_hooks.py [rounds]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ENV, MILESTONED, paired_medians, report, scratch_repo, timed  # noqa: E402

# the hooks find milestoned on PATH, as in a user's shell
HOOK_ENV = {**ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{ENV.get('PATH', '')}"}


def repo(name: str, *setup: list[str]) -> Path:
    root = scratch_repo(f"hooks-{name}")
    for argv in setup:
        subprocess.run(argv, cwd=root, env=HOOK_ENV, check=True, stdout=subprocess.DEVNULL)
    return root


def committer(root: Path) -> Callable[[], float]:
    def run() -> float:
        return timed(["git", "commit", "-q", "--allow-empty", "-m", "benchmark commit"], root)
    return run


def inbox_commits(root: Path) -> int:
    path = root / ".git/milestoned/inbox"
    return sum(line.startswith("1\tcommit\t") for line in path.read_text().splitlines()) if path.exists() else 0


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    ENV.update(HOOK_ENV)  # common.timed runs with ENV
    plain = repo("plain")
    ours = repo("ours", [*MILESTONED, "hooks", "install"])
    task = repo("task", [*MILESTONED, "hooks", "install"], ["git", "checkout", "-q", "-b", "milestone/m1/T1"])
    candidates = {"plain git commit": committer(plain), "with milestoned hooks": committer(ours),
                  "with milestoned hooks, task branch": committer(task)}
    pre_commit = shutil.which("pre-commit", path=HOOK_ENV["PATH"])
    if pre_commit:
        other = repo("pre-commit")
        (other / ".pre-commit-config.yaml").write_text("repos: []\n")
        subprocess.run([pre_commit, "install", "-t", "post-commit"], cwd=other, env=HOOK_ENV, check=True,
                       stdout=subprocess.DEVNULL)
        candidates["with pre-commit's post-commit hook"] = committer(other)
    try:
        medians = paired_medians(candidates, rounds)
        assert inbox_commits(ours) == rounds and inbox_commits(task) == rounds, "the hooks did not run every time"
        trailers = subprocess.run(["git", "log", "-1", "--format=%(trailers)"], cwd=task, env=ENV,
                                  capture_output=True, text=True, check=True).stdout
        assert trailers.strip() == "Milestone: m1\nTask: T1", trailers
    finally:
        for root in (plain, ours, task, *([other] if pre_commit else [])):
            shutil.rmtree(root, ignore_errors=True)
    ratios = {
        "milestoned hooks / plain": ("with milestoned hooks", "plain git commit", 2.5),
        "milestoned hooks, task branch / plain": ("with milestoned hooks, task branch", "plain git commit", 2.5),
    }
    if pre_commit:
        ratios["pre-commit post-commit / plain"] = ("with pre-commit's post-commit hook", "plain git commit", None)
    report(f"git commit, {rounds} paired rounds", medians, ratios)

if __name__ == "__main__":
    main()
