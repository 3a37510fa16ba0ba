"""Reading YAML fast and safely.

Reads use libyaml's C loader (the round-trip parser costs ~9x more on big files);
hostile input (binary, huge files, alias bombs) is refused before it costs us.
Line numbers are only needed when something is wrong, so they are found afterwards
by composing the document again (``locate``), keeping the common path fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from milestoned.core.errors import UserError

SafeLoader: type[yaml.CSafeLoader] | type[yaml.SafeLoader]
try:  # libyaml is in every pyyaml wheel; fall back to pure Python where it is not
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader

MAX_FILE_BYTES = 16 * 1024 * 1024
# an alias may expand the document to at most this many times its distinct nodes
MAX_ALIAS_EXPANSION = 20
KeyPath = Sequence[str | int]


def read_text(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file's text, refusing what cannot be a YAML document a person wrote."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UserError(
                f"file is {size / 1048576:.1f} MB, over the {max_bytes // 1048576} MB limit",
                path=path,
                hint="split the milestone into smaller ones",
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError("no such file", path=path) from None
    except IsADirectoryError:
        raise UserError("is a directory, not a file", path=path) from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise UserError("binary data, not YAML text", path=path, line=line, hint="restore the file from git")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError("not UTF-8 text", path=path, line=line, hint="save the file as UTF-8") from None


def load(path: Path, *, allow_empty: bool = False) -> tuple[Any, str]:
    """Parse ``path`` with the C loader: (data, text).  Every failure is a ``UserError``."""
    text = read_text(path)
    return parse(text, path, allow_empty=allow_empty), text


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, path: Path) -> UserError:
    """The line to look at: where the problem is, or, when libyaml only found out at the end of the
    file (a quote or bracket never closed), where the thing it was reading began."""
    mark, problem = exc.problem_mark or exc.context_mark, (exc.problem or exc.context or "invalid YAML").strip()
    at_end = mark is not None and mark.index >= len(text.rstrip())
    if at_end and exc.context_mark is not None and exc.context:
        mark, problem = exc.context_mark, f"{exc.context.strip()} that starts here, {problem}"
    last_line = text.count("\n") + (0 if text.endswith("\n") else 1)
    line = min(mark.line + 1, max(last_line, 1)) if mark else None
    return UserError(f"YAML syntax error: {problem}", path=path, line=line, hint="fix the YAML syntax")


def parse(text: str, path: Path, *, allow_empty: bool = False) -> Any:
    try:
        data = yaml.load(text, Loader=SafeLoader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text, path) from None
    except yaml.YAMLError as exc:
        raise UserError(f"YAML error: {exc}", path=path, hint="fix the YAML syntax") from None
    except RecursionError:
        raise UserError("YAML nested too deeply", path=path, hint="flatten the document") from None
    if data is None and not allow_empty:
        raise UserError("file is empty", path=path, line=1, hint="write the milestone's id, title and tasks")
    if "&" in text and "*" in text:  # no anchor or no alias: nothing to expand (a 20,000-task plan skips the walk)
        _check_alias_expansion(data, path)
    return data


def _check_alias_expansion(data: Any, path: Path) -> None:
    """Refuse alias bombs: a document whose expanded size dwarfs its distinct nodes.

    The loader shares one object per anchor, so loading is cheap; anything that walks
    the result (validation, JSON output) would pay the expansion.  Sizes are computed
    once per distinct object, so this check costs O(distinct nodes).
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, (dict, list)) or (id(node) in sizes and not children_done):
            continue
        children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
        if children_done:
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, (dict, list)) and id(c) not in sizes)
    if not isinstance(data, (dict, list)):
        return
    distinct = len(sizes) + 1
    if sizes[id(data)] > MAX_ALIAS_EXPANSION * distinct + 10_000:
        raise UserError(
            "YAML aliases expand the document beyond reason (an alias bomb?)",
            path=path,
            hint="replace the nested aliases with plain values",
        )


def shown(value: Any) -> str:
    """A value the way YAML writes it inline (``true``, ``[a, b]``, ``{}``; text quoted), for a message
    about what a file holds: the user reads back what they wrote, not Python's spelling of it."""
    if isinstance(value, str):
        return repr(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip()
    return text.removesuffix("...").strip()  # a lone scalar ends the document with "..."


def locate(text: str, keypath: KeyPath, *, key: bool = False) -> int | None:
    """1-based line of the node at ``keypath`` (or of its nearest existing parent); with ``key``,
    of the key that names it (a block mapping's value starts on the line after its key)."""
    try:
        node = yaml.compose(text, Loader=SafeLoader)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for depth, part in enumerate(keypath):
        last = depth == len(keypath) - 1
        child = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    child = v if not isinstance(v, yaml.ScalarNode) or v.value else k
                    if key and last:
                        child = k
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line
