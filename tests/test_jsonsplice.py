"""A member put into a JSON file a person wrote, and taken out again, leaves the rest of its text as it was."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from milestoned.files import jsonsplice

PATH = ("mcpServers", "milestoned")
ENTRY = {"type": "stdio", "command": "milestoned", "args": ["mcp"]}

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) |
                      st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
servers = st.dictionaries(st.text(max_size=6).filter(lambda k: k != "milestoned"), values, max_size=3)
documents = st.fixed_dictionaries({}, optional={"mcpServers": servers, "other": values})
layouts = st.sampled_from([None, 2, 4, "\t"])


def written(data: dict[str, Any], indent: int | str | None) -> str:
    return json.dumps(data, indent=indent, ensure_ascii=False) + ("\n" if indent is not None else "")


@given(documents, layouts)
def test_put_sets_the_member_and_remove_gives_the_text_back(data: dict[str, Any], indent: int | str | None) -> None:
    text = written(data, indent)
    put = jsonsplice.put(text, PATH, ENTRY)
    assert json.loads(put) == {**data, "mcpServers": {**data.get("mcpServers", {}), "milestoned": ENTRY}}
    back = jsonsplice.remove(put, PATH)
    if "mcpServers" in data:
        assert back == text
    else:  # the object made for it stays, empty
        assert json.loads(back) == {**data, "mcpServers": {}}


@given(documents, layouts, values)
def test_put_replaces_a_member_that_is_there(data: dict[str, Any], indent: int | str | None, old: Any) -> None:
    text = written({**data, "mcpServers": {**data.get("mcpServers", {}), "milestoned": old}}, indent)
    assert json.loads(jsonsplice.put(text, PATH, ENTRY))["mcpServers"]["milestoned"] == ENTRY


def test_a_new_member_follows_the_files_indentation_and_an_inline_object_stays_inline() -> None:
    text = '{\n    "mcpServers": {\n        "theirs": {"command": "x"}\n    }\n}\n'
    assert jsonsplice.put(text, PATH, 1) == '{\n    "mcpServers": {\n        "theirs": {"command": "x"},\n' \
                                            '        "milestoned": 1\n    }\n}\n'
    inline = '{\n  "mcpServers": {"theirs": {"command": "x"}}\n}\n'
    assert jsonsplice.put(inline, PATH, 1) == '{\n  "mcpServers": {"theirs": {"command": "x"}, "milestoned": 1}\n}\n'
