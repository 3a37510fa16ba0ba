"""Task worktrees: one checkout per running task, merged into the milestone branch in memory.

Branches.  Task ``T`` of milestone ``M`` works on ``milestone/M/T`` (SPEC §8; the hooks read
that name).  The milestone branch cannot be ``milestone/M`` as the spec first wrote it: git
keeps a branch as a file, and ``refs/heads/milestone/M`` cannot be a file and the directory
holding ``milestone/M/T`` at once.  It is ``milestone/M/_milestone``: under the same prefix
(``git branch --list 'milestone/M/*'`` shows a milestone's work together), and no task can
take that name, since task ids start with a letter or a digit.

Worktrees live in ``<common git dir>/milestoned/worktrees/M/T``, never in the user's tree.
They are made in-process with libgit2 (about six times faster than ``git worktree add``,
which matters on the runner's critical path), except when the repository configures
external filter drivers such as git-lfs, which only git itself runs.  Merging into the
milestone branch happens in memory — a libgit2 merge of two commits, a commit object, a
compare-and-swap of the ref — so the user's HEAD, index and working tree are never involved.
Commits of a task's leftovers go through the git command line, so the user's commit hooks
run on agents' work as they would on anyone's.

Trailers.  A task's own commits say ``Milestone:`` and ``Task:``; the ``Completes:`` trailer
is on the merge commit that lands the task in the milestone branch, and only there: hook
ingest completes a task on any commit that says so, and a task whose merge conflicts is
not complete.

Threads.  The runner creates worktrees on starter threads, commits in each task's waiter
thread, merges on its scheduler thread and removes finished worktrees on a cleanup
thread.  A libgit2 repository object is not thread-safe: merges, which only the
scheduler makes, have one of their own (so the scheduler never waits behind a checkout);
everything that touches the worktree list shares the other under one lock, because
libgit2 fails to add a worktree while another one is being removed.  Removing is
therefore done in-process too, and only the deletion of the files happens outside it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pygit2

from milestoned.core.errors import RuntimeFailure, UserError
from milestoned.files import inbox
from milestoned.files.workspace import Workspace
from milestoned.git import hookinstall
from milestoned.git import queries as gitutil
from milestoned.git.identity import Identity

MILESTONE_LEAF = "_milestone"
MERGE_CONFLICT = "merge conflict"  # the reason of a task blocked by its merge
CAS_ATTEMPTS = 5


def milestone_branch(milestone_id: str) -> str:
    return f"milestone/{milestone_id}/{MILESTONE_LEAF}"


def task_branch(milestone_id: str, task_id: str) -> str:
    return f"milestone/{milestone_id}/{task_id}"


@dataclass(frozen=True)
class MergeResult:
    """How a task branch went into the milestone branch."""

    kind: str  # "merged", "nothing" (no new commits) or "conflict"
    commit: str | None = None  # the milestone branch tip afterwards
    paths: tuple[str, ...] = ()  # conflicting paths


@dataclass(frozen=True)
class Resolution:
    """Where a task left blocked by a merge conflict stands."""

    state: str  # "ready" (resolved and committed), "unresolved" or "missing"
    paths: tuple[str, ...] = ()


class GitStepFailed(RuntimeFailure):
    """A git command on a task's behalf failed (a commit hook said no, say); ``output`` says why."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


def _config_true(repo: pygit2.Repository, key: str) -> bool:
    try:
        return repo.config.get_bool(key)
    except (KeyError, pygit2.GitError):
        return False


