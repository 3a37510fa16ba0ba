"""The plan with its state filled in: the document the seed's ``yq`` readers expect.

It is never written into the working tree (the plan there is the user's); it is what
``status --format yaml`` prints and what the state branch keeps as
``milestones/<id>.yaml``.  The seed's fields are filled: ``status``, ``progress``,
``execution.started_at``/``session_id``, ``blockers``, ``completed_at`` and, per task,
``status``, ``started_at``, ``completed_at`` and ``agent``.  Everything else reads as the
user wrote it (comments, order, quoting, unknown fields), because the values are
spliced into the text (``yamledit``) rather than the document re-dumped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from milestoned.core import clock
from milestoned.core.errors import UserError
from milestoned.files import yamlread as yamlio
from milestoned.files.yamlroundtrip import guess_indent
from milestoned.files.yamlsplice import EditError, Editor, scalar_value
from milestoned.model.milestone import Milestone
from milestoned.model.plan import normalize_status, read_plan
from milestoned.model.state import file_statuses


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


def _progress(ed: Editor, doc: yaml.MappingNode, milestone: Milestone, indent: int) -> None:
    done, _, percentage = milestone.progress()
    state = milestone.state
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


def _execution(ed: Editor, doc: yaml.MappingNode, milestone: Milestone, indent: int) -> None:
    state = milestone.state
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


def _blockers(ed: Editor, doc: yaml.MappingNode, milestone: Milestone) -> None:
    node = ed.get(doc, "blockers")
    current = yaml.load(yaml.serialize(node, Dumper=yaml.SafeDumper), Loader=yamlio.SafeLoader) if node else None
    if (current or []) != milestone.blockers and (milestone.blockers or current):
        ed.set(doc, "blockers", milestone.blockers)


def project(milestone: Milestone) -> str:
    """The plan's text with the state written in (the text itself when nothing differs)."""
    text, plan, state = milestone.plan.text, milestone.plan, milestone.state
    ed = Editor(text)
    doc = ed.root
    indent = guess_indent(text)[0]
    _status(ed, doc, milestone.status, task=False)
    _progress(ed, doc, milestone, indent)
    _execution(ed, doc, milestone, indent)
    _blockers(ed, doc, milestone)
    _time(ed, doc, "completed_at", state.completed_at if milestone.status == "completed" else None)
    tasks_node = ed.get(doc, "tasks")
    items: list[yaml.Node] = tasks_node.value if isinstance(tasks_node, yaml.SequenceNode) else []
    for task in plan.tasks:
        if task.index >= len(items):
            continue
        node = items[task.index]
        if not isinstance(node, yaml.MappingNode):
            continue
        ts = state.task(task.id)
        _status(ed, node, ts.status, task=True)
        _time(ed, node, "started_at", ts.started_at)
        _time(ed, node, "completed_at", ts.completed_at)
        _plain(ed, node, "agent", ts.agent)
    if not ed.changed:
        return text
    new_text = ed.result()
    _check(new_text, milestone)
    return new_text


def document(milestone: Milestone) -> str:
    """``project``, or where the plan's shape defeats splicing, the same fields dumped plainly."""
    try:
        return project(milestone)
    except (EditError, _Unfaithful):
        data = yaml.load(milestone.plan.text, Loader=yamlio.SafeLoader)
        data["status"] = milestone.status
        done, _, percentage = milestone.progress()
        data["progress"] = {"percentage": percentage, "tasks_completed": done}
        for raw, task in zip(data.get("tasks") or [], milestone.plan.tasks):
            if isinstance(raw, dict):
                raw["status"] = milestone.state.task(task.id).status
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


class _Unfaithful(Exception):
    """A projection that would not read back as the state: a bug here, never the user's."""


def _check(text: str, milestone: Milestone) -> None:
    path = milestone.path
    try:
        reread, problems = read_plan(yamlio.parse(text, path), path)
    except UserError:
        raise _Unfaithful(str(path)) from None
    wanted = {"": milestone.status, **milestone.statuses}
    if problems or reread is None or file_statuses(reread) != wanted:
        raise _Unfaithful(str(path))
