"""Writing the folded state back into the milestone file, touching only our fields.

We own ``status``, ``progress``, ``execution.started_at``/``session_id``,
``blockers``, ``completed_at`` and, per task, ``status``, ``started_at``,
``completed_at`` and ``agent``.  Everything else in the file is the user's: it is
left exactly as written (comments, order, quoting, unknown fields), because the
new values are spliced into the text (``yamledit``) rather than the document
re-dumped.  A value that already means the same thing (``active`` for
``in_progress``, a timestamp written differently) is not rewritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from milestoned import clock, yamlio
from milestoned.errors import RuntimeFailure, UserError
from milestoned.plan import Plan, normalize_status, read_plan
from milestoned.state import State, manual_edits
from milestoned.yamledit import Editor, scalar_value


def _status(ed: Editor, mapping: yaml.MappingNode, status: str, *, task: bool) -> None:
    node = ed.get(mapping, "status")
    if node is None or normalize_status(scalar_value(node), task=task) != status:
        ed.set(mapping, "status", status)


def _plain(ed: Editor, mapping: yaml.MappingNode, key: str, value: Any,
           meaning: Callable[[Any], Any] = lambda v: v) -> None:
    """Set, replace or drop one of our fields, unless it already means ``value``."""
    node = ed.get(mapping, key)
    current = meaning(scalar_value(node)) if node is not None else None
    if current == value or (value is None and current in (None, "")):
        return
    if value is None:
        ed.remove(mapping, key)
    else:
        ed.set(mapping, key, value)


def _time(ed: Editor, mapping: yaml.MappingNode, key: str, value: str | None) -> None:
    """A timestamp written another way (a YAML date, no ``Z``) means the same and stays."""
    _plain(ed, mapping, key, value, clock.normalize_time)


def _progress(ed: Editor, doc: yaml.MappingNode, state: State, indent: int) -> None:
    done, _, percentage = state.progress()
    wanted = {"percentage": percentage, "tasks_completed": done, "last_update": state.last_update}
    node = ed.get(doc, "progress")
    if isinstance(node, yaml.ScalarNode) and isinstance(scalar_value(node), (int, float)):
        _plain(ed, doc, "progress", percentage)  # the user keeps a bare number
    elif isinstance(node, yaml.MappingNode):
        _plain(ed, node, "percentage", percentage)
        _plain(ed, node, "tasks_completed", done)
        if state.last_update:
            _time(ed, node, "last_update", state.last_update)
    elif node is None:
        ed.set_block(doc, "progress", {k: v for k, v in wanted.items() if v is not None}, indent)
    else:
        ed.set(doc, "progress", {k: v for k, v in wanted.items() if v is not None})


def _execution(ed: Editor, doc: yaml.MappingNode, state: State, indent: int) -> None:
    wanted = {"started_at": state.started_at, "session_id": state.session_id}
    if not any(wanted.values()):
        return
    node = ed.get(doc, "execution")
    if isinstance(node, yaml.MappingNode):
        _time(ed, node, "started_at", state.started_at)
        if state.session_id:
            _plain(ed, node, "session_id", state.session_id)
    elif node is None:
        ed.set_block(doc, "execution", {k: v for k, v in wanted.items() if v}, indent)
    else:
        ed.set(doc, "execution", {k: v for k, v in wanted.items() if v})


def _blockers(ed: Editor, doc: yaml.MappingNode, state: State) -> None:
    node = ed.get(doc, "blockers")
    current = yaml.load(yaml.serialize(node, Dumper=yaml.SafeDumper), Loader=yamlio.SafeLoader) if node else None
    if (current or []) != state.blockers and (state.blockers or current):
        ed.set(doc, "blockers", state.blockers)


def project(text: str, plan: Plan, state: State) -> str | None:
    """The file's new text with ``state`` written in, or None when nothing would change."""
    ed = Editor(text)
    doc = ed.root
    indent = yamlio.guess_indent(text)[0]
    _status(ed, doc, state.status, task=False)
    _progress(ed, doc, state, indent)
    _execution(ed, doc, state, indent)
    _blockers(ed, doc, state)
    _time(ed, doc, "completed_at", state.completed_at)
    items = ed.get(doc, "tasks")
    items = items.value if isinstance(items, yaml.SequenceNode) else []
    for task in plan.tasks:
        if task.index >= len(items) or not isinstance(items[task.index], yaml.MappingNode):
            continue
        node, ts = items[task.index], state.tasks[task.id]
        _status(ed, node, ts.status, task=True)
        _time(ed, node, "started_at", ts.started_at)
        _time(ed, node, "completed_at", ts.completed_at)
        _plain(ed, node, "agent", ts.agent)
    if not ed.changed:
        return None
    new_text = ed.result()
    _check(new_text, plan, state)
    return new_text


def _check(text: str, plan: Plan, state: State) -> None:
    """Refuse to write a file that would not read back as ``state`` (a bug here, never the user's)."""
    try:
        reread, problems = read_plan(yamlio.parse(text, plan.path), plan.path)
    except UserError as exc:
        reread, problems = None, [exc]
    if problems or reread is None or manual_edits(reread, state):
        raise RuntimeFailure(
            "could not rewrite this file safely; it was left as it was (the event log has the change)",
            path=plan.path,
            hint="please report this with the file attached",
        )
