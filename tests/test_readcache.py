"""The read cache answers like the files, and any change to the files is seen at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import invoke
from milestoned import readcache


@pytest.fixture(autouse=True)
def cache_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readcache, "WORTH_CACHING", 0)


def status(milestone: str) -> dict:
    return json.loads(invoke("status", milestone, "--json").stdout)


def cache_files(repo: Path) -> list[Path]:
    return list((repo / ".git/milestoned/cache").glob("*.pickle"))


def test_cached_status_equals_the_uncached_one_and_lives_outside_the_work_tree(
        two_task_milestone: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    invoke("activate", "m1")
    first = status("m1")
    assert cache_files(repo)
    assert status("m1") == first
    monkeypatch.setattr(readcache, "WORTH_CACHING", 10**12)
    assert status("m1") == first
    assert "cache" not in {p.name for p in (repo / ".milestones").iterdir()}


def test_hand_edit_and_new_events_invalidate_the_cache(two_task_milestone: Path) -> None:
    invoke("activate", "m1")
    assert status("m1")["tasks"][0]["status"] == "pending"
    invoke("task", "start", "T1")
    assert status("m1")["tasks"][0]["status"] == "in_progress"
    text = two_task_milestone.read_text()
    two_task_milestone.write_text(text.replace("title: Second", "title: Second, renamed"))
    assert status("m1")["tasks"][1]["title"] == "Second, renamed"


def test_a_corrupt_cache_file_is_ignored(two_task_milestone: Path, repo: Path) -> None:
    first = status("m1")
    for path in cache_files(repo):
        path.write_bytes(b"not a pickle")
    assert status("m1") == first
