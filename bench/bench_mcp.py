"""``milestoned mcp`` against the shell, side by side in one run.

- a ``tools/call claim`` round trip on a running server (the SDK's stdio client), against
  ``milestoned next --claim --agent NAME --json`` from the shell; each claim is given back
  (untimed) before the next, so every round claims the same ready task;
- the server's start-up (spawn to an initialized session) against ``python -c "import mcp"``.

Run: ``python bench/bench_mcp.py [rounds]``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).parent))
from common import ENV, MILESTONED, report, scratch_repo  # noqa: E402


def repository() -> Path:
    root = scratch_repo("mcp")
    tasks = "".join(f"  - {{id: T{i}, title: task {i}}}\n" for i in range(10))
    (root / ".milestones/active/m1.yaml").write_text(f"id: m1\ntitle: mcp benchmark\ntasks:\n{tasks}")
    subprocess.run([*MILESTONED, "activate", "m1"], cwd=root, env=ENV, check=True, stdout=subprocess.DEVNULL)
    return root


def shell_claim(root: Path) -> float:
    start = time.perf_counter()
    out = subprocess.run([*MILESTONED, "next", "--claim", "--agent", "shell", "--json"], cwd=root, env=ENV,
                         check=True, capture_output=True, text=True).stdout
    spent = time.perf_counter() - start
    assert json.loads(out)["claimed"]["id"] == "T0"
    subprocess.run([*MILESTONED, "release", "--agent", "shell"], cwd=root, env=ENV, check=True,
                   stdout=subprocess.DEVNULL)
    return spent


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    root = repository()
    params = StdioServerParameters(command=sys.executable, args=["-m", "milestoned", "mcp"], cwd=str(root), env=ENV)
    samples: dict[str, list[float]] = {"mcp tools/call claim": [], "next --claim from the shell": [],
                                       "mcp server start-up": [], 'python -c "import mcp"': []}

    async def rounds_of_mcp() -> None:
        for _ in range(rounds):
            start = time.perf_counter()
            async with Client(params, mode="legacy") as client:
                samples["mcp server start-up"].append(time.perf_counter() - start)
                for _ in range(3):
                    start = time.perf_counter()
                    result = await client.call_tool("claim", {"agent": "mcp"})
                    samples["mcp tools/call claim"].append(time.perf_counter() - start)
                    assert json.loads(result.content[0].text)["claimed"]["id"] == "T0"
                    await client.call_tool("release", {"agent": "mcp"})
                    samples["next --claim from the shell"].append(shell_claim(root))
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import mcp"], env=ENV, check=True)
            samples['python -c "import mcp"'].append(time.perf_counter() - start)

    anyio.run(rounds_of_mcp)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    report(f"milestoned mcp, {rounds} rounds (3 claims each)", medians, {
        "claim over mcp / from the shell": ("mcp tools/call claim", "next --claim from the shell", None),
        "server start-up / import mcp": ("mcp server start-up", 'python -c "import mcp"', None),
    })


if __name__ == "__main__":
    main()
