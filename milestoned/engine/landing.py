"""``milestoned land``: the milestone branch brought into its target whole, or not at all.

The order is what makes it safe.  Under the milestone's work lock (no ``execute`` or
``gc`` meanwhile): the merge is computed in memory; a conflict, a dirty worktree showing
the target or a failing test command (run on the merge result in a scratch worktree)
stops it before anything moves.  Then a journal names the move, the target moves by
compare-and-swap (``git/landing.py``), and one transaction records ``milestone_landed``
and saves the session; a note on the new tip follows.  A ``land`` killed at any instant
leaves either nothing moved, or a journal that the next ``land`` finishes: the move
done (or, inside ``git merge``, the ref still to move), then the event, exactly once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pygit2

from milestoned.core.errors import UserError, display_path
from milestoned.engine import lifecycle
from milestoned.engine.engine import Engine
from milestoned.engine.testruns import TestCommand
from milestoned.files.durable import atomic_write
from milestoned.files.runlock import milestone_lock
from milestoned.files.workspace import Workspace
from milestoned.git import landing
from milestoned.git.identity import Identity
from milestoned.git.worktrees import milestone_branch
from milestoned.model.config import load_config
from milestoned.model.milestone import Milestone

SCHEMA = 1


def _journal_path(engine: Engine, milestone_id: str) -> Path:
    return engine.ws.runtime_dir / f"land-{milestone_id}.json"


def default_target(engine: Engine, milestone: Milestone) -> str | None:
    """The branch the milestone was activated from (its session's, for logs older than that field)."""
    if milestone.state.branch:
        return milestone.state.branch
    # start-up: loaded only for milestones activated before activation recorded its branch
    from milestoned.engine import sessions

    for record in sessions.list_sessions(engine.ws):
        if record["session"].get("milestone_id") == milestone.id:
            branch = (record.get("context") or {}).get("git_branch")
            return branch if isinstance(branch, str) else None
    return None


def land(engine: Engine, milestone_id: str, *, into: str | None = None, test: bool = True) -> dict[str, Any]:
    """Land the milestone; the answer ``land --json`` prints (``landed`` false on a conflict or a
    failing test, which change nothing).  Bad input is a ``UserError`` before anything is written."""
    ws = engine.ws
    if not ws.is_git:
        raise UserError("land needs a git repository")
    ms = engine.load(milestone_id)
    repo = pygit2.Repository(str(ws.worktree))
    source_branch = milestone_branch(milestone_id)
    source = landing.branch_tip(repo, source_branch)
    if source is None and ms.state.landed is None:
        raise UserError(f"milestone {milestone_id} has no merged work: there is no branch {source_branch}",
                        hint=f"`milestoned execute {milestone_id}` merges each completed task there")
    default = default_target(engine, ms)
    target = default if into is None else into.removeprefix("refs/heads/")
    problem = landing.target_problem(repo, target)
    if problem is not None or target is None:
        raise UserError(problem or "no target branch", hint="name the branch to land into: --into BRANCH")
    with milestone_lock(ws, milestone_id, "being landed"):
        landing.clear_scratch(ws, milestone_id)
        finished = _finish_interrupted(engine, ms, repo)
        if finished is not None:
            return finished
        if source is None:  # landed, and gc has removed the milestone branch since
            assert ms.state.landed is not None
            return {**_answer(ms, target, landing.Merge("up-to-date", ms.state.landed["commit"],
                                                        ms.state.landed["commit"])),
                    "already": ms.state.landed}
        return _land(engine, ms, repo, target, source, test, named=target != default)


def _land(engine: Engine, ms: Milestone, repo: pygit2.Repository, target: str, source: str, test: bool, *,
          named: bool) -> dict[str, Any]:
    ws = engine.ws
    identity = Identity.detect(ws.worktree)
    message = (f"Land milestone {ms.id} into {target}\n\n{ms.plan.title}\n\nMilestone: {ms.id}\n")
    merge = landing.compute(repo, source, target, message, identity)
    answer = _answer(ms, target, merge)
    if merge.kind == "conflict":
        answer["resolve"] = _how_to_resolve(ws, ms.id, target, named=named)
        return answer
    if merge.kind == "up-to-date":
        if ms.state.landed is None or ms.state.landed.get("target") != target:
            _record(engine, ms.id, target, merge)  # landed by hand (a resolved conflict): record it
            answer["landed"] = True
        return answer
    assert merge.new is not None
    shown_in = landing.worktrees_on(ws, target)
    for worktree in shown_in:
        dirty = landing.uncommitted(worktree)
        if dirty:
            shown = ", ".join(dirty[:3]) + (f" and {len(dirty) - 3} more" if len(dirty) > 3 else "")
            raise UserError(f"{target} is checked out in {_checkout(worktree)}, which has uncommitted "
                            f"changes: {shown}", hint="commit or stash them there, then land again; nothing "
                                                      "was changed")
    if test:
        answer["tests"] = _run_tests(engine, ms.id, merge.new)
        if answer["tests"] is not None and answer["tests"]["outcome"] != "passed":
            return answer
    journal = _journal_path(engine, ms.id)
    atomic_write(journal, json.dumps({"target": target, "old": merge.old, "new": merge.new, "kind": merge.kind,
                                      "shown_in": [str(p) for p in shown_in]}) + "\n", 0o600)
    try:
        landing.move(ws, target, merge, shown_in, identity)
    except BaseException:
        if landing.branch_tip(repo, target) != merge.new:
            journal.unlink(missing_ok=True)  # nothing moved: nothing to finish
        raise
    _record(engine, ms.id, target, merge)
    journal.unlink(missing_ok=True)
    answer["landed"] = True
    return answer


def _how_to_resolve(ws: Workspace, milestone_id: str, target: str, *, named: bool) -> str:
    """Where to merge by hand: the worktree that shows the target, else a new one for it."""
    branch = milestone_branch(milestone_id)
    shown = landing.worktrees_on(ws, target)
    where = f"in {_checkout(shown[0])}" if shown else \
        f"in a worktree of its own (`git worktree add ../land-{milestone_id} {target}`)"
    again = f"milestoned land {milestone_id}" + (f" --into {target}" if named else "")
    return f"`git merge {branch}` {where}, resolve the conflicts and commit; then `{again}` records the land"


def _checkout(path: Path) -> str:
    return "this checkout" if path.resolve() == Path.cwd().resolve() else display_path(path)


def _run_tests(engine: Engine, milestone_id: str, commit: str) -> dict[str, Any] | None:
    """The test command of config.yaml on the merge result, in a scratch worktree; None without one."""
    config = load_config(engine.ws.config_path)
    if not config.test_command:
        return None
    with landing.Scratch(engine.ws, milestone_id, commit) as path:
        run = TestCommand(engine.ws, "land").run(config.test_command, config.test_timeout, commit, cwd=path)
    return {"command": list(run.command), "outcome": run.outcome, "exit_code": run.exit_code, "log": run.log}


def _record(engine: Engine, milestone_id: str, target: str, merge: landing.Merge) -> None:
    assert merge.new is not None
    with engine.transaction() as txn:
        lifecycle.landed(txn, txn.milestone(milestone_id), target=target, old=merge.old, new=merge.new,
                         kind=merge.kind)


def _finish_interrupted(engine: Engine, ms: Milestone, repo: pygit2.Repository) -> dict[str, Any] | None:
    """What a killed ``land`` left in its journal: finished and answered, or dropped (None)."""
    journal = _journal_path(engine, ms.id)
    try:
        entry = json.loads(journal.read_text(encoding="utf-8"))
        target, merge = str(entry["target"]), landing.Merge(str(entry["kind"]), str(entry["old"]), str(entry["new"]))
        shown_in = [Path(p) for p in entry["shown_in"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        journal.unlink(missing_ok=True)  # torn: it was written before anything moved
        return None
    assert merge.new is not None
    tip = landing.branch_tip(repo, target)
    if tip == merge.old and shown_in and landing.index_matches(shown_in[0], merge.new):
        landing.finish_move(engine.ws, target, merge)  # killed inside `git merge`: the files are there
        tip = merge.new
    if tip != merge.new:
        journal.unlink(missing_ok=True)  # it never moved (or someone moved it since): land afresh
        return None
    landed = ms.state.landed
    if landed is None or landed.get("commit") != merge.new:
        _record(engine, ms.id, target, merge)
    journal.unlink(missing_ok=True)
    return {**_answer(ms, target, merge), "landed": True, "finished": "a land that was interrupted"}


def _answer(ms: Milestone, target: str, merge: landing.Merge) -> dict[str, Any]:
    done, total, _ = ms.progress()
    return {
        "schema": SCHEMA, "milestone": ms.id, "target": target, "landed": False, "kind": merge.kind,
        "old": merge.old, "new": merge.new, "conflicts": list(merge.conflicts), "tests": None,
        "milestone_status": ms.status, "tasks_completed": done, "tasks_total": total,
    }
