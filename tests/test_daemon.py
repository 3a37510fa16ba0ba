"""The daemon as a user meets it: real processes started by `milestoned daemon start`."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (
    TWO_TASKS,
    Daemons,
    event_names,
    events_of,
    git,
    log_file,
    make_repo,
    run_subprocess,
    session_file,
    wait_for,
    write_milestone,
)
from milestoned.core.jsonout import json_text
from milestoned.daemon import client
from milestoned.daemon.control import lock_held
from milestoned.daemon.viewcache import ViewCache
from milestoned.daemon.watch import Change, Watcher
from milestoned.engine.engine import Engine
from milestoned.files.workspace import Workspace
from milestoned.model import views

pytestmark = pytest.mark.slow

MILESTONE = TWO_TASKS.rstrip() + """
      - id: T3
        title: Third
        status: pending
        dependencies: [T1]
    """


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_subprocess(*args, cwd=root)
    assert result.returncode == 0, result.stderr
    return result


def test_start_answers_and_a_second_start_finds_the_first(repo: Path, daemons: Daemons) -> None:
    first = daemons.start(repo)
    again = run_subprocess("daemon", "start", cwd=repo)
    assert again.returncode == 0
    assert f"already running for {repo} (pid {first['pid']}" in again.stdout
    status = run_subprocess("daemon", "status", cwd=repo)
    assert status.returncode == 0 and f"pid {first['pid']}" in status.stdout
    sock = Path(first["socket"])
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE((repo / ".git" / "milestoned").stat().st_mode) == 0o700
    assert not any(".git/objects" in watched for watched in first["watching"])

    foreground = run_subprocess("daemon", "run", cwd=repo)  # what a service manager would start
    assert foreground.returncode == 0 and f"a daemon already serves {repo} (pid {first['pid']})" in foreground.stderr

    assert f"stopped (pid {first['pid']})" in daemons.stop(repo)
    assert not sock.exists()
    after = run_subprocess("daemon", "status", cwd=repo)
    assert after.returncode == 1 and "no milestoned daemon runs" in after.stdout


def test_two_starts_at_once_make_one_daemon(repo: Path, daemons: Daemons) -> None:
    starts = [subprocess.Popen([sys.executable, "-m", "milestoned", "daemon", "start"], cwd=repo,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60) for p in starts]
    assert [p.returncode for p in starts] == [0, 0], outputs
    info = daemons.ping(repo)
    assert info is not None
    daemons.started.setdefault(repo, set()).add(info["pid"])
    said = sorted(out.split(" for ")[0] for out, _ in outputs)
    assert said == ["milestoned daemon already running", "milestoned daemon started"]
    assert all(f"(pid {info['pid']}," in out for out, _ in outputs)


def test_status_and_events_from_the_daemon_match_the_files(repo: Path, daemons: Daemons) -> None:
    write_milestone(repo, "m1", MILESTONE)
    cli(repo, "activate", "m1")
    cli(repo, "task", "done", "T1")
    cli(repo, "task", "start", "T2", "--agent", "ana")
    with log_file(repo, "m1").open("a") as log:
        log.write("{not json\n")  # a torn line: both answers warn about it alike
    git("worktree", "add", "-q", "-b", "side", str(repo.parent / "side"), cwd=repo)
    (repo / "sub").mkdir()
    places = [repo, repo / "sub", repo.parent / "side"]
    commands = [("status", "--json"), ("status", "m1", "--json"), ("status",), ("events", "--json"),
                ("events", "--json", "--task", "T2", "-n", "0"), ("events",)]

    def answers() -> list[tuple[str, str]]:
        return [(r.stdout, r.stderr) for r in (cli(p, *c) for p in places for c in commands)]

    from_files = answers()
    daemons.start(repo)
    served = wait_for(lambda: client.status(Workspace.discover(repo), "m1"), "the daemon to answer status")
    assert served.raw.decode() == from_files[1][0]
    assert answers() == from_files
    # a client standing outside the repository (a script, a dashboard) gets the answer too
    outside = client._exchange(Workspace.discover(repo), {"op": "status", "milestone": "m1", "cwd": "/"}, 5)
    assert outside is not None and json.loads(outside)["ok"] is True

    cli(repo, "pause", "m1")  # the daemon follows the change, and still agrees with the files
    paused = cli(repo, "status", "--json").stdout
    assert json.loads(paused)["milestone"]["status"] == "paused"
    engine = Engine(Workspace.discover(repo))
    assert paused == json_text(views.status(engine.load("m1")), pretty=False)


def test_next_and_blockers_over_the_socket_answer_like_the_commands(repo: Path, daemons: Daemons) -> None:
    write_milestone(repo, "m1", MILESTONE)
    cli(repo, "activate", "m1")
    cli(repo, "task", "done", "T1")
    daemons.start(repo)
    ready = daemons.ask(repo, "next")
    assert ready is not None and ready["result"] == json.loads(cli(repo, "next", "--json").stdout)
    assert [row["id"] for row in ready["result"]["ready"]] == ["T2", "T3"]
    listed = daemons.ask(repo, "blockers", milestone="m1")
    assert listed is not None and listed["result"] == json.loads(cli(repo, "blockers", "--json").stdout)
    refused = client._exchange(Workspace.discover(repo), {"op": "nope"}, 5)
    assert refused is not None and json.loads(refused)["error"].startswith("unknown op 'nope'")


def test_the_daemon_gives_back_a_task_whose_claim_lapsed(repo: Path, daemons: Daemons) -> None:
    write_milestone(repo, "m1", MILESTONE)
    cli(repo, "activate", "m1")
    cli(repo, "next", "--claim", "--agent", "bot", "--lease", "1s")
    daemons.start(repo)
    expired = wait_for(lambda: [e for e in events_of(repo, "m1") if e["event"] == "claim_expired"],
                       "the daemon to expire the lapsed claim")
    assert expired[0]["task_id"] == "T1" and expired[0]["agent"] == "bot"
    assert json.loads(cli(repo, "status", "--json").stdout)["tasks"][0]["status"] == "pending"


def test_overview_without_a_current_milestone_matches_the_files(repo: Path, daemons: Daemons) -> None:
    write_milestone(repo, "m1", MILESTONE)
    write_milestone(repo, "m2", "id: m2\ntitle: other\ntasks: [{id: A, title: a}]\n")
    write_milestone(repo, "broken", "id: broken\ntasks: [{id: A, title: a, dependencies: [Z]}]\n")
    from_files = cli(repo, "status", "--json").stdout
    daemons.start(repo)
    assert cli(repo, "status", "--json").stdout == from_files
    assert "task A depends on unknown task Z" in json.loads(from_files)["errors"][0]


def test_a_plan_edit_saved_by_rename_is_seen_and_a_status_in_it_only_reported(repo: Path, daemons: Daemons) -> None:
    path = write_milestone(repo, "m1", MILESTONE)
    cli(repo, "activate", "m1")
    daemons.start(repo)
    before = events_of(repo, "m1")
    text = path.read_text()
    # an editor's save: write a temp file beside it, then rename it over the original
    temp = path.with_name(".m1.yaml.swp")
    temp.write_text(text.replace("status: pending", "status: completed", 1) + "  - {id: T4, title: Fourth}\n")
    os.replace(temp, path)
    view = wait_for(lambda: (answer := daemons.ask(repo, "status", milestone="m1", sync=False))
                    and len(answer["result"]["tasks"]) == 4 and answer["result"], "the daemon to see the new task")
    assert [t["status"] for t in view["tasks"]] == ["pending", "pending", "pending", "pending"]
    assert view["ready"] == ["T1", "T4"]
    assert "the file says task T1 is completed, milestoned has it pending" in view["warnings"][0]
    assert events_of(repo, "m1") == before  # a plan edit is no state change: nothing recorded


def test_an_invalid_edit_is_reported_and_never_replaces_good_state(repo: Path, daemons: Daemons) -> None:
    path = write_milestone(repo, "m1", MILESTONE)
    cli(repo, "activate", "m1")
    daemons.start(repo)
    broken = path.read_text().replace("dependencies: [T1]", "dependencies: [T9]", 1)
    path.write_text(broken)
    problems = wait_for(lambda: (daemons.ping(repo) or {}).get("problems"), "the daemon to report the bad edit")
    assert "m1.yaml:11: task T2 depends on unknown task T9" in problems[0]
    with_daemon = run_subprocess("status", "m1", "--json", cwd=repo)
    assert with_daemon.returncode == 2
    assert with_daemon.stderr.strip().endswith("task T2 depends on unknown task T9 (add that task or remove the dependency)")
    assert path.read_text() == broken  # the user's file, untouched
    path.write_text(broken.replace("[T9]", "[T1]"))
    wait_for(lambda: not (daemons.ping(repo) or {}).get("problems"), "the daemon to accept the fixed file")
    assert json.loads(cli(repo, "status", "--json").stdout)["milestone"]["status"] == "in_progress"


def test_a_plan_edited_into_invalid_yaml_is_reported_with_its_line_and_changes_no_state(
        repo: Path, daemons: Daemons) -> None:
    path = write_milestone(repo, "m1", MILESTONE)
    cli(repo, "activate", "m1")
    cli(repo, "task", "done", "T1")
    daemons.start(repo)
    before = events_of(repo, "m1")
    good = path.read_text()
    path.write_text(good.replace("  - id: T2", "  - id: [T2", 1))
    problems = wait_for(lambda: (daemons.ping(repo) or {}).get("problems"), "the daemon to report the broken plan")
    assert problems[0].startswith(".milestones/active/m1.yaml:") and "YAML syntax error" in problems[0]
    assert events_of(repo, "m1") == before
    path.write_text(good)
    wait_for(lambda: not (daemons.ping(repo) or {}).get("problems"), "the daemon to accept the repaired plan")
    assert [t["status"] for t in json.loads(cli(repo, "status", "--json").stdout)["tasks"]] == \
        ["completed", "pending", "pending"]
    assert events_of(repo, "m1") == before


def test_sigterm_saves_the_session_and_exits_cleanly(repo: Path, daemons: Daemons) -> None:
    write_milestone(repo, "m1", MILESTONE)
    cli(repo, "activate", "m1")
    info = daemons.start(repo)
    os.kill(info["pid"], signal.SIGTERM)
    ws = Workspace.discover(repo)
    wait_for(lambda: not lock_held(ws), "the daemon to exit")
    assert daemons.ping(repo) is None and not Path(info["socket"]).exists()
    saved = [e for e in events_of(repo, "m1") if e["event"] == "session_saved"]
    assert saved and saved[-1]["reason"] == "daemon_stopped"
    session = session_file(repo, saved[-1]["session"])
    assert "save_reason: daemon_stopped" in session.read_text()
    assert "stopped" in (repo / ".git/milestoned/daemon.log").read_text().splitlines()[-1]


def test_kill_9_then_start_loses_nothing_and_drains_the_inbox(repo: Path, daemons: Daemons) -> None:
    write_milestone(repo, "m1", MILESTONE)
    cli(repo, "hooks", "install")
    cli(repo, "activate", "m1")
    first = daemons.start(repo)
    daemons.kill9(repo)
    assert Path(first["socket"]).exists()  # the crash's leftover
    status = run_subprocess("daemon", "status", cwd=repo)
    assert status.returncode == 1 and "left by a daemon that died" in status.stdout
    (repo / "a.txt").write_text("a\n")
    git("add", "a.txt", cwd=repo)
    git("commit", "-q", "-m", "first task\n\nCompletes: T1", cwd=repo)  # lands in the inbox, no daemon
    inbox = (repo / ".git/milestoned/inbox").stat()
    assert inbox.st_size > 0 and stat.S_IMODE(inbox.st_mode) == 0o600
    second = daemons.start(repo)
    assert second["pid"] != first["pid"]
    assert "task_completed" in event_names(repo, "m1")  # drained by the daemon as it started
    view = json.loads(cli(repo, "status", "--json").stdout)
    assert [t["status"] for t in view["tasks"]] == ["completed", "pending", "pending"]
    assert not (repo / ".git/milestoned/inbox").exists() or (repo / ".git/milestoned/inbox").stat().st_size == 0
    engine = Engine(Workspace.discover(repo))
    assert view == json.loads(json_text(views.status(engine.load("m1")), pretty=False))


def test_a_commit_reaches_status_through_the_running_daemon(repo: Path, daemons: Daemons) -> None:
    write_milestone(repo, "m1", MILESTONE)
    cli(repo, "hooks", "install")
    cli(repo, "activate", "m1")
    daemons.start(repo)
    (repo / "a.txt").write_text("a\n")
    git("add", "a.txt", cwd=repo)
    git("commit", "-q", "-m", "first task\n\nCompletes: T1", cwd=repo)
    ws = Workspace.discover(repo)
    # any answer, even the first, has drained the inbox first (the cookie): no waiting for the watcher
    answer = wait_for(lambda: client.status(ws, "m1"), "the daemon to answer status (not busy)")
    assert answer.view()["tasks"][0]["status"] == "completed"


def test_a_long_repository_path_gets_a_short_private_socket(tmp_path: Path, daemons: Daemons) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    root = make_repo(deep / "repo")
    cli(root, "init")
    info = daemons.start(root)
    sock = Path(info["socket"])
    assert len(str(root / ".git/milestoned/daemon.sock")) > 107
    assert sock.parent == Path(f"/tmp/milestoned-{os.getuid()}") and len(os.fsencode(sock)) <= 100
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600 and stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert json.loads((root / ".git/milestoned/daemon.json").read_text())["socket"] == str(sock)
    wait_for(lambda: client.status(Workspace.discover(root), None), "the daemon to answer on the short socket")
    daemons.stop(root)
    assert not sock.exists()


def test_a_replaced_directory_makes_the_daemon_reread_everything(repo: Path, daemons: Daemons) -> None:
    path = write_milestone(repo, "m1", MILESTONE)
    cli(repo, "activate", "m1")
    daemons.start(repo)
    active = repo / ".milestones/active"
    shutil.copytree(active, repo / ".milestones/active.new")
    shutil.rmtree(active)
    os.rename(repo / ".milestones/active.new", active)  # a new directory: the old watch is dead
    wait_for(lambda: (daemons.ping(repo) or {}).get("resyncs"), "the daemon to notice and re-read")
    assert "re-reading everything" in (repo / ".git/milestoned/daemon.log").read_text()
    path.write_text(path.read_text() + "  - {id: T4, title: Fourth}\n")
    wait_for(lambda: (answer := daemons.ask(repo, "status", milestone="m1", sync=False))
             and len(answer["result"]["tasks"]) == 4, "the daemon to see an edit in the new directory")


def test_the_view_cache_applies_appended_events_without_reading_the_file_again(repo: Path) -> None:
    write_milestone(repo, "m1", MILESTONE)
    cli(repo, "activate", "m1")
    engine = Engine(Workspace.discover(repo))
    cache = ViewCache(engine)
    entry = cache.get("m1")
    stamp = entry.plan_stamp
    log = log_file(repo, "m1")
    lines = len(log.read_text().splitlines())

    def as_files() -> bytes:
        return json_text(views.status(engine.load("m1")), pretty=False).encode()

    with engine.transaction() as txn:  # records the milestone file does not show: only the log grows
        ms = txn.milestone("m1")
        txn.record(ms, "progress_updated", percentage=0)
        txn.record(ms, "commits_ingested", commits=[])
    assert cache.get("m1") is entry and entry.plan_stamp == stamp  # extended, not read again
    recent = json.loads(cache.status("m1", os.getcwd()))["recent_events"]
    assert [e["event"] for e in recent[-2:]] == ["progress_updated", "commits_ingested"]
    assert cache.status("m1", os.getcwd()) == as_files()
    with log.open("a") as handle:
        handle.write('{"event": "half a line')  # a torn line, as a crash leaves it
    assert cache.status("m1", os.getcwd()) == as_files()  # reported as the files report it
    with engine.transaction() as txn:  # the next writer finishes the torn line first
        txn.record(txn.milestone("m1"), "progress_updated", percentage=0)
    with log.open("a") as handle:
        handle.write('{"event": "progress_updated", "clock": 99}\n')
    assert cache.status("m1", os.getcwd()) == as_files()
    warning = json.loads(cache.status("m1", os.getcwd()))["warnings"][0]
    assert f"log/m1.jsonl:{lines + 3}: not valid JSON" in warning
    entry = cache.get("m1")
    with log.open("a") as handle:
        handle.write("{broken\n")  # a whole broken line, appended: numbered right without a re-read
    assert cache.get("m1") is entry and cache.status("m1", os.getcwd()) == as_files()


def test_lost_watcher_events_ask_for_a_full_reread(repo: Path) -> None:
    watcher = Watcher(Workspace.discover(repo))
    watcher.start()
    try:
        # what watchdog does, and all it does, when the kernel's inotify queue overflows
        logging.getLogger("watchdog.observers.inotify_c").warning("Inotify queue overflowed; filesystem events were lost")
        assert any(c.kind == "resync" for c in watcher.take(timeout=5))
        (repo / ".milestones/active/m9.yaml").write_text("id: m9\n")
        seen = wait_for(lambda: watcher.take(timeout=1), "the watcher to see a new milestone file")
        assert Change("milestone", "m9") in seen
    finally:
        watcher.stop()


def test_something_else_at_the_socket_path_is_named_never_deleted(repo: Path, daemons: Daemons) -> None:
    in_the_way = client.socket_path(Workspace.discover(repo))
    in_the_way.parent.mkdir(parents=True, exist_ok=True)
    in_the_way.mkdir()
    status = run_subprocess("daemon", "status", cwd=repo)
    assert status.returncode == 1 and "internal error" not in status.stderr
    started = run_subprocess("daemon", "start", cwd=repo, timeout=60)
    assert started.returncode == 1 and "in the way of the daemon's socket" in started.stderr
    assert "internal error" not in started.stderr + started.stdout
    assert in_the_way.is_dir()


def test_a_stopped_daemon_is_reported_as_not_answering(repo: Path, daemons: Daemons) -> None:
    info = daemons.start(repo)
    os.kill(info["pid"], signal.SIGSTOP)
    try:
        status = run_subprocess("daemon", "status", cwd=repo)
        started = run_subprocess("daemon", "start", cwd=repo, timeout=60)
    finally:
        os.kill(info["pid"], signal.SIGCONT)
    assert status.returncode == 1 and f"(pid {info['pid']})" in status.stderr and "does not answer" in status.stderr
    assert started.returncode == 1 and "does not answer" in started.stderr and "daemon stop" in started.stderr


def test_the_daemon_ends_when_its_repository_is_deleted(repo: Path, daemons: Daemons) -> None:
    pid = daemons.start(repo)["pid"]

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return _reaped_or_zombie(pid)

    shutil.rmtree(repo)
    wait_for(gone, "the daemon to end once its repository was deleted")


def _reaped_or_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True
