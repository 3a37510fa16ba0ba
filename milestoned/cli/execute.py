"""``execute`` and ``demo``: running a milestone's tasks (the runner does the work)."""

from __future__ import annotations
