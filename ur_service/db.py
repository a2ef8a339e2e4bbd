"""Database engines for the audit store: SQLite by default, PostgreSQL through a URL.

Appends to a hash chain must be serialised across threads *and* processes (gunicorn workers), so a write
transaction takes the database's own lock first: ``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped
advisory lock on PostgreSQL.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url

from .locks import FifoLock

DEFAULT_URL = "sqlite:///ur-audit.db"


def normalize_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` mean psycopg 3, the driver ur-engine installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def redact(url: str) -> str:
    """The URL without its password, for logs and health output."""
    return make_url(normalize_url(url)).render_as_string(hide_password=True)


def create_db_engine(url: str) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("the audit store needs a file: sqlite:///path/to/audit.db")
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_connect(dbapi_conn, _record) -> None:
    # The driver's own transaction handling cannot issue BEGIN IMMEDIATE; let SQLAlchemy's "begin" event do it.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA synchronous=FULL")  # an acknowledged review survives power loss, not only a kill
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # A write transaction takes the write lock at BEGIN, so two appends never read the same chain head.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("ur_write") else "BEGIN")


@contextmanager
def write_transaction(engine: Engine, lock: int) -> Iterator[Connection]:
    """A transaction that holds the store-wide write lock ``lock`` until it commits or rolls back."""
    if engine.dialect.name == "sqlite":
        # One writer per process at a time: the threads of a worker queue here, woken at once, instead of
        # each polling SQLite's file lock through its busy handler (sleeps of up to 100 ms: the latency tail).
        with _process_lock(engine), _transaction(engine, lock) as conn:
            yield conn
    else:
        with _transaction(engine, lock) as conn:
            yield conn


@contextmanager
def _transaction(engine: Engine, lock: int) -> Iterator[Connection]:
    with engine.connect().execution_options(ur_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
        yield conn


_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _process_lock(engine: Engine) -> FifoLock:
    with _LOCKS_GUARD:
        found = _LOCKS.get(engine)
        if found is None:
            found = _LOCKS[engine] = FifoLock()
        return found
