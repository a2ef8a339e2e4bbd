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
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError
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


class DriverTransaction:
    """A write transaction on the driver's own connection: ``run(sql, params)`` returns the driver's cursor.

    What ``driver_write_transaction`` yields; statements come compiled for ``dialect`` (see store._compiled).
    """

    __slots__ = ("dialect", "_conn", "_cursor")

    def __init__(self, dialect, conn, cursor):
        self.dialect, self._conn, self._cursor = dialect, conn, cursor

    def run(self, sql: str, params: Any = None, many: bool = False):
        try:
            if many:
                self._cursor.executemany(sql, params)
            elif params is None:
                self._cursor.execute(sql)
            else:
                self._cursor.execute(sql, params)
        except self.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(self.dialect, self._conn, self._cursor, exc, sql, params) from exc
        return self._cursor


def _wrapped(dialect, conn, cursor, exc: Exception, sql: str | None = None, params: Any = None) -> BaseException:
    """The driver's error as SQLAlchemy raises it everywhere else (IntegrityError, OperationalError …); a
    connection the error shows is dead leaves the pool."""
    gone = dialect.is_disconnect(exc, conn.dbapi_connection, cursor)
    if gone:
        conn.invalidate(exc)
    return DBAPIError.instance(sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=gone,
                               dialect=dialect)


@contextmanager
def driver_write_transaction(engine: Engine, lock: int) -> Iterator[DriverTransaction]:
    """``write_transaction`` one layer down, for the one append every review makes.

    The same pool, lock, isolation and commit, on the driver's own connection: SQLAlchemy's connection,
    transaction and event layers around a review's three statements cost more than the statements do.
    """
    dialect = engine.dialect
    sqlite = dialect.name == "sqlite"
    with _sqlite_writer(engine) if sqlite else nullcontext():
        conn = engine.raw_connection()
        cursor = conn.cursor()
        try:
            tx = DriverTransaction(dialect, conn, cursor)
            if sqlite:
                tx.run("BEGIN IMMEDIATE")
            else:
                tx.run("SELECT pg_advisory_xact_lock(%s)", (lock,))
            yield tx
            try:
                conn.commit()
            except dialect.loaded_dbapi.Error as exc:
                raise _wrapped(dialect, conn, cursor, exc) from exc
        except BaseException:
            if conn.is_valid:
                try:
                    conn.rollback()
                except dialect.loaded_dbapi.Error:  # the connection is gone; returning it to the pool resets it
                    pass
            raise
        finally:
            cursor.close()
            conn.close()


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


_INHERITED: list = []  # connections a parent process opened, kept in its children and never used or closed there


class ReadConnection:
    """One connection a process keeps for a small read that every request makes (the API key chain's head).

    A pooled connection taken and given back for it costs more in SQLAlchemy's pool (checkout, the reset on
    return, their events) than the read itself. This one is taken from the pool once and detached from it; it
    reads in autocommit, so each read sees every commit made before it, and one thread at a time uses it. After
    a fork the parent's connection is left alone (its socket is the parent's: closing it, or even rolling it back,
    here would end the parent's session) and the child opens its own. A read that fails drops the connection
    and is tried once more on a new one, as the pool's pre-ping would have replaced a connection gone stale.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._held: tuple[int, Any] | None = None  # (the process that opened it, the connection)

    def scalar(self, sql: str) -> Any:
        """The first column of the first row of ``sql`` (None when there is no row)."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    cursor = conn.cursor()
                    try:
                        cursor.execute(sql)
                        row = cursor.fetchone()
                    finally:
                        cursor.close()
                    return row[0] if row else None
                except self.engine.dialect.loaded_dbapi.Error:
                    self._drop()
                    if attempt == 2:
                        raise
        return None  # not reached: the second failure raises

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _connection(self):
        held = self._held
        if held is not None:
            if held[0] == os.getpid():
                return held[1]
            _INHERITED.append(held[1])
            self._held = None
        conn = self.engine.raw_connection()
        conn.detach()  # never back to the pool, where another checkout would find it in autocommit
        if self.engine.dialect.name == "postgresql":
            conn.dbapi_connection.rollback()  # out of the transaction the pre-ping may have begun
            conn.dbapi_connection.autocommit = True
        self._held = (os.getpid(), conn)
        return conn

    def _drop(self) -> None:
        held, self._held = self._held, None
        if held is not None and held[0] == os.getpid():
            try:
                held[1].close()
            except self.engine.dialect.loaded_dbapi.Error:  # gone already
                pass
