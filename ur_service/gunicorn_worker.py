"""gunicorn's threaded worker, taking a new connection only when no other worker holds fewer.

A kept-alive connection stays with the worker that accepted it, for all its requests. gunicorn's workers watch
one listening socket and whichever wakes first takes a new connection, so a few clients that keep their
connections (or a proxy's few upstream connections) often land on one worker: 4 clients on 2 workers split 3–1
or 4–0 in 11 of 16 measured runs, and the busy worker queued their reviews at its one engine while the other
waited. Here each worker writes how many connections it holds into a table the master sets up before forking
them (``pre_fork`` gives each a row, ``child_exit`` frees it), and whether it may take more. A worker holding
more than another live worker that may leaves a new connection to that one: it stops watching the listening
socket for ``HOLD`` seconds, then watches it again. The worker holding fewest always takes the connection, at
once or when its own hold ends; a worker that has left one waiting connection to others for ``MOST_HOLD`` takes
it itself, should the other's main loop not be turning.

That leaves a connection where it landed when the other worker was booting or stalled longer than ``MOST_HOLD``
(on a loaded machine, right after a start, all 4 clients still landed on one worker). So a worker holding more
than one connection above a running worker that may take more closes one kept-alive connection after its next
answer (``Connection: close``); the client reconnects, and the new connection goes to the worker holding fewest.
It closes the next only once the fewest another worker holds has changed (the client landed there, not back
here), or after ``SHED_RETRY`` seconds (the client has not come back yet, or came back here because the other
worker is stalled), and never two within ``SHED_EVERY``.

A worker the master is about to start counts as holding none from the moment the master starts (``on_starting``
reserves a row for each): gunicorn forks its workers up to 0.1 s apart, and clients that connect as soon as the
first one answers were all taken by it while the next was not yet forked.

It overrides gthread's ``accept``, ``set_accept_enabled``, ``notify``, ``wait_for_and_dispatch_events`` and
``handle_request`` as gunicorn 27 has them (pyproject.toml pins that series); tests/test_service_load.py checks the
spread.
"""

from __future__ import annotations

import mmap
import struct
import threading
import time

from gunicorn.workers.gthread import ThreadWorker

ROWS = 64  # workers at once, respawned ones taking freed rows
_ROW = struct.Struct("qqqd")  # pid (0: free), connections held, 1 while it may take more, when written
STARTING = -1  # the pid of a row claimed for a worker not yet running its main loop
HOLD = 0.005  # seconds a worker leaves new connections to a less loaded one
# Seconds a worker leaves one waiting connection to others before taking it itself: a less loaded worker whose main
# loop is not turning (booting, stopping, blocked closing a connection) must not leave a client waiting for long.
MOST_HOLD = 0.05
SHED_EVERY = 0.1  # seconds at least between two kept-alive connections a crowded worker closes
SHED_RETRY = 2.0  # seconds after which it closes another though the fewest held elsewhere did not change
FRESH = 2.0  # seconds a row is believed: a worker's main loop writes it at least once a second


class ConnectionTable:
    """Connections held per worker, in memory shared by the master and the workers it forks."""

    def __init__(self) -> None:
        self._rows = mmap.mmap(-1, ROWS * _ROW.size)

    def claim(self, taken: set[int]) -> int | None:
        """A free row for a worker about to be forked (in the master), or None when all are taken. Until the worker
        writes it, the row says it holds none and may take some: for ``FRESH`` seconds others leave it new
        connections."""
        for row in range(ROWS):
            if row not in taken:
                self.set(row, STARTING, 0, 1)
                return row
        return None

    def reserve(self, workers: int) -> None:
        """Rows for the workers the master is about to start (``on_starting``), each holding none meanwhile."""
        for row in range(min(workers, ROWS)):
            self.set(row, STARTING, 0, 1)

    def set(self, row: int, pid: int, held: int, accepting: int) -> None:
        _ROW.pack_into(self._rows, row * _ROW.size, pid, held, accepting, time.monotonic())

    def fewest_elsewhere(self, row: int, running: bool = False) -> int | None:
        """The fewest connections another live worker holds that may take more (None when there is none). A
        worker whose row is older than ``FRESH`` is stuck (gunicorn will restart it): it is not counted. With
        ``running``, neither is one not yet in its main loop."""
        fewest, since = None, time.monotonic() - FRESH
        for i, (pid, held, accepting, written) in enumerate(_ROW.iter_unpack(self._rows)):
            if running and pid == STARTING:
                continue
            if pid and accepting and written >= since and i != row and (fewest is None or held < fewest):
                fewest = held
        return fewest


