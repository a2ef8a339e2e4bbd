"""API keys are looked up once per process, yet a key revoked or changed anywhere counts on the very next request.

"Another process" is a second Store on the same database (its own connections), or the ``ur keys`` command run
as a real process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import event

from conftest import ROOT, auth
from service_support import db_url  # noqa: F401  (fixture)
from ur_service import auth as keys
from ur_service.store import Actor, Store


def key_id(key: str) -> str:
    return key.split("_")[1]


class KeyQueries:
    """Counts the statements that read the api_keys table itself."""

    def __init__(self, store: Store):
        self.count = 0
        event.listen(store.engine, "before_cursor_execute", self)

    def __call__(self, conn, cursor, statement, *args) -> None:
        if "FROM api_keys" in statement:
            self.count += 1


def test_a_key_is_read_from_its_table_once_then_served_from_memory(app, client):
    queries = KeyQueries(app.extensions["ur_store"])
    for _ in range(5):
        assert client.get("/v1/worklist").status_code == 200
    assert queries.count == 1


@pytest.mark.slow  # a PostgreSQL server
def test_a_key_revoked_by_another_process_is_refused_at_once(db_url):  # noqa: F811
    serving, other = Store(db_url), Store(db_url, upgrade=False)
    key = keys.create_key(serving, "reviewer", "alice")
    assert keys.authenticate(serving, key) == Actor(key_id(key), "alice", "reviewer")
    assert keys.authenticate(serving, key) is not None  # now from memory
    assert other.set_role(key_id(key), "physician", by="test")
    assert keys.authenticate(serving, key) == Actor(key_id(key), "alice", "physician")
    assert other.revoke_key(key_id(key), by="test")
    assert keys.authenticate(serving, key) is None
    serving.close()
    other.close()


@pytest.mark.parametrize("change,status", [(["revoke"], 401), (["role", "physician"], 403)])
def test_ur_keys_run_as_another_process_takes_effect_on_the_next_request(app, client, change, status):
    assert client.post("/v1/reviews", json={}).status_code == 400  # the reviewer's key is known (and kept)
    reviewer = key_id(app.config["TEST_KEYS"]["reviewer"])
    done = subprocess.run([sys.executable, "-m", "ur_engine.cli", "keys", change[0], reviewer, *change[1:],
                           "--database", app.config["DATABASE_URL"]], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert client.post("/v1/reviews", json={}).status_code == status
    assert client.get("/v1/worklist", headers=auth(app, "physician")).status_code == 200  # other keys still work


@pytest.mark.slow  # a PostgreSQL server
def test_a_key_check_whose_connection_was_cut_reconnects_and_still_sees_a_revocation(db_url):  # noqa: F811
    from sqlalchemy import text

    serving, other = Store(db_url), Store(db_url, upgrade=False)
    key = keys.create_key(serving, "reviewer", "alice")
    assert keys.authenticate(serving, key) is not None
    if serving.engine.dialect.name == "postgresql":  # the server ends every other session, the key check's too
        with other.engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    else:
        serving._key_reads._held[1].dbapi_connection.close()  # SQLite has no server: close it under the store
    assert other.revoke_key(key_id(key), by="test")
    assert keys.authenticate(serving, key) is None
    serving.close()
    other.close()


@pytest.mark.slow  # a PostgreSQL server
def test_a_forked_process_checks_keys_on_its_own_connection_and_leaves_the_parents_alone(db_url):  # noqa: F811
    serving, other = Store(db_url), Store(db_url, upgrade=False)
    key = keys.create_key(serving, "reviewer", "alice")
    assert keys.authenticate(serving, key) is not None  # the parent's key connection is open
    pid = os.fork()
    if pid == 0:  # the child: as a gunicorn worker forked from the master
        ok = keys.authenticate(serving, key) is not None and serving._key_reads._held[0] == os.getpid()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert other.revoke_key(key_id(key), by="test")
    assert keys.authenticate(serving, key) is None  # the parent's connection still works, and sees the revocation
    serving.close()
    other.close()
