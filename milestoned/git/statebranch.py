"""The branch ``milestoned/state``: execution state kept in git, beside the code, never in it.

Every save commits the state — event logs, sessions — and each milestone's plan to
its own branch with pygit2 plumbing: blobs, trees and a commit are written straight
into the object store and the ref moves by compare-and-swap.  HEAD, the index and
every working tree stay exactly as they were, so a save never disturbs the user's work
and never adds "sync" commits to their history.  The branch has no common history with
the code; a branch ref keeps its commits safe from ``git gc``.

The tree is meant to be read by people (``git show milestoned/state:milestones/m1.yaml``)::

    README                      what this branch is
    milestones/<id>.yaml        each plan with its state filled in (the seed's yq readers)
    plans/<id>.yaml             each plan as the user wrote it (resume restores one a branch lacks)
    logs/<id>.jsonl             event logs (the source of truth)
    sessions/<session-id>.yaml  saved sessions

What goes in is decided above this module (``statetree``); here is only the plumbing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Union

from milestoned.core.errors import RuntimeFailure, UserError
from milestoned.files.workspace import Workspace
from milestoned.git.identity import Identity

if TYPE_CHECKING:
    import pygit2

    Content = Union[bytes, Path, pygit2.Oid]  # what a tree path holds: bytes, a file, or a blob

BRANCH = "milestoned/state"
REF = f"refs/heads/{BRANCH}"
LOG_SUFFIX = ".jsonl"

README = """\
milestoned state
================

This branch is written by milestoned, not by hand. It holds the execution state of
the milestones of this repository so that a session saved on one machine resumes on
any clone:

  milestones/<id>.yaml        each milestone's plan with its state filled in
  plans/<id>.yaml             each plan as its author wrote it
  logs/<id>.jsonl             the append-only event logs (the source of truth)
  sessions/<session-id>.yaml  saved sessions (`milestoned session list`)

