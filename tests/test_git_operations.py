"""Git operations never change milestoned's state, and milestoned commands never dirty the checkout.

The state (event logs, sessions, the current milestone) lives in the git dir; the working
tree holds only the user's plans.  So whatever git does to the working tree — stash,
checkout, commit, merge, pull, reset, rebase, clean — every task keeps its state, and no
command but a plan edit leaves ``git status`` showing a change.  Everything here is real
git in real repositories, driven by the real CLI, with and without a running daemon.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    Daemons,
    as_json,
    clone,
    git,
    invoke,
    ok,
    project,
    run_subprocess,
    share,
    snapshot_tree,
    wait_for,
    write_milestone,
)
from milestoned.core.jsonout import json_text
from milestoned.engine.engine import Engine
from milestoned.files.workspace import Workspace
from milestoned.model import views

PLAN = ".milestones/active/m1.yaml"

M1 = """
    id: m1
    title: Git operations
    tasks:
      - id: T1
        title: First
      - id: T2
        title: Second
        dependencies: [T1]
      - id: T3
        title: Third
      - id: T4
        title: Fourth
        dependencies: [T2]
    """

# a teammate's copy of the plan: statuses written by hand, and a task main does not have
TEAMMATE_M1 = """
    id: m1
    title: Git operations
    status: completed
    tasks:
      - id: T1
        title: First
        status: pending
      - id: T2
        title: Second
        status: completed
        dependencies: [T1]
      - id: T3
        title: Third
        status: completed
      - id: T4
        title: Fourth
        status: completed
        dependencies: [T2]
      - id: T5
        title: Fifth, only on the teammate's branch
        dependencies: [T1]
    """

NEW_TASKS = """\
  - id: T5
    title: Fifth, ready at once
    dependencies: [T1]
  - id: T6
    title: Sixth, waits for T4
    dependencies: [T4]
