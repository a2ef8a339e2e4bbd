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
