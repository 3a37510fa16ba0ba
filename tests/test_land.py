"""``land``: the milestone branch into its target whole, or nothing changed at all.

Every case runs a real ``execute`` first, so the milestone branch holds real task merges,
and then looks at the repository the way a user would: refs, ``git status``, the files of
each checkout byte for byte, ``MERGE_HEAD``, the event log.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import BRANCH, events_named, fake, git, invoke, must, plan

TASKS = [
    {"id": "A", "run": fake("--write", "a.txt", "from A")},
    {"id": "B", "dependencies": ["A"], "run": fake("--write", "b.txt", "from B")},
    {"id": "C", "run": fake("--write", "c.txt", "from C")},
]


def executed(repo: Path, tasks: list[dict] | None = None) -> str:
    """m1 planned (and the plan committed), executed to the end: main's tip before any land."""
    plan(repo, tasks or TASKS)
    git("add", ".milestones", cwd=repo)
    git("commit", "-q", "-m", "plan m1", cwd=repo)
    result = invoke("execute", "m1")
    assert result.exit_code in (0, 1), result.output
    return git("rev-parse", "main", cwd=repo)


def tip(repo: Path, ref: str = "main") -> str:
    return git("rev-parse", ref, cwd=repo)


def everything(root: Path) -> dict[str, bytes]:
    """Every file of a checkout, and its index, byte for byte (the git dir's objects and refs aside)."""
    files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
             if p.is_file() and ".git" not in p.relative_to(root).parts}
    index = root / ".git" / "index"
    return {**files, ".git/index": index.read_bytes(), "HEAD": (root / ".git/HEAD").read_bytes()}


def configure_tests(repo: Path, code: str) -> Path:
    """tests.command runs a script of ``code`` (committed, as a checkout that land moves must be clean)."""
    script = repo / "check.py"
    script.write_text(code)
    (repo / ".milestones/config.yaml").write_text(f"tests:\n  command: [{json.dumps(sys.executable)}, "
                                                  f"{json.dumps(str(script))}]\n")
    git("add", ".milestones/config.yaml", cwd=repo)
    git("commit", "-q", "-m", "tests.command", cwd=repo)
    return script


def land_json(repo: Path, *args: str, code: int = 0) -> dict:
    result = invoke("land", "m1", "--json", *args)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_land_into_the_checked_out_clean_branch_brings_the_files_along(repo: Path) -> None:
    before = executed(repo)
    (repo / "notes.txt").write_text("untracked, mine\n")  # untracked files stay as they are
    out = must("land", "m1").stdout
    assert out.startswith(f"landed m1 into main: fast-forward {tip(repo)[:12]} (was {before[:12]}), 3/3 tasks\n")
    assert "tests: none configured (tests.command)" in out and "`milestoned gc` would now remove" in out
    assert tip(repo) == tip(repo, BRANCH)
    assert (repo / "a.txt").read_text() == "from A\n" and (repo / "c.txt").read_text() == "from C\n"
    assert git("status", "--porcelain", cwd=repo) == "?? notes.txt"
    landed = events_named("milestone_landed")
    assert [(e["target"], e["old"], e["commit"], e["kind"]) for e in landed] == [
        ("main", before, tip(repo), "fast-forward")]
    session = json.loads(invoke("session", "show", "--json").stdout)
    assert session["execution_state"]["landed"]["commit"] == tip(repo)  # the session records it
    note = git("notes", "--ref=milestoned", "show", tip(repo), cwd=repo)
    assert any(json.loads(line) == {"milestone": "m1", "task": None, "session": landed[0]["session_id"],
                                    "event": "milestone_landed"} for line in note.splitlines())
    again = must("land", "m1").stdout
    assert again == "nothing to land: m1's work is in main already\n"
    assert len(events_named("milestone_landed")) == 1


def test_land_makes_a_merge_commit_naming_the_milestone_when_the_target_moved_on(repo: Path) -> None:
    executed(repo)
    (repo / "README.md").write_text("moved on meanwhile\n")
    git("commit", "-q", "-am", "meanwhile on main", cwd=repo)
    meanwhile = tip(repo)
    answer = land_json(repo)
    assert answer["landed"] and answer["kind"] == "merge" and answer["old"] == meanwhile
    assert git("rev-parse", "HEAD^1", "HEAD^2", cwd=repo).split() == [meanwhile, tip(repo, BRANCH)]
    assert git("log", "-1", "--format=%B", cwd=repo).startswith("Land milestone m1 into main\n\nRunner test\n")
    assert (repo / "b.txt").read_text() == "from B\n" and (repo / "README.md").read_text() == "moved on meanwhile\n"
    assert git("status", "--porcelain", cwd=repo) == ""


