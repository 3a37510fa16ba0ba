"""The two kinds of failure a user can meet, and how they are worded.

A ``UserError`` is something the user must fix (bad input, an illegal transition):
one line naming the file, the line and the fix, exit status 2, nothing written.
A ``RuntimeFailure`` is the world failing under us (git refusing, a remote down):
exit status 1 with the cause.  Anything else is a bug, reported as such by the CLI.
"""

from __future__ import annotations

import os
from pathlib import Path


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as the user would type it: relative to the current directory when below it."""
    p = Path(path)
    try:
        return os.path.relpath(p) if p.is_absolute() and Path.cwd() in p.parents else str(p)
    except (OSError, ValueError):
        return str(p)


class MilestonedError(Exception):
    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.hint = hint

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = display_path(self.path)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.message}{hint}"


class UserError(MilestonedError):
    """The user must change something: input, a file, or the command they typed."""

    exit_code = 2


class RuntimeFailure(MilestonedError):
    """Something outside our control failed (git, a remote, a process)."""

    exit_code = 1
