"""Group commit: the appends that queue for one chain's write lock share one transaction and one fsync.

A review is committed before it is answered, and the commit's fsync is the largest part of a request. When
several of a worker's threads submit at once, the first becomes the *leader*: it takes the write lock, appends
every row queued by the time it holds it in one transaction, commits once, and only then wakes each of their
threads with its own row. Rows queued while it commits wait for the next leader, the first of them, promoted as the leader
leaves. No one is answered before the transaction holding their row has committed, and the rows are chained in
the order their threads queued.

A batch that fails is retried one row per transaction, so one bad row fails only its own request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

Append = Callable[[Connection, list[dict]], list[dict]]
# A context manager yielding a connection inside the chain's write lock; it commits on leaving.
Transaction = Callable[[], Any]


class _Waiter:
    __slots__ = ("row", "woken", "done", "result", "error")

    def __init__(self, row: dict):
        self.row = row
        self.woken: threading.Event | None = None  # made for a row that waits on another's transaction only
        self.done = False  # False when woken: promoted to leader
        self.result: dict | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """Appends rows to one chain, each caller returning only once its own row is committed."""

    def __init__(self, transaction: Transaction, append: Append, max_batch: int = 64):
        self.transaction = transaction
        self._append = append
        self._max_batch = max_batch
        self._mutex = threading.Lock()
        self._queue: list[_Waiter] = []
        self._leading = False
        self.batches = 0  # transactions committed, for the figures and the tests

    @property
    def waiting(self) -> int:
        """Rows queued and not yet taken into a transaction."""
        with self._mutex:
            return len(self._queue)

    def reset(self) -> None:
        """After a fork: the parent's queue and leader are not this process's."""
        self._mutex = threading.Lock()
        self._queue = []
        self._leading = False

    def submit(self, row: dict) -> dict:
        me = _Waiter(row)
        with self._mutex:
            self._queue.append(me)
            lead = not self._leading
            self._leading = True
            if not lead:
                me.woken = threading.Event()
        if not lead:
            assert me.woken is not None
            me.woken.wait()
            if me.done:
                if me.error is not None:
                    raise me.error
                assert me.result is not None
                return me.result
        self._lead()
        if me.error is not None:
            raise me.error
        assert me.result is not None
        return me.result

    def _lead(self) -> None:
        taken: list[_Waiter] = []
        try:
            self._write(taken)
        finally:
            with self._mutex:
                if not taken:  # interrupted before taking its batch: take it now, to fail it
                    taken.extend(self._take_locked())
                # Hand over before waking the batch, so the next leader starts for the write lock at once.
                following = self._queue[0] if self._queue else None
                self._leading = following is not None
            for w in taken:
                if w.result is None and w.error is None:  # interrupted (e.g. the worker is stopping)
                    w.error = RuntimeError("the review was not stored: the transaction was interrupted")
                w.done = True
                if w.woken is not None:  # the leader's own row has none: it is here already
                    w.woken.set()
            if following is not None:
                assert following.woken is not None  # it queued while another led
                following.woken.set()

    def _take_locked(self) -> list[_Waiter]:
        batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
        return batch

    def _write(self, taken: list[_Waiter]) -> None:
        try:
            with self.transaction() as conn:
                # Taken once the write lock is held: rows that queued while the leader waited for it (another
                # worker was committing) join this transaction instead of waiting for the next.
                with self._mutex:
                    taken.extend(self._take_locked())
                rows = self._append(conn, [w.row for w in taken])
            self.batches += 1
            for w, stored in zip(taken, rows):
                w.result = stored
            return
        except Exception as exc:
            if not taken:
                with self._mutex:
                    taken.extend(self._take_locked())
            if len(taken) == 1:
                taken[0].error = exc
                return
        for w in taken:  # one row per transaction: only the bad row's request fails
            try:
                with self.transaction() as conn:
                    w.result = self._append(conn, [w.row])[0]
                self.batches += 1
            except Exception as exc:
                w.error = exc
