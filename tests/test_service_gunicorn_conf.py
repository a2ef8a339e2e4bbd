"""The production gunicorn settings: the app logs each request itself, so gunicorn builds no access line."""

from __future__ import annotations

import importlib
import os
import shutil
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger


@pytest.fixture()
def conf():
    """``ur_service.gunicorn_conf`` as gunicorn reads it, leaving this process's metrics directory alone."""
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    module = importlib.import_module("ur_service.gunicorn_conf")
    made = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if before is None:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if made:
            shutil.rmtree(made, ignore_errors=True)
    cfg = Config()
    for name in ("accesslog", "errorlog", "logconfig_dict", "logger_class"):
        cfg.set(name, getattr(module, name))
    return cfg


def test_gunicorn_builds_no_access_line_for_a_request(conf):
    logger = conf.logger_class(conf)
    assert not logger.access_log_enabled
    logger.access(None, None, {}, timedelta(milliseconds=3))  # returns before it would read the request


def test_gunicorns_own_logger_would_build_one_under_the_same_settings(conf):
    plain = Logger(conf)
    assert plain.access_log_enabled  # logconfig_dict alone turns it on
    with pytest.raises(AttributeError):
        plain.access(None, None, {}, timedelta(milliseconds=3))  # it starts gathering the line's fields


def test_gunicorns_error_log_still_goes_through(conf, capfd):
    conf.logger_class(conf).error("worker %s stopped", 7)
    assert "worker 7 stopped" in capfd.readouterr().err


def test_a_new_connection_goes_to_the_worker_holding_fewest():
    from ur_service.gunicorn_worker import ConnectionTable

    table = ConnectionTable()
    rows = [table.claim(set()), None, None]
    rows[1] = table.claim({rows[0]})
    rows[2] = table.claim({rows[0], rows[1]})
    assert len(set(rows)) == 3
    table.set(rows[0], 101, 3, 1)
    table.set(rows[1], 102, 1, 1)
    table.set(rows[2], 103, 0, 0)  # at its connection limit, or stopping: takes no more
    assert table.fewest_elsewhere(rows[0]) == 1
    assert table.fewest_elsewhere(rows[1]) == 3
    table.set(rows[1], 0, 0, 0)  # its worker exited
    assert table.fewest_elsewhere(rows[0]) is None


def test_a_worker_not_yet_started_is_left_new_connections():
    from ur_service.gunicorn_worker import ConnectionTable

    table = ConnectionTable()
    table.reserve(2)  # the master, before it forks the first worker
    first = table.claim(set())
    table.set(first, 101, 1, 1)
    assert table.fewest_elsewhere(first) == 0  # the second, not forked yet, holds none
    second = table.claim({first})
    assert second != first and table.fewest_elsewhere(second) == 1


def test_a_worker_whose_row_went_stale_is_not_waited_for(monkeypatch):
    from ur_service import gunicorn_worker

    table = gunicorn_worker.ConnectionTable()
    mine, stuck = table.claim(set()), 1
    table.set(stuck, 202, 0, 1)
    assert table.fewest_elsewhere(mine) == 0
    later = gunicorn_worker.time.monotonic() + gunicorn_worker.FRESH + 1
    monkeypatch.setattr(gunicorn_worker, "time", SimpleNamespace(monotonic=lambda: later))
    assert table.fewest_elsewhere(mine) is None


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


@pytest.fixture()
def balanced(monkeypatch):
    """A BalancedThreadWorker holding 2 connections beside a worker holding none, on a clock of the test's own;
    what gthread's own accept and set_accept_enabled are asked to do is recorded instead of done."""
    from gunicorn.workers.gthread import ThreadWorker

    from ur_service import gunicorn_worker

    clock, calls = Clock(), []
    monkeypatch.setattr(gunicorn_worker, "time", clock)
    table = gunicorn_worker.ConnectionTable()
    monkeypatch.setattr(gunicorn_worker, "TABLE", table)
    monkeypatch.setattr(ThreadWorker, "accept", lambda self, listener: calls.append("accept"))
    monkeypatch.setattr(ThreadWorker, "set_accept_enabled", lambda self, on: calls.append(f"accepting {on}"))
    worker = object.__new__(gunicorn_worker.BalancedThreadWorker)
    worker.ur_row, worker.nr_conns, worker.pid, worker.alive, worker.worker_connections = 0, 2, 101, True, 1000
    worker.cfg = SimpleNamespace(reuse_port=False)
    table.set(0, 101, 2, 1)
    table.set(1, 102, 0, 1)
    return worker, clock, calls


