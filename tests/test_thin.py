"""The thin path: with a daemon up, the agents' polls are answered before click, PyYAML, pygit2
or rich are imported — and print exactly what the full command line prints.

Every answer here comes from a real ``milestoned`` process.  ``thin`` runs the entry point
(``milestoned.cli.main``) and reports which heavy modules it loaded; ``full`` runs the full
command line (``milestoned.cli.app.main``) on the same arguments.  The fallbacks face real
sockets that answer garbage, never answer, speak another version, or belong to someone else.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Daemons, events_of, git, make_repo, ok, run_subprocess, write_milestone
from milestoned import __version__
from milestoned.daemon import client, wire
from milestoned.files.workspace import Workspace

HEAVY = ("click", "yaml", "pygit2", "rich")
PINNED = "2026-12-01T12:00:00Z"
DRIVER = """\
import json, os, sys
from milestoned.cli{module} import main
code = main(sys.argv[1:])
sys.stdout.flush()
with open(os.environ["LOADED_REPORT"], "w") as report:
    json.dump([m for m in {heavy!r} if m in sys.modules], report)
sys.exit(code)
"""

PLAN = """
    id: m1
    title: Thin answers
    tasks:
      - {id: T1, title: "first, done"}
      - {id: T2, title: "second \\u2014 needs T1", dependencies: [T1]}
      - {id: T3, title: third}
      - {id: T4, title: fourth}
      - {id: T5, title: "fifth, after T3", dependencies: [T3]}
      - {id: T6, title: sixth}
    """


def _run(module: str, root: Path, args: tuple[str, ...], env: dict[str, str] | None = None,
         ) -> tuple[int, str, str, list[str]]:
    report = root.parent / f"loaded-{os.getpid()}-{threading.get_ident()}.json"
    proc = subprocess.run([sys.executable, "-c", DRIVER.format(module=module, heavy=HEAVY), *args], cwd=root,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LOADED_REPORT": str(report), **(env or {})})
    loaded = json.loads(report.read_text()) if report.exists() else ["(no report)"]
    report.unlink(missing_ok=True)
    return proc.returncode, proc.stdout, proc.stderr, loaded


def thin(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str, list[str]]:
    """``milestoned ARGS`` through the entry point, and the heavy modules it loaded."""
    return _run("", root, args, env)


def full(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``milestoned ARGS`` through the full command line (click and the engine), whatever the daemon."""
    return _run(".app", root, args, env)[:3]


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    """One clock for clients and daemons, so that two runs can be compared to the byte."""
    monkeypatch.setenv("MILESTONED_NOW", PINNED)


def project(root: Path) -> Path:
    make_repo(root)
    ok(root, "init")
    write_milestone(root, "m1", PLAN)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "plan", cwd=root)
    ok(root, "activate", "m1")
    return root


READS = [("status",), ("status", "m1"), ("status", "--json"), ("status", "m1", "--json"), ("next",),
         ("next", "--json"), ("next", "m1", "--json"), ("next", "m1")]


def test_reads_answered_thin_print_what_the_full_path_prints(tmp_path: Path, daemons: Daemons,
                                                            pinned: None) -> None:
    root = project(tmp_path / "repo")
    ok(root, "task", "done", "T1", "-m", "m1")
    ok(root, "next", "--claim", "--agent", "bot-1")
    ok(root, "task", "block", "T4", "--reason", "waits for the API key")
    (root / ".milestones" / "config.yaml").write_text("tests:\n  command: [python, -c, pass]\n")  # awaits trust
    with Workspace.discover(root).log_path("m1").open("a") as log:
        log.write('{"torn": \n')  # both paths warn about it alike
    git("worktree", "add", "-q", "-b", "side", str(tmp_path / "side"), cwd=root)
    (root / "sub").mkdir()
    places = [root, root / "sub", tmp_path / "side"]

    from_files = {(p, c): full(p, *c) for p in places for c in READS}
    daemons.start(root)
    for place in places:
        for args in READS:
            code, out, err, loaded = thin(place, *args)
            assert loaded == [], f"{args} in {place} loaded {loaded}"
            through_daemon = full(place, *args)
            for answer in (through_daemon, from_files[place, args]):
                assert code == answer[0] and out == answer[1] and err == answer[2], (place, args)
    warned = thin(root, "status")[2]
    assert "awaits your approval" in warned and "line skipped" in warned


