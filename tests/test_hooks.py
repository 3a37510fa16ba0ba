"""``milestoned hooks install|uninstall|status`` against real git, real hooks and real hook managers.

Every commit here is a real ``git commit`` that fires the installed scripts (``commit``
and the ``active`` repository come from conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import commit, git, inbox_lines, invoke, must, statuses

HOOK_NAMES = ("post-commit", "post-merge", "post-rewrite", "post-checkout", "prepare-commit-msg")














def hook_states(*args: str) -> dict[str, str]:
    result = invoke("hooks", "status", "--json", *args)
    assert result.exit_code == 0, result.output
    return {h["name"]: h["state"] for h in json.loads(result.stdout)["hooks"]}


def test_install_writes_every_hook_and_status_says_ours(repo: Path) -> None:
    result = invoke("hooks", "install")
    assert result.exit_code == 0, result.output
    hooks_dir = repo / ".git" / "hooks"
    for name in HOOK_NAMES:
        path = hooks_dir / name
        assert path.read_text().startswith("#!/bin/sh\n# milestoned-hook: ")
        assert os.access(path, os.X_OK)
    view = json.loads(invoke("hooks", "status", "--json").stdout)
    assert view["hooks_dir"] == str(hooks_dir)
    assert {h["name"]: (h["state"], h["current"]) for h in view["hooks"]} == {n: ("ours", True) for n in HOOK_NAMES}
    assert view["config"] == {"notes.rewriteRef": ["refs/notes/milestoned"], "notes.rewriteMode": "cat_sort_uniq",
                              "notes.milestoned.mergeStrategy": "cat_sort_uniq"}
    runtime = repo / ".git" / "milestoned"
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700


def test_installing_twice_changes_nothing(repo: Path) -> None:
    must("hooks", "install")
    before = {p.name: p.read_bytes() for p in (repo / ".git" / "hooks").iterdir()}
    config = (repo / ".git" / "config").read_bytes()
    result = invoke("hooks", "install")
    assert all(line.endswith("up to date") for line in result.stdout.splitlines()[:5]), result.stdout
    assert {p.name: p.read_bytes() for p in (repo / ".git" / "hooks").iterdir()} == before
    assert (repo / ".git" / "config").read_bytes() == config


def test_commit_appends_one_line_to_the_inbox_and_prints_nothing(repo: Path) -> None:
    must("hooks", "install")
    (repo / "f").write_text("x\n")
    git("add", "f", cwd=repo)
    proc = subprocess.run(["git", "commit", "-q", "-m", "plain"], cwd=repo, capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    sha = git("rev-parse", "HEAD", cwd=repo)
    assert inbox_lines(repo) == [f"1\tcommit\t{sha}\trefs/heads/main\t\t{repo}"]
    inbox = repo / ".git" / "milestoned" / "inbox"
    assert stat.S_IMODE(inbox.stat().st_mode) == 0o600


def test_existing_shell_hook_keeps_running_and_uninstall_restores_its_bytes(repo: Path, tmp_path: Path) -> None:
    hook = repo / ".git" / "hooks" / "post-commit"
    original = f"#!/bin/sh\necho \"$0 ran\" >> {tmp_path}/fired\nexit 0\n".encode()
    hook.write_bytes(original)
    hook.chmod(0o750)
    must("hooks", "install")
    assert hook_states()["post-commit"] == "chained"
    sha = commit(repo, "one")
    assert (tmp_path / "fired").read_text().count("ran") == 1
    assert any(sha in line for line in inbox_lines(repo))
    assert "removed" in invoke("hooks", "uninstall").stdout
    assert hook.read_bytes() == original
    assert stat.S_IMODE(hook.stat().st_mode) == 0o750
    assert not (repo / ".git" / "hooks" / "prepare-commit-msg").exists()


def test_a_hook_in_another_language_is_chained_with_its_arguments_and_exit_status(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "prepare-commit-msg"
    original = (b"#!/usr/bin/env python3\nimport sys\n"
                b"msg = open(sys.argv[1]).read()\nsys.exit(1 if 'forbidden' in msg else 0)\n")
    hook.write_bytes(original)
    hook.chmod(0o755)
    must("hooks", "install")
    assert (repo / ".git" / "hooks" / "prepare-commit-msg.milestoned-chained").read_bytes() == original
    assert hook_states()["prepare-commit-msg"] == "chained"
    (repo / "f").write_text("x\n")
    git("add", "f", cwd=repo)
    refused = subprocess.run(["git", "commit", "-q", "-m", "forbidden"], cwd=repo, capture_output=True)
    assert refused.returncode != 0  # the chained hook still decides
    commit(repo, "allowed")
    must("hooks", "uninstall")
    assert hook.read_bytes() == original
    assert not (repo / ".git" / "hooks" / "prepare-commit-msg.milestoned-chained").exists()


def test_post_rewrite_lines_inside_another_hook_leave_it_its_stdin(repo: Path, tmp_path: Path) -> None:
    hook = repo / ".git" / "hooks" / "post-rewrite"
    hook.write_text(f"#!/bin/sh\ncat > {tmp_path}/pairs\n")
    hook.chmod(0o755)
    must("hooks", "install")
    old = commit(repo, "before amend")
    git("commit", "-q", "--amend", "-m", "after amend", cwd=repo)
    new = git("rev-parse", "HEAD", cwd=repo)
    assert (tmp_path / "pairs").read_text().split() == [old, new]
    assert f"1\tamend\t{new}\t\t{old}\t{repo}" in inbox_lines(repo)


def test_core_hooks_path_is_where_hooks_go(repo: Path) -> None:
    git("config", "core.hooksPath", ".githooks", cwd=repo)
    must("hooks", "install")
    assert (repo / ".githooks" / "post-commit").exists()
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
    sha = commit(repo, "through hooksPath")
    assert any(sha in line for line in inbox_lines(repo))
    assert json.loads(invoke("hooks", "status", "--json").stdout)["hooks_dir"] == str(repo / ".githooks")


def test_install_from_a_linked_worktree_serves_every_worktree(repo: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    linked = tmp_path / "linked"
    git("worktree", "add", "-q", "-b", "side", str(linked), cwd=repo)
    monkeypatch.chdir(linked)
    assert invoke("hooks", "install").exit_code == 0
    assert (repo / ".git" / "hooks" / "post-commit").exists()
    assert not (repo / ".git" / "worktrees" / "linked" / "hooks").exists()
    in_linked = commit(linked, "in the linked worktree")
    in_main = commit(repo, "in the main worktree")
    lines = inbox_lines(repo)
    assert f"1\tcommit\t{in_linked}\trefs/heads/side\t\t{linked}" in lines
    assert f"1\tcommit\t{in_main}\trefs/heads/main\t\t{repo}" in lines


def test_hooks_do_nothing_and_say_nothing_when_milestoned_is_gone(repo: Path, tmp_path: Path) -> None:
    """Uninstalled by hand (its state directory deleted, the package removed): git goes on as before."""
    must("hooks", "install")
    shutil.rmtree(repo / ".git" / "milestoned")
    env = {**os.environ, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}
    (repo / "f").write_text("x\n")
    git("add", "f", cwd=repo)
    proc = subprocess.run(["git", "commit", "-q", "-m", "no milestoned"], cwd=repo, env=env, capture_output=True,
                          text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    hooks_dir = repo / ".git" / "hooks"
    for name, args in (("post-commit", []), ("post-merge", ["0"]), ("post-checkout", ["a", "b", "1"]),
                       ("prepare-commit-msg", [".git/COMMIT_EDITMSG", "message"]), ("post-rewrite", ["amend"])):
        run = subprocess.run([str(hooks_dir / name), *args], cwd=repo, env=env, input="x y\n", capture_output=True,
                             text=True)
        assert (run.returncode, run.stdout, run.stderr) == (0, "", ""), name
    assert inbox_lines(repo) == []


def test_a_hook_moved_away_is_reported_and_a_second_install_brings_it_back(repo: Path) -> None:
    must("hooks", "install")
    hooks_dir = repo / ".git" / "hooks"
    os.replace(hooks_dir / "post-commit", hooks_dir / "post-commit.old")
    (hooks_dir / "post-commit").write_text("#!/bin/sh\nexit 0\n")
    (hooks_dir / "post-commit").chmod(0o755)
    view = json.loads(invoke("hooks", "status", "--json").stdout)
    row = next(h for h in view["hooks"] if h["name"] == "post-commit")
    assert row["state"] == "moved" and row["path"].endswith("post-commit.old")
    assert "post-commit" in invoke("hooks", "status").stdout and "moved" in invoke("hooks", "status").stdout
    must("hooks", "install")
    assert hook_states()["post-commit"] == "chained"
    must("hooks", "uninstall")
    assert (hooks_dir / "post-commit").read_text() == "#!/bin/sh\nexit 0\n"
    assert not (hooks_dir / "post-commit.old").exists()


def test_uninstall_takes_back_only_the_settings_it_made(repo: Path) -> None:
    git("config", "notes.rewriteMode", "concatenate", cwd=repo)
    git("config", "--add", "notes.rewriteRef", "refs/notes/commits", cwd=repo)
    must("hooks", "install")
    assert git("config", "--get-all", "notes.rewriteRef", cwd=repo).split() == [
        "refs/notes/commits", "refs/notes/milestoned"]
    assert git("config", "notes.rewriteMode", cwd=repo) == "concatenate"
    must("hooks", "uninstall")
    assert git("config", "--get-all", "notes.rewriteRef", cwd=repo).split() == ["refs/notes/commits"]
    assert git("config", "notes.rewriteMode", cwd=repo) == "concatenate"
    assert git("config", "--get", "notes.milestoned.mergeStrategy", cwd=repo, check=False) == ""
    assert set(hook_states().values()) == {"missing"}


def test_prepare_commit_msg_adds_the_branch_task_once(active: Path) -> None:
    git("checkout", "-q", "-b", "milestone/m1/T1", cwd=active)
    commit(active, "first on T1")
    assert git("log", "-1", "--format=%(trailers)", cwd=active) == "Milestone: m1\nTask: T1"
    git("commit", "-q", "--amend", "--no-edit", cwd=active)
    assert git("log", "-1", "--format=%(trailers)", cwd=active) == "Milestone: m1\nTask: T1"
    commit(active, "says its own task", "Task: T3")
    assert git("log", "-1", "--format=%(trailers)", cwd=active) == "Task: T3\nMilestone: m1"
    git("checkout", "-q", "main", cwd=active)
    commit(active, "on main", name="other.txt")
    git("checkout", "-q", "milestone/m1/T1", cwd=active)
    git("merge", "-q", "--no-ff", "--no-edit", "main", cwd=active)
    assert git("log", "-1", "--format=%(trailers)", cwd=active) == ""


def test_prepare_commit_msg_uses_the_held_task_of_the_worktree(active: Path, tmp_path: Path) -> None:
    from milestoned.files.workspace import Workspace
    from milestoned.git.hookinstall import hold_task

    linked = tmp_path / "agent"
    git("worktree", "add", "-q", "-b", "agent-branch", str(linked), cwd=active)
    hold_task(Workspace.discover(linked), "m1", "T3")
    commit(linked, "agent work")
    assert git("log", "-1", "--format=%(trailers)", cwd=linked) == "Milestone: m1\nTask: T3"
    commit(active, "main worktree holds nothing", name="other.txt")
    assert git("log", "-1", "--format=%(trailers)", cwd=active) == ""
    hold_task(Workspace.discover(linked), None, None)
    commit(linked, "released")
    assert git("log", "-1", "--format=%(trailers)", cwd=linked) == ""


def test_a_task_a_commit_completes_is_no_longer_stamped_on_later_commits(active: Path) -> None:
    assert invoke("task", "start", "T1").exit_code == 0  # held here: its commits get its trailers
    commit(active, "do T1", "Completes: T1")
    assert git("log", "-1", "--format=%(trailers)", cwd=active) == "Completes: T1\nMilestone: m1\nTask: T1"
    assert statuses()["T1"] == "completed"  # ingested: the task is finished, and let go of
    commit(active, "unrelated", name="other.txt")
    assert git("log", "-1", "--format=%(trailers)", cwd=active) == ""


def _pre_commit_config(repo: Path, fired: Path) -> None:
    (repo / ".pre-commit-config.yaml").write_text(f"""\
