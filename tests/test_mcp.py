"""``milestoned mcp``: a real server subprocess, spoken to through the MCP SDK's own stdio client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from conftest import as_json, git, log_file, must, run_subprocess, write_milestone


def ready_milestone(repo: Path, tasks: int = 3) -> None:
    body = "".join(f"  - {{id: T{i}, title: task {i}}}\n" for i in range(1, tasks + 1))
    write_milestone(repo, "m1", f"id: m1\ntitle: Agents at work\ntasks:\n{body}")
    must("activate", "m1")


def with_servers(cwd: Path, count: int, work: Callable[..., Awaitable[Any]], name: str = "test-agent") -> Any:
    """Start ``count`` real ``milestoned mcp`` processes in ``cwd`` and run ``work(*clients)``."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "milestoned", "mcp"], cwd=str(cwd),
                                   env=dict(os.environ))

    async def main() -> Any:
        from mcp_types import Implementation

        clients = [Client(params, client_info=Implementation(name=f"{name}-{i}", version="1"), mode="legacy")
                   for i in range(count)]
        for client in clients:
            await client.__aenter__()
        try:
            return await work(*clients)
        finally:
            for client in reversed(clients):
                await client.__aexit__(None, None, None)

    return anyio.run(main)


def answer_of(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


def test_the_tools_are_few_described_and_fillable(repo: Path) -> None:
    ready_milestone(repo)

    async def work(client: Client) -> Any:
        return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in with_servers(repo, 1, work)}
    assert sorted(tools) == ["block", "claim", "done", "heartbeat", "release", "status"]
    for tool in tools.values():
        assert tool.description and tool.description.count(". ") == 0, tool.description  # one sentence
        assert "\n" not in tool.description and "  " not in tool.description  # no indentation sent along
        assert tool.input_schema["type"] == "object"
        for name, schema in tool.input_schema["properties"].items():
            assert schema.get("description"), f"{tool.name}.{name} has no description"
        assert tool.annotations is not None and tool.annotations.read_only_hint is (tool.name == "status")
    assert all(d in tools["claim"].input_schema["properties"]["lease"]["description"] for d in ('"30m"', '"90s"'))
    assert tools["block"].input_schema["required"] == ["reason"]
    assert set(tools["done"].input_schema["properties"]) == {"task", "milestone", "agent"}


def test_claim_then_done_through_the_engine_and_a_refusal_is_the_cli_line(repo: Path) -> None:
    ready_milestone(repo)

    async def work(client: Client) -> Any:
        claimed = answer_of(await client.call_tool("claim", {}))
        status = answer_of(await client.call_tool("status", {}))
        finished = answer_of(await client.call_tool("done", {}))
        refused = await client.call_tool("done", {"task": "T9", "agent": "someone"})
        return claimed, status, finished, refused

    claimed, status, finished, refused = with_servers(repo, 1, work)
    agent = claimed["agent"]
    assert agent == f"test-agent-0-{os.getpid()}" and claimed["claimed"]["id"] == "T1"
    assert next(t for t in status["tasks"] if t["id"] == "T1")["agent"] == agent
    assert finished["completed"] == "T1" and finished["progress"]["tasks_completed"] == 1
    cli = run_subprocess("done", "T9", "--agent", "someone", cwd=repo)
    assert refused.is_error and refused.content[0].text == cli.stderr.strip()
    assert [e["agent"] for e in as_json(repo, "events", "m1", "--event", "task_completed")["events"]] == [agent]


def test_a_claim_tells_the_agent_what_to_do_and_the_trailers_to_commit_with(repo: Path) -> None:
    write_milestone(repo, "m1", """
        id: m1
        title: Agents at work
        tasks:
          - {id: T1, title: Greet, prompt: "Write hello.txt, politely"}
          - {id: T2, title: Check, run: "pytest -q tests", dependencies: [T1]}
        """)
    must("activate", "m1")

    async def work(client: Client) -> Any:
        return answer_of(await client.call_tool("claim", {"agent": "a1"})), answer_of(await client.call_tool("status"))

    claimed, status = with_servers(repo, 1, work)
    assert claimed["claimed"]["prompt"] == "Write hello.txt, politely" and claimed["claimed"]["run"] is None
    assert claimed["trailers"] == "Milestone: m1\nTask: T1"
    rows = {t["id"]: t for t in status["tasks"]}
    assert rows["T2"]["run"] == ["pytest", "-q", "tests"] and rows["T2"]["prompt"] is None
    shell = {t["id"]: t for t in as_json(repo, "status", "m1")["tasks"]}
    assert shell["T1"]["prompt"] == "Write hello.txt, politely" and shell["T2"]["run"] == ["pytest", "-q", "tests"]
    again = as_json(repo, "next", "--claim", "--agent", "a1")
    assert again["already_held"] and again["trailers"] == claimed["trailers"]


def test_status_says_what_blocks_a_task_and_what_waits_on_it(repo: Path) -> None:
    write_milestone(repo, "m1", "id: m1\ntitle: t\ntasks:\n  - {id: T1, title: a}\n"
                                "  - {id: T2, title: b, dependencies: [T1]}\n")
    must("activate", "m1")

    async def work(client: Client) -> Any:
        answer_of(await client.call_tool("claim", {"agent": "a1"}))
        answer_of(await client.call_tool("block", {"agent": "a1", "reason": "the API key is missing"}))
        return answer_of(await client.call_tool("status", {}))

    rows = {t["id"]: t for t in with_servers(repo, 1, work)["tasks"]}
    assert rows["T1"]["status"] == "blocked" and rows["T1"]["blocked_because"] == "the API key is missing"
    assert rows["T2"]["waiting_on_blocked"] and rows["T2"]["blocked_because"] is None