class Worktrees:
    """The worktrees and branches of one milestone's tasks."""

    def __init__(self, ws: Workspace, milestone_id: str, identity: Identity) -> None:
        if not ws.is_git:
            raise UserError("execute needs a git repository", hint="run `git init` and commit something first")
        self.ws = ws
        self.milestone_id = milestone_id
        self.identity = identity
        self.repo = pygit2.Repository(str(ws.worktree))  # worktrees and branches, under the lock
        self._merging = pygit2.Repository(str(ws.worktree))  # merges: the scheduler's thread only
        self.base = ws.runtime_dir / "worktrees" / milestone_id
        self.branch = milestone_branch(milestone_id)
        self._lock = threading.Lock()
        self._prepared: dict[str, str] = {}  # task -> the milestone tip its worktree was made at
        self.carried: set[str] = set()  # tasks whose earlier run's work their worktree carries over
        self._external_filters = any(
            entry.name.startswith("filter.") and entry.name.endswith((".smudge", ".process"))
            for entry in self.repo.config
        )
        # leftovers are committed in-process (a task's end is on the critical path: two git processes
        # cost more than the commit) unless git would run something we cannot: a hook of the user's,
        # a signature, a filter driver
        hooks = hookinstall.hooks_dir(ws)  # one git process, at the start of the run
        self._commit_in_process = (not self._external_filters and not _config_true(self.repo, "commit.gpgsign")
                                   and hookinstall.only_ours_on_commit(hooks))
        self._report_commits = self._commit_in_process and hookinstall.reports_commits(hooks)

    # -- names and places ---------------------------------------------------------------
    def path(self, task_id: str) -> Path:
        return self.base / task_id

    def _admin_name(self, task_id: str) -> str:
        return f"{self.milestone_id}+{task_id}"  # '+' is in no id: m1-a/T and m1/a-T stay apart

    def exists(self, task_id: str) -> bool:
        return (self.path(task_id) / ".git").exists()

    def _git(self, args: list[str], cwd: Path, what: str) -> str:
        proc = gitutil.run_git(args, cwd, check=False, env=self.identity.env)
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip()
            last = output.splitlines()[-1] if output else f"status {proc.returncode}"
            raise GitStepFailed(f"{what} failed: {last}", output)
        return proc.stdout

    # -- the milestone branch -----------------------------------------------------------
    def ensure_milestone_branch(self) -> str:
        """The milestone branch's tip, creating the branch from HEAD the first time."""
        with self._lock:
            return self._ensure_milestone_branch()

    def _ensure_milestone_branch(self) -> str:
        ref = self.repo.references.get(f"refs/heads/{self.branch}")
        if ref is not None:
            return str(ref.target)
        if self.repo.head_is_unborn:
            raise UserError("the repository has no commit yet",
                            hint="commit something first: the milestone branch starts from HEAD")
        head = self.repo.head.peel(pygit2.Commit)
        self.repo.create_reference_direct(f"refs/heads/{self.branch}", head.id, False,
                                          message=f"milestoned: milestone {self.milestone_id} starts from HEAD")
        return str(head.id)

    # -- a task's worktree --------------------------------------------------------------
    def create(self, task_id: str) -> Path:
        """A worktree on ``milestone/M/T`` at the milestone branch's tip: the prepared one, or a new one.

        What an earlier run of the task left is carried over when it holds work — commits
        merged nowhere, or changes in its worktree (a failed command's output, a fix the user
        made there before reopening it): the task runs again on it, and ``carried`` names it.
        Only a leftover that holds nothing is discarded.  A branch checked out in someone
        else's worktree is theirs: refused.
        """
        with self._lock:
            tip = str(self.repo.references[f"refs/heads/{self.branch}"].target)
            base = self._prepared.pop(task_id, None)
            if base is not None and self.exists(task_id):
                if base != tip:
                    self._move_to(task_id, tip)
                return self.path(task_id)
            if self.exists(task_id) and (self.dirty(task_id) or self._holds_commits(task_id, tip)):
                self.carried.add(task_id)
                return self.path(task_id)
            return self._create(task_id)

    def _holds_commits(self, task_id: str, tip: str) -> bool:
        """Does the task's branch hold commits the milestone branch (at ``tip``) does not?"""
        branch = self.repo.branches.local.get(task_branch(self.milestone_id, task_id))
        if branch is None:
            return False
        own = branch.target
        return str(own) != tip and not self.repo.descendant_of(tip, own)

    def prepare(self, task_id: str) -> None:
        """Make a task's worktree ahead of its start, while the tasks it waits for still run.

        ``create`` then only checks out what was merged meanwhile: in a big repository the
        full checkout, the costly part, happens off the critical path.
        """
        if self._external_filters:
            return  # libgit2 could not bring it up to date later: filters are git's
        with self._lock:
            if task_id in self._prepared or self.exists(task_id):
                return  # prepared, started, or left by another run (``create`` deals with that)
            tip = str(self.repo.references[f"refs/heads/{self.branch}"].target)
            self._create(task_id)
            self._prepared[task_id] = tip

    def discard_prepared(self) -> None:
        """Remove the worktrees prepared for tasks that did not start after all."""
        with self._lock:
            waiting = list(self._prepared)
            self._prepared.clear()
        for task_id in waiting:
            self.remove(task_id)

    def _move_to(self, task_id: str, tip: str) -> None:
        """Bring an untouched prepared worktree and its branch to the milestone branch's new tip."""
        here = pygit2.Repository(str(self.path(task_id)))  # the worktree's own view: its index, its files
        here.checkout_tree(here[tip].peel(pygit2.Tree), strategy=pygit2.enums.CheckoutStrategy.FORCE)
        here.branches.local[task_branch(self.milestone_id, task_id)].set_target(tip)

    def _create(self, task_id: str) -> Path:
        path = self.path(task_id)
        self._discard(task_id)
        start = self.repo.references[f"refs/heads/{self.branch}"].peel(pygit2.Commit)
        name = task_branch(self.milestone_id, task_id)
        existing = self.repo.branches.local.get(name)
        if existing is not None and existing.is_checked_out():
            raise UserError(f"branch {name} is checked out in another worktree",
                            hint="finish or remove that worktree first")
        keep = existing is not None and self._holds_commits(task_id, str(start.id))  # its commits: carried over
        if keep:
            self.carried.add(task_id)
        self.ws.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._external_filters:
            args = [str(path), name] if keep else ["-B", name, str(path), str(start.id)]
            self._git(["worktree", "add", "--force", *args], self.ws.worktree, f"git worktree add for {task_id}")
        else:
            branch = existing if keep and existing is not None else self.repo.branches.local.create(name, start,
                                                                                                   force=True)
            self.repo.add_worktree(self._admin_name(task_id), str(path), branch)
        return path

    def _discard(self, task_id: str) -> None:
        path = self.path(task_id)
        registered = self._admin_name(task_id) in self.repo.list_worktrees()
        if not path.exists() and not registered:
            return
        shutil.rmtree(path, ignore_errors=True)
        gitutil.run_git(["worktree", "prune"], self.ws.worktree, check=False)

    def commit_leftovers(self, task_id: str, title: str) -> str | None:
        """Commit what the task's command left uncommitted in its worktree; the new sha or None.

        The message names the task and carries the ``Milestone:``/``Task:`` trailers.
        """
        path = self.path(task_id)
        if not self._commit_in_process and not self.dirty(task_id):  # in-process, an unchanged tree says so
            return None
        subject = " ".join(title.split())
        subject = subject if len(subject) <= 60 else subject[:57] + "..."
        message = f"{task_id}: {subject}\n\nMilestone: {self.milestone_id}\nTask: {task_id}\n"
        if self._commit_in_process:
            try:
                return self._commit_here(path, message)
            except pygit2.GitError:
                pass  # something only git handles (a nested repository, say): git does it all
        self._git(["add", "-A"], path, "git add")
        try:
            # the user's commit hooks run; git's auto maintenance waits for the end of the run
            self._git(["-c", "maintenance.auto=false", "commit", "-q", "-m", message], path, "git commit")
        except GitStepFailed:
            if gitutil.run_git(["diff", "--cached", "--quiet"], path, check=False).returncode == 0:
                return None  # libgit2 saw a change git does not: nothing to commit after all
            raise

        return str(pygit2.Repository(str(path)).head.target)

    def _commit_here(self, path: Path, message: str) -> str | None:
        """``git add -A && git commit`` with libgit2, and the inbox line our post-commit hook would write."""
        repo = pygit2.Repository(str(path))  # any thread: its own object
        index = repo.index
        changed = repo.status(untracked_files="all")  # one look at the worktree; .gitignore honoured
        if not changed:
            return None
        for name, flags in changed.items():
            if flags & pygit2.enums.FileStatus.WT_DELETED:
                index.remove(name)
            elif flags & ~pygit2.enums.FileStatus.IGNORED:
                index.add(name)
        index.write()
        tree = index.write_tree()
        head = repo.head
        if tree == repo[head.target].peel(pygit2.Commit).tree_id:
            return None  # nothing to commit after all
        author, committer = self.identity.signatures()
        sha = str(repo.create_commit("HEAD", author, committer, message, tree, [head.target]))
        if self._report_commits:
            inbox.report(self.ws.runtime_dir, inbox.Entry("commit", sha, head.name, "", str(path)))
        return sha

    def maintain(self) -> None:
        """The ``git maintenance run --auto`` that the run's commits skipped, once (git detaches it)."""
        gitutil.run_git(["maintenance", "run", "--auto", "--quiet"], self.ws.worktree, check=False)

    def dirty(self, task_id: str) -> bool:
        """Anything uncommitted in a task's worktree?  Asked of libgit2 in-process (a task's end
        is on the critical path; a ``git status`` process costs more than the answer), of git
        when filter drivers only git runs are configured."""
        path = self.path(task_id)
        if self._external_filters:
            return bool(self._git(["status", "--porcelain"], path, "git status"))

        return bool(pygit2.Repository(str(path)).status(untracked_files="normal"))  # any thread: its own object

    # -- into the milestone branch -------------------------------------------------------
    def merge(self, task_id: str) -> MergeResult:
        """Merge ``milestone/M/T`` into the milestone branch without any checkout.

        Always a merge commit (``Completes: T``), so the milestone branch's first-parent
        history reads as one commit per task.  The ref moves by compare-and-swap: if
        someone else moved the milestone branch meanwhile, the merge is made again on top.
        """
        repo = self._merging
        theirs = repo.references[f"refs/heads/{task_branch(self.milestone_id, task_id)}"].target
        message = (f"Merge task {task_id} into milestone {self.milestone_id}\n\n"
                   f"Milestone: {self.milestone_id}\nCompletes: {task_id}\n")
        for _ in range(CAS_ATTEMPTS):
            ref = repo.references[f"refs/heads/{self.branch}"]
            ours = ref.target
            if theirs == ours or repo.descendant_of(ours, theirs):
                return MergeResult("nothing", str(ours))
            index = repo.merge_commits(ours, theirs)
            if index.conflicts is not None:
                paths = sorted({e.path for entry in index.conflicts for e in entry if e is not None})
                return MergeResult("conflict", str(ours), tuple(paths))
            author, committer = self.identity.signatures()
            new = repo.create_commit(None, author, committer, message, index.write_tree(repo), [ours, theirs])
            try:
                ref.set_target(new, f"milestoned: merge task {task_id}")
            except pygit2.GitError:
                continue  # the branch moved under us: merge again on its new tip
            return MergeResult("merged", str(new))
        raise RuntimeFailure(f"{self.branch} kept moving while merging {task_id}; try again")

    def start_conflict(self, task_id: str) -> tuple[str, ...]:
        """Merge the milestone branch into the task's worktree, leaving the conflict there.

        A person or an agent then resolves it where it is (``git status`` shows it, the
        daemon's conflict detector sees it); returns the unmerged paths (none if git,
        unlike libgit2, could merge by itself — then the task branch holds the merge).
        """
        path = self.path(task_id)
        message = f"Merge milestone {self.milestone_id} into task {task_id}\n\nMilestone: {self.milestone_id}\n"
        gitutil.run_git(["merge", "--no-ff", "--no-edit", "-m", message, f"refs/heads/{self.branch}"], path,
                        check=False, env=self.identity.env)
        return self._unmerged(path)

    def _unmerged(self, path: Path) -> tuple[str, ...]:
        out = self._git(["diff", "--name-only", "-z", "--diff-filter=U"], path, "git diff")
        return tuple(sorted({p for p in out.split("\0") if p}))

    def resolve(self, task_id: str, title: str) -> Resolution:
        """After a person worked on a conflict: conclude their merge and commit what is left."""
        path = self.path(task_id)
        if not self.exists(task_id):
            return Resolution("missing")
        unmerged = self._unmerged(path)
        if unmerged:
            return Resolution("unresolved", unmerged)
        if gitutil.run_git(["rev-parse", "-q", "--verify", "MERGE_HEAD"], path, check=False).returncode == 0:
            self._git(["add", "-A"], path, "git add")
            self._git(["commit", "-q", "--no-edit"], path, "git commit")
        self.commit_leftovers(task_id, title)
        return Resolution("ready")

    def remove(self, task_id: str) -> None:
        """Remove a finished task's worktree and its branch (all of it merged by then).

        Only the unregistering happens under the lock; the branch goes through a
        repository object of this thread's own, and the files are deleted last.
        """
        path = self.path(task_id)
        trash = None
        with self._lock:
            if path.exists():
                trash = path.with_name(f".{task_id}.removed-{uuid.uuid4().hex[:8]}")
                os.rename(path, trash)  # git and libgit2 now see a worktree that is gone
            admin = self._admin_name(task_id)
            if admin in self.repo.list_worktrees():
                self.repo.lookup_worktree(admin).prune(False)
            elif trash is not None:  # made by `git worktree add` (filter drivers)
                gitutil.run_git(["worktree", "prune"], self.ws.worktree, check=False)
        branch = pygit2.Repository(str(self.ws.worktree)).branches.local.get(task_branch(self.milestone_id, task_id))
        if branch is not None:
            with contextlib.suppress(pygit2.GitError):  # checked out elsewhere: someone else's now
                branch.delete()
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def tidy(self) -> None:
        """Remove the milestone's worktree folder once no worktree is left in it."""
        with self._lock:
            try:
                os.rmdir(self.base)
            except OSError:
                pass
