"""``mcp`` and ``integrate``: milestoned as tools for coding agents."""

from __future__ import annotations

from milestoned.cli.base import cli


@cli.command()
def mcp() -> None:
    """Serve this repository's milestones to a coding agent over MCP (stdio).

    Tools: status, claim, heartbeat, done, block, release — the same verbs, and the same
    exclusive claims, as the command line.  Ends when the client closes stdin.
    """
    # start-up: the MCP SDK loads only for this command
    from milestoned.mcp.server import serve

    serve()