def test_a_restarted_server_is_the_same_agent_and_finds_its_claim(repo: Path) -> None:
    ready_milestone(repo)

    async def claim(client: Client) -> Any:
        return answer_of(await client.call_tool("claim", {}))

    first = with_servers(repo, 1, claim)
    again = with_servers(repo, 1, claim)  # a new server, started by the same agent process (this one)
    assert first["agent"] == again["agent"] == f"test-agent-0-{os.getpid()}"
    assert again["already_held"] and again["claimed"]["id"] == first["claimed"]["id"] == "T1"


def test_two_clients_racing_for_one_task_and_the_command_line_never_share_it(repo: Path) -> None:
    ready_milestone(repo, tasks=1)

    async def work(first: Client, second: Client) -> Any:
        results: list[dict[str, Any]] = []

        async def take(client: Client) -> None:
            results.append(answer_of(await client.call_tool("claim", {})))

        async with anyio.create_task_group() as group:
            group.start_soon(take, first)
            group.start_soon(take, second)
        cli = run_subprocess("next", "--claim", "--agent", "shell-agent", "--json", cwd=repo)
        return results, json.loads(cli.stdout)

    results, from_shell = with_servers(repo, 2, work)
    winners = [r["agent"] for r in results if r["claimed"] is not None]
    assert len(winners) == 1 and from_shell["claimed"] is None
    claimed = as_json(repo, "events", "m1", "--event", "task_claimed")["events"]
    assert [e["agent"] for e in claimed] == winners


def test_calls_served_at_once_by_one_server_never_share_a_task(repo: Path) -> None:
    ready_milestone(repo, tasks=6)

    async def work(client: Client) -> Any:
        results: list[dict[str, Any]] = []

        async def take(agent: str) -> None:
            results.append(answer_of(await client.call_tool("claim", {"agent": agent})))

        async with anyio.create_task_group() as group:  # the server runs each call in a thread of its own
            for k in range(6):
                group.start_soon(take, f"agent-{k}")
        return results

    claimed = [r["claimed"]["id"] for r in with_servers(repo, 1, work)]
    assert sorted(claimed) == [f"T{i}" for i in range(1, 7)]
    assert sorted(e["task_id"] for e in as_json(repo, "events", "m1", "--event", "task_claimed")["events"]) == \
        sorted(claimed)


def test_bad_requests_are_errors_and_write_nothing(repo: Path) -> None:
    ready_milestone(repo)
    before = log_file(repo, "m1").read_bytes()

    async def work(client: Client) -> Any:
        return [
            await client.call_tool("status", {"milestone": "../../etc/passwd"}),
            await client.call_tool("claim", {"milestone": 5}),
            await client.call_tool("done", {"task": "../x", "agent": "a"}),
            await client.call_tool("block", {"task": "T1"}),  # no reason
            await client.call_tool("no-such-tool", {}),
            *[await client.call_tool(tool, {"milestone": "/etc/x", "agent": "a", "reason": "r"})
              for tool in ("claim", "heartbeat", "done", "block", "release")],
        ]

    results = with_servers(repo, 1, work)
    assert all(r.is_error for r in results)
    assert results[0].content[0].text.startswith("milestoned: error: milestone id '../../etc/passwd' is not allowed")
    for written in results[5:]:  # every write tool refuses the id as the status tool does, not as a link
        assert written.content[0].text.startswith("milestoned: error: milestone id '/etc/x' is not allowed"), written
    assert log_file(repo, "m1").read_bytes() == before


def test_it_serves_a_worktree_and_ends_when_stdin_closes(repo: Path, tmp_path: Path) -> None:
    ready_milestone(repo)
    git("add", ".milestones", cwd=repo)
    git("commit", "-q", "-m", "plan", cwd=repo)
    worktree = tmp_path / "wt"
    git("worktree", "add", "-q", str(worktree), "-b", "agent-work", cwd=repo)

    async def work(client: Client) -> Any:
        return answer_of(await client.call_tool("claim", {"agent": "in-a-worktree"}))

    assert with_servers(worktree, 1, work)["claimed"]["id"] == "T1"
    held = (worktree / ".git").read_text().split("gitdir: ")[1].strip()
    assert (Path(held) / "milestoned-task").read_text().split()[:2] == ["m1", "T1"]  # its commits get the trailers
    proc = subprocess.run([sys.executable, "-m", "milestoned", "mcp"], cwd=repo, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == b""


def test_a_call_sent_just_before_stdin_closes_is_answered_before_the_server_ends(repo: Path) -> None:
    ready_milestone(repo)
    lines = [{"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "script", "version": "1"}}},
             {"jsonrpc": "2.0", "method": "notifications/initialized"},
             *[{"jsonrpc": "2.0", "id": 2 + i, "method": "tools/call",
                "params": {"name": "claim", "arguments": {"agent": f"script-{i}"}}} for i in range(3)]]
    proc = subprocess.run([sys.executable, "-m", "milestoned", "mcp"], cwd=repo, capture_output=True, timeout=120,
                          input="".join(json.dumps(line) + "\n" for line in lines).encode())
    assert proc.returncode == 0, proc.stderr
    answers = {message["id"]: message for message in map(json.loads, proc.stdout.decode().splitlines())}
    assert sorted(answers) == [1, 2, 3, 4]  # stdin closed right after the calls: each still got its answer
    claimed = sorted(answers[i]["result"]["structuredContent"]["claimed"]["id"] for i in (2, 3, 4))
    assert claimed == ["T1", "T2", "T3"]
    logged = {(e["task_id"], e["agent"]) for e in as_json(repo, "events", "m1", "--event", "task_claimed")["events"]}
    assert logged == {(answers[i]["result"]["structuredContent"]["claimed"]["id"], f"script-{i - 2}")
                      for i in (2, 3, 4)}

