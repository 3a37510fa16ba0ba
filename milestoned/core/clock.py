"""Time as milestoned writes it: UTC, ISO-8601, seconds, with a ``Z``.

The seed wrote ``date -u +%Y-%m-%dT%H:%M:%SZ``; so do we, so its files and ours sort
and compare the same way.  ``MILESTONED_NOW`` pins the clock for tests and demos that
need reproducible files.
"""

from __future__ import annotations

import datetime as dt
import os
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def now() -> dt.datetime:
    pinned = os.environ.get("MILESTONED_NOW")
    if pinned:
        parsed = parse_time(pinned)
        if parsed is not None:
            return parsed
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def now_iso() -> str:
    return format_time(now())


def duration_text(seconds: float) -> str:
    """``45s``, ``12m``, ``3h05m``: how long, as a person says it."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> dt.datetime | None:
    """Read a timestamp the way users write them (string, YAML datetime or date); None if not one."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def normalize_time(value: object) -> str | None:
    """A timestamp in our canonical form, or None when the value is empty or not a time."""
    parsed = parse_time(value)
    return format_time(parsed) if parsed else None


def parse_duration(value: object) -> float | None:
    """Seconds from ``90``, ``"30m"``, ``"1.5h"``, ``"500ms"``; None when it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    if not match:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)]
