"""Human output: the seed's dashboard, as a rich panel on a terminal, plain lines elsewhere.

Everything here reads the plain-data views (``views``), so what a person sees and
what ``--json`` says cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from milestoned.core import clock
from milestoned.core.text import bar, visible
from milestoned.model.statuses import STATUS_STYLE, describe

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.panel import Panel



def event_line(event: dict[str, Any]) -> str:
    skip = {"id", "clock", "timestamp", "event", "milestone_id", "session_id", "tasks"}
    detail = " ".join(f"{k}={v}" for k, v in event.items() if k not in skip and not isinstance(v, (dict, list)))
    name = event.get("event", event.get("event_type", "?"))
    return visible(f"{event.get('timestamp', '')} {name} {detail}".rstrip())


def status_lines(view: dict[str, Any]) -> Iterable[str]:
    m = view["milestone"]
    p = m["progress"]
    yield f"{m['id']} — {visible(m['title'])}"
    yield (f"status: {m['status']}   progress: {p['percentage']}% ({p['tasks_completed']}/{p['tasks_total']} tasks)"
           + (f"   session: {m['session_id']}" if m.get("session_id") else ""))
    for blocker in m.get("blockers") or []:
        yield f"blocker: {describe(blocker)}"
    width = max((len(t["id"]) for t in view["tasks"]), default=4)
    for t in view["tasks"]:
        extra = []
        if t["agent"]:
            extra.append(f"agent={t['agent']}")
        if t["ready"]:
            extra.append("ready")
        if t["blocker"]:
            extra.append(f"blocked: {t['blocker'].get('reason', '')}")
        if t["output"] and t["status"] in ("in_progress", "blocked"):
            extra.append(f"log={t['output']}")
        yield (f"  {t['id']:<{width}}  {t['status']:<11}  {visible(t['title'])}"
               + (f"  [{visible('; '.join(extra))}]" if extra else ""))
    agents = view.get("active_agents") or []
    yield f"active agents: {', '.join(agents) if agents else 'none'}"
    if view.get("recent_events"):
        yield "recent events:"
        for event in view["recent_events"][-5:]:
            yield "  " + event_line(event)


def status_rich(view: dict[str, Any]) -> Panel:
    """The dashboard as a rich renderable (a panel with a progress bar and a task table)."""
    # start-up: rich costs ~35 ms, and only a terminal needs it
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    m = view["milestone"]
    p = m["progress"]
    head = Text.assemble(
        ("status ", "bold"), (m["status"], STATUS_STYLE.get(m["status"], "")),
        f"   {p['percentage']}% ({p['tasks_completed']}/{p['tasks_total']} tasks)",
        f"   session {m['session_id']}" if m.get("session_id") else "",
    )
    filled, rest = bar(p["tasks_completed"], p["tasks_total"])
    progress = Text.assemble((filled, "green"), (rest, "grey50"))  # a line of its own, glyphs that read uncoloured
    table = Table(expand=True, show_edge=False)
    for column in ("task", "status", "title", "agent", "depends on"):
        table.add_column(column)
    for t in view["tasks"]:
        status = Text(t["status"] + (" (ready)" if t["ready"] else ""), STATUS_STYLE.get(t["status"], ""))
        table.add_row(t["id"], status, visible(t["title"]), visible(t["agent"] or ""), ", ".join(t["dependencies"]))
    parts: list[RenderableType] = [head, progress]
    for blocker in m.get("blockers") or []:
        parts.append(Text(f"blocker: {describe(blocker)}", "red"))
    parts.append(table)
    agents = view.get("active_agents") or []
    parts.append(Text(f"active agents: {', '.join(agents) if agents else 'none'}"))
    if view.get("recent_events"):
        parts.append(Text("recent events:", "bold"))
        parts.extend(Text("  " + event_line(e), "dim") for e in view["recent_events"][-5:])
    return Panel(Group(*parts), title=f"{m['id']} — {visible(m['title'])}", title_align="left")


def change_line(view: dict[str, Any]) -> str:
    """One line of ``status --watch`` when piped: when, what stands where, what is ready or stuck."""
    if "milestones" in view:
        shown = ", ".join(f"{m['id']} {m['status']} {m['progress']['percentage']}%" for m in view["milestones"])
        return f"{clock.now_iso()} {visible(shown) or 'no milestones'}"
    m, p = view["milestone"], view["milestone"]["progress"]
    running = [t["id"] for t in view["tasks"] if t["status"] == "in_progress"]
    blocked = [t["id"] for t in view["tasks"] if t["status"] == "blocked"]
    parts = [f"{clock.now_iso()} {m['id']} {m['status']} {p['percentage']}% ({p['tasks_completed']}/{p['tasks_total']})"]
    parts += [f"{label}: {', '.join(ids)}" for label, ids in (("running", running), ("blocked", blocked),
                                                               ("ready", view["ready"])) if ids]
    return "  ".join(parts)


def overview_lines(view: dict[str, Any]) -> Iterable[str]:
    if not view["milestones"] and not view["errors"]:
        yield "no milestones yet: create one with `milestoned new ID --title ...`"
    for m in view["milestones"]:
        mark = "*" if m["id"] == view.get("current") else " "
        p = m["progress"]
        yield f"{mark} {m['id']:<24} {m['status']:<11} {p['percentage']:>3}% ({p['tasks_completed']}/{p['tasks_total']})  {visible(m['title'])}"
    for error in view["errors"]:
        yield f"! {error}"


def mermaid(view: dict[str, Any]) -> str:
    node = {t["id"]: f"t{i}" for i, t in enumerate(view["tasks"])}
    lines = ["graph TD"]
    for t in view["tasks"]:
        label = f"{t['id']}: {visible(t['title'])}".replace('"', "#quot;")
        lines.append(f'    {node[t["id"]]}["{label}"]:::{t["status"]}')
    for t in view["tasks"]:
        for dep in t["dependencies"]:
            lines.append(f"    {node[dep]} --> {node[t['id']]}")
    lines += [
        "    classDef completed fill:#c8f7c5,stroke:#2e7d32;",
        "    classDef blocked fill:#ffcdd2,stroke:#c62828;",
        "    classDef in_progress fill:#bbdefb,stroke:#1565c0;",
        "    classDef pending fill:#eeeeee,stroke:#9e9e9e;",
    ]
    return "\n".join(lines) + "\n"


def dot(view: dict[str, Any]) -> str:
    colors = {"completed": "palegreen", "blocked": "lightcoral", "in_progress": "lightblue", "pending": "white"}
    lines = [f'digraph "{view["milestone"]["id"]}" {{', "    rankdir=LR;", "    node [shape=box, style=filled];"]
    for t in view["tasks"]:
        title = visible(t["title"]).replace("\\", "\\\\").replace('"', '\\"')
        label = f"{t['id']}\\n{title}"
        lines.append(f'    "{t["id"]}" [label="{label}", fillcolor={colors[t["status"]]}];')
    for t in view["tasks"]:
        for dep in t["dependencies"]:
            lines.append(f'    "{dep}" -> "{t["id"]}";')
    lines.append("}")
    return "\n".join(lines) + "\n"
