"""``milestoned sync`` through real remotes: a bare repository and a real ``git daemon``.

The remotes (a bare repository, a served one, clones) come from conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import (
    as_json,
    bare_remote,
    clone,
    event_ids,
    git,
    invoke,
    log_file,
    ok,
    project,
    share,
)
from milestoned.files.workspace import Workspace
from milestoned.git import remotes


def user_view(root: Path) -> dict[str, object]:
    """What git says about the user's work: HEAD, index, status and every file outside .milestones/."""
    files = {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not {".git", ".milestones"} & set(p.relative_to(root).parts)
    }
    return {
        "head": git("rev-parse", "HEAD", cwd=root),
        "branch": git("symbolic-ref", "HEAD", cwd=root),
        "index": git("ls-files", "-s", "--debug", cwd=root).replace("\n", "|"),
        "staged": git("diff", "--cached", cwd=root),
        "status": git("status", "--porcelain", cwd=root),
        "files": files,
        "branches": [line for line in git("for-each-ref", "refs/heads/", "--format=%(refname) %(objectname)",
                                          cwd=root).splitlines() if "refs/heads/milestoned/" not in line],
    }


# -- the tests -------------------------------------------------------------------------------
def test_two_clones_that_saved_and_synced_end_with_the_union_of_their_events(tmp_path: Path) -> None:
    remote, a = project(tmp_path, tasks=4)
    b = share(a, remote, tmp_path / "b")
    # both clones work at once, on different tasks, and save without talking to each other
    ok(a, "next", "--claim", "--agent", "alice")
    ok(a, "done", "--agent", "alice")
    ok(b, "task", "start", "T2", "--agent", "bob")
    ok(b, "task", "start", "T4", "--agent", "bob-2")
    ok(a, "session", "save")
    ok(b, "session", "save")
    only_a, only_b = event_ids(a) - event_ids(b), event_ids(b) - event_ids(a)
    assert only_a and only_b
    union = event_ids(a) | event_ids(b)

    first = as_json(a, "sync")
    assert first["state"] == "none" or first["state"] == "up-to-date"
    second = as_json(b, "sync")
    assert second["state"] == "merged" and second["pushed"] == ["refs/heads/milestoned/state"]
    third = as_json(a, "sync")
    assert third["state"] == "fast-forward"

    assert event_ids(a) == event_ids(b) == union
    view_a, view_b = as_json(a, "status", "m1"), as_json(b, "status", "m1")
    assert [(t["id"], t["status"], t["agent"]) for t in view_a["tasks"]] == \
        [(t["id"], t["status"], t["agent"]) for t in view_b["tasks"]] == \
        [("T1", "completed", "alice"), ("T2", "in_progress", "bob"), ("T3", "pending", None),
         ("T4", "in_progress", "bob-2")]
    # the merged log is sorted the way every clone folds it, and the yaml view shows the merged state
    log = [json.loads(line) for line in log_file(a, "m1").read_text().splitlines()]
    keys = [(e["clock"], e["timestamp"], e["id"]) for e in log]
    assert keys == sorted(keys)
    assert "agent: bob" in ok(a, "status", "m1", "--format", "yaml")
    # the remote's state branch holds both histories
    tip = git("rev-parse", "refs/heads/milestoned/state", cwd=remote)
    assert len(git("rev-list", "--merges", tip, cwd=remote).split()) >= 1
    assert git("rev-parse", "milestoned/state", cwd=a) == git("rev-parse", "milestoned/state", cwd=b) == tip


def test_session_save_and_sync_leave_head_index_and_working_tree_byte_for_byte(tmp_path: Path) -> None:
    remote, a = project(tmp_path)
    (a / "README.md").write_text("edited, not staged\n")
    (a / "staged.txt").write_text("staged\n")
    git("add", "staged.txt", cwd=a)
    (a / "scratch.txt").write_text("untracked\n")
    ok(a, "task", "start", "T1")
    before = user_view(a)
    index_bytes = (a / ".git/index").read_bytes()
    b = share(a, remote, tmp_path / "b")
    ok(b, "task", "done", "T1")
    ok(b, "session", "save")
    ok(b, "sync")
    ok(a, "sync")  # brings b's work in
    assert user_view(a) == before
    assert (a / ".git/index").read_bytes() == index_bytes
    assert as_json(a, "status", "m1")["tasks"][0]["status"] == "completed"


def test_a_rejected_push_is_retried_after_a_fetch_and_merge(tmp_path: Path) -> None:
    remote, a = project(tmp_path)
    b = share(a, remote, tmp_path / "b")
    ok(b, "task", "start", "T2", "--agent", "bob")
    ok(b, "session", "save")  # b's state moves on, not pushed yet
    ok(a, "task", "start", "T1", "--agent", "alice")
    ok(a, "session", "save")
    # a's pre-push hook pushes b's state first, once: a's own push is then rejected
    hook = a / ".git/hooks/pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\n"
        f"if [ ! -e '{tmp_path}/raced' ]; then\n"
        f"  touch '{tmp_path}/raced'\n"
        f"  git -C '{b}' push -q origin refs/heads/milestoned/state >/dev/null 2>&1\n"
        "fi\n"
        "exit 0\n"
    )
    hook.chmod(0o755)
    report = as_json(a, "sync")
    assert (tmp_path / "raced").exists()
    assert report["push_attempts"] == 2
    assert "refs/heads/milestoned/state" in report["rejected"][0]
    assert report["state"] == "merged" and "refs/heads/milestoned/state" in report["pushed"]
    ok(b, "sync")
    assert event_ids(a) == event_ids(b)
    statuses = {t["id"]: (t["status"], t["agent"]) for t in as_json(b, "status", "m1")["tasks"]}
    assert statuses["T1"] == ("in_progress", "alice") and statuses["T2"] == ("in_progress", "bob")


