"""``milestoned demo``: the README's first command, on a machine with nothing set up.

It makes a scratch git repository (with its own identity in its own config: a fresh
machine or CI has none), plans a small but real milestone — a dozen tasks building a
tiny Python package, with a dependency graph and commands that write files, so every
task commits on its branch — executes it with several workers under the live display,
and says where everything is and what to try next.

It also shows the rest of the toolkit on that milestone: it installs the git hooks,
starts the daemon, saves the session to the ``milestoned/state`` branch, syncs it to
a bare "remote" beside the repository, and resumes it in a fresh ``git clone`` to
show the same state come back.  The daemon is stopped at the end, whatever happens.

The demo is a list of small steps (``STEPS``), each a function of the ``Demo`` it
advances.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from milestoned.core.errors import UserError
from milestoned.daemon import control as daemonctl
from milestoned.engine import cleanup, landing, resume, sessions
from milestoned.engine.engine import Engine
from milestoned.engine.lifecycle import init
from milestoned.files.workspace import Workspace
from milestoned.git import hookinstall as hooks
from milestoned.git import queries as gitutil
from milestoned.git.worktrees import milestone_branch
from milestoned.model import views
from milestoned.remote import sync
from milestoned.runner.scheduler import execute_with_display

MILESTONE = "greeter"


@dataclass
class Demo:
    """What the steps share: where the demo lives and how it talks."""

    base: Path  # holds the repository, its bare remote and the fresh clone
    workers: int
    tty: bool
    echo: Callable[[str], None]
    exit_code: int = 0
    branch: str = ""
    resumed: str = ""

    @property
    def root(self) -> Path:
        return self.base / "greeter"

    @property
    def remote(self) -> Path:
        return self.base / "origin.git"

    @property
    def clone(self) -> Path:
        return self.base / "clone"

    def git(self, *args: str) -> str:
        return gitutil.git(list(args), self.root)

    def engine(self, where: Path | None = None) -> Engine:
        return Engine(Workspace.discover(where or self.root))


def _write(relative: str, text: str) -> str:
    """A shell line that writes ``text`` to ``relative`` (a here-document: readable in the YAML)."""
    folder = relative.rpartition("/")[0]
    mkdir = f"mkdir -p {folder}\n" if folder else ""
    return f"{mkdir}cat > {relative} <<'EOF'\n{text.rstrip()}\nEOF\n"


def sample_milestone() -> str:
    """The demo's plan: a tiny greeting package, its tests, docs and release notes."""
    python = json.dumps(sys.executable)
    tasks = [
        ("scaffold", "Create the package", [], _write("greeter/__init__.py", '"""Greetings, politely."""')),
        ("core", "Write the greeting function", ["scaffold"], _write("greeter/core.py", '''
def greet(name: str) -> str:
    return f"Hello, {name}!"
''')),
        ("formal", "Add formal greetings", ["core"], _write("greeter/formal.py", '''
from greeter.core import greet


def greet_formally(title: str, name: str) -> str:
    return greet(f"{title} {name}").replace("Hello", "Good day")
''')),
        ("cli", "Add a command line", ["core"], _write("greeter/__main__.py", '''
import sys

from greeter.core import greet

print(greet(" ".join(sys.argv[1:]) or "world"))
''')),
        ("tests-core", "Test the greeting", ["core"], _write("tests/test_core.py", '''
import unittest

from greeter.core import greet


class GreetTest(unittest.TestCase):
    def test_greets_by_name(self):
        self.assertEqual(greet("Ada"), "Hello, Ada!")
''')),
        ("tests-formal", "Test formal greetings", ["formal"], _write("tests/test_formal.py", '''
import unittest

from greeter.formal import greet_formally


class FormalTest(unittest.TestCase):
    def test_greets_with_a_title(self):
        self.assertEqual(greet_formally("Dr", "Ada"), "Good day, Dr Ada!")
''')),
        ("docs-intro", "Write the introduction", [], _write("docs/intro.md", '''
# greeter

Greets people, politely: `python -m greeter Ada`.
''')),
        ("docs-usage", "Document the command line", ["cli", "docs-intro"], _write("docs/usage.md", '''
# Usage

    python -m greeter Ada Lovelace
''')),
        ("license", "Add a license", [], _write("LICENSE", "MIT License (demo)")),
        ("ci", "Add a check script", ["scaffold"], _write("ci/check.sh", f'''
#!/bin/sh
exec {python} -m unittest discover -s tests -q
''')),
    ]
    lines = [
        "# A sample milestone made by `milestoned demo`: a dozen tasks, a dependency graph,",
        "# and small real commands. Each task runs in its own git worktree on its own branch",
        f"# (milestone/{MILESTONE}/<task>); what it writes is committed there and merged into",
        f"# milestone/{MILESTONE}/_milestone. Your own branch and checkout are never touched.",
        f"id: {MILESTONE}",
        "title: A polite greeting package",
        "tasks:",
    ]
    for task_id, title, deps, script in tasks:
        body = "\n".join("      " + line if line else "" for line in ("sleep 0.4\n" + script).splitlines())
        lines += [f"  - id: {task_id}", f"    title: {title}", f"    dependencies: {json.dumps(deps)}",
                  "    shell: true", "    run: |", body]
    # two tasks as argv lists, no shell: the usual way to write a command
    lines += [
        "  - id: test",
        "    title: Run the tests against everything merged so far",
        '    dependencies: ["tests-core", "tests-formal", "cli", "ci"]',
        f'    run: [{python}, "-m", "unittest", "discover", "-s", "tests", "-q"]',
        "  - id: release-notes",
        "    title: Write the release notes",
        '    dependencies: ["test", "docs-usage", "license"]',
        f'    run: [{python}, "-c", "open(\'CHANGES.md\', \'w\').write(\'# 0.1: first greetings\\\\n\')"]',
    ]
    return "\n".join(lines) + "\n"