It shares no history with the code branches and is never merged into them.
`milestoned sync` exchanges it with a remote, `milestoned resume` restores it.
"""


def open_repo(ws: Workspace) -> pygit2.Repository:
    """The repository of ``ws`` (a linked worktree opens the repository it belongs to)."""
    # start-up: pygit2 costs ~60 ms, and the commands that never touch git objects skip it
    import pygit2

    if not ws.is_git:
        raise UserError(f"{ws.root} is not in a git repository", hint="sessions are kept on a git branch: git init")
    try:
        return pygit2.Repository(str(ws.worktree))
    except pygit2.GitError as exc:
        raise RuntimeFailure(f"cannot open the git repository at {ws.worktree}: {exc}") from None


def signatures(repo: pygit2.Repository) -> tuple[pygit2.Signature, pygit2.Signature]:
    """(author, committer) for state commits."""
    return Identity.detect(Path(repo.workdir or repo.path)).signatures()


# -- tree paths ---------------------------------------------------------------------------
def log_tree_path(milestone_id: str) -> str:
    return f"logs/{milestone_id}{LOG_SUFFIX}"


def milestone_id_of(tree_path: str) -> str | None:
    """The milestone a ``milestones/``, ``plans/`` or ``logs/`` tree path belongs to."""
    folder, _, name = tree_path.partition("/")
    if folder in ("milestones", "plans"):
        return name.rsplit(".", 1)[0]
    if folder == "logs" and name.endswith(LOG_SUFFIX):
        return name[: -len(LOG_SUFFIX)]
    return None


# -- reading the branch -----------------------------------------------------------------
def tip(repo: pygit2.Repository, ref: str = REF) -> pygit2.Oid | None:
    found = repo.references.get(ref)
    if found is None:
        return None
    target = found.resolve().target  # a resolved reference names an object, never another ref
    return None if isinstance(target, str) else target


def blobs_at(repo: pygit2.Repository, commit_id: pygit2.Oid | None) -> dict[str, pygit2.Oid]:
    """Every file of a state commit as ``{tree path: blob id}`` (empty for None)."""
    # start-up: pygit2 costs ~60 ms, and the commands that never touch git objects skip it
    import pygit2

    if commit_id is None:
        return {}
    out: dict[str, pygit2.Oid] = {}

    def walk(tree: pygit2.Tree, prefix: str) -> None:
        for entry in tree:
            if entry.type_str == "tree":
                walk(repo[entry.id].peel(pygit2.Tree), f"{prefix}{entry.name}/")
            elif entry.type_str == "blob":
                out[f"{prefix}{entry.name}"] = entry.id

    walk(repo[commit_id].tree, "")
    return out


def files_at(repo: pygit2.Repository, commit_id: pygit2.Oid | None) -> dict[str, bytes]:
    """Every file of a state commit as ``{tree path: bytes}`` (empty for None)."""
    return {path: blob_data(repo, oid) for path, oid in blobs_at(repo, commit_id).items()}


def blob_data(repo: pygit2.Repository, oid: pygit2.Oid) -> bytes:
    """The bytes of the blob ``oid``."""
    # start-up: pygit2 costs ~60 ms, and the commands that never touch git objects skip it
    import pygit2

    return repo[oid].peel(pygit2.Blob).data


# -- writing the branch -----------------------------------------------------------------
def _build_tree(repo: pygit2.Repository, files: Mapping[str, Content]) -> pygit2.Oid:
    """A blob per file (hashed by libgit2), a tree per folder, README at the top."""
    # start-up: pygit2 costs ~60 ms, and the commands that never touch git objects skip it
    import pygit2

    folders: dict[str, dict[str, pygit2.Oid]] = {}
    for tree_path, content in files.items():
        folder, _, name = tree_path.rpartition("/")
        if isinstance(content, Path):
            oid = repo.create_blob_fromdisk(str(content))
        elif isinstance(content, bytes):
            oid = repo.create_blob(content)
        else:
            oid = content
        folders.setdefault(folder, {})[name] = oid
    root = repo.TreeBuilder()
    root.insert("README", repo.create_blob(README.encode()), pygit2.GIT_FILEMODE_BLOB)
    for folder, entries in sorted(folders.items()):
        sub = repo.TreeBuilder()
        for name, oid in sorted(entries.items()):
            sub.insert(name, oid, pygit2.GIT_FILEMODE_BLOB)
        root.insert(folder, sub.write(), pygit2.GIT_FILEMODE_TREE)
    return root.write()


def _changes(repo: pygit2.Repository, old_tree: pygit2.Oid | None, new_tree: pygit2.Oid) -> list[str]:
    """``A path`` / ``M path`` / ``D path`` lines between two trees, for the commit message."""
    # start-up: pygit2 costs ~60 ms, and the commands that never touch git objects skip it
    import pygit2

    new = repo[new_tree].peel(pygit2.Tree)
    if old_tree is None:
        diff = new.diff_to_tree(swap=True)
    else:
        diff = repo[old_tree].peel(pygit2.Tree).diff_to_tree(new)
    return [f"{d.status_char()} {d.new_file.path if d.status_char() != 'D' else d.old_file.path}"
            for d in diff.deltas]


def move_ref(repo: pygit2.Repository, new: pygit2.Oid, expected: pygit2.Oid | None, message: str,
             ref: str = REF) -> None:
    """Point ``ref`` at ``new`` only if it still points at ``expected`` (None: must not exist)."""
    # start-up: pygit2 costs ~60 ms, and the commands that never touch git objects skip it
    import pygit2

    try:
        if expected is None:
            repo.create_reference_direct(ref, new, False, message=message)
            return
        current = repo.references.get(ref)
        if current is None or current.target != expected:
            raise pygit2.GitError("old reference value does not match")
        current.set_target(new, message)  # libgit2 compares with the value read above
    except (pygit2.GitError, ValueError) as exc:
        raise RuntimeFailure(
            f"{ref} moved while milestoned was writing it ({exc}); run the command again"
        ) from None
    except OSError as exc:  # libgit2 could not take the ref's lock: another git holds it
        raise RuntimeFailure(f"{ref} is locked by another git process ({exc})",
                             hint="run the command again once it is done") from None


def commit(ws: Workspace, subject: str, files: Mapping[str, Content], *,
           parents: Iterable[pygit2.Oid] | None = None, repo: pygit2.Repository | None = None) -> pygit2.Oid | None:
    """Commit ``files`` as the branch's tree; returns the new commit, or None if nothing changed.

    ``parents`` defaults to the branch tip (a plain save); a merge passes both sides.
    Callers hold the engine lock, so the files do not move while they are read.
    """
    # start-up: pygit2 costs ~60 ms, and the commands that never touch git objects skip it
    import pygit2

    repo = repo or open_repo(ws)
    current = tip(repo)
    parent_ids = [current] if parents is None and current is not None else list(parents or [])
    tree = _build_tree(repo, files)
    first_tree = repo[parent_ids[0]].peel(pygit2.Commit).tree_id if parent_ids else None
    if len(parent_ids) == 1 and first_tree == tree:
        if parent_ids[0] != current:  # a fast-forward: the tree is the incoming one exactly
            move_ref(repo, parent_ids[0], current, f"milestoned: {subject} (fast-forward)")
            return parent_ids[0]
        return None
    changes = _changes(repo, first_tree, tree)
    body = "\n".join(changes[:200]) + (f"\n... and {len(changes) - 200} more" if len(changes) > 200 else "")
    message = f"{subject}\n\n{body}\n" if body else f"{subject}\n"
    author, committer = signatures(repo)
    new = repo.create_commit(None, author, committer, message, tree, parent_ids)
    move_ref(repo, new, current, f"milestoned: {subject}")
    return new