def test_land_into_a_branch_not_checked_out_leaves_the_checkout_byte_for_byte(repo: Path) -> None:
    before = executed(repo)
    git("branch", "release", before, cwd=repo)
    git("checkout", "-q", "-b", "elsewhere", cwd=repo)
    (repo / "README.md").write_text("uncommitted, and none of land's business\n")
    untouched = everything(repo)
    answer = land_json(repo, "--into", "refs/heads/release")  # a full ref name is the branch
    assert answer["landed"] and tip(repo, "release") == tip(repo, BRANCH)
    assert everything(repo) == untouched
    assert tip(repo, "main") == before


def test_a_dirty_worktree_showing_the_target_is_refused_and_nothing_moves(repo: Path, tmp_path: Path) -> None:
    before = executed(repo)
    git("checkout", "-q", "-b", "side", cwd=repo)
    second = tmp_path / "second"
    git("worktree", "add", "-q", str(second), "main", cwd=repo)
    (second / "README.md").write_text("half done\n")
    untouched = everything(repo)
    result = invoke("land", "m1")
    assert result.exit_code == 2
    assert result.stderr == (f"milestoned: error: main is checked out in {second}, which has uncommitted changes: "
                             "README.md (commit or stash them there, then land again; nothing was changed)\n")
    assert tip(repo) == before and (second / "README.md").read_text() == "half done\n"
    assert everything(repo) == untouched and not events_named("milestone_landed")
    git("checkout", "-q", "--", "README.md", cwd=second)  # clean now: that worktree is brought along
    assert land_json(repo)["landed"]
    assert (second / "a.txt").read_text() == "from A\n" and git("status", "--porcelain", cwd=second) == ""


def test_a_conflict_changes_nothing_names_the_paths_and_says_where_to_merge(repo: Path) -> None:
    before = executed(repo)
    (repo / "a.txt").write_text("main's own a.txt\n")
    git("add", "a.txt", cwd=repo)
    git("commit", "-q", "-m", "a.txt on main too", cwd=repo)
    ours = tip(repo)
    untouched = everything(repo)
    answer = land_json(repo, code=1)
    assert (answer["landed"], answer["kind"], answer["conflicts"], answer["new"]) == (False, "conflict", ["a.txt"], None)
    assert answer["resolve"] == ("`git merge milestone/m1/_milestone` in this checkout, resolve the conflicts and "
                                 "commit; then `milestoned land m1` records the land")
    git("branch", "rel", cwd=repo)  # the same conflict into another branch: the advice names it
    assert land_json(repo, "--into", "rel", code=1)["resolve"].endswith(
        "in a worktree of its own (`git worktree add ../land-m1 rel`), resolve the conflicts and commit; then "
        "`milestoned land m1 --into rel` records the land")
    assert tip(repo) == ours and everything(repo) == untouched
    assert not (repo / ".git/MERGE_HEAD").exists() and "<<<<" not in (repo / "a.txt").read_text()
    assert not events_named("milestone_landed") and before != ours
    # resolved by hand as told: land then records it
    git("merge", "-q", BRANCH, cwd=repo, check=False)
    (repo / "a.txt").write_text("both\n")
    git("add", "a.txt", cwd=repo)
    git("commit", "-q", "--no-edit", cwd=repo)
    assert must("land", "m1").stdout.startswith("landed m1 into main: already there, now recorded")


def test_failing_tests_on_the_merge_result_change_nothing(repo: Path) -> None:
    executed(repo)
    check = configure_tests(repo, "import pathlib, sys\nsys.exit(0 if pathlib.Path('z.txt').exists() else 4)\n")
    before = tip(repo)
    answer = land_json(repo, code=1)
    assert not answer["landed"] and answer["tests"]["outcome"] == "exited 4" and answer["tests"]["exit_code"] == 4
    assert Path(answer["tests"]["log"]).is_file()
    assert tip(repo) == before and not (repo / "a.txt").exists() and not events_named("milestone_landed")
    said = invoke("land", "m1").stdout
    assert said.startswith(f"not landed: `{sys.executable} {check}` exited 4 on the merge result (log: ")
    assert not (repo / ".git/milestoned/land/m1").exists() or not any((repo / ".git/milestoned/land/m1").iterdir())
    skipped = must("land", "m1", "--no-test").stdout
    assert "tests: not run (--no-test)" in skipped
    git("merge-base", "--is-ancestor", BRANCH, "main", cwd=repo)  # landed: fails otherwise
    assert (repo / "a.txt").exists()


