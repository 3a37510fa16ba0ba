"""Surgical edits of a YAML text: set, add or remove a few keys and leave every other byte.

The engine rewrites only the fields it owns in a file a person wrote.  Rather than
re-dumping the whole document (ruamel's round trip takes ~15 s on a 10,000-task
file and re-spaces lines), we find the nodes with libyaml's C parser, which reports
where each node starts and ends, and splice new values into the text.  Quoting
style is kept for changed scalars; new keys go after the mapping's last entry at its
own indentation (or before the ``}`` of a flow mapping).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from milestoned.files.yamlread import SafeLoader

_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/+-]*$")


class EditError(Exception):
    """The text has a shape the editor does not handle; the caller falls back."""


def render_scalar(value: Any, style: str | None = None) -> str:
    """A YAML scalar for ``value``, in the quoting ``style`` of the value it replaces."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)  # JSON is flow YAML
    text = str(value)
    if style == "'":
        return "'" + text.replace("'", "''") + "'"
    if style != '"' and _PLAIN_SAFE.match(text):
        loaded = yaml.load(text, Loader=SafeLoader)  # noqa: S506 - a safe loader
        if loaded == text:
            return text
    return json.dumps(text, ensure_ascii=False)


def scalar_value(node: yaml.Node) -> Any:
    """The Python value of a scalar node (None for anything else)."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    return yaml.constructor.SafeConstructor().construct_object(node)


class Editor:
    def __init__(self, text: str) -> None:
        self.text = text
        try:
            root = yaml.compose(text, Loader=SafeLoader)
        except yaml.YAMLError as exc:  # pragma: no cover - the plan was parsed just before
            raise EditError(str(exc)) from None
        if not isinstance(root, yaml.MappingNode):
            raise EditError("the document is not a mapping")
        self.root: yaml.MappingNode = root
        self._edits: list[tuple[int, int, str]] = []
        self._additions: dict[int, tuple[yaml.MappingNode, list[tuple[str, str]]]] = {}

    # -- reading --------------------------------------------------------------------
    @staticmethod
    def entry(mapping: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
        for key_node, value_node in mapping.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return key_node, value_node
        return None

    def get(self, mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
        found = self.entry(mapping, key)
        return found[1] if found else None

    # -- writing --------------------------------------------------------------------
    def set(self, mapping: yaml.MappingNode, key: str, value: Any) -> None:
        """Replace the value of ``key`` (keeping its quoting), or add ``key`` at the end."""
        found = self.entry(mapping, key)
        if found is None:
            self._add(mapping, key, render_scalar(value))
            return
        key_node, node = found
        if isinstance(node, yaml.ScalarNode) and node.style not in ("|", ">") and (node.value or node.style):
            style = node.style if node.style in ('"', "'") else None
            self._edits.append((node.start_mark.index, node.end_mark.index, render_scalar(value, style)))
        elif getattr(node, "flow_style", False):
            self._edits.append((node.start_mark.index, node.end_mark.index, render_scalar(value)))
        else:  # an empty value, a block scalar or a block collection: the new value joins the key's line
            colon = self.text.index(":", key_node.end_mark.index)
            empty = isinstance(node, yaml.ScalarNode) and not node.value
            end = colon + 1 if empty else self._content_end(node)
            self._edits.append((colon + 1, end, " " + render_scalar(value)))

    def set_block(self, mapping: yaml.MappingNode, key: str, values: dict[str, Any], indent: int) -> None:
        """Add ``key`` with a nested block mapping of ``values`` (for a section that is missing)."""
        column = self._key_column(mapping)
        if column is None:  # a flow mapping: nest a flow mapping
            self._add(mapping, key, "{" + ", ".join(f"{k}: {render_scalar(v)}" for k, v in values.items()) + "}")
            return
        pad = " " * (column + indent)
        body = "".join(f"\n{pad}{k}: {render_scalar(v)}" for k, v in values.items())
        self._add(mapping, key, body, block=True)

    def remove(self, mapping: yaml.MappingNode, key: str) -> None:
        """Drop ``key``: its lines in a block mapping, else its value becomes null."""
        found = self.entry(mapping, key)
        if found is None:
            return
        key_node, value_node = found
        line_start = self.text.rfind("\n", 0, key_node.start_mark.index) + 1
        if self.text[line_start:key_node.start_mark.index].strip() or mapping.flow_style:
            self.set(mapping, key, None)
            return
        self._edits.append((line_start, self._after_line(self._content_end(value_node)), ""))

    def result(self) -> str:
        edits = list(self._edits)
        for mapping, additions in self._additions.values():
            edits.append(self._insertion(mapping, additions))
        text = self.text
        for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
            text = text[:start] + replacement + text[end:]
        return text

    @property
    def changed(self) -> bool:
        return bool(self._edits or self._additions)

    # -- positions --------------------------------------------------------------------
    def _add(self, mapping: yaml.MappingNode, key: str, rendered: str, *, block: bool = False) -> None:
        entry = self._additions.setdefault(id(mapping), (mapping, []))
        entry[1].append((key, rendered if block else " " + rendered))

    def _key_column(self, mapping: yaml.MappingNode) -> int | None:
        if mapping.flow_style:
            return None
        if mapping.value:
            first_key: yaml.Node = mapping.value[0][0]
            return first_key.start_mark.column
        return mapping.start_mark.column

    def _content_end(self, node: yaml.Node) -> int:
        """Where a node's own text ends (block collections end at their last leaf)."""
        if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
            return self._content_end(node.value[-1][1])
        if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
            return self._content_end(node.value[-1])
        end = node.end_mark.index
        if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
            while end > node.start_mark.index and self.text[end - 1] in " \n\r\t":
                end -= 1
        return end

    def _after_line(self, index: int) -> int:
        newline = self.text.find("\n", index)
        return len(self.text) if newline < 0 else newline + 1

    def _insertion(self, mapping: yaml.MappingNode, additions: list[tuple[str, str]]) -> tuple[int, int, str]:
        column = self._key_column(mapping)
        if column is None:
            close = self.text.rfind("}", 0, mapping.end_mark.index)
            inner = self.text[mapping.start_mark.index + 1:close].strip()
            items = ", ".join(f"{k}:{v}" for k, v in additions)
            return close, close, (", " if inner else "") + items
        if not mapping.value:
            raise EditError("cannot add to an empty block mapping")
        at = self._after_line(self._content_end(mapping.value[-1][1]))
        lines = "".join(f"{' ' * column}{k}:{v}\n" for k, v in additions)
        if at == len(self.text) and not self.text.endswith("\n"):
            return at, at, "\n" + lines.rstrip("\n")
        return at, at, lines
