"""The one way milestoned writes JSON for people and programs (``--json``, the daemon's answers).

Indented for a person at a terminal, compact for a program, the same schema either
way; the daemon serializes its views with the same function, so that ``status --json``
passes its bytes through unchanged.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False  # typing itself costs the thin path a few ms
if TYPE_CHECKING:
    from typing import Any


def json_text(data: Any, *, pretty: bool) -> str:
    return json.dumps(data, indent=2 if pretty else None, ensure_ascii=False, default=str) + "\n"