# -- the steps -----------------------------------------------------------------------------------
def make_repository(demo: Demo) -> None:
    demo.root.mkdir()
    demo.git("init", "-q", "-b", "main")
    demo.git("config", "user.name", "milestoned demo")  # this scratch repository's own config only
    demo.git("config", "user.email", "demo@milestoned.invalid")
    (demo.root / "README.md").write_text("# greeter\n\nA scratch project made by `milestoned demo`.\n")
    (demo.root / ".gitignore").write_text("__pycache__/\n")
    demo.git("add", "README.md", ".gitignore")
    demo.git("commit", "-q", "-m", "Start the greeter project")
    demo.echo(f"made a git repository in {demo.root}")


def initialize(demo: Demo) -> None:
    init(Workspace.discover(demo.root))
    demo.echo("milestoned init: .milestones/ with config.yaml and a .gitignore (your plans go there; "
              "milestoned's state goes to .git/milestoned/)")


def install_hooks(demo: Demo) -> None:
    done = hooks.install(demo.engine().ws)
    demo.echo(f"milestoned hooks install: {', '.join(done)} (commits now feed task state)")


def start_daemon(demo: Demo) -> None:
    _, info = daemonctl.start(demo.engine().ws)
    demo.echo(f"milestoned daemon start: pid {info['pid']}, watching the plans, the hooks' inbox and the refs")


TESTS_LINE = '  command: []            # e.g. ["pytest", "-q"]'


def plan_milestone(demo: Demo) -> None:
    path = demo.root / ".milestones" / "active" / f"{MILESTONE}.yaml"
    path.write_text(sample_milestone())
    config = demo.root / ".milestones" / "config.yaml"  # `land` tests the merge result with the project's tests
    command = json.dumps([sys.executable, "-m", "unittest", "discover", "-s", "tests", "-q"])
    config.write_text(config.read_text().replace(TESTS_LINE, f"  command: {command}   # the demo's; e.g. [\"pytest\", \"-q\"]"))
    demo.git("add", ".milestones/config.yaml", ".milestones/.gitignore", str(path.relative_to(demo.root)))
    demo.git("commit", "-q", "-m", f"Plan milestone {MILESTONE}")
    ms = demo.engine().load(MILESTONE)
    demo.echo(f"planned {MILESTONE}: {len(ms.plan.tasks)} tasks, ready now: {', '.join(ms.ready)}")


def execute(demo: Demo) -> None:
    outcome = execute_with_display(demo.engine(), MILESTONE, workers=demo.workers, resume=False, force=False,
                                   tty=demo.tty, echo=demo.echo)
    demo.exit_code = outcome.exit_code
    demo.branch = milestone_branch(MILESTONE)


def save_and_sync(demo: Demo) -> None:
    engine = demo.engine()
    with engine.transaction() as txn:
        ms = txn.milestone(MILESTONE)
        sessions.save(txn, ms, "demo")
    demo.git("init", "-q", "--bare", str(demo.remote))
    demo.git("remote", "add", "origin", str(demo.remote))
    demo.git("push", "-q", "origin", "main", demo.branch)
    sync.sync(engine, "origin")
    demo.echo(f"milestoned session save: session {ms.state.session_id} on branch milestoned/state")
    demo.echo(f"git push origin main {demo.branch}: the code, pushed by the demo itself (sync never pushes "
              "your branches)")
    demo.echo(f"milestoned sync origin: the milestoned/state branch and the notes pushed to {demo.remote}")


