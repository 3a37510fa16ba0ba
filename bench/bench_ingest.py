"""Ingesting 10,000 commits with trailers against ``git log`` over the same commits (SPEC §12; goal 2.5x, issue 13).

A repository with an active milestone of 50 tasks gets 10,000 commits with
``Milestone:``/``Task:``/``Completes:`` trailers, written by ``git fast-import`` (a tool
that runs no hook, so the drain finds them by reconciling the moved ref), and, second
case, announced one line each in the inbox as the post-commit hook would.  Each round
copies the prepared repository (outside the timing) and measures, side by side:

- ``git log`` over the 10,000 commits (default format: every message), its output read
  through a pipe as any consumer of it would;
- ``drain()`` in-process, as the daemon calls it: walk, trailers, one transaction,
  events, 10,000 notes;
- ``milestoned status`` as a fresh process, which drains first (Python start-up included).

Then the notes writer alone on 2,000 notes: ours (fast-import, 2/38 paths) against
libgit2's ``create_note`` per commit (flat trees) and fast-import's ``N`` command.
Run: ``python bench/bench_ingest.py [rounds]`` (5 by default).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import ENV, MILESTONED, paired_medians, report, scratch_repo, timed  # noqa: E402

COMMITS, TASKS = 10_000, 50


def prepare() -> tuple[Path, str]:
    """The repository before the commits land, and the fast-import stream that adds them."""
    root = scratch_repo("ingest")
    lines = ["id: big", "title: ingest benchmark", "status: planned", "tasks:"]
    lines += [f"  - {{id: T{i}, title: task {i}}}" for i in range(TASKS)]
    lines += ["  - {id: last, title: no commit touches it, so the milestone stays in progress}"]
    (root / ".milestones/active/big.yaml").write_text("\n".join(lines) + "\n")
    for argv in (["activate", "big"], ["hooks", "install"]):
        subprocess.run([*MILESTONED, *argv], cwd=root, env=ENV, check=True, stdout=subprocess.DEVNULL)
    tip = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, env=ENV, capture_output=True, text=True,
                         check=True).stdout.strip()
    chunks = [f"reset refs/heads/main\nfrom {tip}\n\n"]
    for i in range(COMMITS):
        task = f"T{i % TASKS}"
        trailer = f"Completes: {task}" if i >= COMMITS - TASKS else f"Task: {task}"
        message = f"work {i} on {task}\n\nSome explanation of the change.\n\nMilestone: big\n{trailer}\n"
        chunks.append(f"commit refs/heads/main\ncommitter Bench <bench@example.com> {1700000000 + i} +0000\n"
                      f"data {len(message.encode())}\n{message}M 644 inline src/file{i % 50}.txt\n"
                      f"data {len(str(i)) + 1}\n{i}\n\n")
    return root, "".join(chunks)


def landed(template: Path, stream: str, via_inbox: bool) -> tuple[Path, str]:
    """A copy of the prepared repository with the 10,000 commits in it; and the old tip."""
    root = Path(tempfile.mkdtemp(prefix="bench-ingest-copy-")) / "repo"
    shutil.copytree(template, root, symlinks=True)
    old = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, env=ENV, capture_output=True, text=True,
                         check=True).stdout.strip()
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, env=ENV, input=stream.encode(), check=True)
    if via_inbox:
        shas = subprocess.run(["git", "rev-list", "--reverse", f"{old}..main"], cwd=root, env=ENV,
                              capture_output=True, text=True, check=True).stdout.split()
        inbox = root / ".git/milestoned/inbox"
        inbox.write_text("".join(f"1\tcommit\t{sha}\trefs/heads/main\t\t{root}\n" for sha in shas))
    return root, old


def check(root: Path) -> None:
    view = json.loads(subprocess.run([*MILESTONED, "status", "big", "--json"], cwd=root, env=ENV,
                                     capture_output=True, text=True, check=True).stdout)
    done = {t["id"]: t["status"] for t in view["tasks"]}
    assert done.pop("last") == "pending" and set(done.values()) == {"completed"}, done
    notes = subprocess.run(["git", "notes", "--ref=milestoned", "list"], cwd=root, env=ENV, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert len(notes) == COMMITS, len(notes)


def ingest_candidates(template: Path, stream: str, via_inbox: bool) -> dict[str, Callable[[], float]]:
    from milestoned.engine.engine import Engine
    from milestoned.engine.ingest import drain
    from milestoned.files.workspace import Workspace

    def git_log() -> float:
        root, old = landed(template, stream, via_inbox)
        start = time.perf_counter()
        out = subprocess.run(["git", "log", f"{old}..main"], cwd=root, env=ENV, capture_output=True, check=True).stdout
        elapsed = time.perf_counter() - start
        assert out.count(b"\ncommit ") == COMMITS - 1
        shutil.rmtree(root.parent)
        return elapsed

    def drain_in_process() -> float:
        root, _ = landed(template, stream, via_inbox)
        start = time.perf_counter()
        count = drain(Engine(Workspace.discover(root)))
        elapsed = time.perf_counter() - start
        assert count == COMMITS, count
        check(root)
        shutil.rmtree(root.parent)
        return elapsed

    def status_cli() -> float:
        root, _ = landed(template, stream, via_inbox)
        elapsed = timed([*MILESTONED, "status", "big", "--json"], root)
        check(root)
        shutil.rmtree(root.parent)
        return elapsed

    return {"git log": git_log, "drain() in-process": drain_in_process, "milestoned status (drains)": status_cli}


def notes_candidates(template: Path, stream: str, count: int) -> dict[str, Callable[[], float]]:
    import pygit2

    from milestoned.git import notes

    def commits() -> tuple[Path, list[str]]:
        root, old = landed(template, stream, False)
        shas = subprocess.run(["git", "rev-list", "-n", str(count), "main"], cwd=root, env=ENV, capture_output=True,
                              text=True, check=True).stdout.split()
        return root, shas

    text = notes.line("big", "T1", "exec-bench", "task_started") + "\n"

    def measured(write: Callable[[Path, list[str]], None]) -> Callable[[], float]:
        def run() -> float:
            root, shas = commits()
            start = time.perf_counter()
            write(root, shas)
            elapsed = time.perf_counter() - start
            listed = subprocess.run(["git", "notes", "--ref=milestoned", "list"], cwd=root, env=ENV,
                                    capture_output=True, text=True, check=True).stdout.splitlines()
            assert len(listed) == count, len(listed)
            shutil.rmtree(root.parent)
            return elapsed
        return run

    def ours(root: Path, shas: list[str]) -> None:
        notes.write(root, {sha: text for sha in shas})

    def libgit2(root: Path, shas: list[str]) -> None:
        repo = pygit2.Repository(str(root))
        sig = pygit2.Signature("bench", "bench@example.com")
        for sha in shas:
            repo.create_note(text, sig, sig, sha, notes.REF, True)

    def fast_import_n(root: Path, shas: list[str]) -> None:
        body = "".join(f"N inline {sha}\ndata {len(text)}\n{text}\n" for sha in shas)
        data = f"commit {notes.REF}\ncommitter b <b@x> 1700000000 +0000\ndata 2\nn\n{body}\ndone\n"
        subprocess.run(["git", "fast-import", "--quiet", "--done"], cwd=root, env=ENV, input=data.encode(), check=True)

    return {"notes: ours (fast-import M 2/38)": measured(ours), "notes: libgit2 create_note": measured(libgit2),
            "notes: fast-import N": measured(fast_import_n)}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5  # git log itself varies by 1.5x on a shared machine
    template, stream = prepare()
    for via_inbox, title in ((False, "commits found by reconciling the moved ref (no hook ran)"),
                             (True, "commits announced in the inbox, one line each (as post-commit writes)")):
        medians = paired_medians(ingest_candidates(template, stream, via_inbox), rounds)
        report(f"ingest {COMMITS} commits with trailers: {title}", medians, {
            "drain() / git log": ("drain() in-process", "git log", 2.5),  # issue 13 (was 3x)
            "milestoned status / git log": ("milestoned status (drains)", "git log", None),
        })
    medians = paired_medians(notes_candidates(template, stream, 2000), rounds)
    report("write 2,000 notes", medians, {
        "libgit2 / ours": ("notes: libgit2 create_note", "notes: ours (fast-import M 2/38)", None),
        "fast-import N / ours": ("notes: fast-import N", "notes: ours (fast-import M 2/38)", None),
    })
    shutil.rmtree(template, ignore_errors=True)


if __name__ == "__main__":
    main()
