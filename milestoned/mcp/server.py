"""``milestoned mcp``: the claim verbs of the engine as Model Context Protocol tools, over stdio.

Six tools, each a sentence and a schema an agent can fill, each calling the engine verb the
command line calls — so a claim made here is exclusive against claims from the command line
and from other clones.  A user error comes back as a tool error carrying the one line the
command line prints; anything else an agent sends wrong (an unknown tool, a wrong type) is the
SDK's protocol or validation error.  Nothing but protocol reaches stdout: the SDK serves the
wire from a private copy of it and points the process's stdout at stderr, where logs go.

An agent that names no agent is this server's client under a name that outlives the server: its
``clientInfo`` name and the pid of the process that started the server (the agent's own process,
for clients that spawn their servers, as claude-code does).  A server restarted by the same
agent session finds the claims it made; two sessions of one client are two agents.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from milestoned import __version__
from milestoned.core.errors import MilestonedError
from milestoned.engine import claims, ingest
from milestoned.engine.engine import Engine
from milestoned.files.workspace import Workspace
from milestoned.mcp import stdio
from milestoned.model import views

log = logging.getLogger("milestoned.mcp")

INSTRUCTIONS = (
    "milestoned runs a software milestone: a plan of tasks with dependencies, worked by several agents "
    "at once. Claim a ready task: the answer's `claimed` is the task, with its title and its `prompt` (what to "
    "do) or its `run` (a command to run), and `trailers` are the lines to end your commit message with. Work "
    "on it, heartbeat while it takes long, commit, then mark it done; report a blocker instead of pushing on "
    "when something stops you."
)


def _agent(ctx: Context, agent: str | None) -> str:
    if agent:
        return agent
    params = ctx.session.client_params
    name = params.client_info.name if params is not None and params.client_info is not None else "mcp"
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.") or "mcp"
    return f"{safe}-{os.getppid()}"


class Tools:
    """The tools, bound to one repository's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def meant(self, milestone: str | None) -> str:
        """The milestone meant, after taking in the commits that wait (as every command does first)."""
        try:
            ingest.drain(self.engine)  # a few stat calls when nothing waits
        except MilestonedError as exc:
            log.warning("commits not fully taken in (the next call tries again): %s", exc)
        return self.engine.resolve(milestone)

    def call(self, verb: Callable[[], dict[str, Any]]) -> CallToolResult:
        """The verb's answer as the tool's result (JSON, structured too); a user error as a tool error
        carrying exactly the line the command line prints."""
        try:
            answer = verb()
        except MilestonedError as exc:
            return CallToolResult(content=[TextContent(type="text", text=f"milestoned: error: {exc}")], is_error=True)
        text = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=answer)

    def status(self, milestone: str | None) -> dict[str, Any]:
        ms = self.engine.load(self.meant(milestone))
        keys = ("id", "title", "prompt", "run", "status", "ready", "agent", "dependencies", "waiting_on_blocked")
        rows = [{**{key: row[key] for key in keys}, "blocked_because": (row["blocker"] or {}).get("reason")}
                for row in views.task_rows(ms)]
        return {"milestone": views.summary(ms), "ready": ms.ready, "tasks": rows}


# What each argument means, in the schema an agent fills: one wording for every tool that takes it.
Milestone = Annotated[str | None, Field(description="The milestone id, e.g. m1-auth; left out: the current milestone.")]
Agent = Annotated[str | None, Field(description=(
    "Who you are: the name you claimed with; left out: this client's name and the pid of the agent process "
    "that started this server, the same on every call and after a restart of the server."))]
Lease = Annotated[str | None, Field(description=(
    'How long the claim holds without a heartbeat, as a duration such as "90s", "30m" or "1h"; left out: '
    "claims.lease of .milestones/config.yaml (30m unless set)."))]
HeldTask = Annotated[str | None, Field(description="The task id; left out: every task this agent holds.")]
OneTask = Annotated[str | None, Field(description="The task id; left out: the one task this agent holds.")]
Reason = Annotated[str, Field(description="What stops the task, in a sentence the user can act on.")]

ToolFn = Callable[..., CallToolResult]
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def build(engine: Engine) -> MCPServer:
    """The server, its tools bound to ``engine``."""
    tools = Tools(engine)
    server = MCPServer("milestoned", version=__version__, instructions=INSTRUCTIONS)

    def tool(annotations: ToolAnnotations) -> Callable[[ToolFn], ToolFn]:
        """Register a tool; its description is its docstring on one line (no indentation sent along)."""
        def register(fn: ToolFn) -> ToolFn:
            server.add_tool(fn, description=" ".join((fn.__doc__ or "").split()), annotations=annotations)
            return fn
        return register

    @tool(READS)
    def status(milestone: Milestone = None) -> CallToolResult:
        """The milestone's progress, its tasks with their status, agent and what blocks them, and which are
        ready now."""
        return tools.call(lambda: tools.status(milestone))

    @tool(WRITES)
    def claim(ctx: Context, milestone: Milestone = None, agent: Agent = None, lease: Lease = None) -> CallToolResult:
        """Take the next ready task for this agent (or the one it holds): no other agent, here or on another
        clone, gets it."""
        return tools.call(lambda: claims.claim_next(engine, tools.meant(milestone), _agent(ctx, agent),
                                                    lease=claims.lease_seconds(engine, lease)))

    @tool(WRITES)
    def heartbeat(ctx: Context, task: HeldTask = None, milestone: Milestone = None, agent: Agent = None,
                  lease: Lease = None) -> CallToolResult:
        """Renew the lease on the task(s) this agent holds, while the work takes long."""
        return tools.call(lambda: claims.heartbeat(engine, tools.meant(milestone), _agent(ctx, agent), task,
                                                   lease=claims.lease_seconds(engine, lease)))

    @tool(WRITES)
    def done(ctx: Context, task: OneTask = None, milestone: Milestone = None, agent: Agent = None) -> CallToolResult:
        """Mark the task this agent holds completed, once its work is committed."""
        return tools.call(lambda: claims.done(engine, tools.meant(milestone), _agent(ctx, agent), task))

    @tool(WRITES)
    def block(ctx: Context, reason: Reason, task: OneTask = None, milestone: Milestone = None,
              agent: Agent = None) -> CallToolResult:
        """Report what stops the task this agent holds, instead of pushing on: it is blocked, its dependents
        wait."""
        return tools.call(lambda: claims.block(engine, tools.meant(milestone), _agent(ctx, agent), task, reason))

    @tool(WRITES)
    def release(ctx: Context, task: HeldTask = None, milestone: Milestone = None,
                agent: Agent = None) -> CallToolResult:
        """Give the task(s) this agent holds back to the ready set, unfinished."""
        return tools.call(lambda: claims.release(engine, tools.meant(milestone), _agent(ctx, agent), task))

    return server


def serve() -> None:
    """``milestoned mcp``: serve this repository until the client closes stdin (and has its answers)."""
    logging.basicConfig(level=logging.WARNING, format="milestoned mcp: %(message)s")  # to stderr
    engine = Engine(Workspace.discover())
    engine.ws.require_initialized()
    anyio.run(stdio.serve, build(engine))