def resume_in_a_fresh_clone(demo: Demo) -> None:
    gitutil.git(["clone", "-q", str(demo.remote), str(demo.clone)], demo.base)
    engine = demo.engine(demo.clone)
    answer = resume.resume(engine, None, remote="origin", timeout=60)
    here = views.status(demo.engine().load(MILESTONE))["tasks"]
    there = views.status(engine.load(MILESTONE))["tasks"]
    same = [(t["id"], t["status"]) for t in here] == [(t["id"], t["status"]) for t in there]
    progress = answer["milestone"]["progress_percentage"]
    demo.resumed = answer["session"]["id"]
    demo.echo(f"git clone + milestoned resume in {demo.clone}: session {demo.resumed}, {MILESTONE} "
              f"{answer['milestone']['status']} at {progress}% — " + ("the same state" if same else "DIFFERENT"))
    if not same:
        demo.exit_code = demo.exit_code or 1


def land_it(demo: Demo) -> None:
    engine = demo.engine()
    answer = landing.land(engine, MILESTONE, into="main")
    tests = answer["tests"]
    tested = f", after `{' '.join(tests['command'])}` {tests['outcome']} on the merge result" if tests else ""
    demo.echo(f"milestoned land {MILESTONE}: {answer['kind']} of main to {str(answer['new'])[:12]}{tested}")
    if not answer["landed"]:
        demo.exit_code = demo.exit_code or 1
        return
    removed = [row for group in cleanup.gc(engine)["milestones"] for row in group["items"]
               if row["action"] == "removed"]
    demo.echo(f"milestoned gc: removed {len(removed)} merged branch(es) (every commit of theirs is on main now)")
    demo.branch = "main"


def stop_daemon(demo: Demo) -> None:
    if daemonctl.stop(demo.engine().ws) is not None:
        demo.echo("milestoned daemon stop: stopped (start it again with `milestoned daemon start`)")


def show_where_things_are(demo: Demo) -> None:
    root = demo.root
    ws = demo.engine().ws
    log = demo.git("log", "--oneline", "--first-parent", demo.branch).splitlines()
    dirty = demo.git("status", "--porcelain")
    demo.echo("")
    demo.echo(f"the demo repository:  {root}")
    demo.echo(f"  the plan:           {demo.engine().path_of(MILESTONE).relative_to(root)} (yours, committed)")
    demo.echo(f"  git status:         {'clean: the state is not in your working tree' if not dirty else dirty}")
    demo.echo(f"  event log:          {ws.log_path(MILESTONE).relative_to(root)}")
    demo.echo(f"  each task's output: {ws.task_log_path(MILESTONE, 'x').parent.relative_to(root)}/")
    demo.echo(f"  the work:           branch {demo.branch} ({len(log)} commits on its first-parent line)")
    demo.echo("  the state:          branch milestoned/state (git show milestoned/state:README)")
    demo.echo(f"  its remote:         {demo.remote}")
    demo.echo(f"  a fresh clone:      {demo.clone} (resumed session {demo.resumed})")
    demo.echo("try next:")
    for command in (f"cd {root}", f"milestoned status {MILESTONE}", f"milestoned events {MILESTONE}",
                    f"milestoned status {MILESTONE} --format yaml",
                    f"milestoned graph {MILESTONE} --format mermaid", "milestoned sessions",
                    "git log --notes=milestoned --oneline -5 " + demo.branch, "milestoned doctor",
                    f"git log --oneline --graph {demo.branch}", "milestoned gc --dry-run"):
        demo.echo(f"  {command}")


STEPS: list[tuple[str, Callable[[Demo], None]]] = [
    ("a scratch repository", make_repository),
    ("milestoned init", initialize),
    ("git hooks", install_hooks),
    ("a sample milestone", plan_milestone),
    ("the daemon", start_daemon),
    ("execute it in parallel", execute),
    ("save the session and sync it", save_and_sync),
    ("resume it in a fresh clone", resume_in_a_fresh_clone),
    ("stop the daemon", stop_daemon),
    ("land it, tested, and clean up", land_it),
    ("where everything is", show_where_things_are),
]


def _directory(directory: str | None) -> Path:
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="milestoned-demo-")).resolve()
    root = Path(directory).resolve()
    if root.exists() and any(root.iterdir()):
        raise UserError(f"{root} is not empty", hint="give --dir a new or empty directory")
    root.mkdir(parents=True, exist_ok=True)
    return root


def run_demo(directory: str | None, *, workers: int, tty: bool, echo: Callable[[str], None]) -> int:
    """Run every step; the exit status of the run (0 when the milestone completed)."""
    demo = Demo(_directory(directory), workers, tty, echo)
    try:
        for number, (title, step) in enumerate(STEPS, start=1):
            echo(f"== {number}. {title}")
            step(demo)
    finally:
        if demo.root.is_dir():
            daemonctl.stop(demo.engine().ws)  # never leave a daemon behind, even when a step failed
    return demo.exit_code
