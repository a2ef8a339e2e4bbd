"""Layered fixtures: library → engine; app → client → runner."""

from __future__ import annotations

import copy
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import settings

from ur_engine import Engine, load_library

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"

ARRIVAL = datetime(2026, 3, 2, 9, 40)

# Every service the tests build or start (gunicorn too) checks its responses against the OpenAPI document; a
# production server does not, by default.
os.environ.setdefault("UR_RESPONSE_VALIDATION", "strict")
# Loaded libraries are cached in a folder of the test run's own, never in the user's cache.
os.environ.setdefault("UR_CACHE_DIR", tempfile.mkdtemp(prefix="ur-test-cache-"))

# `make check` runs the fast profile: every property still runs, on a few examples instead of thousands.
settings.register_profile("fast", max_examples=15, deadline=None)
FAST = os.environ.get("HYPOTHESIS_PROFILE") == "fast"
if FAST:
    settings.load_profile("fast")


def examples(n: int) -> int:
    """``n`` examples in the full suite, a handful in the fast loop."""
    return min(n, 15) if FAST else n


# Modules that start servers (gunicorn, PostgreSQL), browsers or Spark, or run for many seconds: in `make test`,
# not in `make check`.
SLOW_MODULES = {"test_spark.py", "test_reload.py", "test_batch_report.py", "test_service_load.py",
                "test_service_schemathesis.py", "test_service_web.py", "test_service_frontdoor.py",
                "test_service_store.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)

BASE_RECORD = {
    "id": "stay-test",
    "review_type": "admission",
    "patient": {"age": 60, "sex": "female"},
    "coverage": {"line_of_business": "commercial"},
    "encounter": {"requested_level": "inpatient", "arrival_time": "2026-03-02T09:40:00Z"},
    "observations": [],
    "treatments": [],
    "procedures": [],
    "diagnoses": [],
    "findings": {},
    # A test record is documented in full: what it does not list was not done, not unknown.
    "complete": ["diagnoses", "procedures", "observations", "treatments", "findings"],
}


def make_record(**changes) -> dict:
    """A valid record; keyword arguments replace top-level sections, ``encounter`` and ``coverage`` merge."""
    rec = copy.deepcopy(BASE_RECORD)
    for key, value in changes.items():
        if key in ("encounter", "coverage", "patient") and isinstance(value, dict):
            rec[key].update(value)
        elif value is None:
            rec.pop(key, None)
        else:
            rec[key] = value
    return rec


def obs(code: str, value, minutes: int = 30, **extra) -> dict:
    """An observation ``minutes`` after the base record's arrival."""
    when = ARRIVAL + timedelta(minutes=minutes)
    return {"code": code, "value": value, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), **extra}


@pytest.fixture(scope="session")
def library():
    return load_library(RULES)


@pytest.fixture(scope="session")
def engine(library):
    with Engine(library) as e:
        yield e


@pytest.fixture(scope="session")
def reference_engine(library):
    return Engine(library, "reference")


@pytest.fixture()
def app(tmp_path):
    """The service on a fresh SQLite audit store, with one API key per role in ``app.config["TEST_KEYS"]``."""
    from api import create_app
    from ur_service.auth import ROLES, create_key

    app = create_app({"TESTING": True, "RULES_DIR": str(RULES), "MAX_CONTENT_LENGTH": 64 * 1024,
                      "DATABASE_URL": f"sqlite:///{tmp_path}/audit.db", "RESPONSE_VALIDATION": "strict"})
    app.config["TEST_KEYS"] = {role: create_key(app.extensions["ur_store"], role, f"test-{role}") for role in ROLES}
    yield app
    app.extensions["ur_engine"].close()
    app.extensions["ur_store"].close()


def auth(app, role: str) -> dict:
    """The Authorization header of the test key for ``role``."""
    return {"Authorization": f"Bearer {app.config['TEST_KEYS'][role]}"}


@pytest.fixture()
def client(app):
    """A test client that sends the reviewer's key unless a request gives its own Authorization."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = auth(app, "reviewer")["Authorization"]
    return client


@pytest.fixture()
def runner():
    from click.testing import CliRunner

    return CliRunner()


def leaves(node, path=()):
    """Every path into a JSON document (its leaves and the nodes above them), as tuples of keys and indices."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from leaves(v, (*path, i))
    yield path


def with_values(doc, changes) -> object:
    """A deep copy of ``doc`` with each (path, value) of ``changes`` put in place (see ``replace_at``)."""
    changed = copy.deepcopy(doc)
    for path, value in changes:
        replace_at(changed, path, value)
    return changed


def replace_at(doc, path: tuple, value) -> None:
    """Put ``value`` at ``path`` when the path is still there (an earlier change may have replaced its parent)."""
    node = doc
    for key in path:
        parent = node
        if isinstance(node, dict) and isinstance(key, str) and key in node or isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return
    parent[path[-1]] = value
