"""``milestoned doctor`` says what is set up and the command that fixes what is not."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, invoke, must


def checks(*args: str) -> tuple[int, dict]:
    result = invoke("doctor", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def by_area(report: dict, area: str) -> list[dict]:
    return [c for c in report["checks"] if c["area"] == area]


def test_fresh_repository_is_told_to_install_hooks_and_start_the_daemon(repo: Path) -> None:
    code, report = checks("--offline")
    assert code == 0 and report["ok"]
    assert {c["fix"] for c in by_area(report, "hooks")} == {"milestoned hooks install"}
    assert by_area(report, "daemon")[0]["status"] == "warn"
    assert by_area(report, "state branch")[0]["fix"] == "milestoned session save"
    assert invoke("hooks", "install").exit_code == 0
    _, report = checks("--offline")
    hooks = by_area(report, "hooks")
    assert [c["status"] for c in hooks] == ["ok", "warn"]  # installed; not yet proven to run
    assert hooks[1]["detail"] == "git has not run the post-commit hook since it was installed"
    assert not by_area(report, "notes")
    git("commit", "-q", "--allow-empty", "-m", "a commit", cwd=repo)
    _, report = checks("--offline")
    hooks = by_area(report, "hooks")
    assert [c["status"] for c in hooks] == ["ok", "ok"]
    assert hooks[1]["detail"].startswith("git ran the post-commit hook at ")


def test_doctor_says_when_git_does_not_reach_the_hooks(repo: Path) -> None:
    must("hooks", "install")
    git("config", "core.hooksPath", str(repo / "elsewhere"), cwd=repo)  # set after: git looks elsewhere now
    git("commit", "-q", "--allow-empty", "-m", "a commit", cwd=repo)
    _, report = checks("--offline")
    warned = [c for c in by_area(report, "hooks") if c["status"] == "warn"]
    assert warned and all(c["fix"] == "milestoned hooks install" for c in warned)
    assert any(str(repo / "elsewhere") in c["detail"] for c in warned)  # where git looks now


def test_broken_milestone_and_config_fail_with_their_lines(repo: Path) -> None:
    (repo / ".milestones/active/m1.yaml").write_text("id: m1\ntasks:\n  - id: T1\n    status: nope\n")
    (repo / ".milestones/config.yaml").write_text("claims:\n  lease: forever\n")
    code, report = checks("--offline")
    assert code == 1 and not report["ok"]
    details = [c["detail"] for c in report["checks"] if c["status"] == "fail"]
    assert any(".milestones/config.yaml:2: claims.lease must be a duration" in d for d in details)
    assert any(".milestones/active/m1.yaml:4: task T1 has unknown status 'nope'" in d for d in details)
    result = invoke("doctor", "--offline")
    assert result.exit_code == 1 and "fix: fix the line it names" in result.stdout


def test_refs_not_pushed_to_the_remote_are_named(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    git("remote", "add", "origin", str(remote), cwd=repo)
    (repo / ".milestones/active/m1.yaml").write_text("id: m1\ntitle: t\ntasks: [{id: T1, title: a}]\n")
    must("activate", "m1")
    must("session", "save")
    _, report = checks()
    sync = by_area(report, "sync")
    assert sync and sync[0]["status"] == "warn" and "not pushed" in sync[0]["detail"]
    assert sync[0]["fix"] == "milestoned sync origin"
    assert invoke("sync", "origin").exit_code == 0
    _, report = checks()
    assert [c["status"] for c in by_area(report, "sync")] == ["ok"]


def test_outside_a_git_repository_doctor_still_reports(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    assert invoke("init").exit_code == 0
    code, report = checks()
    assert code == 0
    assert by_area(report, "hooks")[0]["detail"].startswith("not a git repository")