repos:
- repo: local
  hooks:
  - id: say-hello
    name: say hello
    entry: sh -c 'echo pre-commit >> {fired}'
    language: system
    stages: [post-commit]
    always_run: true
    pass_filenames: false
""")
    git("add", ".pre-commit-config.yaml", cwd=repo)


@pytest.fixture
def tools_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """pre-commit and lefthook, installed by the test extra beside this interpreter, look themselves
    up on PATH when git runs their hooks (they need that; milestoned's hooks do not)."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def _run_tool(*args: str, cwd: Path) -> None:
    tool = shutil.which(args[0], path=str(Path(sys.executable).parent)) or shutil.which(args[0])
    assert tool, f"{args[0]} is installed by the test extra"
    subprocess.run([tool, *args[1:]], cwd=cwd, check=True, capture_output=True)


@pytest.mark.slow
@pytest.mark.parametrize("ours_first", [False, True])
def test_pre_commit_hooks_and_ours_both_fire(repo: Path, tmp_path: Path, ours_first: bool, tools_on_path: None) -> None:
    fired = tmp_path / "fired"
    _pre_commit_config(repo, fired)
    if ours_first:
        must("hooks", "install")
    _run_tool("pre-commit", "install", "-t", "post-commit", cwd=repo)  # moves ours to .legacy
    must("hooks", "install")  # first install, or a second one that must change nothing
    assert hook_states()["post-commit"] == "chained"
    sha = commit(repo, "with pre-commit")
    assert fired.read_text() == "pre-commit\n"
    assert [line for line in inbox_lines(repo) if "\tcommit\t" in line][-1].startswith(f"1\tcommit\t{sha}")
    assert sum(sha in line for line in inbox_lines(repo)) == 1  # our lines ran once
    must("hooks", "uninstall")
    commit(repo, "after uninstall")
    assert fired.read_text() == "pre-commit\npre-commit\n"
    assert not (repo / ".git" / "hooks" / "post-commit.legacy").exists()


@pytest.mark.slow
def test_lefthook_and_ours_both_fire_whichever_is_installed_first(repo: Path, tmp_path: Path, tools_on_path: None) -> None:
    fired = tmp_path / "fired"
    (repo / "lefthook.yml").write_text(f"post-commit:\n  commands:\n    hello:\n      run: echo lefthook >> {fired}\n")
    git("add", "lefthook.yml", cwd=repo)
    must("hooks", "install")
    _run_tool("lefthook", "install", cwd=repo)  # renames our post-commit to post-commit.old
    assert hook_states()["post-commit"] == "moved"
    must("hooks", "install")  # our lines go inside lefthook's script
    assert hook_states()["post-commit"] == "chained"
    sha = commit(repo, "with lefthook")
    assert fired.read_text() == "lefthook\n"
    assert any(sha in line for line in inbox_lines(repo))
    lefthook_hook = repo / ".git" / "hooks" / "post-commit"
    must("hooks", "uninstall")
    assert not (repo / ".git" / "hooks" / "post-commit.old").exists()
    assert "milestoned" not in lefthook_hook.read_text()
    commit(repo, "lefthook alone")
    assert fired.read_text() == "lefthook\nlefthook\n"


@pytest.mark.slow
def test_lefthook_first_then_ours(repo: Path, tmp_path: Path, tools_on_path: None) -> None:
    fired = tmp_path / "fired"
    (repo / "lefthook.yml").write_text(f"post-commit:\n  commands:\n    hello:\n      run: echo lefthook >> {fired}\n")
    _run_tool("lefthook", "install", cwd=repo)
    before = (repo / ".git" / "hooks" / "post-commit").read_bytes()
    must("hooks", "install")
    sha = commit(repo, "both")
    assert fired.read_text() == "lefthook\n"
    assert any(sha in line for line in inbox_lines(repo))
    must("hooks", "uninstall")
    assert (repo / ".git" / "hooks" / "post-commit").read_bytes() == before


@pytest.mark.slow
def test_the_hook_scripts_ship_inside_the_wheel(tmp_path: Path) -> None:
    project = Path(__file__).resolve().parents[1]  # the source tree these tests belong to
    source = tmp_path / "src"  # built from a copy: the build leaves nothing in the source tree
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in ("milestoned", "hooks"):
        shutil.copytree(project / part, source / part, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(project / part, source / part)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(tmp_path)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("milestoned-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in HOOK_NAMES:
        assert f"milestoned/hook_scripts/{name}" in names
