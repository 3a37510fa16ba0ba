"""Text that came from someone else (a title, an agent name, a commit's words), made safe to show.

Control characters reach a terminal as commands: an ESC sequence recolours it or moves
the cursor, a CR overwrites the line, and bidirectional overrides make a title read
otherwise than it is.  ``visible`` spells each of them out (``\\x1b``, ``\\r``, ``\\u202e``)
so a table or a graph label shows what the file holds.  JSON output needs none of this:
its encoder escapes them already.
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with every control and bidi-override character written out."""
    return _UNSAFE.sub(lambda m: _NAMED.get(m.group(), f"\\u{ord(m.group()):04x}" if ord(m.group()) > 0xff
                                            else f"\\x{ord(m.group()):02x}"), text)


def bar(done: int, total: int, width: int = 40) -> tuple[str, str]:
    """A progress bar as (done, still to do): two glyphs, so it reads without colour too (``NO_COLOR``)."""
    filled = round(width * done / total) if total else 0
    return "\u2588" * filled, "\u2591" * (width - filled)


def counted(number: int, noun: str) -> str:
    """``1 task``, ``2 tasks``: a count with its noun (nouns that take an s)."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
