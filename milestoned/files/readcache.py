"""Per-clone caches of parsed plans and folded logs, so big milestones skip the parse.

Parsing a 10,000-task YAML file and folding 100,000 events costs seconds; the result,
pickled, loads in milliseconds.  There are two caches, because the two files change
for different reasons:

- a **plan** entry is valid while the plan file keeps the (inode, size, mtime) it was
  read with.  A file modified in the last ``RACY`` seconds is never cached: an edit in
  the same clock tick, to the same size, would leave its stamp unchanged (git's
  "racy clean" problem);
- a **log** entry is valid while the log keeps its (inode, size, mtime).  Logs are only
  appended to, under the engine's lock, or replaced whole (a merge); and a writer that
  appends puts the new entry itself, so the read right after a write is a cache hit.

Entries live in the state directory (never the working tree) and are lost with no
harm: a miss only costs the parse.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from pathlib import Path

from milestoned.files.durable import atomic_write

VERSION = 6  # 4: State.workers; 5: TaskState.runner; 6: State.branch, landed
WORTH_CACHING = 256 * 1024  # bytes below which parsing is cheaper than a cache write
RACY = 2.0  # seconds: a plan modified more recently is not cached

Stamp = tuple[int, int, int] | None


def stamp(path: Path) -> Stamp:
    """(inode, size, mtime): changes whenever a file is replaced or appended to."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _file(cache_dir: Path, kind: str, name: str) -> Path:
    return cache_dir / f"{kind}-{hashlib.sha1(name.encode()).hexdigest()[:16]}.pickle"


def _get(path: Path, key: tuple[object, ...]) -> object | None:
    try:
        with path.open("rb") as handle:
            entry = pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError, TypeError):
        return None
    return entry.get("value") if isinstance(entry, dict) and entry.get("key") == key else None


def _put(path: Path, key: tuple[object, ...], value: object) -> None:
    try:
        data = pickle.dumps({"key": key, "value": value}, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write(path, data, 0o600, durable=False)
    except OSError:
        pass  # a cache that cannot be written only costs speed


def get_plan(cache_dir: Path, plan_path: Path, key: Stamp) -> object | None:
    """The plan cached for ``plan_path`` at ``key`` (the caller checks it is one), or None."""
    if key is None or key[1] < WORTH_CACHING:
        return None
    return _get(_file(cache_dir, "plan", str(plan_path)), (VERSION, str(plan_path), key))


def put_plan(cache_dir: Path, plan_path: Path, key: Stamp, plan: object) -> None:
    if key is None or key[1] < WORTH_CACHING or time.time() - key[2] / 1e9 < RACY:
        return
    _put(_file(cache_dir, "plan", str(plan_path)), (VERSION, str(plan_path), key), plan)


def get_log(cache_dir: Path, milestone_id: str, key: Stamp) -> object | None:
    """The log fold cached for ``milestone_id`` at ``key`` (the caller checks it is one), or None."""
    if key is None or key[1] < WORTH_CACHING:
        return None
    return _get(_file(cache_dir, "log", milestone_id), (VERSION, milestone_id, key))


def put_log(cache_dir: Path, milestone_id: str, key: Stamp, fold: object) -> None:
    if key is None or key[1] < WORTH_CACHING:
        return
    _put(_file(cache_dir, "log", milestone_id), (VERSION, milestone_id, key), fold)
