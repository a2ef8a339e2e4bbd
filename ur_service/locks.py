"""A lock granted in arrival order, for the places where a worker's threads queue for one thing.

A plain ``threading.Lock`` is not fair: a thread that has just released it often takes it again, and under a
steady load some waiting thread loses the race over and over, which is the latency tail a load test shows.
With this lock each thread waits only for those that came before it.
"""

from __future__ import annotations

import threading


class FifoLock:
    """First come, first served (a ticket lock)."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self):
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()
        return self

    def __exit__(self, *exc):
        with self._cond:
            self._serving += 1
            self._cond.notify_all()
