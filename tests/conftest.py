"""Shared fixtures: real git repositories in temporary directories, a clean environment.

CI has no global git identity and no global config: every test runs with HOME and
the global/system git config pointed at empty places, and sets identity through the
environment, so a test that passes here passes there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from milestoned.cli import cli

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
    from milestoned.files.workspace import Workspace

    return Workspace.discover(root).log_path(milestone_id)


def session_file(root: Path, session_id: str) -> Path:
    from milestoned.files.workspace import Workspace

    return Workspace.discover(root).session_path(session_id)
