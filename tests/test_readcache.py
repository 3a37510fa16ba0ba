"""The read cache answers like the files, and any change to the files is seen at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import invoke, must
from milestoned.files import readcache


@pytest.fixture(autouse=True)
def cache_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readcache, "WORTH_CACHING", 0)


def status(milestone: str) -> dict:
    return json.loads(invoke("status", milestone, "--json").stdout)


def cache_files(repo: Path) -> list[Path]:
    return list((repo / ".git/milestoned/cache").glob("*.pickle"))


def test_cached_status_equals_the_uncached_one_and_lives_outside_the_work_tree(
        two_task_milestone: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    must("activate", "m1")
    first = status("m1")
    assert cache_files(repo)
    assert status("m1") == first
    monkeypatch.setattr(readcache, "WORTH_CACHING", 10**12)
    assert status("m1") == first
    assert "cache" not in {p.name for p in (repo / ".milestones").iterdir()}


def test_hand_edit_and_new_events_invalidate_the_cache(two_task_milestone: Path) -> None:
    must("activate", "m1")
    assert status("m1")["tasks"][0]["status"] == "pending"
    must("task", "start", "T1")
    assert status("m1")["tasks"][0]["status"] == "in_progress"
    text = two_task_milestone.read_text()
    two_task_milestone.write_text(text.replace("title: Second", "title: Second, renamed"))
    assert status("m1")["tasks"][1]["title"] == "Second, renamed"


def test_a_corrupt_cache_file_is_ignored(two_task_milestone: Path, repo: Path) -> None:
    first = status("m1")
    for path in cache_files(repo):
        path.write_bytes(b"not a pickle")
    assert status("m1") == first


def test_a_cached_plan_gives_way_to_an_edit(two_task_milestone: Path, repo: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readcache, "RACY", -1.0)  # cache even a file modified just now
    assert status("m1")["tasks"][1]["title"] == "Second"
    assert any(p.name.startswith("plan-") for p in cache_files(repo))
    text = two_task_milestone.read_text()
    two_task_milestone.write_text(text.replace("title: Second", "title: Second, renamed"))
    assert status("m1")["tasks"][1]["title"] == "Second, renamed"


def test_a_same_size_edit_in_the_same_clock_tick_is_never_served_from_the_cache(two_task_milestone: Path) -> None:
    """Git's "racy clean" case: the stamp cannot tell the two files apart, so a plan that young is not cached."""
    import os

    before = os.stat(two_task_milestone)
    assert status("m1")["tasks"][0]["title"] == "First"
    text = two_task_milestone.read_text()
    two_task_milestone.write_text(text.replace("title: First", "title: Fir5t"))  # the same size, in place
    os.utime(two_task_milestone, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime
    assert os.stat(two_task_milestone).st_ino == before.st_ino
    assert status("m1")["tasks"][0]["title"] == "Fir5t"