def test_tests_that_pass_let_it_land_and_run_on_the_merge_result(repo: Path) -> None:
    executed(repo)
    configure_tests(repo, "import pathlib, sys\nsys.exit(0 if pathlib.Path('b.txt').read_text() == 'from B\\n' else 5)\n")
    answer = land_json(repo)
    assert answer["landed"] and answer["tests"]["outcome"] == "passed"


def test_a_target_that_moves_during_the_tests_is_never_overwritten(repo: Path) -> None:
    executed(repo)
    configure_tests(repo,  # the tests run while someone commits on main
                    "import subprocess\n"
                    f"subprocess.run(['git', '-C', {str(repo)!r}, 'commit', '-q', '--allow-empty', '-m', 'meanwhile'],"
                    " check=True)\n")
    result = invoke("land", "m1")
    assert result.exit_code == 1
    assert result.stderr == ("milestoned: error: main moved while the land was being prepared; nothing was changed "
                             "(land again: the merge is made anew on its new tip)\n")
    assert git("log", "-1", "--format=%s", cwd=repo) == "meanwhile"
    assert not events_named("milestone_landed") and not (repo / ".git/milestoned/land-m1.json").exists()


def test_a_failed_tasks_commits_never_land(repo: Path) -> None:
    executed(repo, [{"id": "ok", "run": fake("--write", "ok.txt", "fine")},
                    {"id": "bad", "run": fake("--write", "bad.txt", "half", "--exit", "3")}])
    assert land_json(repo)["landed"]
    assert (repo / "ok.txt").exists() and not (repo / "bad.txt").exists()
    assert git("log", "--format=%s", "main", cwd=repo).count("bad") == 0


@pytest.mark.parametrize("args, message", [
    (("nope",), "no milestone 'nope' in .milestones"),
    (("m1", "--into", "no-such-branch"), "there is no branch no-such-branch (name the branch to land into: --into "
                                         "BRANCH)"),
    (("m1", "--into", "v1"), "v1 is a tag, not a branch"),
    (("m1", "--into", "-x"), "'-x' is not a branch name"),
    (("m1", "--into", ""), "'' is not a branch name"),
    (("m1", "--into", "milestone/m1/_milestone"), "milestone/m1/_milestone is one of milestoned's own branches"),
    (("m1", "--into", "milestoned/state"), "milestoned/state is one of milestoned's own branches, which work is "
                                           "landed from, never into"),
])
def test_bad_targets_are_one_line_exit_2_and_nothing_written(repo: Path, args: tuple[str, ...], message: str) -> None:
    executed(repo)
    git("tag", "v1", cwd=repo)
    must("status")  # any command first takes in what moved (the tag): that is not land's doing
    before = tip(repo), (repo / ".git/milestoned/log/m1.jsonl").read_bytes()
    result = invoke("land", *args)
    assert result.exit_code == 2 and result.stderr.startswith("milestoned: error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (tip(repo), (repo / ".git/milestoned/log/m1.jsonl").read_bytes()) == before


def test_no_merged_work_and_a_detached_activation_are_refused(repo: Path) -> None:
    plan(repo, [{"id": "A", "title": "by hand"}])
    must("activate", "m1")
    refused = invoke("land", "m1")
    assert refused.exit_code == 2 and refused.stderr == (
        "milestoned: error: milestone m1 has no merged work: there is no branch milestone/m1/_milestone "
        "(`milestoned execute m1` merges each completed task there)\n")
    git("checkout", "-q", "--detach", cwd=repo)
    plan(repo, [{"id": "A", "title": "later"}], milestone_id="m2")
    must("activate", "m2")
    git("branch", "milestone/m2/_milestone", "main", cwd=repo)
    detached = invoke("land", "m2")
    assert detached.exit_code == 2 and "no target branch: the milestone was activated on a detached HEAD " \
                                       "(name the branch to land into: --into BRANCH)" in detached.stderr
