"""Two writers at once lose nothing: the engine's lock, atomic writes and the append-only log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import invoke, log_file, write_milestone


def test_many_processes_changing_one_milestone_lose_no_update(repo: Path) -> None:
    tasks = "\n".join(f"  - {{id: T{i}, title: task {i}}}" for i in range(24))
    write_milestone(repo, "m1", f"id: m1\ntitle: busy\ntasks:\n{tasks}\n")
    assert invoke("activate", "m1").exit_code == 0
    script = (
        "import sys\n"
        "from milestoned.cli import main\n"
        "for t in sys.argv[1:]:\n"
        "    assert main(['task', 'start', t, '-m', 'm1', '--agent', 'p']) == 0\n"
        "    assert main(['task', 'done', t, '-m', 'm1']) == 0\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, *(f"T{i}" for i in range(k, 24, 6))], cwd=repo,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
        for k in range(6)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    view = json.loads(invoke("status", "m1", "--json").stdout)
    assert view["milestone"]["status"] == "completed"
    assert all(t["status"] == "completed" for t in view["tasks"])
    log = log_file(repo, "m1").read_text().splitlines()
    events = [json.loads(line) for line in log]
    assert sum(e["event"] == "task_completed" for e in events) == 24
    clocks = [e["clock"] for e in events]
    assert clocks == sorted(clocks) and len(set(clocks)) == len(clocks)
    assert len({e["id"] for e in events}) == len(events)
