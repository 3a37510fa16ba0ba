"""Identifiers: what a milestone, task or session id may look like, and how new ones are made.

Ids become file names (``active/<id>.yaml``) and ref names
(``milestone/<mid>/<tid>``), so they must never carry ``/`` or ``..``, nor anything
git refuses in a ref name.
"""

from __future__ import annotations

import re
import secrets
import uuid

from milestoned.core import clock

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_ID_LENGTH = 100


def id_problem(value: object, what: str = "id") -> str | None:
    """Why ``value`` cannot be an id, or None when it can."""
    if not isinstance(value, str) or not value:
        return f"{what} must be a non-empty string"
    if len(value) > MAX_ID_LENGTH:
        return f"{what} {value[:20]!r}... is longer than {MAX_ID_LENGTH} characters"
    if not ID_PATTERN.match(value) or ".." in value or value.endswith((".", ".lock")):
        return (
            f"{what} {value!r} is not allowed: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, without '..', '/' or a trailing '.lock'"
        )
    return None


def is_valid_id(value: object) -> bool:
    return id_problem(value) is None


def new_session_id(milestone_id: str) -> str:
    """``exec-<milestone>-<yyyymmdd>-<6 hex>``, the seed's session id format."""
    day = clock.now().strftime("%Y%m%d")
    return f"exec-{milestone_id}-{day}-{secrets.token_hex(3)}"


def new_event_id() -> str:
    """Unique across clones and machines: two clones' logs merge by union of these."""
    return uuid.uuid4().hex
