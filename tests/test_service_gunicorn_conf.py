"""The production gunicorn settings: the app logs each request itself, so gunicorn builds no access line."""

from __future__ import annotations

import importlib
import os
import shutil
from datetime import timedelta

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
    monkeypatch.setattr(gunicorn_worker.time, "monotonic", lambda: later)
    assert table.fewest_elsewhere(mine) is None
