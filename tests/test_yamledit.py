"""Surgical YAML edits: only the values we set change, whatever the file's layout."""

from __future__ import annotations

import textwrap

import yaml

from milestoned.files.yamlsplice import Editor


def edit(text: str, *changes: tuple) -> str:  # type: ignore[type-arg]
    text = textwrap.dedent(text).lstrip("\n")
    ed = Editor(text)
    for path, op, key, *value in changes:
        node = ed.root
        for step in path:
            node = ed.get(node, step) if isinstance(step, str) else node.value[step]
        if op == "set":
            ed.set(node, key, value[0])
        elif op == "block":
            ed.set_block(node, key, value[0], 2)
        else:
            ed.remove(node, key)
    out = ed.result()
    yaml.safe_load(out)  # always valid YAML
    return out


def test_changed_scalars_keep_their_quoting_and_comments() -> None:
    out = edit("""
        status: "planned"   # quoted
        other: 'x'
        plain: planned # c
        """, ((), "set", "status", "in_progress"), ((), "set", "other", "it's"), ((), "set", "plain", "done"))
    assert out == 'status: "in_progress"   # quoted\nother: \'it\'\'s\'\nplain: done # c\n'


def test_new_keys_go_after_the_last_entry_at_its_indentation() -> None:
    out = edit("""
        tasks:
            -   id: T1
                notes: |
                    line one

                    line two

            -   id: T2
        # trailing comment
        """, (("tasks", 0), "set", "started_at", "2026-01-01T00:00:00Z"),
        (("tasks", 0), "set", "agent", "ada"), (("tasks", 1), "set", "status", "pending"))
    assert out == textwrap.dedent("""\
        tasks:
            -   id: T1
                notes: |
                    line one

                    line two
                started_at: "2026-01-01T00:00:00Z"
                agent: ada

            -   id: T2
                status: pending
        # trailing comment
        """)


def test_flow_mappings_grow_inside_their_braces() -> None:
    out = edit("tasks:\n  - {id: a, status: pending}\n  - {}\n",
               (("tasks", 0), "set", "status", "completed"), (("tasks", 0), "set", "agent", "bob"),
               (("tasks", 1), "set", "status", "pending"))
    assert out == 'tasks:\n  - {id: a, status: completed, agent: bob}\n  - {status: pending}\n'


def test_no_trailing_newline_is_respected() -> None:
    assert edit('id: "m"\nexecution:\n  session_id: ""', (("execution",), "set", "started_at", "x")) == \
        'id: "m"\nexecution:\n  session_id: ""\n  started_at: x'


def test_empty_values_and_block_values_are_replaced_on_the_key_line() -> None:
    out = edit("""
        execution:
        blockers:
          - type: old
            detail: gone
        after: 1
        """, ((), "set", "execution", {"session_id": "s"}), ((), "set", "blockers", [{"type": "disk"}]))
    assert out == 'execution: {"session_id": "s"}\nblockers: [{"type": "disk"}]\nafter: 1\n'


def test_missing_section_is_added_as_a_block() -> None:
    out = edit("id: m\ntasks: []\n", ((), "block", "progress", {"percentage": 50, "tasks_completed": 1}))
    assert out == 'id: m\ntasks: []\nprogress:\n  percentage: 50\n  tasks_completed: 1\n'


def test_removing_a_key_drops_its_line_only() -> None:
    text = 'tasks:\n  - id: T1\n    completed_at: "2026-01-01T00:00:00Z"  # done\n    title: t\n'
    assert edit(text, (("tasks", 0), "remove", "completed_at")) == "tasks:\n  - id: T1\n    title: t\n"


def test_a_key_that_opens_a_sequence_item_becomes_null_instead() -> None:
    out = edit("tasks:\n  - agent: bob\n    id: T1\n", (("tasks", 0), "remove", "agent"))
    assert out == "tasks:\n  - agent: null\n    id: T1\n"


def test_values_that_need_quotes_get_them() -> None:
    out = edit("a: x\nb: y\nc: z\n", ((), "set", "a", "yes"), ((), "set", "b", "x: y # z"), ((), "set", "c", "01"))
    assert yaml.safe_load(out) == {"a": "yes", "b": "x: y # z", "c": "01"}
