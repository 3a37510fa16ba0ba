"""Bad input: one clear line naming file, line and fix; exit 2; nothing written; no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import invoke, run_subprocess, snapshot_tree, write_milestone

BAD_FILES = {
    # never closed: the line where it opens, not one past the end of the file
    "syntax": ("id: m1\ntitle: x\ntasks:\n  - id: T1\n    title: [unclosed\n",
               "m1.yaml:5: YAML syntax error: while parsing a flow sequence that starts here"),
    "unclosed_quote": ("id: m1\ntitle: \"unclosed\ntasks:\n  - {id: T1, title: a}\n  - {id: T2, title: b}\n",
                       "m1.yaml:2: YAML syntax error: while scanning a quoted scalar that starts here, found "
                       "unexpected end of stream"),
    "tasks_not_list": ("id: m1\ntitle: x\ntasks: just text\n", "m1.yaml:3: tasks must be a list"),
    "deps_wrong_type": (
        "id: m1\ntasks:\n  - id: T1\n    title: a\n    dependencies: {T2: yes}\n",
        "m1.yaml:5: dependencies must be a list of ids",
    ),
    "run_wrong_type": (
        "id: m1\ntasks:\n  - id: T1\n    title: a\n    run: 5\n",
        "m1.yaml:5: task T1: run must be a non-empty list of arguments",
    ),
    "unknown_task_status": (
        "id: m1\ntasks:\n  - id: T1\n    title: a\n    status: finished\n",
        "m1.yaml:5: task T1 has unknown status 'finished' (use one of pending, in_progress, completed, blocked)",
    ),
    "unknown_milestone_status": ("id: m1\nstatus: someday\ntasks: []\n", "m1.yaml:2: unknown milestone status"),
    "duplicate_ids": (
        "id: m1\ntasks:\n  - id: T1\n    title: a\n  - id: T1\n    title: b\n",
        "m1.yaml:5: duplicate task id T1 (also task #1)",
    ),
    "unknown_dependency": (
        "id: m1\ntasks:\n  - id: T1\n    title: a\n  - id: T3\n    title: c\n    dependencies: [T1, T9]\n",
        "m1.yaml:7: task T3 depends on unknown task T9 (add that task or remove the dependency)",
    ),
    "cycle": (
        "id: m1\ntasks:\n  - id: T1\n    title: a\n    dependencies: [T3]\n"
        "  - id: T2\n    title: b\n  - id: T3\n    title: c\n    dependencies: [T1]\n",
        "m1.yaml:5: dependency cycle T1 -> T3 -> T1 (remove one of these dependencies)",
    ),
    "self_dependency": (
        "id: m1\ntasks:\n  - id: T1\n    title: a\n    dependencies: [T1]\n",
        "m1.yaml:5: task T1 depends on itself (remove it from its dependencies)",
    ),
    "traversal_task_id": ("id: m1\ntasks:\n  - id: ../x\n    title: a\n", "m1.yaml:3: task id '../x' is not allowed"),
    "slash_task_id": ("id: m1\ntasks:\n  - id: a/b\n    title: a\n", "m1.yaml:3: task id 'a/b' is not allowed"),
    "empty": ("", "m1.yaml:1: file is empty"),
    "not_a_mapping_list": ("- just\n- a list\n", "m1.yaml:1: a milestone file must be a mapping"),
    "alias_bomb": (
        "id: m1\n"
        'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
        "tasks: []\n",
        "m1.yaml: YAML aliases expand the document beyond reason",
    ),
}


def assert_one_clean_error(result, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("milestoned: error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("command", [["activate", "m1"], ["status", "m1"], ["task", "start", "T1", "-m", "m1"]])
def test_bad_milestone_file_is_one_line_exit_2_and_nothing_written(repo: Path, case: str, command: list[str]) -> None:
    text, expected = BAD_FILES[case]
    (repo / ".milestones/active/m1.yaml").write_text(text)
    before = snapshot_tree(repo)
    result = invoke(*command)
    assert_one_clean_error(result, expected)
    assert snapshot_tree(repo) == before


def test_binary_garbage_is_refused(repo: Path) -> None:
    (repo / ".milestones/active/m1.yaml").write_bytes(b"id: m1\n\x00\x01\x02\xff\xfe" * 10)
    before = snapshot_tree(repo)
    assert_one_clean_error(invoke("activate", "m1"), "m1.yaml:2: binary data, not YAML text")
    assert snapshot_tree(repo) == before


def test_invalid_utf8_is_refused_with_its_line(repo: Path) -> None:
    (repo / ".milestones/active/m1.yaml").write_bytes(b"id: m1\ntitle: caf\xe9\n")
    assert_one_clean_error(invoke("status", "m1"), "m1.yaml:2: not UTF-8 text (save the file as UTF-8)")


def test_a_50_mb_file_is_refused_without_reading_it(repo: Path) -> None:
    path = repo / ".milestones/active/m1.yaml"
    with path.open("wb") as handle:
        handle.write(b"id: m1\ntasks:\n")
        handle.truncate(50 * 1024 * 1024)
    before_size = path.stat().st_size
    assert_one_clean_error(invoke("activate", "m1"), "m1.yaml: file is 50.0 MB, over the 16 MB limit")
    assert path.stat().st_size == before_size
    assert not (repo / ".milestones/logs/execution-m1.jsonl").exists()


@pytest.mark.parametrize("bad_id", ["../x", "a/b", "..", "-rf", "x.lock"])
def test_ids_that_try_path_traversal_are_refused(repo: Path, bad_id: str) -> None:
    before = snapshot_tree(repo)
    result = invoke("new", "--title", "evil", "--", bad_id)
    assert_one_clean_error(result, "is not allowed")
    result = invoke("activate", "--", bad_id)
    assert_one_clean_error(result, "is not allowed")
    assert snapshot_tree(repo) == before


def test_file_id_that_does_not_match_its_name(repo: Path) -> None:
    write_milestone(repo, "m1", "id: m2\ntitle: x\ntasks: []\n")
    assert_one_clean_error(invoke("status", "m1"), "m1.yaml:1: id 'm2' does not match the file name m1.yaml")


def test_missing_milestones_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("status")
    assert_one_clean_error(result, "no .milestones/ in")
    assert "run `milestoned init`" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_milestone_names_the_known_ones(repo: Path) -> None:
    write_milestone(repo, "m1", "id: m1\ntitle: x\ntasks: []\n")
    assert_one_clean_error(invoke("status", "nope"), "no milestone 'nope'")


def test_validate_lists_every_problem_of_a_file(repo: Path) -> None:
    write_milestone(repo, "m1", """
        id: m1
        tasks:
          - id: T1
            title: a
            status: finished
          - id: T2
            title: b
            dependencies: [T9]
        """)
    result = invoke("validate", "m1")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "milestoned: error: .milestones/active/m1.yaml:5: task T1 has unknown status 'finished' "
        "(use one of pending, in_progress, completed, blocked)",
        "milestoned: error: .milestones/active/m1.yaml:8: task T2 depends on unknown task T9 "
        "(add that task or remove the dependency)",
    ]


@pytest.mark.parametrize("value", ["many", "false", "0"])
def test_bad_config_is_refused_with_its_line(repo: Path, value: str) -> None:
    (repo / ".milestones/config.yaml").write_text(f"execute:\n  workers: {value}\n")
    from milestoned.core.errors import UserError
    from milestoned.model.config import load_config

    with pytest.raises(UserError) as caught:
        load_config(repo / ".milestones/config.yaml")
    assert str(caught.value) == (
        ".milestones/config.yaml:2: execute.workers must be a whole number above 0"
    )


def test_broken_file_does_not_hide_the_other_milestones(repo: Path) -> None:
    write_milestone(repo, "good", "id: good\ntitle: fine\ntasks: [{id: A, title: a}]\n")
    (repo / ".milestones/active/bad.yaml").write_text("id: bad\ntasks: [\n")
    result = invoke("status")
    assert result.exit_code == 0
    assert "good" in result.stdout
    assert "! .milestones/active/bad.yaml:2: YAML syntax error" in result.stdout  # where the [ opens


def test_validate_one_and_validate_all_check_the_same_things(repo: Path) -> None:
    write_milestone(repo, "m1", "id: m1\ntitle: t\ndependencies: {requires: [ghost]}\ntasks: []\n")
    write_milestone(repo, "m2", "id: m2\ntitle: t\ndependencies: {requires: [m2]}\ntasks: []\n")
    unknown = ".milestones/active/m1.yaml:3: milestone m1 requires unknown milestone ghost"
    itself = ".milestones/active/m2.yaml:3: milestone m2 requires itself (remove it from dependencies.requires)"
    every = invoke("validate", "--all")
    assert every.exit_code == 2 and unknown in every.stderr and itself in every.stderr
    assert unknown in invoke("validate", "m1").stderr and itself in invoke("validate", "m2").stderr


def test_whether_a_milestone_can_start_now_is_a_note_not_an_error(repo: Path) -> None:
    write_milestone(repo, "m0", "id: m0\ntitle: base\ntasks: [{id: A, title: a}]\n")
    write_milestone(repo, "m1", "id: m1\ntitle: t\ndependencies: {requires: [m0]}\ntasks: [{id: B, title: b}]\n")
    waiting = invoke("validate", "m1")
    assert waiting.exit_code == 0
    assert "note: milestone m1 requires m0, not completed yet (complete those first, or " \
           "`milestoned activate m1 --force`)" in waiting.stdout
    assert invoke("activate", "m0").exit_code == 0
    running = invoke("validate", "m0")
    assert running.exit_code == 0 and "note: milestone m0 is in_progress" in running.stdout
    assert "--force" not in running.stdout


def test_a_directory_given_to_c_that_does_not_exist_is_one_line(repo: Path, tmp_path: Path) -> None:
    result = invoke("-C", str(tmp_path / "nowhere"), "status")
    assert result.exit_code == 2
    assert result.stderr == (f"milestoned: error: -C {tmp_path / 'nowhere'}: No such file or directory "
                             "(give -C a directory that exists)\n")


def test_a_current_milestone_without_a_plan_says_where_its_id_came_from(repo: Path) -> None:
    write_milestone(repo, "m1", "id: m1\ntitle: t\ntasks: [{id: A, title: a}]\n")
    assert invoke("activate", "m1").exit_code == 0
    (repo / ".milestones/active/m1.yaml").unlink()
    result = invoke("next")
    assert result.exit_code == 2
    assert result.stderr == ("milestoned: error: the current milestone, m1, has no plan in .milestones (it was set "
                             "by `milestoned activate m1`; name a milestone, or activate another)\n")


@pytest.mark.parametrize("deps, message", [
    (["A,B"], "--depends-on 'A,B': dependency 'A,B' is not allowed"),
    (["Z"], "--depends-on Z: milestone m1 has no task Z (tasks: A)"),
])
def test_task_add_errors_speak_of_the_command_not_of_a_line(repo: Path, deps: list[str], message: str) -> None:
    write_milestone(repo, "m1", "id: m1\ntitle: t\ntasks: [{id: A, title: a}]\n")
    before = snapshot_tree(repo)
    result = invoke("task", "add", "B", "-m", "m1", "--title", "b", *[f"--depends-on={d}" for d in deps])
    assert result.exit_code == 2 and result.stderr.startswith(f"milestoned: error: {message}")
    assert ".yaml:" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert snapshot_tree(repo) == before


def test_usage_errors_are_one_line_naming_the_help_to_read(repo: Path) -> None:
    for args, line in (
        (("task", "block", "T1"), "missing option '--reason' (see `milestoned task block --help`)"),
        (("execute", "--workers", "0"), "invalid value for '-w' / '--workers': 0 is not in the range x>=1 "
                                        "(see `milestoned execute --help`)"),
        (("statsu",), "no such command 'statsu' (did you mean one of: 'status', 'task'? see `milestoned --help`)"),
    ):
        proc = run_subprocess(*args, cwd=repo)
        assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"milestoned: error: {line}\n"), args


def test_a_task_that_depends_on_itself_is_named_once(repo: Path) -> None:
    (repo / ".milestones/active/m1.yaml").write_text(BAD_FILES["self_dependency"][0])
    result = invoke("validate", "m1")
    assert result.exit_code == 2 and result.stderr.count("milestoned: error:") == 1  # not again as a cycle T1 -> T1