"""

TASK_FIELDS = ("status", "agent", "started_at", "completed_at")
# what milestoned knows and a plan written by hand does not say
STATE_FIELD = re.compile(r"^\+.*\b(status|progress|percentage|started_at|completed_at|last_update|session_id|agent"
                         r"|lease_until|blocker|blockers|output)\s*:", re.MULTILINE)
REACT = 1.5  # seconds given to the daemon to react to a git operation (more than its 1 s tick)


# -- helpers ------------------------------------------------------------------------------------
def run_git(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A git command as a user types it; it must succeed."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, f"git {' '.join(args)} exited {proc.returncode}: {proc.stdout}{proc.stderr}"
    return proc


def porcelain(root: Path) -> str:
    return git("status", "--porcelain", cwd=root)


def commit_all(root: Path, message: str) -> None:
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", message, cwd=root)


def status_view(root: Path, milestone: str = "m1") -> dict[str, Any]:
    return as_json(root, "status", milestone)


def task_state(view: dict[str, Any]) -> dict[str, Any]:
    """What a git operation must not change: the milestone's status and every task's state."""
    return {
        "milestone": view["milestone"]["status"],
        "tasks": {t["id"]: {field: t[field] for field in TASK_FIELDS} for t in view["tasks"]},
    }


def state_of(root: Path, milestone: str = "m1") -> dict[str, Any]:
    return task_state(status_view(root, milestone))


def all_events(root: Path, milestone: str = "m1") -> list[dict[str, Any]]:
    return as_json(root, "events", milestone, "-n", "0")["events"]


def event_names(root: Path, milestone: str = "m1") -> list[str]:
    return [e["event"] for e in all_events(root, milestone)]


def files_view(root: Path, milestone: str = "m1") -> dict[str, Any]:
    """The status view computed from the files alone, as a client without a daemon prints it."""
    before = os.getcwd()
    os.chdir(root)
    try:
        view = views.status(Engine(Workspace.discover(root)).load(milestone))
        return json.loads(json_text(view, pretty=False))
    finally:
        os.chdir(before)


class Scene:
    """A repository whose plan is committed and whose tasks have moved, with or without a daemon."""

    def __init__(self, root: Path, daemons: Daemons, with_daemon: bool) -> None:
        self.root = root
        self.daemons = daemons
        self.with_daemon = with_daemon
        self.before: dict[str, Any] = {}

    def begin(self) -> dict[str, Any]:
        """Start the daemon (if this scene has one) and remember the state every git operation must keep."""
        if self.with_daemon:
            self.daemons.start(self.root)
            self.settle()
        self.before = state_of(self.root)
        assert_moved(self.before)  # so that "as before" is never "as broken before"
        return self.before

    def git(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = run_git(self.root, *args, env=env)
        self.settle()
        return proc

    def settle(self) -> None:
        """With a daemon: give it a moment to react, then wait until its memory agrees with the files."""
        if not self.with_daemon:
            return

        def caught_up() -> bool:
            if time.monotonic() < ready_at:
                return False
            answer = self.daemons.ask(self.root, "status", milestone="m1", sync=False)
            return answer is not None and answer["result"] == files_view(self.root)

        ready_at = time.monotonic() + REACT
        wait_for(caught_up, "the daemon to take in what git did", timeout=60)

    def assert_kept(self, state: dict[str, Any] | None = None) -> None:
        """Every task as before, nothing set by hand, and the daemon (if any) answering like the files."""
        expected = self.before if state is None else state
        assert state_of(self.root) == expected
        assert "status_set_manually" not in event_names(self.root)
        if self.with_daemon:
            served = run_subprocess("status", "m1", "--json", cwd=self.root)
            assert served.returncode == 0, served.stderr
            assert json.loads(served.stdout) == status_view(self.root) == files_view(self.root)


@pytest.fixture
def moved(repo: Path) -> Path:
    """m1 committed with the rest of .milestones/; T1 completed, T2 in progress (bob), T3 blocked, T4 pending."""
    write_milestone(repo, "m1", M1)
    (repo / "src.txt").write_text("source\n")
    commit_all(repo, "plan m1")
    ok(repo, "activate", "m1")
    ok(repo, "task", "start", "T1", "--agent", "ana")
    ok(repo, "task", "done", "T1")
    ok(repo, "task", "start", "T2", "--agent", "bob")
    ok(repo, "task", "block", "T3", "--reason", "needs a decision")
    assert porcelain(repo) == ""
    return repo


WITH_AND_WITHOUT_DAEMON = pytest.mark.parametrize(
    "with_daemon", [pytest.param(False, id="no-daemon"), pytest.param(True, id="daemon", marks=pytest.mark.slow)])


@pytest.fixture
def scene(moved: Path, daemons: Daemons, with_daemon: bool) -> Scene:
    return Scene(moved, daemons, with_daemon)


def assert_moved(moved_state: dict[str, Any]) -> None:
    """The state ``moved`` made, spelled out once."""
    tasks = moved_state["tasks"]
    assert moved_state["milestone"] == "in_progress"
    assert tasks["T1"]["status"] == "completed" and tasks["T1"]["agent"] == "ana"
    assert tasks["T1"]["started_at"] and tasks["T1"]["completed_at"]
    assert tasks["T2"]["status"] == "in_progress" and tasks["T2"]["agent"] == "bob"
    assert tasks["T3"]["status"] == "blocked"
    assert tasks["T4"] == {"status": "pending", "agent": None, "started_at": None, "completed_at": None}


# -- 1. milestoned commands never dirty the working tree ------------------------------------------
EXECUTED = """
    id: m2
    title: Executed
    tasks:
      - id: E1
        title: Nothing to do
        run: ["true"]
      - id: E2
        title: Writes a file
        dependencies: [E1]
        run: [{python}, "-c", "open('made.txt', 'w').write('made by E2')"]
    """


@pytest.mark.slow  # it starts and stops a real daemon
@pytest.mark.parametrize("daemon_first", [False, True], ids=["no-daemon", "daemon-up"])
def test_no_milestoned_command_leaves_git_status_showing_a_change(repo: Path, tmp_path: Path, daemons: Daemons,
                                                                 daemon_first: bool) -> None:
    write_milestone(repo, "m1", "id: m1\ntitle: by hand\ntasks:\n"
                    + "".join(f"  - {{id: T{i}, title: task {i}}}\n" for i in range(1, 5)))
    write_milestone(repo, "m2", EXECUTED.replace("{python}", json.dumps(sys.executable)))
    git("add", ".milestones", cwd=repo)
    git("commit", "-q", "-m", "plans", cwd=repo)
    remote = tmp_path / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=tmp_path)
    git("remote", "add", "origin", str(remote), cwd=repo)
    git("push", "-q", "-u", "origin", "main", cwd=repo)
    assert porcelain(repo) == ""

    def cli(*args: str) -> Callable[[], None]:
        def step() -> None:
            result = invoke(*args)
            assert result.exit_code == 0, f"milestoned {' '.join(args)}: {result.output}"
        return step

    steps: list[tuple[str, Callable[[], None]]] = [
        ("activate", cli("activate", "m1")),
        ("task start", cli("task", "start", "T1")),
        ("task done", cli("task", "done", "T1")),
        ("task block", cli("task", "block", "T2", "--reason", "waiting for review")),
        ("next --claim", cli("next", "--claim", "--agent", "a")),
        ("heartbeat", cli("heartbeat", "--agent", "a")),
        ("release", cli("release", "--agent", "a")),
        ("next --claim again", cli("next", "--claim", "--agent", "a")),
        ("done", cli("done", "--agent", "a")),
        ("execute", cli("execute", "m2", "--workers", "2")),
        ("session save", cli("session", "save", "m2")),  # completed: no longer current
        ("sync", cli("sync")),
        ("resume", cli("resume")),
        ("daemon start", lambda: daemons.start(repo) and None),
        ("daemon stop", lambda: daemons.stop(repo) and None),
    ]
    if daemon_first:  # the same commands with a daemon watching all along
        steps = [steps[-2], *steps[:-2], steps[-1]]
    tree = snapshot_tree(repo)
    for name, step in steps:
        step()
        assert porcelain(repo) == "", f"`milestoned {name}` left the working tree changed"
        assert snapshot_tree(repo) == tree, f"`milestoned {name}` changed a file in the working tree"

    # the steps did what they say, all of it outside the checkout
    tasks = {t["id"]: t["status"] for t in status_view(repo, "m1")["tasks"]}
    assert tasks == {"T1": "completed", "T2": "blocked", "T3": "completed", "T4": "pending"}
    assert status_view(repo, "m2")["milestone"]["status"] == "completed"
    assert git("show", "milestone/m2/_milestone:made.txt", cwd=repo) == "made by E2"
    assert not (repo / "made.txt").exists()
    assert "refs/heads/milestoned/state" in git("ls-remote", str(remote), cwd=repo)


# -- 2. git operations never change the state ---------------------------------------------------
@WITH_AND_WITHOUT_DAEMON
def test_git_stash_and_pop_leave_every_task_as_it_was(scene: Scene) -> None:
    root = scene.root
    plan = root / PLAN
    edited = plan.read_text().replace("title: Fourth", "title: Fourth, reworded") + "# a note to self\n"
    plan.write_text(edited)
    (root / "src.txt").write_text("source, edited\n")
    scene.begin()

    scene.git("stash")
    assert porcelain(root) == ""
    assert plan.read_text() == textwrap.dedent(M1).lstrip("\n")
    scene.assert_kept()

    scene.git("stash", "pop")
    assert plan.read_text() == edited and (root / "src.txt").read_text() == "source, edited\n"
    assert git("stash", "list", cwd=root) == ""
    scene.assert_kept()


@WITH_AND_WITHOUT_DAEMON
def test_git_checkout_of_a_branch_with_statuses_written_in_its_plan_changes_no_task(scene: Scene) -> None:
    root = scene.root
    git("branch", "teammate", cwd=root)
    git("worktree", "add", "-q", str(root.parent / "teammate"), "teammate", cwd=root)
    write_milestone(root.parent / "teammate", "m1", TEAMMATE_M1)
    git("commit", "-q", "-a", "-m", "the teammate's plan", cwd=root.parent / "teammate")
    git("worktree", "remove", str(root.parent / "teammate"), cwd=root)
    before = scene.begin()

    scene.git("checkout", "-q", "teammate")
    assert "status: completed" in (root / PLAN).read_text()
    there = state_of(root)
    assert there["milestone"] == before["milestone"]
    assert {tid: there["tasks"][tid] for tid in before["tasks"]} == before["tasks"]
    assert there["tasks"]["T5"] == {"status": "pending", "agent": None, "started_at": None, "completed_at": None}
    scene.assert_kept(there)

    scene.git("checkout", "-q", "main")
    assert "status:" not in (root / PLAN).read_text()
    scene.assert_kept()


@WITH_AND_WITHOUT_DAEMON
def test_git_commit_all_commits_only_what_the_user_wrote_in_the_plan(scene: Scene) -> None:
    root = scene.root
    plan = root / PLAN
    edited = plan.read_text().replace("title: Fourth", "title: Fourth, reworded")
    plan.write_text(edited)
    scene.begin()

    scene.git("commit", "-q", "-a", "-m", "reword T4")
    assert porcelain(root) == ""
    assert git("show", "--name-only", "--format=", "HEAD", cwd=root) == PLAN
    assert git("show", f"HEAD:{PLAN}", cwd=root) + "\n" == edited
    shown = git("show", "HEAD", cwd=root)
    assert "+    title: Fourth, reworded" in shown
    assert STATE_FIELD.search(shown) is None, shown
    scene.assert_kept()


@WITH_AND_WITHOUT_DAEMON
def test_git_merge_of_a_branch_that_adds_tasks_brings_them_pending(scene: Scene) -> None:
    root = scene.root
    git("checkout", "-q", "-b", "feature", cwd=root)
    (root / PLAN).write_text((root / PLAN).read_text() + NEW_TASKS)
    git("commit", "-q", "-a", "-m", "plan T5 and T6", cwd=root)
    git("checkout", "-q", "main", cwd=root)
    (root / "src.txt").write_text("source, moved on\n")
    git("commit", "-q", "-a", "-m", "main moves on", cwd=root)  # so that the merge is a real one
    before = scene.begin()

    scene.git("merge", "--no-edit", "feature")
    assert len(git("rev-list", "--parents", "-n", "1", "HEAD", cwd=root).split()) == 3
    view = status_view(root)
    merged = task_state(view)
    assert merged["milestone"] == before["milestone"]
    assert {tid: merged["tasks"][tid] for tid in before["tasks"]} == before["tasks"]
    pending = {"status": "pending", "agent": None, "started_at": None, "completed_at": None}
    assert merged["tasks"]["T5"] == merged["tasks"]["T6"] == pending
    assert "T5" in view["ready"] and "T6" not in view["ready"]
    scene.assert_kept(merged)


@WITH_AND_WITHOUT_DAEMON
def test_git_pull_of_a_plan_edit_from_another_clone_brings_the_task_pending(scene: Scene, tmp_path: Path) -> None:
    root = scene.root
    remote = tmp_path / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=tmp_path)
    git("remote", "add", "origin", str(remote), cwd=root)
    git("push", "-q", "-u", "origin", "main", cwd=root)
    other = clone(remote, tmp_path / "other")
    (other / PLAN).write_text((other / PLAN).read_text() + NEW_TASKS)
    git("commit", "-q", "-a", "-m", "plan T5 and T6", cwd=other)
    git("push", "-q", "origin", "main", cwd=other)
    before = scene.begin()

    scene.git("pull", "-q")
    assert "id: T5" in (root / PLAN).read_text()
    view = status_view(root)
    pulled = task_state(view)
    assert pulled["milestone"] == before["milestone"]
    assert {tid: pulled["tasks"][tid] for tid in before["tasks"]} == before["tasks"]
    pending = {"status": "pending", "agent": None, "started_at": None, "completed_at": None}
    assert pulled["tasks"]["T5"] == pulled["tasks"]["T6"] == pending
    assert "T5" in view["ready"] and "T6" not in view["ready"]
    scene.assert_kept(pulled)


@WITH_AND_WITHOUT_DAEMON
def test_git_reset_hard_of_a_plan_commit_changes_no_task(scene: Scene) -> None:
    root = scene.root
    original = (root / PLAN).read_text()
    (root / PLAN).write_text(original.replace("title: Third", "title: Third, reworded") + "# to undo\n")
    git("commit", "-q", "-a", "-m", "reword T3", cwd=root)
    scene.begin()

    scene.git("reset", "-q", "--hard", "HEAD~1")
    assert (root / PLAN).read_text() == original and porcelain(root) == ""
    scene.assert_kept()


@WITH_AND_WITHOUT_DAEMON
def test_git_rebase_interactive_that_reorders_commits_changes_no_task(scene: Scene, tmp_path: Path) -> None:
    root = scene.root
    (root / "a.txt").write_text("a\n")
    commit_all(root, "add a")
    (root / PLAN).write_text((root / PLAN).read_text() + "# reviewed\n")
    commit_all(root, "note on the plan")
    (root / "b.txt").write_text("b\n")
    commit_all(root, "add b")
    plan_text = (root / PLAN).read_text()
    # the todo list, reordered: b first, then the plan note, then a (reworded, with the message kept)
    reorder = tmp_path / "reorder.py"
    reorder.write_text(textwrap.dedent("""
        import sys
        path = sys.argv[1]
        lines = open(path).read().splitlines()
        picks = [line for line in lines if line.startswith("pick ")]
        a, note, b = picks
        todo = [b, note, "reword " + a[len("pick "):]]
        open(path, "w").write("\\n".join(todo) + "\\n")
        """))
    scene.begin()

    scene.git("-c", "core.editor=true", "rebase", "-q", "-i", "HEAD~3",
              env={"GIT_SEQUENCE_EDITOR": f"{sys.executable} {reorder}", "GIT_EDITOR": "true"})
    subjects = git("log", "--format=%s", "-n", "3", cwd=root).splitlines()
    assert subjects == ["add a", "note on the plan", "add b"]
    assert (root / PLAN).read_text() == plan_text and porcelain(root) == ""
    scene.assert_kept()


@WITH_AND_WITHOUT_DAEMON
def test_git_clean_fdx_deletes_no_milestoned_state(scene: Scene) -> None:
    root = scene.root
    (root / "build").mkdir()
    (root / "build" / "out.o").write_text("object\n")
    (root / "scratch.txt").write_text("untracked\n")
    (root / ".milestones" / ".m1.yaml.tmp").write_text("an editor's leftover, ignored\n")
    scene.begin()
    events = all_events(root)

    scene.git("clean", "-fdx")
    assert not (root / "build").exists() and not (root / "scratch.txt").exists()
    assert not (root / ".milestones" / ".m1.yaml.tmp").exists()
    assert (root / PLAN).exists()
    scene.assert_kept()
    assert all_events(root) == events


# -- 3. activate writes nothing into the working tree -------------------------------------------
def test_activate_changes_no_file_in_the_working_tree(repo: Path) -> None:
    write_milestone(repo, "m1", M1)
    write_milestone(repo, "m2", """
        id: m2
        title: After m1
        dependencies: {requires: [m1]}
        tasks:
          - id: A
            title: a
        """)
    write_milestone(repo, "m3", """
        id: m3
        title: After m1 and m2
        dependencies: {requires: [m1, m2]}
        tasks:
          - id: B
            title: b
        """)
    write_milestone(repo, "m4", "id: m4\ntitle: Unrelated\ntasks:\n  - {id: C, title: c}\n")
    before = snapshot_tree(repo)

    ok(repo, "activate", "m1")

    assert snapshot_tree(repo) == before
    assert state_of(repo)["milestone"] == "in_progress"


# -- 4. a task pulled into a completed milestone reopens it, on both clones ---------------------
def test_a_pulled_task_reopens_a_milestone_another_clone_completed(tmp_path: Path) -> None:
    remote, a = project(tmp_path, tasks=2)
    git("add", ".milestones", cwd=a)
    git("commit", "-q", "-m", "plan m1", cwd=a)
    git("push", "-q", "-u", "origin", "main", cwd=a)
    ok(a, "task", "done", "T1")
    b = share(a, remote, tmp_path / "b")

    # meanwhile: a plans one more task and pushes it; b completes the last open one
    ok(a, "task", "add", "T9", "-m", "m1", "--title", "x")
    git("commit", "-q", "-a", "-m", "plan T9", cwd=a)
    git("push", "-q", "origin", "main", cwd=a)
    ok(b, "task", "done", "T2")
    assert as_json(b, "status", "m1")["milestone"]["status"] == "completed"
    completed = [e for e in all_events(b) if e["event"] == "milestone_completed"]
    assert len(completed) == 1 and "milestone_completed" not in event_names(a)

    run_git(b, "pull", "-q")
    ok(b, "sync")
    ok(a, "sync")

    for root in (a, b):
        view = as_json(root, "status", "m1")
        tasks = {t["id"]: t["status"] for t in view["tasks"]}
        assert view["milestone"]["status"] == "in_progress", root.name
        assert tasks == {"T1": "completed", "T2": "completed", "T9": "pending"}, root.name
        assert view["ready"] == ["T9"], root.name
        assert [e for e in all_events(root) if e["event"] == "milestone_completed"] == completed, root.name
    for root in (a, b):
        ok(root, "session", "save", "m1")  # a write: the reopening is recorded
        names = event_names(root)
        assert "milestone_completed" in names and "milestone_reopened" in names, (root.name, names)
        assert names.index("milestone_reopened") > names.index("milestone_completed")
        assert porcelain(root) == "", root.name
