"""The read commands a person uses: the dashboard, the graph, the event log (filtered, followed)."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from conftest import invoke, must, write_milestone
from milestoned.cli import render


def _progressed(repo: Path) -> None:
    write_milestone(repo, "m1", """
        id: m1
        title: "Reading \\"the\\" state"
        tasks:
          - {id: T1, title: Done one}
          - {id: T2, title: Stuck one, dependencies: [T1]}
          - {id: T3, title: Waits on stuck, dependencies: [T2]}
          - {id: T4, title: Free one}
        """)
    must("activate", "m1")
    must("task", "done", "T1")
    must("task", "block", "T2", "--reason", "needs a decision")


def test_plain_dashboard_names_everything_the_seed_showed(repo: Path) -> None:
    _progressed(repo)
    out = invoke("status", "m1").stdout
    assert out.startswith('m1 — Reading "the" state\nstatus: in_progress   progress: 25% (1/4 tasks)')
    assert "  T2  blocked      Stuck one  [blocked: needs a decision]" in out
    assert "  T4  pending      Free one  [ready]" in out
    assert "active agents: none" in out
    assert "recent events:" in out and "task_blocked task_id=T2 reason=needs a decision" in out


def test_rich_dashboard_has_a_progress_bar_and_a_task_table(repo: Path) -> None:
    _progressed(repo)
    view = json.loads(invoke("status", "m1", "--json").stdout)
    console = Console(record=True, width=100, force_terminal=True, color_system=None)  # as NO_COLOR makes it
    console.print(render.status_rich(view))
    text = console.export_text()
    assert 'm1 — Reading "the" state' in text and "25% (1/4 tasks)" in text
    bar_line = next(line for line in text.splitlines() if "█" in line)
    assert "░" in bar_line and "task" not in bar_line  # a bar that reads uncoloured, on a line of its own
    assert bar_line.count("█") == 10 and bar_line.count("░") == 30  # a quarter of 40
    header = next(line for line in text.splitlines() if "status" in line and "title" in line)
    assert "depends on" in header  # the table's header whole
    assert "T3" in text and "Waits on stuck" in text and "T2" in text


def test_graph_marks_done_and_blocked_tasks(repo: Path) -> None:
    _progressed(repo)
    mermaid = invoke("graph", "m1").stdout
    assert mermaid.startswith("graph TD\n")
    assert 't0["T1: Done one"]:::completed' in mermaid and 't1["T2: Stuck one"]:::blocked' in mermaid
    assert "    t1 --> t2" in mermaid
    dot = invoke("graph", "m1", "--format", "dot").stdout
    assert dot.startswith('digraph "m1" {')
    assert '"T2" [label="T2\\nStuck one", fillcolor=lightcoral];' in dot and '"T1" -> "T2";' in dot


def test_graph_json_gives_nodes_with_status_and_edges_from_dependency_to_dependent(repo: Path) -> None:
    _progressed(repo)
    answer = json.loads(invoke("graph", "m1", "--json").stdout)
    assert answer["milestone"] == {"id": "m1", "title": 'Reading "the" state', "status": "in_progress"}
    status = {n["id"]: (n["status"], n["ready"], n["waiting_on_blocked"]) for n in answer["nodes"]}
    assert status == {"T1": ("completed", False, False), "T2": ("blocked", False, False),
                      "T3": ("pending", False, True), "T4": ("pending", True, False)}
    assert answer["edges"] == [{"from": "T1", "to": "T2"}, {"from": "T2", "to": "T3"}]


def test_events_filter_by_name_task_and_count(repo: Path) -> None:
    _progressed(repo)

    def names(*args: str) -> list[str]:
        return [e["event"] for e in json.loads(invoke("events", "m1", "--json", *args).stdout)["events"]]

    assert names("--task", "T2") == ["task_blocked"]
    assert names("--event", "task_completed", "--event", "task_blocked") == ["task_completed", "task_blocked"]
    assert len(names("-n", "2")) == 2 and names("-n", "0")[0] == "state_baseline"


def _read_until(fd: int, needle: bytes, timeout: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


@contextlib.contextmanager
def following(repo: Path, *args: str) -> Iterator[int]:
    """A command that keeps printing (``--follow``, ``--watch``) on a pipe: its stdout's fd, then Ctrl-C,
    which it must take as the normal way to stop."""
    proc = subprocess.Popen([sys.executable, "-m", "milestoned", *args], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        yield proc.stdout.fileno()  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_events_follow_prints_new_events_as_they_are_logged(repo: Path) -> None:
    _progressed(repo)
    with following(repo, "events", "m1", "--follow", "--json", "-n", "1") as out:
        assert b"task_blocked" in _read_until(out, b"task_blocked")
        assert invoke("task", "start", "T4", "--agent", "ada").exit_code == 0
        line = _read_until(out, b"task_started").strip().splitlines()[-1]
        assert json.loads(line)["agent"] == "ada"


def test_status_watch_redraws_on_a_terminal_and_stops_on_ctrl_c(repo: Path) -> None:
    _progressed(repo)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "milestoned", "status", "m1", "--watch", "--interval", "0.2"],
                            cwd=repo, stdin=slave, stdout=slave, stderr=slave, env={**os.environ, "COLUMNS": "100"})
    os.close(slave)
    try:
        assert b"1/4 tasks" in _read_until(master, b"1/4 tasks")
        must("task", "done", "T4")
        assert b"2/4 tasks" in _read_until(master, b"2/4 tasks")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        os.close(master)
    assert proc.returncode == 0


def _next_line(fd: int, timeout: float = 30) -> bytes:
    """The next whole line the command printed (the lines come one per change, so one read is one line)."""
    seen = b""
    while not seen.endswith(b"\n"):
        chunk = _read_until(fd, b"\n", timeout)
        assert chunk, f"no line after {seen!r}"
        seen += chunk
    assert seen.count(b"\n") == 1, f"more than one line: {seen!r}"
    return seen


def test_status_watch_piped_prints_a_line_per_change(repo: Path) -> None:
    _progressed(repo)
    with following(repo, "status", "m1", "--watch", "--interval", "0.1") as out:
        first = _next_line(out).decode()
        assert "m1 in_progress 25% (1/4)" in first and "blocked: T2" in first and "ready: T4" in first
        time.sleep(0.5)  # nothing changes: no line (the next one read must be the change's)
        must("task", "start", "T4", "--agent", "ada")
        second = _next_line(out).decode()
        assert "running: T4" in second and "ready" not in second


def test_status_watch_json_prints_one_object_per_change(repo: Path) -> None:
    _progressed(repo)
    with following(repo, "status", "m1", "--watch", "--json", "--interval", "0.1") as out:
        assert json.loads(_next_line(out))["milestone"]["progress"]["tasks_completed"] == 1
        must("task", "done", "T4")
        assert json.loads(_next_line(out))["milestone"]["progress"]["tasks_completed"] == 2


def test_watch_and_follow_end_when_their_reader_goes_away(repo: Path) -> None:
    _progressed(repo)
    for args in (("status", "m1", "--watch"), ("status", "--watch", "--json"), ("events", "m1", "--follow")):
        proc = subprocess.Popen([sys.executable, "-m", "milestoned", *args, "--interval" if "--watch" in args else "-n",
                                 "0.1" if "--watch" in args else "1"], cwd=repo, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert _next_line(proc.stdout.fileno())  # type: ignore[union-attr]
        proc.stdout.close()  # type: ignore[union-attr]  # as `| head -1` does once it has its line
        assert proc.wait(timeout=20) == 0, (args, proc.stderr.read())  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_output_cut_short_by_its_reader_is_no_failure(repo: Path) -> None:
    tasks = "".join(f"  - {{id: T{i}, title: a task with a title long enough to fill a pipe}}\n" for i in range(3000))
    write_milestone(repo, "big", f"id: big\ntitle: Big\ntasks:\n{tasks}")
    proc = subprocess.Popen([sys.executable, "-m", "milestoned", "status", "big"], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"big")  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]  # `| head -1`: the rest (far more than a pipe holds) has nowhere to go
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == b""


def test_status_watch_json_keeps_to_its_milestone_once_it_is_no_longer_current(repo: Path) -> None:
    _progressed(repo)
    with following(repo, "status", "--watch", "--json", "--interval", "0.1") as out:
        assert json.loads(_next_line(out))["milestone"]["id"] == "m1"
        for task in ("T2", "T3", "T4"):
            must("task", "done", task, "--force")  # the last one completes m1: no milestone is current now
        while (view := json.loads(_next_line(out)))["milestone"]["status"] != "completed":
            assert view["milestone"]["id"] == "m1"


def test_control_characters_in_titles_never_reach_the_terminal_raw(repo: Path) -> None:
    write_milestone(repo, "m1", """
        id: m1
        title: "Evil\\e[2J title"
        tasks:
          - {id: T1, title: "red \\e[31m then CR\\r over\\nand newline \\u202e reversed"}
          - {id: T2, title: 'quote " back\\slash', dependencies: [T1]}
        """)
    for args in (("status", "m1"), ("status",), ("graph", "m1"), ("graph", "m1", "--format", "dot")):
        out = invoke(*args).stdout
        assert "\x1b" not in out and "\r" not in out and "\u202e" not in out, args
    listed = invoke("status", "m1").stdout
    assert "red \\x1b[31m then CR\\r over\\nand newline \\u202e reversed" in listed
    assert "Evil\\x1b[2J title" in listed
    mermaid = invoke("graph", "m1").stdout
    assert 't0["T1: red \\x1b[31m then CR\\r over\\nand newline \\u202e reversed"]' in mermaid
    assert len(mermaid.splitlines()) == 8  # no title broke a line
    dot = invoke("graph", "m1", "--format", "dot").stdout
    assert '[label="T2\\nquote \\" back\\\\slash"' in dot
    view = json.loads(invoke("status", "m1", "--json").stdout)
    assert view["tasks"][0]["title"] == "red \x1b[31m then CR\r over\nand newline \u202e reversed"  # data kept