def test_claims_answered_thin_write_and_print_what_the_full_path_does(tmp_path: Path, daemons: Daemons,
                                                                     pinned: None) -> None:
    """The same steps in two identical repositories, one thin and one full: the same bytes, the same
    state; a step the thin path cannot answer (an error) is the full path's, word for word."""
    thin_root, full_root = project(tmp_path / "thin" / "repo"), project(tmp_path / "full" / "repo")
    daemons.start(thin_root)
    daemons.start(full_root)
    steps = [
        ("next", "--claim", "--agent", "a"),
        ("next", "--claim", "--agent", "b", "--json", "--lease", "1h"),
        ("next", "m1", "--claim", "--agent=a"),  # a still holds its task
        ("heartbeat", "--agent", "a"),
        ("heartbeat", "T3", "-m", "m1", "--agent", "b", "--lease", "2h", "--json"),
        ("release", "--agent", "b", "--json"),
        ("done", "--agent", "a"),
        ("done", "--agent", "b", "--json"),  # holds nothing: an error, worded by the full path
        ("next", "--claim", "--agent", "c", "--json"),
        ("done", "T2", "--agent", "c", "--milestone", "m1", "--json"),  # not c's: refused
        ("release", "--agent", "c"),
        ("next", "--json"),
    ]
    for step in steps:
        code, out, err, loaded = thin(thin_root, *step)
        assert (code, out, err) == full(full_root, *step), step
        assert (loaded == []) == (code == 0), (step, loaded)  # an error is the full path's to word
    assert json.loads(thin(thin_root, "status", "--json")[1])["tasks"] == \
        json.loads(full(full_root, "status", "--json")[1])["tasks"]


def test_a_paused_milestone_and_an_unknown_one_read_alike(tmp_path: Path, daemons: Daemons) -> None:
    root = project(tmp_path / "repo")
    ok(root, "pause", "m1")
    daemons.start(root)
    paused = thin(root, "next")
    assert paused[3] == [] and "is paused; activate it" in paused[2]
    assert paused[:3] == full(root, "next")
    unknown = thin(root, "status", "nope")
    assert unknown[0] == 2 and unknown[:3] == full(root, "status", "nope")