TABLE = ConnectionTable()  # made when gunicorn's master loads this worker class, before any fork


def reserve_rows(server) -> None:
    """``on_starting``: a row for each worker about to be started."""
    TABLE.reserve(server.num_workers)


def claim_row(server, worker) -> None:
    """``pre_fork``: give the worker about to be forked a row of its own."""
    taken = {w.ur_row for w in server.WORKERS.values() if getattr(w, "ur_row", None) is not None}
    worker.ur_row = TABLE.claim(taken)
    if worker.ur_row is None:
        server.log.warning("more than %d workers: this one takes connections without spreading them", ROWS)


def free_row(worker) -> None:
    """``child_exit``: the worker is gone; its connections with it."""
    if getattr(worker, "ur_row", None) is not None:
        TABLE.set(worker.ur_row, 0, 0, 0)


class BalancedThreadWorker(ThreadWorker):
    """``gthread`` with connections spread over the workers (see the module's text)."""

    _hold_until = 0.0  # until when it leaves new connections to others
    _holding_since = 0.0  # when it began leaving the connection now waiting to others
    _shed_at = float("-inf")  # when it last closed a kept-alive connection to spread them
    _shed_fewest = -1  # the fewest another running worker held then
    _shed_lock = threading.Lock()  # request threads decide together

    def _publish(self) -> None:
        row = getattr(self, "ur_row", None)
        if row is not None:
            open_ = self.alive and self.nr_conns < self.worker_connections
            TABLE.set(row, self.pid, self.nr_conns, 1 if open_ else 0)

    def notify(self) -> None:  # once per turn of the main loop, after connections were closed or handed over
        super().notify()
        self._publish()

    def accept(self, listener) -> None:
        row = getattr(self, "ur_row", None)
        # With reuse_port each worker has a listening socket of its own: a connection left there waits for no one.
        if row is not None and not self.cfg.reuse_port:
            fewest = TABLE.fewest_elsewhere(row)
            if fewest is not None and fewest < self.nr_conns:
                now = time.monotonic()
                if now - self._hold_until > 2 * HOLD:  # not the connection the last hold left: a new wait
                    self._holding_since = now
                if now - self._holding_since < MOST_HOLD:
                    self._hold_until = now + HOLD
                    super().set_accept_enabled(False)
                    return
        super().accept(listener)
        self._publish()

    def handle_request(self, req, conn):  # in a request thread
        if not req.should_close() and self._crowded():  # a connection closing anyway moves no client
            req.must_close = True  # gunicorn answers with Connection: close, then closes it
        return super().handle_request(req, conn)

    def _crowded(self) -> bool:
        """Whether to close this request's connection after the answer, its client reconnecting elsewhere."""
        row = getattr(self, "ur_row", None)
        if row is None or self.cfg.reuse_port:
            return False
        fewest = TABLE.fewest_elsewhere(row, running=True)
        if fewest is None or self.nr_conns <= fewest + 1:  # 2–1 stays: moving one would make it 1–2
            return False
        with self._shed_lock:
            now = time.monotonic()
            # This worker's own count falls only once the answer is sent: the table says whether the last
            # connection closed has landed elsewhere yet (a count gone down means other clients left meanwhile).
            since = now - self._shed_at
            if since < SHED_EVERY or (fewest == self._shed_fewest and since < SHED_RETRY):
                return False
            self._shed_at, self._shed_fewest = now, fewest
        return True

    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled and time.monotonic() < self._hold_until:
            return
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        # While it leaves connections to others, the main loop turns again when the hold ends (else up to 1 s).
        left = self._hold_until - time.monotonic()
        super().wait_for_and_dispatch_events(min(timeout, left) if left > 0 else timeout)
