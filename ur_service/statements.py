"""The audit store's append statements, compiled once per dialect and run as SQL text.

Every append runs these few statements. Built and compiled by SQLAlchemy each time, they cost about seven times
the driver's own work (cache keys, coercions, result set-up: ~140 µs a statement against ~20), so each is
compiled once per dialect and its SQL text run as is, with the values in the order the dialect's placeholders
want: on the driver's cursor for a review (db.driver_write_transaction), else through ``exec_driver_sql``.
"""

from __future__ import annotations

from sqlalchemy import String, and_, bindparam, insert, literal_column, select, update

from .db import DriverTransaction
from .tables import api_keys, audit_heads, determinations, pas_requests, reviews, rule_reloads


def follows(later, earlier):
    """``later`` is a review of the same stay that follows ``earlier`` (its documentation questionnaire answered,
    see fhir_dtr). Looked up among the stay's own reviews (indexed by record_id)."""
    # The stored decision is canonical JSON (sorted keys, no spaces): its link reads "follows":{"review_id":"…",
    # SQL literals, not bound values: the compiled statements bind only the values a caller names.
    pattern = (literal_column("""'%"follows":{"review_id":"'""", String) + earlier.c.review_id
               + literal_column("""'",%'""", String))
    return and_(later.c.record_id == earlier.c.record_id, later.c.seq > earlier.c.seq, later.c.decision.like(pattern))


def _later(table):
    """The reviews that follow a review (``review_id``), the first first."""
    earlier, later = table.alias("earlier"), table.alias("later")
    return (select(later.c.review_id).where(earlier.c.review_id == bindparam("review_id"), follows(later, earlier))
            .order_by(later.c.seq))


_STATEMENTS = {
    "head": lambda table: select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1),
    "insert": lambda table: insert(table),
    "move_head": lambda table: update(table).where(table.c.chain == bindparam("chain"))
    .values(seq=bindparam("seq"), hash=bindparam("hash")),
    # What a review that follows another is checked against, in the transaction that stores it (store._may_follow).
    "decided": lambda table: select(table.c.seq).where(table.c.review_id == bindparam("review_id")),
    "later": _later,
}
_COMPILED: dict[tuple[str, str, str, str], tuple[str, tuple[str, ...] | None]] = {}
_TABLES = {"reviews": reviews, "determinations": determinations, "api_keys": api_keys,
           "rule_reloads": rule_reloads, "audit_heads": audit_heads, "pas_requests": pas_requests}


def _compiled(dialect, kind: str, table_name: str) -> tuple[str, tuple[str, ...] | None]:
    key = (dialect.name, dialect.driver, kind, table_name)
    found = _COMPILED.get(key)
    if found is None:
        compiled = _STATEMENTS[kind](_TABLES[table_name]).compile(
            dialect=dialect, compile_kwargs={"literal_binds": kind == "head"})
        # A positional paramstyle (SQLite's ?) takes the values in this order; a named one (psycopg's) the dict.
        order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
        found = _COMPILED[key] = (compiled.string, order)
    return found


def run(conn, kind: str, table_name: str, rows: list[dict] | None = None):
    """Run a compiled statement in ``conn``: a SQLAlchemy connection, or a review's ``DriverTransaction``."""
    sql, order = _compiled(conn.dialect, kind, table_name)
    params = None if rows is None else [tuple(row[k] for k in order) for row in rows] if order is not None else rows
    if isinstance(conn, DriverTransaction):
        return conn.run(sql, params if params is None or len(params) > 1 else params[0],
                        many=params is not None and len(params) > 1)
    if params is None:
        return conn.exec_driver_sql(sql)
    return conn.exec_driver_sql(sql, params if len(params) > 1 else params[0])
