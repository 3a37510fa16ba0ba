"""``mcp`` and ``integrate``: milestoned as tools for coding agents."""

from __future__ import annotations

import click

from milestoned.cli.base import cli, open_engine, say


@cli.command()
def mcp() -> None:
    """Serve this repository's milestones to a coding agent over MCP (stdio).

    Tools: status, claim, heartbeat, done, block, release — the same verbs, and the same
    exclusive claims, as the command line.  An agent that gives no name is its client's name and
    the pid of the process that started the server.  Ends when the client closes stdin, once
    every request read is answered.
    """
    # start-up: the MCP SDK loads only for this command
    from milestoned.mcp.server import serve

    serve()


@cli.command()
@click.argument("agent", type=click.Choice(["claude-code"]))
@click.option("--uninstall", is_flag=True, help="Remove what milestoned wrote (and only that).")
def integrate(agent: str, uninstall: bool) -> None:
    """Set up a coding agent to work milestones: for claude-code, .mcp.json gets the milestoned
    server and .claude/commands/milestone/ the /milestone:execute, status, next and block commands.

    They are files of your checkout (`git status` shows them), yours to commit and share.  Your
    other MCP servers and the file's layout stay; a second run changes nothing.  The server runs
    as `milestoned mcp` when PATH finds this install, else by this install's full path (said so).
    """
    # start-up: loaded only when this command runs
    from milestoned.mcp import integrate as integration

    engine = open_engine()
    said = integration.uninstall(engine.ws) if uninstall else integration.install(engine.ws)
    for line in said or ["nothing to change: " + ("nothing of ours is there" if uninstall else "all in place")]:
        say(line)