def test_agents_racing_through_the_daemon_never_share_a_task(tmp_path: Path, daemons: Daemons) -> None:
    root = project(tmp_path / "repo")
    daemons.start(root)
    report = tmp_path / "loaded"
    env = {**os.environ, "LOADED_REPORT": str(report)}
    racers = [subprocess.Popen([sys.executable, "-c", DRIVER.format(module="", heavy=HEAVY), "next", "--claim",
                                "--agent", f"agent-{i}", "--json"], cwd=root, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env) for i in range(10)]
    racers += [subprocess.Popen([sys.executable, "-c", DRIVER.format(module=".app", heavy=HEAVY), "next",
                                 "--claim", "--agent", f"full-{i}", "--json"], cwd=root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    answers = []
    for proc in racers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        answers.append(json.loads(out))
    claimed = [a["claimed"]["id"] for a in answers if a["claimed"]]
    assert sorted(claimed) == ["T1", "T3", "T4", "T6"]  # every ready task once, and nobody got two
    view = json.loads(thin(root, "status", "--json")[1])
    holders = {t["id"]: t["agent"] for t in view["tasks"] if t["status"] == "in_progress"}
    assert holders == {a["claimed"]["id"]: a["agent"] for a in answers if a["claimed"]}


def test_importing_the_entry_point_imports_nothing_heavy() -> None:
    probe = ("import json, sys\nimport milestoned.cli\nfrom milestoned.cli import main\n"
             f"print(json.dumps([m for m in {HEAVY + ('mcp', 'milestoned.engine.engine')!r} if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    timed = subprocess.run([sys.executable, "-X", "importtime", "-c", "import milestoned.cli"], capture_output=True,
                           text=True, timeout=60)
    imported = {line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines() if "|" in line}
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


# -- sockets that must not be believed ----------------------------------------------------------
class FakeDaemon:
    """A real Unix socket where the daemon's would be, answering as told; counts who asked."""

    def __init__(self, path: str, reply: bytes | None) -> None:
        self.path, self.reply, self.asked = path, reply, 0
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(16)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.asked += 1
            with conn:
                conn.makefile("rb").readline()
                if self.reply is None:  # wedged: never answers
                    self.stop.wait(30)
                else:
                    conn.sendall(self.reply)

    def close(self) -> None:
        self.stop.set()
        self.server.close()
        os.unlink(self.path)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A project with no daemon, and the path its daemon's socket would have."""
    root = project(tmp_path / "repo")
    yield root, wire.socket_path_for(str(Workspace.discover(root).runtime_dir))


def _a_lie(result: dict[str, object], version: str = __version__) -> bytes:
    return json.dumps({"ok": True, "version": version, "notes": [], "result": result}).encode() + b"\n"


LIE = {"schema": 1, "milestone_id": "m1", "status": "in_progress",
       "ready": [{"id": "FAKE", "title": "planted"}]}


@pytest.mark.parametrize("reply", [b"garbage, not json\n", b'{"ok": true, "result": []}\n', b"[1, 2]\n",
                                   _a_lie(LIE, version="0.0.0-another"), b'{"ok": true, "version": "',
                                   None], ids=["garbage", "no-version", "not-an-object", "another-version",
                                               "torn", "wedged"])
def test_a_daemon_that_cannot_be_believed_is_passed_over_silently(served: tuple[Path, str],
                                                                  reply: bytes | None) -> None:
    root, path = served
    expected = full(root, "next")
    fake = FakeDaemon(path, reply)
    try:
        code, out, err, loaded = thin(root, "next")
        assert (code, out, err) == expected and "FAKE" not in out
        assert fake.asked >= 1 and loaded  # it was asked, not believed: the full path answered
    finally:
        fake.close()


def test_a_socket_that_is_not_ours_is_never_asked(served: tuple[Path, str], tmp_path: Path) -> None:
    root, path = served
    expected = full(root, "next")
    elsewhere = str(tmp_path / "elsewhere.sock")
    fake = FakeDaemon(elsewhere, _a_lie(LIE))
    try:
        os.symlink(elsewhere, path)  # a link planted where the socket would be
        assert thin(root, "next")[:3] == expected and fake.asked == 0
        os.unlink(path)
        if os.geteuid() != 0:
            pytest.skip("planting a socket owned by another user takes root")
        planted = FakeDaemon(path, _a_lie(LIE))
        try:
            os.chown(path, 65534, 65534)  # nobody's socket, answering with our version
            assert thin(root, "next")[:3] == expected and planted.asked == 0
        finally:
            planted.close()
    finally:
        fake.close()


def test_the_daemon_refuses_a_client_of_another_version_or_clock(tmp_path: Path, daemons: Daemons) -> None:
    root = project(tmp_path / "repo")
    daemons.start(root)
    path = os.fspath(client.socket_path(Workspace.discover(root)))

    assert raw_answer(path, {"op": "next", "version": "0.0.0-older", "pinned_now": None})["ok"] is False
    assert raw_answer(path, {"op": "next", "version": __version__, "pinned_now": PINNED})["ok"] is False
    assert raw_answer(path, {"op": "next", "version": __version__, "pinned_now": None})["ok"] is True
    # a client with a pinned clock the daemon lacks gets its answer from the files
    assert thin(root, "next", env={"MILESTONED_NOW": PINNED})[3] != []


def test_without_a_daemon_the_installed_command_answers_from_the_files(tmp_path: Path) -> None:
    root = project(tmp_path / "repo")
    result = run_subprocess("next", "--claim", "--agent", "solo", cwd=root)
    assert result.returncode == 0 and "solo claimed T1" in result.stdout


def test_a_write_the_client_gave_up_on_is_never_done(tmp_path: Path, daemons: Daemons) -> None:
    """The client does a write itself once its deadline passed; the daemon, read late, must not."""
    root = project(tmp_path / "repo")
    info = daemons.start(root)
    path = os.fspath(client.socket_path(Workspace.discover(root)))
    request = {"op": "claim", "agent": "late", "cwd": str(root), "milestone": None, "version": __version__,
               "pinned_now": None}
    os.kill(info["pid"], signal.SIGSTOP)  # stopped (or busy) past the client's patience
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.sendall(json.dumps({**request, "deadline": time.time() + 0.3}).encode() + b"\n")
        time.sleep(0.6)
    finally:
        os.kill(info["pid"], signal.SIGCONT)
    with sock:
        answer = json.loads(sock.makefile("rb").readline())
    assert answer["ok"] is False
    assert "task_claimed" not in [e["event"] for e in events_of(root, "m1")]
    in_time = raw_answer(path, {**request, "deadline": time.time() + 10})
    assert in_time["ok"] is True and in_time["result"]["claimed"]["id"] == "T1"


def test_a_config_that_does_not_read_is_reported_as_without_a_daemon(tmp_path: Path, daemons: Daemons) -> None:
    root = project(tmp_path / "repo")
    daemons.start(root)
    (root / ".milestones" / "config.yaml").write_text("agent:\n  preset: [claude-code]\n")
    for args in (("status",), ("status", "--json"), ("next", "--claim", "--agent", "a")):
        code, out, err, loaded = thin(root, *args)
        assert (code, out, err) == full(root, *args) and loaded, args
    assert thin(root, "status")[0] == 2


def test_a_mistyped_milestone_leaves_the_daemon_nothing_to_report(tmp_path: Path, daemons: Daemons) -> None:
    root = project(tmp_path / "repo")
    daemons.start(root)
    for typo in ("nosuch", "typo1"):
        assert thin(root, "next", typo)[0] == 2
    info = daemons.ping(root)
    assert info is not None and info["problems"] == []


def test_a_wedged_daemon_is_waited_for_once_per_command(served: tuple[Path, str]) -> None:
    root, path = served
    expected = full(root, "status", "--json")
    fake = FakeDaemon(path, None)
    try:
        assert thin(root, "status", "--json")[:3] == expected
        assert fake.asked == 1  # the full path did not wait for it again
    finally:
        fake.close()


def raw_answer(path: str, request: dict[str, object]) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(json.dumps(request).encode() + b"\n")
        answer: dict[str, object] = json.loads(sock.makefile("rb").readline())
        return answer