def test_notes_from_two_clones_merge_line_by_line(tmp_path: Path) -> None:
    remote, a = project(tmp_path)
    b = clone(remote, tmp_path / "b")
    head = git("rev-parse", "HEAD", cwd=a)
    git("notes", "--ref=milestoned", "add", "-m", '{"task":"T1","from":"a"}', head, cwd=a)
    git("notes", "--ref=milestoned", "add", "-m", '{"task":"T1","from":"b"}', head, cwd=b)
    ok(a, "session", "save")
    ok(a, "sync")
    ok(b, "resume")  # fetches a's notes and merges them at once: `git log --notes=milestoned` shows both
    assert sorted(git("notes", "--ref=milestoned", "show", head, cwd=b).splitlines()) == \
        ['{"task":"T1","from":"a"}', '{"task":"T1","from":"b"}']
    assert as_json(b, "sync")["notes"] == "up-to-date"
    ok(a, "sync")
    for clone_dir in (a, b):
        lines = git("notes", "--ref=milestoned", "show", head, cwd=clone_dir).splitlines()
        assert sorted(lines) == ['{"task":"T1","from":"a"}', '{"task":"T1","from":"b"}']
    # a fetch never overwrites a local ref: the notes b had not pushed survived a's fetch
    assert git("rev-parse", "refs/notes/milestoned", cwd=a) == git("rev-parse", "refs/notes/milestoned", cwd=b)


def test_two_clones_sync_through_a_git_daemon(tmp_path: Path, git_daemon: tuple[Path, str]) -> None:
    served, url = git_daemon
    bare_remote(served / "shared.git")
    remote, a = project(tmp_path, remote=served / "shared.git")
    git("remote", "set-url", "origin", url + "shared.git", cwd=a)
    ok(a, "task", "start", "T1", "--agent", "alice")
    ok(a, "session", "save")
    ok(a, "sync")
    b = clone(url + "shared.git", tmp_path / "b")
    resumed = as_json(b, "resume")
    assert resumed["state"] == "fast-forward" and resumed["milestone"]["id"] == "m1"
    ok(b, "task", "done", "T1")
    ok(b, "session", "save")
    ok(b, "sync", "origin")
    assert as_json(a, "sync", "origin")["state"] == "fast-forward"
    assert as_json(a, "status", "m1")["tasks"][0]["status"] == "completed"
    assert event_ids(a) == event_ids(b)


def test_doctor_is_told_which_refs_are_not_synced(tmp_path: Path) -> None:
    remote, a = project(tmp_path)
    ok(a, "session", "save")
    ws = Workspace.discover(a)
    rows = remotes.unsynced(ws, "origin")
    assert [(r["ref"], r["status"]) for r in rows] == [("refs/heads/milestoned/state", "not pushed")]
    ok(a, "sync")
    assert remotes.unsynced(ws, "origin") == []
    ok(a, "task", "start", "T1")
    ok(a, "session", "save")
    assert [(r["ref"], r["status"]) for r in remotes.unsynced(ws, "origin")] == [("refs/heads/milestoned/state", "ahead")]


def test_sync_pushes_nothing_but_state_and_notes(tmp_path: Path) -> None:
    remote, a = project(tmp_path)
    git("checkout", "-q", "-b", "feature", cwd=a)
    (a / "work.txt").write_text("mine\n")
    git("add", "work.txt", cwd=a)
    git("commit", "-q", "-m", "local work", cwd=a)
    ok(a, "session", "save")
    ok(a, "sync")
    refs = git("for-each-ref", "--format=%(refname)", cwd=remote).split()
    assert refs == ["refs/heads/main", "refs/heads/milestoned/state"]
    assert git("rev-parse", "refs/heads/main", cwd=remote) == git("rev-parse", "main", cwd=a)


def test_sync_without_a_remote_says_so(repo: Path) -> None:
    result = invoke("sync")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("milestoned: error: no remote to sync with "
                                     "(name one: milestoned sync REMOTE (see `git remote -v`))")
    bad = invoke("sync", "--upload-pack=touch pwned")
    assert bad.exit_code == 2
    assert not (repo / "pwned").exists()


def test_sync_to_an_unreachable_remote_fails_cleanly(repo: Path, tmp_path: Path) -> None:
    git("remote", "add", "gone", str(tmp_path / "nowhere.git"), cwd=repo)
    result = invoke("sync", "gone")
    assert result.exit_code == 1
    assert result.stderr.startswith("milestoned: error: fetching from gone failed:")
    assert "Traceback" not in result.output
