"""Helpers for the service tests: audit-store URLs for SQLite and a real PostgreSQL, keys, servers.

PostgreSQL comes from ``UR_TEST_DATABASE_URL`` (``.ci/run`` starts a server and sets it). Locally a test that
needs it skips; in CI (``CI=true``) it fails instead, so a missing server can never pass silently.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from conftest import ROOT
from ur_service.db import normalize_url

PG_ENV = "UR_TEST_DATABASE_URL"
CHROMIUM = os.environ.get("UR_TEST_CHROMIUM", "/usr/bin/chromium")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def need(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI, when a test's server or browser is missing."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} — CI must provide it (see .ci/run)")
    pytest.skip(reason)


def postgres_admin_url() -> str:
    url = os.environ.get(PG_ENV)
    need(bool(url), f"no PostgreSQL server: set {PG_ENV}")
    return normalize_url(url)


def fresh_postgres_database():
    """A new, empty database on the test server; yields its URL and drops it afterwards."""
    admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"ur_t_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The audit store on each backend: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/audit.db"
    else:
        yield from fresh_postgres_database()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen | None = None, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def start_gunicorn(db: str, port: int, log_path, workers: int = 2, **env) -> subprocess.Popen:
    """gunicorn with the production config on loopback, in its own process group (to kill it whole).

    Its logs go to ``log_path``: a pipe nobody reads would fill and stall the workers.
    """
    environ = {**os.environ, "UR_DATABASE_URL": db, "UR_BIND": f"127.0.0.1:{port}", "UR_WORKERS": str(workers),
               **env}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or "gunicorn"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([gunicorn, "-c", "python:ur_service.gunicorn_conf"], cwd=ROOT, env=environ,
                                stdout=log, stderr=log, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc)
    except RuntimeError as exc:
        proc.kill()
        raise RuntimeError(f"{exc}\n{open(log_path, errors='replace').read()[-3000:]}") from None
    return proc
