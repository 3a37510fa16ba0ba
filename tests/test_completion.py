"""Shell completion, asked exactly as bash asks it: the program run with click's completion variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import clone, must, ok, project, write_milestone


def complete(cwd: Path, line: str) -> list[str]:
    """What bash offers for ``line`` (the word being completed is the last, maybe empty)."""
    words = line.split(" ")
    proc = subprocess.run([sys.executable, "-m", "milestoned"], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "_MILESTONED_COMPLETE": "bash_complete", "COMP_WORDS": line,
                               "COMP_CWORD": str(len(words) - 1)})
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return [entry.split(",", 1)[1] for entry in proc.stdout.splitlines() if entry.startswith("plain,")]


def _two_milestones(repo: Path) -> None:
    write_milestone(repo, "m1", """
        id: m1
        title: First
        tasks:
          - {id: build, title: Build}
          - {id: bench, title: Bench, dependencies: [build]}
          - {id: docs, title: Docs}
        """)
    write_milestone(repo, "m2", """
        id: m2
        title: Second
        tasks:
          - {id: ship, title: Ship}
        """)


def test_milestone_ids_complete_wherever_a_milestone_is_named(repo: Path) -> None:
    _two_milestones(repo)
    assert complete(repo, "milestoned status ") == ["m1", "m2"]
    assert complete(repo, "milestoned execute m") == ["m1", "m2"]
    assert complete(repo, "milestoned task done -m m2") == ["m2"]
    assert complete(repo, "milestoned archive m1") == ["m1"]


def test_task_ids_come_from_the_milestone_the_line_names_else_the_current_one(repo: Path) -> None:
    _two_milestones(repo)
    must("activate", "m1")
    assert complete(repo, "milestoned task done b") == ["build", "bench"]
    assert complete(repo, "milestoned task start -m m2 ") == ["ship"]
    assert complete(repo, "milestoned events m1 --task d") == ["docs"]
    assert complete(repo, "milestoned task add new -m m1 --depends-on bu") == ["build"]
    assert complete(repo, "milestoned release --agent ada ") == ["build", "bench", "docs"]


def test_session_ids_complete_and_completion_writes_nothing(repo: Path) -> None:
    _two_milestones(repo)
    must("activate", "m1")
    saved = must("session", "save").stdout
    session_id = saved.split()[2]
    before = everything(repo)
    assert complete(repo, "milestoned resume ") == [session_id]
    assert complete(repo, "milestoned session show exec-") == [session_id]
    assert complete(repo, "milestoned status m1 ") == []  # status takes one milestone
    assert everything(repo) == before


def everything(root: Path) -> dict[str, bytes]:
    """Every file below ``root``, the git dir and milestoned's state in it included."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_outside_a_repository_and_through_minus_c_completion_stays_quiet(repo: Path, tmp_path: Path) -> None:
    _two_milestones(repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert complete(elsewhere, "milestoned status ") == []
    assert complete(elsewhere, "milestoned task done ") == []
    assert complete(elsewhere, f"milestoned -C {repo} status m") == ["m1", "m2"]



def test_a_fresh_clone_completes_the_sessions_the_remote_holds(tmp_path: Path) -> None:
    remote, first = project(tmp_path, tasks=2)
    session_id = ok(first, "session", "save").split()[2]
    ok(first, "sync")
    second = clone(remote, tmp_path / "b")  # a plain git clone: the state branch only as origin's
    assert complete(second, "milestoned resume ") == [session_id]
