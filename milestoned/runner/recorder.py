"""The runner's bookkeeping thread: engine writes batched, off the scheduler's way.

The scheduler hands over ``Op``s (one engine change each: a start, a completion, a
block); the recorder writes whatever queued up in one transaction, so a burst of
completions costs one write, not one each.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from milestoned.core.errors import UserError
from milestoned.engine.engine import Engine, Transaction
from milestoned.engine.lifecycle import Refusal
from milestoned.model.milestone import Milestone


@dataclass(frozen=True)
class Op:
    """One engine change for the recorder: ``apply(txn, milestone)``, which may refuse."""

    task_id: str
    kind: str
    apply: Callable[[Transaction, Milestone], Refusal | None]


@dataclass
class Refused:
    op: Op
    error: UserError


@dataclass
class Fatal:
    error: BaseException


class Recorder:
    """Writes the runner's events through the engine on a thread of its own, a batch per transaction.

    Whatever queued up while a transaction was being written goes into the next one, so
    a burst of completions costs one write, not one each.  A verb the engine refuses
    (someone else took the task meanwhile) is reported back and writes nothing.
    """

    def __init__(self, engine: Engine, milestone_id: str, report: Callable[[object], None],
                 settle: Callable[[threading.Event], None]) -> None:
        self.engine = engine
        self.milestone_id = milestone_id
        self.report = report
        self.settle = settle
        self.hurry = threading.Event()  # someone waits for what is queued: write without settling
        self._queue: queue.Queue[list[Op] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="milestoned-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, ops: list[Op]) -> None:
        if ops:
            self._queue.put(ops)

    def close(self) -> None:
        """Write everything still queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _work(self) -> None:
        closing = False
        while not closing:
            batch = [self._queue.get()]
            self.settle(self.hurry)
            self.hurry.clear()
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            closing = None in batch
            ops = [op for item in batch if item is not None for op in item]
            if ops:
                self._write(ops)

    def _write(self, ops: list[Op]) -> None:
        try:
            with self.engine.transaction() as txn:
                milestone = txn.milestone(self.milestone_id)
                for op in ops:
                    refusal = op.apply(txn, milestone)
                    if refusal is not None:
                        self.report(Refused(op, refusal.error()))
        except Exception as exc:  # noqa: BLE001 - the scheduler stops the run; this thread must not die mute
            self.report(Fatal(exc))
