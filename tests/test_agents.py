"""Agent presets run by ``execute`` (fake ``claude``, ``codex`` and ``aider`` on PATH), and
``integrate claude-code``: what it writes, merges, leaves alone and takes back."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import BRANCH, events_of, git, invoke, must, show, snapshot_tree, write_milestone

EXPECTED = {
    "claude": ["-p", "{prompt}", "--permission-mode", "acceptEdits"],
    "codex": ["exec", "--sandbox", "workspace-write", "{prompt}"],
    "aider": ["--message", "{prompt}", "--yes-always", "--no-auto-commits"],
}
FAKE = """#!{python}
import json, os, sys
expected = {expected}
prompt = os.environ.get("EXPECT_PROMPT", "")
argv = [a if a != prompt else "{{prompt}}" for a in sys.argv[1:]]
env = {{k: os.environ.get(k) for k in ("MILESTONED_MILESTONE_ID", "MILESTONED_TASK_ID", "MILESTONED_WORKTREE",
                                      "MILESTONED_TRAILERS")}}
if argv != expected or os.path.realpath(env["MILESTONED_WORKTREE"] or "") != os.path.realpath(os.getcwd()):
    print("fake {name}: unexpected", argv, env, file=sys.stderr)
    sys.exit(7)
with open("by-{name}.txt", "w") as out:
    out.write(json.dumps({{"prompt": prompt, "env": env}}))
"""


def fake_agents(tmp_path: Path) -> Path:
    """``claude``, ``codex`` and ``aider`` executables that check what they get and edit one file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, expected in EXPECTED.items():
        path = bin_dir / name
        path.write_text(FAKE.format(python=sys.executable, expected=json.dumps(expected), name=name))
        path.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("preset, executable", [("claude-code", "claude"), ("codex", "codex"), ("aider", "aider")])
def test_a_preset_runs_its_agent_with_the_prompt_and_the_work_is_committed_and_merged(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preset: str, executable: str) -> None:
    monkeypatch.setenv("PATH", f"{fake_agents(tmp_path)}{os.pathsep}{os.environ['PATH']}")
    prompt = "Write the greeting, politely; quotes \" and $HOME stay as they are"
    monkeypatch.setenv("EXPECT_PROMPT", prompt)
    (repo / ".milestones/config.yaml").write_text(f"agent:\n  preset: {preset}\n")
    write_milestone(repo, "m1", f"id: m1\ntitle: agents\ntasks:\n  - id: greet\n    title: Greet\n"
                                f"    prompt: {json.dumps(prompt)}\n")
    result = invoke("execute", "m1")
    assert result.exit_code == 0, result.output
    record = json.loads(show(repo, f"by-{executable}.txt"))
    assert record["prompt"] == prompt
    assert record["env"]["MILESTONED_TASK_ID"] == "greet" and record["env"]["MILESTONED_MILESTONE_ID"] == "m1"
    assert record["env"]["MILESTONED_TRAILERS"] == "Milestone: m1\nTask: greet"
    message = git("log", "-1", "--format=%B", f"{BRANCH}^2", cwd=repo)
    assert "Milestone: m1" in message and "Task: greet" in message  # execute committed the agent's edit
    doctor = invoke("doctor", "--offline").stdout
    assert f"agent.preset {preset}: " in doctor and executable in doctor


def test_agent_command_wins_over_the_preset_and_an_unknown_preset_is_one_line(repo: Path) -> None:
    (repo / ".milestones/config.yaml").write_text("agent:\n  preset: claude-code\n  command: [my-agent, '{prompt}']\n")
    from milestoned.model.config import load_config

    assert load_config(repo / ".milestones/config.yaml").agent_command == ("my-agent", "{prompt}")
    (repo / ".milestones/config.yaml").write_text("agent:\n  preset: cursor\n")
    write_milestone(repo, "m1", "id: m1\ntitle: agents\ntasks:\n  - {id: T, title: t, prompt: do it}\n")
    result = invoke("execute", "m1")
    assert result.exit_code == 2 and result.stderr == (
        "milestoned: error: .milestones/config.yaml:2: agent.preset 'cursor' is unknown "
        "(use one of aider, claude-code, codex, or set agent.command)\n")


