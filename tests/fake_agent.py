"""A small fake coding agent for the runner's tests: it edits files where it runs, then exits.

Its flags say what to do, so one script stands in for every kind of task: record the
argv it got (to prove a prompt arrives as one argument and no shell ran), note when it
ran (to prove tasks overlap), append to a marker file (to count runs), write files,
wait, print lines, fail.  With ``--prompt`` it behaves like an agent: it appends the
prompt to ``NOTES.md`` in its working directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _append(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompt", help="the task's prompt: appended to NOTES.md")
    parser.add_argument("--task", default=os.environ.get("MILESTONED_TASK_ID", "?"))
    parser.add_argument("--workdir", help="checked: must be the directory it runs in")
    parser.add_argument("--record-argv", metavar="FILE", help="append argv and cwd as one JSON line")
    parser.add_argument("--spans", metavar="FILE", help="append {task, start, end} as one JSON line")
    parser.add_argument("--marker", metavar="FILE", help="append the task id when starting")
    parser.add_argument("--pid-file", metavar="FILE", help="write this process's pid")
    parser.add_argument("--write", nargs=2, action="append", default=[], metavar=("PATH", "TEXT"))
    parser.add_argument("--say", action="append", default=[], help="print this line")
    parser.add_argument("--lines", type=int, default=0, help="print this many numbered lines")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--hold", metavar="FILE", help="wait (at most a minute) until FILE exists")
    parser.add_argument("--exit", type=int, default=0, dest="status")
    args = parser.parse_args(argv)

    start = time.time()
    if args.record_argv:
        _append(args.record_argv, json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd()}) + "\n")
    if args.workdir is not None and os.path.realpath(args.workdir) != os.path.realpath(os.getcwd()):
        print(f"fake_agent: workdir {args.workdir} is not where I run ({os.getcwd()})", file=sys.stderr)
        return 9
    if args.marker:
        _append(args.marker, args.task + "\n")
    if args.pid_file:
        Path(args.pid_file).write_text(str(os.getpid()))
    for path, text in args.write:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + "\n", encoding="utf-8")
    if args.prompt is not None:
        with open("NOTES.md", "a", encoding="utf-8") as notes:
            notes.write(args.prompt + "\n")
    for line in args.say:
        print(line)
    for number in range(1, args.lines + 1):
        print(f"line {number}")
    sys.stdout.flush()
    deadline = time.monotonic() + 60
    while args.hold and not os.path.exists(args.hold) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(args.sleep)
    if args.spans:
        _append(args.spans, json.dumps({"task": args.task, "start": start, "end": time.time()}) + "\n")
    return args.status


if __name__ == "__main__":
    raise SystemExit(main())
