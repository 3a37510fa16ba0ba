"""Who milestoned's own commits are by: the user's git identity, else a fixed fallback.

Task merges, state-branch saves, claims and notes are commits milestoned makes for the
user.  ``git var GIT_<ROLE>_IDENT`` resolves a role exactly as ``git commit`` would
(environment, every config file, ``user.useConfigOnly``); a role git cannot name —
CI machines often have no identity at all — falls back to
``milestoned <milestoned@localhost>`` rather than failing the work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from milestoned.core import clock
from milestoned.git import queries as gitutil

if TYPE_CHECKING:
    import pygit2

FALLBACK = ("milestoned", "milestoned@localhost")
ROLES = ("AUTHOR", "COMMITTER")


@dataclass(frozen=True)
class Identity:
    author: tuple[str, str]
    committer: tuple[str, str]
    env: dict[str, str] = field(default_factory=dict)  # GIT_<ROLE>_NAME/EMAIL for the roles that fell back

    @classmethod
    def detect(cls, cwd: Path) -> Identity:
        people: dict[str, tuple[str, str]] = {}
        env: dict[str, str] = {}
        for role in ROLES:
            probe = gitutil.run_git(["var", f"GIT_{role}_IDENT"], cwd, check=False)
            name, _, rest = probe.stdout.strip().partition(" <")
            email = rest.partition(">")[0]
            if probe.returncode != 0 or not email:
                name, email = FALLBACK
                env[f"GIT_{role}_NAME"], env[f"GIT_{role}_EMAIL"] = FALLBACK
            people[role] = (name, email)
        return cls(people["AUTHOR"], people["COMMITTER"], env)

    @property
    def full_env(self) -> dict[str, str]:
        """Both roles as environment variables, for a git command that commits on our behalf."""
        env = {}
        for role, (name, email) in zip(ROLES, (self.author, self.committer)):
            env[f"GIT_{role}_NAME"], env[f"GIT_{role}_EMAIL"] = name, email
        return env

    def signatures(self) -> tuple[pygit2.Signature, pygit2.Signature]:
        """(author, committer) pygit2 signatures, stamped with milestoned's clock."""
        # start-up: pygit2 costs ~60 ms, and the commands that never touch git objects skip it
        import pygit2

        when = int(clock.now().timestamp())
        return pygit2.Signature(*self.author, when, 0), pygit2.Signature(*self.committer, when, 0)
