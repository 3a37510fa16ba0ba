"""What a commit on the state branch holds, gathered from the state directory and the plans.

``logs/`` and ``sessions/`` are the files of the state directory as they are.  For each
milestone whose plan this checkout has, ``plans/<id>.yaml`` is that file verbatim and
``milestones/<id>.yaml`` the plan with its state filled in; a milestone whose plan is
only on another branch keeps what the branch held for it, so saving from any checkout
never drops a plan from the state branch.  A readable copy is computed again only when
its plan or its log changed since the branch's tip: the projection of a big milestone
costs seconds, and most saves change one milestone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from milestoned.core.errors import UserError
from milestoned.git import statebranch
from milestoned.git.statebranch import log_tree_path
from milestoned.model import projection

if TYPE_CHECKING:
    import pygit2

    from milestoned.engine.engine import Engine
    from milestoned.git.statebranch import Content


def gather(engine: Engine, repo: pygit2.Repository, parents: list[pygit2.Oid]) -> dict[str, Content]:
    """Tree path -> content for the next state commit on ``parents`` (callers hold the engine lock)."""
    # start-up: pygit2 costs ~60 ms, and the commands that never touch git objects skip it
    import pygit2


    ws = engine.ws
    previous: dict[str, pygit2.Oid] = {}
    for parent in reversed(parents):  # the first parent's copy wins
        previous.update(statebranch.blobs_at(repo, parent))
    files: dict[str, Content] = {}
    if ws.log_dir.is_dir():
        for path in sorted(ws.log_dir.glob("*.jsonl")):
            files[f"logs/{path.name}"] = path
    if ws.sessions_dir.is_dir():
        for path in sorted(ws.sessions_dir.glob("*.yaml")):
            if not path.name.startswith("."):
                files[f"sessions/{path.name}"] = path
    here: set[str] = set()
    for path in engine.milestone_paths():
        mid = path.stem
        plan_key, readable_key = f"plans/{mid}.yaml", f"milestones/{mid}.yaml"
        plan_blob = pygit2.hashfile(str(path))
        log_key = log_tree_path(mid)
        log_blob = pygit2.hashfile(str(ws.log_path(mid))) if ws.log_path(mid).is_file() else None
        unchanged = (previous.get(plan_key) == plan_blob and previous.get(log_key) == log_blob
                     and readable_key in previous)
        if unchanged:
            files[plan_key], files[readable_key] = plan_blob, previous[readable_key]
            here.add(mid)
            continue
        try:
            readable = projection.document(engine.load(mid)).encode("utf-8")
        except UserError:
            continue  # a plan that does not read is not saved; the branch keeps the last good one
        files[plan_key] = path
        files[readable_key] = readable
        here.add(mid)
    for key, blob in previous.items():  # plans this checkout lacks: kept as the branch had them
        owner = statebranch.milestone_id_of(key)
        if key.startswith(("plans/", "milestones/")) and owner not in here:
            files.setdefault(key, blob)
    return files


def plan_text(repo: pygit2.Repository, commit_id: pygit2.Oid | None, milestone_id: str) -> bytes | None:
    """The plan a state commit keeps for a milestone (as written; an older branch kept only
    the readable copy)."""
    blobs = statebranch.blobs_at(repo, commit_id)
    for key in (f"plans/{milestone_id}.yaml", f"milestones/{milestone_id}.yaml"):
        if key in blobs:
            return statebranch.blob_data(repo, blobs[key])
    return None


def save(engine: Engine, subject: str, *, parents: list[pygit2.Oid] | None = None,
         repo: pygit2.Repository | None = None) -> pygit2.Oid | None:
    """One commit of the whole state on the state branch; None when nothing changed."""
    ws = engine.ws
    if not ws.is_git:
        return None
    repo = repo or statebranch.open_repo(ws)
    if parents is None:
        tip = statebranch.tip(repo)
        parents = [tip] if tip is not None else []
    return statebranch.commit(ws, subject, gather(engine, repo, parents), parents=parents, repo=repo)

