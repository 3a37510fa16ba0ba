"""The thin path: the agents' polls answered by a running daemon, before anything heavy is imported.

An agent's loop is ``next --claim``, work, ``done``, with ``status`` in between; each call
would otherwise pay for click, PyYAML, pygit2 and rich to ask a socket a question.  So
``main`` first hands the arguments here.  When they are one of

    status [M] [--json]            next [M] [--json] [--claim --agent A [--lease L]]
    heartbeat [T] --agent A [-m M] [--lease L] [--json]
    release [T] --agent A [-m M] [--json]      done [T] --agent A [-m M] [--json]

spelled in a way this module fully understands, and a daemon of this version answers
for this checkout, the answer is printed by the same functions the full command line
uses (``answers``).  The daemon does the claims and completions through the engine,
so they exclude each other exactly as from the command line.

Anything else returns None and the full path runs, untouched: other commands, other
spellings (``-C``, ``--help``, ``-mM1``), shell completion, no daemon, a daemon that is
wedged, of another version, answers garbage or an error, or a socket that is not ours
(``wire``).  An error is always worded by the full path, from the files; the daemon
never wrote anything when it answers one.  The overview (``status`` with no milestone
to show) is printed by the full path too, which also says what a fresh clone lacks.
"""

from __future__ import annotations

import json
import os
import sys
import time

from milestoned.cli import answers
from milestoned.daemon import wire
from milestoned.files import gitdirs

READ_TIMEOUT = 2.0  # seconds a read waits for the daemon before the files are read instead
WRITE_DEADLINE = 10.0  # a claim waits longer (the daemon may be finishing another write); the daemon
WRITE_TIMEOUT = WRITE_DEADLINE + 5.0  # does it only if it got the engine lock by the deadline

# command: (its positional argument, its flags, its options that take a value)
GRAMMAR: dict[str, tuple[str, frozenset[str], frozenset[str]]] = {
    "status": ("milestone", frozenset({"--json"}), frozenset()),
    "next": ("milestone", frozenset({"--json", "--claim"}), frozenset({"--agent", "--lease"})),
    "heartbeat": ("task_id", frozenset({"--json"}), frozenset({"-m", "--milestone", "--agent", "--lease"})),
    "release": ("task_id", frozenset({"--json"}), frozenset({"-m", "--milestone", "--agent"})),
    "done": ("task_id", frozenset({"--json"}), frozenset({"-m", "--milestone", "--agent"})),
}
WRITES = ("claim", "heartbeat", "release", "done")


def parse(argv: list[str]) -> dict[str, object] | None:
    """The daemon request ``argv`` means, with ``json`` for how to print it; None when it is anything
    this module does not understand as click would (the full path then parses it)."""
    if not argv or argv[0] not in GRAMMAR:
        return None
    command, rest = argv[0], argv[1:]
    positional, flags, options = GRAMMAR[command]
    found: dict[str, object] = {}
    i = 0
    while i < len(rest):
        token = rest[i]
        name, eq, value = token.partition("=")
        if token in flags and token not in found:
            found[token] = True
        elif token in options and token not in found and i + 1 < len(rest):
            i += 1
            found[token] = rest[i]
        elif eq and name.startswith("--") and name in options and name not in found:
            found[name] = value
        elif not token.startswith("-") and positional not in found:
            found[positional] = token
        else:
            return None  # --help, -C, a repeated option, -mM1, a second argument: click's to say
        i += 1
    named = [found.pop(key) for key in ("milestone", "-m", "--milestone") if key in found]
    if len(named) > 1:
        return None
    request: dict[str, object] = {"op": command, "json": found.pop("--json", False),
                                  "milestone": named[0] if named else None}
    if command == "next":
        if not found.pop("--claim", False):
            return request if not found else None  # --agent without --claim: an error, the full path's
        request["op"] = "claim"
    request.update({key.lstrip("-"): value for key, value in found.items()})
    if request["op"] in WRITES and not isinstance(request.get("agent"), str):
        return None
    return request


def answer(argv: list[str]) -> int | None:
    """Answer ``argv`` from the daemon and return the exit status, or None to let the full path run."""
    if os.environ.get("_MILESTONED_COMPLETE"):
        return None  # the shell asks click for completions
    request = parse(argv)
    if request is None:
        return None
    try:
        cwd = os.getcwd()
    except OSError:
        return None  # the directory is gone: the full path says so
    root, _worktree, _git_dir, common_dir = gitdirs.locate(cwd)  # the daemon checks the rest (an initialized checkout)
    as_json = bool(request.pop("json"))
    path = wire.socket_path_for(gitdirs.state_dir(root, common_dir))
    if request["op"] in WRITES:
        timeout = WRITE_TIMEOUT
        request["deadline"] = time.time() + WRITE_DEADLINE
    else:
        timeout = READ_TIMEOUT
    line = wire.exchange_line(path, {**request, "cwd": cwd}, timeout)
    try:
        if request["op"] == "status":
            return _status(line, as_json)
        return _printed(request["op"], wire.answer_of(line), as_json)  # type: ignore[arg-type]
    except BrokenPipeError:  # the reader took what it wanted (`| head -1`): not a failure
        answers.quiet_stdout()
        return 0
    except KeyboardInterrupt:
        answers.say(answers.INTERRUPTED, err=True)
        return 130


def _status(line: bytes | None, as_json: bool) -> int | None:
    found = wire.result_bytes(line)
    if found is None:
        return None
    raw, notes = found
    view = json.loads(raw) if not as_json or sys.stdout.isatty() else None
    if view is not None and "milestones" in view and not as_json:
        return None  # the overview: the full path also says what a fresh clone has not taken in
    for note in notes:
        answers.warn(note)
    if view is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(raw)
    elif as_json:
        answers.print_json(view)
    else:
        answers.status_warnings(view)
        answers.status_body(view)
    sys.stdout.flush()
    return 0


def _printed(op: str, data: dict[str, object] | None, as_json: bool) -> int | None:
    if data is None:
        return None
    result = data["result"]
    if not isinstance(result, dict):
        return None
    if op == "next":
        answers.ready(result, as_json)
    elif op == "claim":
        answers.claimed(result, as_json)
    elif op == "release":
        answers.released(result, as_json)
    elif op == "done":
        answers.completed(result, as_json)
    elif (lost := answers.renewed(result, as_json)) is not None:
        # start-up: only a lost claim is worded as an error
        from milestoned.core.errors import RuntimeFailure

        answers.say(f"milestoned: error: {RuntimeFailure(lost[0], hint=lost[1])}", err=True)
        return RuntimeFailure.exit_code
    return 0
