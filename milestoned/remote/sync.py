"""``milestoned sync``: fetch, merge, save and push the state branch, the notes and the claims.

The door onto ``git.remotes`` (the network), ``engine.statemerge`` (taking in another
clone's state) and ``engine.claims`` (claims this clone holds on the remote).  A push
rejected because the remote moved is retried after another fetch and merge.
"""

from __future__ import annotations

from typing import Any

from milestoned.core.errors import RuntimeFailure
from milestoned.engine import claims, statemerge
from milestoned.engine.engine import Engine
from milestoned.git import remotes, statebranch
from milestoned.git.remotes import NOTES_REF, TIMEOUT

PUSH_ATTEMPTS = 5


def sync(engine: Engine, remote: str, *, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Fetch, merge, save and push the state branch and notes; reconcile this clone's claims."""
    ws = engine.ws
    repo = statebranch.open_repo(ws)
    report: dict[str, Any] = {"schema": 1, "remote": remote, "state": "none", "notes": "none",
                              "pushed": [], "push_attempts": 0, "claims": {}}
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        remotes.fetch(ws, remote, timeout=timeout)
        merged, saved = statemerge.take_in(engine, statebranch.tip(repo, remotes.tracking_state(remote)),
                                           subject=f"sync: merge state from {remote}",
                                           local_subject=f"sync: local state for {remote}")
        if merged in ("merged", "fast-forward") or report["state"] == "none":
            report["state"] = merged
        if saved:
            report["saved"] = True
        notes = remotes.merge_notes(ws, remote, repo)
        if notes != "up-to-date" or report["notes"] == "none":
            report["notes"] = notes
        specs = [f"{ref}:{ref}" for ref in (statebranch.REF, NOTES_REF) if statebranch.tip(repo, ref) is not None]
        report["push_attempts"] = attempt
        results = remotes.push(ws, remote, specs, timeout=timeout) if specs else {}
        rejected = {ref: why for ref, why in results.items() if why.startswith("rejected")}
        report["pushed"] = sorted(ref for ref, why in results.items() if why == "ok")
        if not rejected:
            break
        report.setdefault("rejected", []).append(rejected)
    else:
        raise RuntimeFailure(f"pushing to {remote} was rejected {PUSH_ATTEMPTS} times: the remote keeps moving",
                             hint="run `milestoned sync` again")
    report["claims"] = claims.push_pending(ws, remote, repo, timeout=timeout)
    return report


