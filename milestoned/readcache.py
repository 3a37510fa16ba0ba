"""A per-clone cache of folded milestones, so reads of big milestones skip the parse.

Parsing a 10,000-task YAML file and folding 100,000 events costs seconds; the folded
result, pickled, loads in milliseconds.  An entry is valid only while both files keep
the exact (inode, size, mtime) it was made from: the engine replaces milestone files
by rename (new inode) and only appends to logs (new size), so any write invalidates
it.  It lives in the common git dir, outside the working tree, and only read commands
use it; transactions always read the files themselves.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from milestoned.store import atomic_write

VERSION = 1
RECENT_EVENTS = 50
WORTH_CACHING = 256 * 1024  # bytes of YAML + log below which parsing is cheaper than a cache write


Stamp = tuple[int, int, int] | None


def stamp(path: Path) -> Stamp:
    """(inode, size, mtime): changes whenever the engine replaces a file or appends to a log."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def stamps(*paths: Path) -> tuple[Any, ...]:
    """Taken before reading the files: a change while reading leaves a stale key, never a wrong hit."""
    return (VERSION, *(stamp(p) for p in paths))


def get(cache_file: Path, key: tuple[Any, ...]) -> Any | None:
    try:
        with cache_file.open("rb") as handle:
            entry = pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError):
        return None
    return entry.get("value") if isinstance(entry, dict) and entry.get("key") == key else None


def worth_caching(key: tuple[Any, ...]) -> bool:
    return sum(stamp[1] for stamp in key[1:] if stamp) >= WORTH_CACHING


def put(cache_file: Path, key: tuple[Any, ...], value: Any) -> None:
    if not worth_caching(key):
        return
    try:
        data = pickle.dumps({"key": key, "value": value}, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write(cache_file, data, 0o600, durable=False)
    except OSError:
        pass  # a cache that cannot be written only costs speed

