"""Everything the tests share: a clean environment, real repositories, the CLI, daemons, remotes.

CI has no global git identity and no global config: every test runs with HOME and
the global/system git config pointed at empty places, and sets identity through the
environment, so a test that passes here passes there.  Test modules import helpers
from here and never from one another.

Tests never assert how long anything takes; they wait (generously) for what a user
would eventually see, and fail with a message saying what never happened.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from milestoned.cli import cli
from milestoned.daemon import client
from milestoned.daemon import control as daemonctl
from milestoned.files.workspace import Workspace

T = TypeVar("T")

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
}


@pytest.fixture(autouse=True)
def clean_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "MILESTONED_NOW"):
        monkeypatch.delenv(key, raising=False)
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)


def git(*args: str, cwd: Path, check: bool = True) -> str:
    """Run git in ``cwd`` and return its stdout."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", cwd=path)
    (path / "README.md").write_text("project\n")
    git("add", "README.md", cwd=path)
    git("commit", "-q", "-m", "initial", cwd=path)
    return path


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit and an initialized .milestones/, as the cwd."""
    root = make_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    assert invoke("init").exit_code == 0
    return root


def invoke(*args: str, input: str | None = None) -> Result:
    """The real CLI in-process (click's CliRunner), in the current directory."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def must(*args: str, input: str | None = None) -> Result:
    """The CLI in-process, for a step a test stands on: it must succeed."""
    result = invoke(*args, input=input)
    assert result.exit_code == 0, f"milestoned {' '.join(args)} exited {result.exit_code}: {result.output}"
    return result


@pytest.fixture
def run() -> Callable[..., Result]:
    return invoke


def run_subprocess(*args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None,
                   ) -> subprocess.CompletedProcess[str]:
    """The installed CLI as a separate process (what hooks, daemons and agents see)."""
    return subprocess.run(
        [sys.executable, "-m", "milestoned", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )


def write_milestone(root: Path, milestone_id: str, body: str, *, folder: str = "active") -> Path:
    """Write a milestone file exactly as given (dedented), as a person would."""
    path = root / ".milestones" / folder / f"{milestone_id}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body).lstrip("\n"))
    return path


def snapshot_tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (the .git dir excluded) with its bytes, to prove nothing changed."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


TWO_TASKS = """
    id: m1
    title: Two tasks
    status: planned
    tasks:
      - id: T1
        title: First
        status: pending
      - id: T2
        title: Second
        status: pending
        dependencies: [T1]
    """


@pytest.fixture
def two_task_milestone(repo: Path) -> Iterator[Path]:
    yield write_milestone(repo, "m1", TWO_TASKS)


def log_file(root: Path, milestone_id: str) -> Path:
    """Where a milestone's event log lives: in the git dir, never in the working tree."""
    return Workspace.discover(root).log_path(milestone_id)


def session_file(root: Path, session_id: str) -> Path:
    return Workspace.discover(root).session_path(session_id)


def wait_for(check: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def events_of(root: Path, milestone_id: str) -> list[dict[str, Any]]:
    """The event log exactly as on disk, in the git dir."""
    path = Workspace.discover(root).log_path(milestone_id)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def event_names(root: Path, milestone_id: str) -> list[str]:
    return [e["event"] for e in events_of(root, milestone_id)]


class Daemons:
    """Start daemons for repositories; ``cleanup`` stops every one (SIGKILL if it must)."""

    def __init__(self) -> None:
        self.started: dict[Path, set[int]] = {}

    def start(self, root: Path) -> dict[str, Any]:
        result = run_subprocess("daemon", "start", cwd=root, timeout=60)
        assert result.returncode == 0, result.stderr
        info = self.ping(root)
        assert info is not None, f"the daemon of {root} does not answer: {result.stdout}{result.stderr}"
        self.started.setdefault(root, set()).add(info["pid"])
        return info

    def stop(self, root: Path) -> str:
        result = run_subprocess("daemon", "stop", cwd=root, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    @staticmethod
    def ping(root: Path) -> dict[str, Any] | None:
        return client.ping(Workspace.discover(root))

    @staticmethod
    def ask(root: Path, op: str, **fields: Any) -> dict[str, Any] | None:
        return client.ask(Workspace.discover(root), op, **fields)

    def kill9(self, root: Path) -> int:
        info = self.ping(root)
        assert info is not None
        os.kill(info["pid"], signal.SIGKILL)
        ws = Workspace.discover(root)
        wait_for(lambda: not daemonctl.lock_held(ws), "the killed daemon to let go of its lock")
        return info["pid"]

    def cleanup(self) -> None:
        for root, pids in self.started.items():
            if not root.exists():
                continue
            run_subprocess("daemon", "stop", cwd=root, timeout=60)
            ws = Workspace.discover(root)
            if daemonctl.lock_held(ws):  # still alive: only kill what is provably ours
                pid = (daemonctl.read_record(ws) or {}).get("pid")
                if pid in pids:
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    started = Daemons()
    try:
        yield started
    finally:
        started.cleanup()


def commit(cwd: Path, message: str, *trailers: str, name: str = "work.txt") -> str:
    """Change a file and make a real commit (hooks fire); returns its sha."""
    path = cwd / name
    with path.open("a") as handle:
        handle.write(message + "\n")
    git("add", name, cwd=cwd)
    args = ["commit", "-q", "-m", message]
    for trailer in trailers:
        args += ["--trailer", trailer]
    git(*args, cwd=cwd)
    return git("rev-parse", "HEAD", cwd=cwd)


def statuses(milestone: str = "m1") -> dict[str, str]:
    result = invoke("status", milestone, "--json")
    assert result.exit_code == 0, result.output
    return {t["id"]: t["status"] for t in json.loads(result.stdout)["tasks"]}


def events(name: str, milestone: str = "m1") -> list[dict]:
    result = invoke("events", milestone, "--json", "--event", name, "-n", "0")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["events"]


def inbox_lines(repo: Path) -> list[str]:
    path = repo / ".git" / "milestoned" / "inbox"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def active(repo: Path) -> Path:
    """m1 (T1; T2 after T1; T3) activated, hooks installed: the repository, as the cwd."""
    write_milestone(repo, "m1", """
        id: m1
        title: Hooks
        status: planned
        tasks:
          - {id: T1, title: first}
          - {id: T2, title: second, dependencies: [T1]}
          - {id: T3, title: third}
        """)
    assert invoke("activate", "m1").exit_code == 0
    result = invoke("hooks", "install")
    assert result.exit_code == 0, result.output
    return repo


def at(root: Path, *args: str) -> Result:
    """The CLI in-process, as if started in ``root``."""
    before = os.getcwd()
    os.chdir(root)
    try:
        return invoke(*args)
    finally:
        os.chdir(before)


def ok(root: Path, *args: str) -> str:
    result = at(root, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def as_json(root: Path, *args: str) -> dict:
    return json.loads(ok(root, *args, "--json"))


def event_ids(root: Path, milestone: str = "m1") -> set[str]:
    return {e["id"] for e in as_json(root, "events", milestone, "-n", "0")["events"]}


def tasks_yaml(count: int) -> str:
    return "\n".join(f"  - {{id: T{i}, title: task {i}}}" for i in range(1, count + 1))


def bare_remote(path: Path) -> Path:
    path.mkdir(parents=True)
    git("init", "-q", "--bare", "-b", "main", cwd=path)
    return path


def project(tmp_path: Path, tasks: int = 4, *, remote: Path | None = None) -> tuple[Path, Path]:
    """A bare remote and a first clone with an active milestone ``m1`` of independent tasks."""
    remote = remote or bare_remote(tmp_path / "origin.git")
    first = make_repo(tmp_path / "a")
    git("remote", "add", "origin", str(remote), cwd=first)
    git("push", "-q", "origin", "main", cwd=first)
    ok(first, "init")
    write_milestone(first, "m1", f"id: m1\ntitle: shared work\ntasks:\n{tasks_yaml(tasks)}\n")
    ok(first, "activate", "m1")
    return remote, first


def clone(remote: Path | str, dest: Path) -> Path:
    git("clone", "-q", str(remote), str(dest), cwd=dest.parent)
    return dest


def share(first: Path, remote: Path | str, dest: Path) -> Path:
    """Save and sync ``first``'s session, then clone ``remote`` to ``dest`` and resume it there."""
    ok(first, "session", "save")
    ok(first, "sync")
    second = clone(remote, dest)
    ok(second, "resume")
    return second


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real ``git daemon`` on 127.0.0.1 serving (and accepting pushes to) ``served/``: (dir, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--informative-errors",
             "--listen=127.0.0.1", f"--port={port}", f"--base-path={served}", str(served)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        pytest.fail("git daemon did not start")
    try:
        yield served, f"git://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


FAKE = str(Path(__file__).with_name("fake_agent.py"))


BRANCH = "milestone/m1/_milestone"


def fake(*args: str) -> list[str]:
    return [sys.executable, FAKE, *args]


def plan(repo: Path, tasks: list[dict[str, Any]], milestone_id: str = "m1") -> Path:
    """A milestone of these tasks (JSON is YAML: values stay exactly as given)."""
    lines = [f"id: {milestone_id}", "title: Runner test", "status: planned", "tasks:"]
    for task in tasks:
        lines.append(f"  - id: {task['id']}")
        lines.append(f"    title: {json.dumps(task.get('title', 'task ' + task['id']))}")
        for key in ("dependencies", "run", "prompt", "shell"):
            if key in task:
                lines.append(f"    {key}: {json.dumps(task[key])}")
    return write_milestone(repo, milestone_id, "\n".join(lines) + "\n")


def status_of(milestone: str = "m1") -> dict[str, Any]:
    result = invoke("status", milestone, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def tasks_by_id(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in view["tasks"]}


def events_named(name: str, milestone: str = "m1") -> list[dict[str, Any]]:
    result = invoke("events", milestone, "--json", "--event", name, "--limit", "0")
    return json.loads(result.stdout)["events"]


def show(repo: Path, path: str, ref: str = BRANCH) -> str:
    return git("show", f"{ref}:{path}", cwd=repo)


def conflict(root: Path, branch: str = "other") -> None:
    """A real merge stopped on a conflict in ``root`` (a worktree of the repository)."""
    git("checkout", "-q", "-b", branch, cwd=root)
    (root / "f.txt").write_text(f"theirs on {branch}\n")
    git("add", "f.txt", cwd=root)
    git("commit", "-q", "-m", "theirs", cwd=root)
    git("checkout", "-q", "-", cwd=root)
    (root / "f.txt").write_text(f"ours against {branch}\n")
    git("add", "f.txt", cwd=root)
    git("commit", "-q", "-m", "ours", cwd=root)
    git("merge", "-q", branch, cwd=root, check=False)
    assert git("ls-files", "--unmerged", cwd=root)
