"""Database engines for the audit store: SQLite by default, PostgreSQL through a URL.

Appends to a hash chain must be serialised across threads *and* processes (gunicorn workers), so a write
transaction takes the database's own lock first: ``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped
advisory lock on PostgreSQL.
"""

from __future__ import annotations

import fcntl
import os
import threading
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
        with _sqlite_writer(engine), _transaction(engine, lock) as conn:
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


_WRITERS: dict[str, tuple[int, FifoLock, int]] = {}  # database file -> (pid, thread queue, lock file descriptor)
_WRITERS_GUARD = threading.Lock()


@contextmanager
def _sqlite_writer(engine: Engine) -> Iterator[None]:
    """One writer per database file: first among a process's threads, then among processes.

    Writers that meet at SQLite's own lock poll it through its busy handler, sleeping up to 100 ms between
    tries: the latency tail. Here the threads of a worker queue on a lock of their own, first come first served,
    and the workers on ``flock`` of ``<database>-writer`` (created beside the database, holding no data): both
    wake the next writer the moment the last one is done. SQLite's lock, taken after these, remains the guard.
    """
    path = os.path.abspath(str(engine.url.database))
    with _WRITERS_GUARD:
        found = _WRITERS.get(path)
        # Per process: a descriptor inherited across fork shares its lock with the parent's, excluding nobody.
        if found is None or found[0] != os.getpid():
            fd = os.open(path + "-writer", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            found = _WRITERS[path] = (os.getpid(), FifoLock(), fd)
    _, turn, fd = found
    with turn:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
