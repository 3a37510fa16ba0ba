"""Editing a JSON file a person wrote without reformatting it: one member put in or taken out.

``json.dumps`` would rewrite the whole file in its own style (its indentation, every object
spread over lines); here the rest of the text stays byte for byte, and what is added follows the
file's layout: on lines of its own at the file's indentation, or inline in an object written on
one line.  The text must parse already (``json.loads``): the scanner only finds where things are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_SPACE = " \t\r\n"
DEFAULT_INDENT = "  "


@dataclass(frozen=True)
class _Member:
    key: str
    start: int  # where its key starts
    value_start: int
    value_end: int  # just past its value


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _SPACE:
        i += 1
    return i


def _end_of_value(text: str, i: int) -> int:
    """Just past the value that starts at ``i``."""
    if text[i] == '"':
        i += 1
        while text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        return i + 1
    if text[i] in "{[":
        close, is_object = ("}", True) if text[i] == "{" else ("]", False)
        i = _skip(text, i + 1)
        while text[i] != close:
            if is_object:  # its key and the colon
                i = _skip(text, _skip(text, _end_of_value(text, i)) + 1)
            i = _skip(text, _end_of_value(text, i))
            if text[i] == ",":
                i = _skip(text, i + 1)
        return i + 1
    while i < len(text) and text[i] not in _SPACE + ",]}":  # a number, true, false or null
        i += 1
    return i


def _members(text: str, start: int) -> tuple[list[_Member], int]:
    """The members of the object whose ``{`` is at ``start``, and where its ``}`` is."""
    found: list[_Member] = []
    i = _skip(text, start + 1)
    while text[i] != "}":
        key_end = _end_of_value(text, i)
        value = _skip(text, _skip(text, key_end) + 1)
        end = _end_of_value(text, value)
        found.append(_Member(json.loads(text[i:key_end]), i, value, end))
        i = _skip(text, end)
        if text[i] == ",":
            i = _skip(text, i + 1)
    return found, i


def _line_indent(text: str, i: int) -> str:
    line = text[text.rfind("\n", 0, i) + 1:]
    return line[:len(line) - len(line.lstrip(" \t"))]


def _own_line(text: str, i: int) -> bool:
    return not text[text.rfind("\n", 0, i) + 1:i].strip()


def _unit(text: str) -> str | None:
    """The file's indentation step: that of the top object's first member; None when it is on the
    line of the ``{`` (an object written inline).  An empty object grows lines of two spaces."""
    members, _ = _members(text, _skip(text, 0))
    if not members:
        return DEFAULT_INDENT
    if not _own_line(text, members[0].start):
        return None
    return _line_indent(text, members[0].start) or DEFAULT_INDENT


def _dump(value: Any, unit: str | None, indent: str) -> str:
    if unit is None:
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, indent=unit, ensure_ascii=False).replace("\n", "\n" + indent)


def _find(text: str, path: Sequence[str]) -> tuple[int, list[_Member], int, _Member | None]:
    """The object holding ``path[-1]`` (where it starts, its members, its end) and that member, if there."""
    start = _skip(text, 0)
    for key in path[:-1]:
        members, _ = _members(text, start)
        step = next((m for m in members if m.key == key), None)
        if step is None or text[step.value_start] != "{":
            raise KeyError(key)
        start = step.value_start
    members, end = _members(text, start)
    return start, members, end, next((m for m in members if m.key == path[-1]), None)


def put(text: str, path: Sequence[str], value: Any) -> str:
    """``text`` with the member at ``path`` set to ``value`` (the objects on the way made as needed)."""
    unit = _unit(text)
    for depth in range(len(path), 0, -1):  # the deepest object on the path that is there
        try:
            start, members, end, member = _find(text, path[:depth])
        except KeyError:
            continue
        for key in reversed(path[depth:]):
            value = {key: value}
        if member is not None:
            dumped = _dump(value, unit, _line_indent(text, member.start))
            return text[:member.value_start] + dumped + text[member.value_end:]
        key = json.dumps(path[depth - 1], ensure_ascii=False)
        if members and (unit is None or not _own_line(text, members[-1].start)):
            at, entry = members[-1].value_end, f', {key}: {json.dumps(value, ensure_ascii=False)}'
        elif members:
            indent = _line_indent(text, members[-1].start)
            at, entry = members[-1].value_end, f",\n{indent}{key}: {_dump(value, unit, indent)}"
        elif unit is None:
            return text[:start + 1] + f"{key}: {json.dumps(value, ensure_ascii=False)}" + text[end:]
        else:
            outer = _line_indent(text, start)
            inner = outer + unit
            return text[:start + 1] + f"\n{inner}{key}: {_dump(value, unit, inner)}\n{outer}" + text[end:]
        return text[:at] + entry + text[at:]
    raise AssertionError("the top object is always there")  # depth 1 is the top object


def remove(text: str, path: Sequence[str]) -> str:
    """``text`` without the member at ``path`` (and the comma that went with it); as it is when absent."""
    try:
        start, members, end, member = _find(text, path)
    except KeyError:
        return text
    if member is None:
        return text
    index = members.index(member)
    if len(members) == 1:
        return text[:start + 1] + text[end:]
    if index > 0:  # from the end of the member before: its comma and line go with it
        return text[:members[index - 1].value_end] + text[member.value_end:]
    return text[:member.start] + text[members[1].start:]
