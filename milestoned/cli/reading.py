"""Read commands: status, events, graph.  Each has ``--json`` with a stable schema (``next`` is in ``claims``)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from milestoned.cli import answers
from milestoned.cli.base import (
    cli,
    complete_tasks,
    json_option,
    milestone_argument,
    note_unfetched_state,
    open_engine,
    print_json,
    say,
    wait_unless_reader_gone,
    warn,
)

if TYPE_CHECKING:
    from milestoned.engine.engine import Engine
    from milestoned.model.events import Event


def _status_view(engine: Engine, milestone: str | None) -> dict[str, Any]:
    """From the daemon when one answers, else from the files: the same view either way."""
    # start-up: loaded only when this command runs
    from milestoned.daemon import client
    from milestoned.engine import blockers
    from milestoned.model import views

    answer = client.status(engine.ws, milestone)
    if answer is not None:
        return answer.view()
    if milestone is None and engine.current_id() is None:
        return views.overview(engine)
    # no daemon watches: the cheap detectors look now (an unmerged path, a resolved failure)
    return views.status(blockers.quick_look(engine, engine.load(engine.resolve(milestone))))


def _say_what_awaits_trust(engine: Engine) -> None:
    """A test command that arrived in config.yaml and waits for `milestoned trust` (the daemon won't run it)."""
    if not engine.ws.config_path.is_file():
        return
    # start-up: only a repository with a config reads it
    from milestoned.engine import trust

    for note in trust.status_notes(engine.ws):
        warn(note)


@cli.command()
@milestone_argument
@json_option
@click.option("--format", "fmt", type=click.Choice(["yaml"]), default=None,
              help="yaml: the plan with the state filled in, for the seed's yq readers.")
@click.option("--watch", is_flag=True, help="Keep the dashboard on screen, updated as things change.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between updates with --watch.")
def status(milestone: str | None, as_json: bool, fmt: str | None, watch: bool, interval: float) -> None:
    """Where a milestone stands: progress, tasks, active agents, recent events.

    Without MILESTONE: the current one, or an overview of all milestones.
    """
    # start-up: loaded only when this command runs
    from milestoned.cli import render

    engine = open_engine()
    _say_what_awaits_trust(engine)
    if fmt == "yaml":
        # start-up: loaded only when this command runs
        from milestoned.core.errors import UserError
        from milestoned.model import projection

        if as_json or watch:
            raise UserError("--format yaml prints a document once", hint="drop --json and --watch")
        sys.stdout.write(projection.document(engine.load(engine.resolve(milestone))))
        return
    if as_json and not watch and not sys.stdout.isatty():
        # start-up: loaded only when this command runs
        from milestoned.daemon import client

        answer = client.status(engine.ws, milestone)
        if answer is not None:  # the daemon's bytes are what print_json would write: pass them through
            sys.stdout.flush()
            sys.stdout.buffer.write(answer.raw)
            return
    if watch and (as_json or not sys.stdout.isatty()):
        _follow_changes(engine, milestone, interval, as_json)
        return
    view = _status_view(engine, milestone)
    if as_json:
        print_json(view)
        return
    if "milestones" in view:
        for line in render.overview_lines(view):
            say(line)
        note_unfetched_state(engine)
        return
    answers.status_warnings(view)
    if watch:
        _watch(engine, milestone, interval)
    else:
        answers.status_body(view)


def _follow_changes(engine: Engine, milestone: str | None, interval: float, as_json: bool) -> None:
    """``status --watch`` for a program: a line (or, with ``--json``, one JSON object) each time the
    state changes, until interrupted or the reader goes away."""
    # start-up: loaded only when this command runs
    from milestoned.cli import render
    from milestoned.core.jsonout import json_text

    milestone = milestone or engine.current_id()  # the one watched, even once it is no longer current
    last = None
    try:
        while True:
            view = _status_view(engine, milestone)
            if view != last:
                text = json_text(view, pretty=False) if as_json else render.change_line(view) + "\n"
                sys.stdout.write(text)
                sys.stdout.flush()
                last = view
            if wait_unless_reader_gone(interval):
                return
    except KeyboardInterrupt:
        pass


def _watch(engine: Engine, milestone: str | None, interval: float) -> None:
    # start-up: rich costs ~35 ms, and only a terminal needs it
    from rich.console import Console
    from rich.live import Live

    # start-up: loaded only when this command runs
    from milestoned.cli import render

    console = Console()
    with Live(console=console, auto_refresh=False) as live:
        try:
            while True:
                live.update(render.status_rich(_status_view(engine, milestone)), refresh=True)
                time.sleep(interval)
        except KeyboardInterrupt:
            pass


@cli.command()
@milestone_argument
@json_option
@click.option("--event", "names", multiple=True, help="Only these event names (repeatable).")
@click.option("--task", "task_id", default=None, shell_complete=complete_tasks, help="Only events about this task.")
@click.option("-n", "--limit", default=50, show_default=True, help="At most this many, the most recent (0: all).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events as they are logged.")
def events(milestone: str | None, as_json: bool, names: tuple[str, ...], task_id: str | None, limit: int,
           follow: bool) -> None:
    """The milestone's event log, oldest first."""
    # start-up: loaded only when this command runs
    from milestoned.cli import render
    from milestoned.core.errors import display_path
    from milestoned.model import events as eventlog

    engine = open_engine()
    mid = engine.resolve(milestone)
    engine.path_of(mid)
    path = engine.ws.log_path(mid)

    def keep(event: Event) -> bool:
        name = event.get("event", event.get("event_type"))
        return (not names or name in names) and (task_id is None or event.get("task_id") == task_id)

    answer = None
    if not follow:
        # start-up: loaded only when this command runs
        from milestoned.daemon import client

        answer = client.ask(engine.ws, "events", milestone=mid, names=list(names), task_id=task_id, limit=limit)
    if answer is not None:  # the daemon keeps the recent events in memory
        for line, why in answer["problems"]:
            warn(f"{display_path(path)}:{line}: {why} (line skipped)")
        chosen = answer["result"]["events"]
    else:
        log = eventlog.read(path)
        for line, why in log.problems:
            warn(f"{display_path(path)}:{line}: {why} (line skipped)")
        chosen = [e for e in log.events if keep(e)]
        chosen = chosen[-limit:] if limit else chosen
    if as_json and not follow:
        print_json({"schema": 1, "milestone_id": mid, "events": chosen})
        return
    emit: Callable[[Event], None] = (lambda e: say(json.dumps(e, ensure_ascii=False))) if as_json \
        else (lambda e: say(render.event_line(e)))
    for event in chosen:
        emit(event)
    if follow:
        _follow(path, keep, emit)


def _follow(path: Path, keep: Callable[[Event], bool], emit: Callable[[Event], None]) -> None:
    # start-up: loaded only when this command runs
    from milestoned.model import events as eventlog

    offset = path.stat().st_size if path.exists() else 0
    try:
        while not wait_unless_reader_gone(0.2):
            if not path.exists():
                continue
            size = path.stat().st_size
            if size < offset:  # replaced by a merge: start over from its end
                offset = size
                continue
            if size == offset:
                continue
            with path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
            cut = data.rfind(b"\n") + 1
            offset += cut
            for event in eventlog.parse_lines(data[:cut]).events:
                if keep(event):
                    emit(event)
    except KeyboardInterrupt:
        pass


@cli.command()
@milestone_argument
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@json_option
def graph(milestone: str | None, fmt: str, as_json: bool) -> None:
    """The task dependency graph, done and blocked tasks marked (--json: nodes with status, and edges)."""
    # start-up: loaded only when this command runs
    from milestoned.cli import render
    from milestoned.model import views

    engine = open_engine()
    loaded = engine.load(engine.resolve(milestone))
    if as_json:
        print_json(views.graph_view(loaded))
        return
    view = views.status(loaded, recent=0)
    sys.stdout.write(render.mermaid(view) if fmt == "mermaid" else render.dot(view))