@pytest.mark.parametrize("written", ["[claude-code]", "{}", "true"])
def test_a_preset_that_is_not_a_name_is_one_line_in_yaml_spelling(repo: Path, written: str) -> None:
    write_milestone(repo, "m1", "id: m1\ntitle: agents\ntasks:\n  - {id: T, title: t}\n")
    must("activate", "m1")
    (repo / ".milestones/config.yaml").write_text(f"# agents\nagent:\n  preset: {written}\n")
    result = invoke("next", "--claim", "--agent", "a")
    assert result.exit_code == 2 and result.stderr == (
        f"milestoned: error: .milestones/config.yaml:3: agent.preset {written} is not a preset name "
        "(use one of aider, claude-code, codex, or set agent.command)\n")


def test_doctor_says_when_the_presets_executable_is_not_on_path(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    (repo / ".milestones/config.yaml").write_text("agent:\n  preset: codex\n")
    out = invoke("doctor", "--offline").stdout
    assert "agent.preset codex runs 'codex', which is not on PATH" in out


def test_doctor_checks_the_agent_command_that_would_run_and_asks_no_trust_for_it(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{fake_agents(tmp_path)}{os.pathsep}/usr/bin{os.pathsep}/bin")  # claude is there
    config = repo / ".milestones/config.yaml"
    config.write_text("agent:\n  preset: claude-code\n  command: [my-agent, '{prompt}']\n")
    rows = [c for c in json.loads(invoke("doctor", "--offline", "--json").stdout)["checks"]
            if c["area"] in ("agent", "trust")]
    assert rows == [{"area": "agent", "status": "fail", "detail": "agent.command runs 'my-agent', which is not on PATH",
                     "fix": "install it, or write its path in agent.command"}]  # not the preset, and no trust note
    config.write_text(f"agent:\n  command: [{json.dumps(sys.executable)}, '{{prompt}}']\n"
                      "tests:\n  command: [pytest, -q]\n")
    rows = [c for c in json.loads(invoke("doctor", "--offline", "--json").stdout)["checks"]
            if c["area"] in ("agent", "trust")]
    assert [(c["area"], c["status"]) for c in rows] == [("agent", "ok"), ("trust", "warn")]
    assert rows[0]["detail"] == f"agent.command: {sys.executable}"
    assert rows[1]["detail"].startswith("the tests.command of config.yaml") and rows[1]["fix"] == "milestoned trust"


def test_execute_refuses_up_front_when_the_agents_program_is_not_on_path(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"/usr/bin{os.pathsep}/bin")
    if shutil.which("codex"):
        pytest.skip("codex is installed here")
    (repo / ".milestones/config.yaml").write_text("agent:\n  preset: codex\n")
    write_milestone(repo, "m1", "id: m1\ntitle: agents\ntasks:\n  - {id: T1, title: t, prompt: do it}\n"
                                "  - {id: T2, title: u, prompt: do that}\n  - {id: T3, title: v, run: [true]}\n")
    before = snapshot_tree(repo)
    result = invoke("execute", "m1")
    assert result.exit_code == 2 and result.stderr.splitlines() == [
        "milestoned: error: .milestones/config.yaml: agent.preset codex runs 'codex', which is not on PATH: "
        "task T1 and 1 more could not run (install codex, or set agent.command to its path)"]
    assert snapshot_tree(repo) == before and not events_of(repo, "m1")  # nothing written, not even activated
    assert json.loads(invoke("status", "m1", "--json").stdout)["milestone"]["status"] == "planned"


SCRIPTS = Path(sys.executable).parent  # where this install's `milestoned` is


@pytest.fixture
def installed() -> Path:
    script = SCRIPTS / "milestoned"
    if not os.access(script, os.X_OK):
        pytest.skip("no milestoned script beside the interpreter (run from an installed milestoned)")
    return script


def test_integrate_merges_with_the_users_servers_and_a_second_run_changes_nothing(
        repo: Path, installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{SCRIPTS}{os.pathsep}/usr/bin{os.pathsep}/bin")  # `milestoned` finds this install
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "the project, milestoned set up", cwd=repo)
    (repo / ".mcp.json").write_text(json.dumps({"mcpServers": {"theirs": {"command": "their-server"}},
                                                "keep": True}))
    first = must("integrate", "claude-code").stdout
    assert "added the milestoned server in .mcp.json" in first and "(/milestone:execute)" in first
    config = json.loads((repo / ".mcp.json").read_text())
    assert config["keep"] is True and config["mcpServers"]["theirs"] == {"command": "their-server"}
    assert config["mcpServers"]["milestoned"] == {"type": "stdio", "command": "milestoned", "args": ["mcp"]}
    commands = repo / ".claude/commands/milestone"
    assert sorted(p.name for p in commands.iterdir()) == ["block.md", "execute.md", "next.md", "status.md"]
    execute = (commands / "execute.md").read_text()
    assert execute.startswith("---\ndescription: ") and "mcp__milestoned__claim" in execute
    allowed = next(line for line in execute.splitlines() if line.startswith("allowed-tools: "))
    bash = sorted(tool for tool in allowed.split(": ", 1)[1].split(", ") if tool.startswith("Bash("))
    assert bash == sorted(f"Bash(git {sub}:*)" for sub in ("add", "commit", "status", "diff", "log")) + sorted(
        f"Bash(milestoned {sub}:*)" for sub in ("activate", "blockers", "validate"))  # what the workflow runs, only
    before = snapshot_tree(repo)
    assert must("integrate", "claude-code").stdout == "nothing to change: all in place\n"
    assert snapshot_tree(repo) == before
    doctor = invoke("doctor", "--offline").stdout
    assert "the /milestone:execute, status, next and block commands are in place" in doctor
    assert ".mcp.json registers the milestoned server (runs `milestoned mcp`)" in doctor
    changed = git("status", "--porcelain", "--untracked-files=all", cwd=repo).splitlines()
    assert sorted(line.split()[-1] for line in changed) == [  # what the user asked for, nothing else
        ".claude/commands/milestone/block.md", ".claude/commands/milestone/execute.md",
        ".claude/commands/milestone/next.md", ".claude/commands/milestone/status.md", ".mcp.json"]


def test_without_this_install_on_path_the_server_runs_its_path_and_integrate_says_so(
        repo: Path, installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"/usr/bin{os.pathsep}/bin")  # an agent started without the virtualenv
    if shutil.which("milestoned"):
        pytest.skip("a milestoned is installed system-wide")
    (repo / ".mcp.json").write_text(json.dumps({"mcpServers": {"milestoned": {
        "type": "stdio", "command": "milestoned", "args": ["mcp"]}}}))  # what integrate used to write
    said = must("integrate", "claude-code").stdout
    assert (f"updated the milestoned server in .mcp.json; it runs `{installed} mcp`: milestoned is not on PATH "
            "here\n") in said
    assert json.loads((repo / ".mcp.json").read_text())["mcpServers"]["milestoned"] == {
        "type": "stdio", "command": str(installed), "args": ["mcp"]}
    before = snapshot_tree(repo)
    assert must("integrate", "claude-code").stdout == "nothing to change: all in place\n"
    monkeypatch.setenv("PATH", f"{SCRIPTS}{os.pathsep}/usr/bin{os.pathsep}/bin")
    assert must("integrate", "claude-code").stdout == "nothing to change: all in place\n"  # the path still runs
    assert snapshot_tree(repo) == before
    assert f".mcp.json registers the milestoned server (runs `{installed} mcp`)" in invoke("doctor", "--offline").stdout


def test_a_server_entry_the_user_changed_is_kept_and_doctor_calls_it_theirs(repo: Path) -> None:
    theirs = {"type": "stdio", "command": sys.executable, "args": ["-m", "milestoned", "mcp"],
              "env": {"MILESTONED_LOG": "debug"}}
    (repo / ".mcp.json").write_text(json.dumps({"mcpServers": {"milestoned": theirs}}, indent=4) + "\n")
    before = (repo / ".mcp.json").read_bytes()
    said = must("integrate", "claude-code").stdout
    assert "kept the milestoned server in .mcp.json as you set it (it runs `" in said
    assert (repo / ".mcp.json").read_bytes() == before
    report = json.loads(invoke("doctor", "--offline", "--json").stdout)
    server = [c for c in report["checks"] if c["area"] == "claude-code" and ".mcp.json" in c["detail"]]
    assert [(c["status"], c["fix"]) for c in server] == [("ok", None)]
    assert "is yours, kept as you set it" in server[0]["detail"]
    assert "it is yours" in must("integrate", "claude-code", "--uninstall").stdout
    assert (repo / ".mcp.json").read_bytes() == before


def test_integrate_keeps_the_files_layout_and_uninstall_gives_back_its_bytes(repo: Path) -> None:
    original = ('{\n    "mcpServers": {\n        "theirs": {"command": "their-server", "args": ["a"]}\n    },\n'
                '    "keep": true\n}\n')
    (repo / ".mcp.json").write_text(original)
    must("integrate", "claude-code")
    written = (repo / ".mcp.json").read_text()
    assert written.startswith('{\n    "mcpServers": {\n        "theirs": {"command": "their-server", "args": ["a"]},\n'
                              '        "milestoned": {\n            "type": "stdio",\n')
    assert written.endswith('\n    },\n    "keep": true\n}\n')
    must("integrate", "claude-code", "--uninstall")
    assert (repo / ".mcp.json").read_text() == original  # byte for byte
    must("integrate", "claude-code")
    edited = (repo / ".mcp.json").read_text().replace('"keep": true', '"keep": false')  # the user edits it since
    (repo / ".mcp.json").write_text(edited)
    assert "removed the milestoned server from .mcp.json" in must("integrate", "claude-code", "--uninstall").stdout
    assert (repo / ".mcp.json").read_text() == original.replace('"keep": true', '"keep": false')


@pytest.mark.parametrize("empty", ["", "  \n"])
def test_an_empty_mcp_json_counts_as_no_servers_and_comes_back_empty(repo: Path, empty: str) -> None:
    (repo / ".mcp.json").write_text(empty)
    assert "added the milestoned server in .mcp.json" in must("integrate", "claude-code").stdout
    assert list(json.loads((repo / ".mcp.json").read_text())["mcpServers"]) == ["milestoned"]
    must("integrate", "claude-code", "--uninstall")
    assert (repo / ".mcp.json").read_text() == empty


def test_uninstall_removes_only_what_is_still_ours(repo: Path) -> None:
    (repo / ".mcp.json").write_text(json.dumps({"mcpServers": {"theirs": {"command": "their-server"}}}))
    must("integrate", "claude-code")
    edited = repo / ".claude/commands/milestone/status.md"
    edited.write_text(edited.read_text() + "\nAlso say it in French.\n")
    (repo / ".claude/commands/mine.md").write_text("my own command\n")
    said = must("integrate", "claude-code", "--uninstall").stdout
    assert "kept .claude/commands/milestone/status.md: edited since milestoned wrote it" in said
    assert json.loads((repo / ".mcp.json").read_text()) == {"mcpServers": {"theirs": {"command": "their-server"}}}
    assert sorted(p.name for p in (repo / ".claude/commands/milestone").iterdir()) == ["status.md"]
    assert (repo / ".claude/commands/mine.md").read_text() == "my own command\n"


def test_a_malformed_mcp_json_is_named_with_its_line_and_left_untouched(repo: Path) -> None:
    broken = '{\n  "mcpServers": {\n    "theirs": {"command": "x",}\n  }\n}\n'
    (repo / ".mcp.json").write_text(broken)
    result = invoke("integrate", "claude-code")
    assert result.exit_code == 2
    assert result.stderr.startswith("milestoned: error: .mcp.json:3: not valid JSON: ")
    assert (repo / ".mcp.json").read_text() == broken and not (repo / ".claude").exists()
    assert ".mcp.json:3: not valid JSON" in invoke("doctor", "--offline").stdout
