"""The ``milestoned`` command line: a thin door onto the engine.

``main`` lets the thin path (``thin``) answer an agent's poll from a running daemon
before click or anything heavy is imported; everything else — and everything the
thin path declines — goes to the full command line in ``app``.  Importing this
package imports nothing heavy: ``cli`` (the click group) loads on first use.
"""

from __future__ import annotations

import sys

from milestoned.cli import thin

TYPE_CHECKING = False  # typing itself costs the thin path a few ms
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["cli", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    answered = thin.answer(list(sys.argv[1:] if argv is None else argv))
    if answered is not None:
        return answered
    # start-up: the full command line, only for what the thin path did not answer
    from milestoned.cli.app import main as full

    return full(argv)


def __getattr__(name: str) -> Any:
    """``milestoned.cli.cli``, the click group with every command, loaded when first asked for."""
    if name == "cli":
        # start-up: the click group loads only when asked for (tests, completion), never for a thin answer
        from milestoned.cli.app import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
