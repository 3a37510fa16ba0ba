"""Rewriting a YAML file a person wrote without disturbing it: ruamel's round trip, tamed.

Plan edits (``task add``) load the file in ruamel.yaml's round-trip mode and dump it
told the file's own indentation (``guess_indent``), so that comments, key order,
quoting and unknown fields survive; lines the dumper only re-spaced are put back as
they were.  The readable copy with the state filled in (``model.projection``) splices
values into the text instead (``yamlsplice``), far faster, and shares ``guess_indent``.
"""

from __future__ import annotations

import difflib
import io
import re
from typing import Any

from ruamel.yaml import YAML

_KEY_LINE = re.compile(r"^( *)[^\s#-][^:#]*:\s*(#.*)?$")
_ITEM_LINE = re.compile(r"^( *)-( +)\S")
_ANY_LINE = re.compile(r"^( *)\S")


def guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping indent, sequence indent, dash offset) as this file was written."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    mapping = sequence = offset = None
    for here, after in zip(lines, lines[1:]):
        key = _KEY_LINE.match(here)
        if not key:
            continue
        parent = len(key.group(1))
        item = _ITEM_LINE.match(after)
        if item and sequence is None:
            offset = len(item.group(1)) - parent
            sequence = offset + 1 + len(item.group(2))
        elif not item and mapping is None:
            child = _ANY_LINE.match(after)
            if child and len(child.group(1)) > parent:
                mapping = len(child.group(1)) - parent
        if mapping is not None and sequence is not None:
            break
    mapping = mapping or 2
    if sequence is None:
        offset, sequence = 0, mapping
    return mapping, max(sequence, (offset or 0) + 2), offset or 0


def _round_trip() -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096
    return rt


def rt_load(text: str) -> Any:
    return _round_trip().load(text)


def rt_dump(document: Any, original_text: str) -> str:
    rt = _round_trip()
    mapping, sequence, offset = guess_indent(original_text)
    rt.indent(mapping=mapping, sequence=sequence, offset=offset)
    out = io.StringIO()
    rt.dump(document, out)
    text = _keep_untouched_lines(original_text, out.getvalue())
    if not original_text.endswith("\n"):
        text = text.rstrip("\n")
    return text


def _keep_untouched_lines(before: str, after: str) -> str:
    """Put back lines the dumper only re-spaced (trailing blanks, spacing before comments)."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    if len(old) == len(new):  # values changed in place: the common case, linear
        return "".join(o if _same_but_spacing(o, n) else n for o, n in zip(old, new))
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes():
        if op == "replace" and i2 - i1 == j2 - j1:
            out += [o if _same_but_spacing(o, n) else n for o, n in zip(old[i1:i2], new[j1:j2])]
        else:
            out += new[j1:j2]
    return "".join(out)


def _same_but_spacing(old: str, new: str) -> bool:
    return old.split() == new.split()