def test_a_busier_worker_leaves_a_new_connection_to_the_idle_one(balanced):
    worker, clock, calls = balanced
    worker.accept(None)
    assert calls == ["accepting False"]
    worker.set_accept_enabled(True)  # its main loop, before the hold ends: still not watching
    clock.now += 0.006
    worker.set_accept_enabled(True)
    assert calls == ["accepting False", "accepting True"]


def test_a_connection_the_idle_worker_does_not_take_is_taken_after_the_longest_hold(balanced):
    from ur_service import gunicorn_worker

    worker, clock, calls = balanced
    for _ in range(20):  # the connection still waits each time the hold ends: the other worker's loop is stuck
        worker.accept(None)
        clock.now += 0.0051
        if "accept" in calls:
            break
    assert calls[-1] == "accept" and 0.045 <= clock.now - 1000.0 <= 0.07
    calls.clear()
    clock.now += 5  # a later connection is left to the idle worker again
    gunicorn_worker.TABLE.set(1, 102, 0, 1)  # which has written its row meanwhile, as its loop does
    worker.accept(None)
    assert calls == ["accepting False"]


def test_with_a_listening_socket_per_worker_each_takes_its_own_connections(balanced):
    worker, _, calls = balanced
    worker.cfg = SimpleNamespace(reuse_port=True)
    worker.accept(None)
    assert calls == ["accept"]


@pytest.fixture()
def answered(balanced, monkeypatch):
    """The balanced worker answering requests: which of them gthread was asked to close after the answer."""
    from gunicorn.workers.gthread import ThreadWorker

    worker, clock, _ = balanced
    closed = []
    monkeypatch.setattr(ThreadWorker, "handle_request", lambda self, req, conn: closed.append(req.must_close))

    def answer():
        req = SimpleNamespace(must_close=False)
        req.should_close = lambda: req.must_close
        worker.handle_request(req, None)
        return closed[-1]

    return worker, clock, answer


@pytest.mark.parametrize(("mine", "other", "other_pid", "closes"), [
    (2, 0, 102, True),  # 2–0: one moves, making 1–1
    (4, 1, 102, True),
    (2, 1, 102, False),  # 2–1 stays: moving one would make it 1–2
    (3, 3, 102, False),
    (4, 0, -1, False),  # the other is not yet in its main loop: a reconnecting client would come back here
])
def test_a_worker_holding_two_more_connections_than_another_closes_one_after_its_answer(
        answered, mine, other, other_pid, closes):
    from ur_service import gunicorn_worker

    worker, _, answer = answered
    worker.nr_conns = mine
    gunicorn_worker.TABLE.set(0, 101, mine, 1)
    gunicorn_worker.TABLE.set(1, other_pid, other, 1)
    assert answer() is closes


def test_a_crowded_worker_closes_the_next_connection_once_the_last_landed_elsewhere(answered):
    from ur_service import gunicorn_worker

    worker, clock, answer = answered
    worker.nr_conns = 4  # beside a worker holding none
    assert [answer(), answer()] == [True, False]
    clock.now += 0.5
    assert answer() is False  # its own count still 4 until the answer is sent, the other's still 0: wait
    worker.nr_conns = 3
    gunicorn_worker.TABLE.set(1, 102, 1, 1)  # the client reconnected there
    assert answer() is True
    worker.nr_conns = 2
    gunicorn_worker.TABLE.set(1, 102, 2, 1)
    clock.now += 0.5
    assert answer() is False  # 2–2


def test_a_client_that_came_back_to_the_crowded_worker_is_moved_again_only_after_a_while(answered):
    from ur_service import gunicorn_worker

    worker, clock, answer = answered
    worker.nr_conns = 4  # beside a worker that holds none, and stays so: stalled, or the client went quiet
    assert answer() is True
    clock.now += gunicorn_worker.SHED_RETRY - 0.1
    gunicorn_worker.TABLE.set(1, 102, 0, 1)  # its row written again, as its loop does
    assert answer() is False
    clock.now += 0.2
    gunicorn_worker.TABLE.set(1, 102, 0, 1)
    assert answer() is True


def test_a_request_that_closes_its_connection_anyway_does_not_count_as_the_one_moved(answered):
    worker, _, answer = answered
    worker.nr_conns = 4
    closing = SimpleNamespace(must_close=True, should_close=lambda: True)  # HTTP/1.0, or Connection: close
    worker.handle_request(closing, None)
    assert answer() is True  # the next kept-alive one is closed in its place


def test_with_a_listening_socket_per_worker_no_connection_is_closed_to_spread_them(answered):
    worker, _, answer = answered
    worker.cfg = SimpleNamespace(reuse_port=True)
    worker.nr_conns = 4
    assert answer() is False
