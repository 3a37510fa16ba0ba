"""The daemon: reaction time, ``status`` over the socket at 10,000 tasks against 10, memory.

1. Reaction: a hand edit of a milestone file, and a commit (hooks installed), to the
   moment ``status`` over the socket shows it; median of 50 each (goal: under 200 ms).
   Measured two ways: a ``status`` request as a user makes it (which first checks the
   files and drains the inbox, Watchman's cookie), and the daemon's memory alone as the
   watcher left it (``sync: false``), which shows the watcher's own latency.
2. ``status --json`` with the daemon up, 10,000 tasks / 100,000 events against 10
   tasks, measured side by side (goal: within 1.5x); also the socket round trip alone.
3. The daemon's resident memory with the 10,000-task milestone loaded (goal: under 100 MB).

Run: ``python bench/bench_daemon.py [rounds] [tasks in the reaction milestone, default 12]``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ENV, MILESTONED, paired_medians, report, scratch_repo, timed, write_big_milestone  # noqa: E402
from milestoned.daemon import client
from milestoned.files.durable import atomic_write  # noqa: E402
from milestoned.files.workspace import Workspace  # noqa: E402

REACTIONS = 50
SIZE = 12  # tasks in the milestone: the demo's size; the engine's YAML rewrite grows with it
FIRST_TITLE = re.compile(r"(  - id: T0\n    title: )[^\n]*")
TIMEOUT = 10.0


def cli(root: Path, *args: str) -> str:
    return subprocess.run([*MILESTONED, *args], cwd=root, env=ENV, check=True, capture_output=True, text=True).stdout


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, env=ENV, check=True, capture_output=True)


def until(check: Callable[[], bool]) -> float:
    """Seconds until ``check`` holds, polling as fast as the socket answers."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > TIMEOUT:
            raise RuntimeError("the daemon never reflected the change")
    return time.perf_counter() - start


def task_of(ws: Workspace, task_id: str, *, sync: bool) -> dict:
    if sync:
        answer = client.status(ws, "react")
        view = answer.view() if answer else {}
    else:
        reply = client.ask(ws, "status", milestone="react", sync=False)
        view = reply["result"] if reply else {}
    return next((t for t in view.get("tasks", []) if t["id"] == task_id), {})


def reaction(rounds: int) -> None:
    root = scratch_repo("daemon-react")
    try:
        tasks = "".join(f"  - id: T{i}\n    title: task {i}\n" for i in range(SIZE))
        path = root / ".milestones/active/react.yaml"
        path.write_text(f"id: react\ntitle: reaction\nstatus: planned\ntasks:\n{tasks}")
        cli(root, "hooks", "install")
        cli(root, "activate", "react")
        cli(root, "daemon", "start")
        ws = Workspace.discover(root)
        results: dict[str, list[float]] = {}
        for sync in (True, False):
            label = "request (cookie)" if sync else "watcher only"
            edits, commits = [], []
            for n in range(REACTIONS):
                title = f"edited {sync} {n}"
                text = FIRST_TITLE.sub(lambda m: m.group(1) + title, path.read_text(), count=1)
                atomic_write(path, text, durable=False)  # an editor's save: a new file renamed over the old
                edits.append(until(lambda: task_of(ws, "T0", sync=sync).get("title") == title))
                task = f"T{1 + n % (SIZE - 1)}"
                (root / "work.txt").write_text(f"{sync} {n}\n")
                git(root, "add", "work.txt")
                git(root, "commit", "-q", "-m", f"work on {task}\n\nTask: {task}")
                commits.append(until(lambda: task_of(ws, task, sync=sync).get("status") == "in_progress"))
                cli(root, "task", "reopen", task)  # back to pending for a later round (not timed)
                until(lambda: task_of(ws, task, sync=False).get("status") == "pending")
            results[f"milestone edit, {label}"] = edits
            results[f"commit, {label}"] = commits
        print(f"== reaction: change -> status over the socket shows it ({SIZE}-task milestone, "
              f"median of {REACTIONS}; goal < 200 ms)")
        for name, values in results.items():
            median = statistics.median(values) * 1000
            print(f"   {name:<34} median {median:8.1f} ms   p90 {sorted(values)[int(len(values) * 0.9)] * 1000:8.1f} ms"
                  f"  ({'met' if median < 200 else 'NOT met'})")
    finally:
        subprocess.run([*MILESTONED, "daemon", "stop"], cwd=root, env=ENV, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def scale(rounds: int) -> None:
    here = os.getcwd()
    root = scratch_repo("daemon-scale")
    try:
        write_big_milestone(root, "big", tasks=10_000, events=100_001)  # ends on a reopen: the file agrees
        write_big_milestone(root, "small", tasks=10, events=10)
        started = time.perf_counter()
        cli(root, "daemon", "start")
        ws = Workspace.discover(root)
        pid = json.loads((ws.runtime_dir / "daemon.json").read_text())["pid"]
        client.status(ws, "big")
        client.status(ws, "small")
        print(f"== daemon start with the 10k-task milestone: {time.perf_counter() - started:.1f} s")

        os.chdir(root)  # the socket answers for a client standing in the repository

        def socket_time(mid: str) -> float:
            start = time.perf_counter()
            assert client.status(ws, mid) is not None
            return time.perf_counter() - start

        medians = paired_medians(
            {
                "import click": lambda: timed([sys.executable, "-c", "import click"], root),
                "status --json (10 tasks)": lambda: timed([*MILESTONED, "status", "small", "--json"], root),
                "status --json (10k tasks, 100k ev)": lambda: timed([*MILESTONED, "status", "big", "--json"], root),
                "socket round trip (10 tasks)": lambda: socket_time("small"),
                "socket round trip (10k tasks)": lambda: socket_time("big"),
            },
            rounds,
        )
        report(
            "status with the daemon up",
            medians,
            {
                "10k/100k vs 10 tasks (CLI)": ("status --json (10k tasks, 100k ev)", "status --json (10 tasks)", 1.5),
                "10 tasks vs import click": ("status --json (10 tasks)", "import click", 3.0),
                "socket: 10k vs 10 tasks": ("socket round trip (10k tasks)", "socket round trip (10 tasks)", None),
            },
        )
        size = len(client.status(ws, "big").raw) / 1e6  # type: ignore[union-attr]
        print(f"   (the 10k-task answer is {size:.1f} MB of JSON)")
        rss = rss_mb(pid)
        print(f"== daemon memory with 10,000 tasks / 100,000 events loaded: {rss:.0f} MB RSS "
              f"(goal < 100 MB: {'met' if rss < 100 else 'NOT met'})")
    finally:
        os.chdir(here)
        subprocess.run([*MILESTONED, "daemon", "stop"], cwd=root, env=ENV, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    global SIZE
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else SIZE
    if not Path("/proc/self/status").exists():
        print("this benchmark reads /proc for memory; run it on Linux")
    os.environ.update({k: v for k, v in ENV.items() if k.startswith("GIT_")})
    reaction(rounds)
    scale(rounds)


if __name__ == "__main__":
    main()
