"""The audit store: every review kept with its record, decision, rule digest, who and when; append-only.

Each row of ``reviews`` and of ``determinations`` carries ``hash = sha256(prev_hash + canonical JSON of the
row)``, so changing, removing or reordering a row breaks the chain from there on (``verify``). A review is
committed before the service answers, so every acknowledged review survives a crash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from ulid import ULID

from . import migrate
from .db import create_db_engine, write_transaction
from .tables import api_keys, determinations, reviews, rule_reloads

GENESIS = "0" * 64
REVIEW_CHAIN, DETERMINATION_CHAIN, RELOADS = 0x55520010, 0x55520011, 0x55520012  # advisory lock ids (PostgreSQL)
# CMS-0057-F: prior-authorization decisions within 72 hours (expedited) or 7 calendar days (standard).
DUE = {"expedited": timedelta(hours=72), "standard": timedelta(days=7)}


class NotFound(LookupError):
    """No review with that id."""


class Conflict(Exception):
    """The review has a determination already."""


@dataclass(frozen=True)
class Actor:
    """Who did it: the API key's public id and name (never the key)."""

    key_id: str
    name: str
    role: str = ""


def utc_text(when: datetime | None = None) -> str:
    """Fixed-width ISO 8601 UTC with milliseconds, so text order is time order."""
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_hash(prev_hash: str, row: dict) -> str:
    body = {k: v for k, v in row.items() if k not in ("hash", "prev_hash")}
    return hashlib.sha256((prev_hash + canonical(body)).encode()).hexdigest()


def _fresh_pool_in_child(ref) -> None:
    store = ref()  # weak: the fork hook cannot be unregistered and must not keep a closed store alive
    if store is not None:
        store.engine.dispose(close=False)


class Store:
    """One database; ``Store(url)`` upgrades it to the head migration unless ``upgrade=False``."""

    def __init__(self, url: str, upgrade: bool = True):
        self.url = url
        self.engine = create_db_engine(url)
        # gunicorn forks workers after the app is built (preload): a child must open its own connections,
        # never reuse the parent's sockets. dispose(close=False) leaves the parent's connections alone.
        os.register_at_fork(after_in_child=functools.partial(_fresh_pool_in_child, weakref.ref(self)))
        if upgrade:
            migrate.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- reviews ------------------------------------------------------------------------------------------

    def add_review(self, *, record: dict, decision: dict, actor: Actor, urgency: str = "standard",
                   received: datetime | None = None) -> dict:
        """Append one review and commit; returns the stored row."""
        received = received or datetime.now(timezone.utc)
        requested = decision.get("requested") or ""
        row = {
            "review_id": decision["review_id"], "record_id": decision["record_id"],
            "received_at": utc_text(received), "actor_key": actor.key_id, "actor_name": actor.name,
            "review_type": decision["review_type"], "outcome": decision["outcome"], "requested": requested,
            "requested_status": decision.get("levels", {}).get(requested, "unknown"), "urgency": urgency,
            "due_at": utc_text(received + DUE[urgency]) if decision["outcome"] == "pend" else None,
            "rule_version": decision["rules"]["version"], "rule_digest": decision["rules"]["digest"],
            "record": canonical(record), "decision": canonical(decision),
        }
        with write_transaction(self.engine, REVIEW_CHAIN) as conn:
            last = conn.execute(select(reviews.c.seq, reviews.c.hash).order_by(reviews.c.seq.desc()).limit(1)).first()
            row["seq"] = last.seq + 1 if last else 1
            row["prev_hash"] = last.hash if last else GENESIS
            row["hash"] = chain_hash(row["prev_hash"], row)
            conn.execute(insert(reviews), row)
        return row

    def get_review(self, review_id: str) -> tuple[dict, dict | None] | None:
        """The review row and its determination row (or None); None when there is no such review."""
        with self.engine.connect() as conn:
            found = conn.execute(select(reviews).where(reviews.c.review_id == review_id)).mappings().first()
            if found is None:
                return None
            det = conn.execute(select(determinations).where(determinations.c.review_id == review_id)
                               ).mappings().first()
        return dict(found), dict(det) if det else None

    def list_reviews(self, *, outcome: str | None = None, record_id: str | None = None,
                     urgency: str | None = None, status: str | None = None, since: str | None = None,
                     until: str | None = None, limit: int = 50, before: int | None = None):
        """Newest first; ``status`` is open (pended, undecided) or decided. Returns (rows, next cursor)."""
        cols = [c for c in reviews.c if c.name not in ("record", "decision")]
        query = (select(*cols, determinations.c.decision.label("determination"))
                 .select_from(reviews.outerjoin(determinations, determinations.c.review_id == reviews.c.review_id)))
        conds = []
        if outcome:
            conds.append(reviews.c.outcome == outcome)
        if record_id:
            conds.append(reviews.c.record_id == record_id)
        if urgency:
            conds.append(reviews.c.urgency == urgency)
        if status == "open":
            conds += [reviews.c.outcome == "pend", determinations.c.review_id.is_(None)]
        elif status == "decided":
            conds.append(determinations.c.review_id.is_not(None))
        if since:
            conds.append(reviews.c.received_at >= since)
        if until:
            conds.append(reviews.c.received_at < until)
        if before is not None:
            conds.append(reviews.c.seq < before)
        query = query.where(and_(*conds)) if conds else query
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query.order_by(reviews.c.seq.desc()).limit(limit + 1)).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1]["seq"] if more else None)

    def worklist(self, *, urgency: str | None = None, limit: int = 100, now: datetime | None = None):
        """Pended reviews without a determination, the soonest due first; returns (rows, open, overdue)."""
        now_text = utc_text(now)
        cols = [c for c in reviews.c if c.name not in ("record", "decision", "prev_hash", "hash")]
        joined = reviews.outerjoin(determinations, determinations.c.review_id == reviews.c.review_id)
        conds = [reviews.c.outcome == "pend", determinations.c.review_id.is_(None)]
        if urgency:
            conds.append(reviews.c.urgency == urgency)
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).select_from(joined).where(*conds)
                                .order_by(reviews.c.due_at, reviews.c.seq).limit(limit)).mappings().all()
            counts = conn.execute(select(func.count(), func.count().filter(reviews.c.due_at < now_text))
                                  .select_from(joined).where(*conds)).one()
        return [dict(r) for r in rows], counts[0], counts[1] or 0

    # -- determinations -----------------------------------------------------------------------------------

    def add_determination(self, review_id: str, *, decision: str, reason_code: str | None, text: str | None,
                          actor: Actor, decided: datetime | None = None) -> dict:
        """Append a physician's determination beside the engine's decision; raises NotFound or Conflict."""
        row = {"determination_id": str(ULID()), "review_id": review_id, "decided_at": utc_text(decided),
               "actor_key": actor.key_id, "actor_name": actor.name, "decision": decision,
               "reason_code": reason_code, "text": text}
        try:
            with write_transaction(self.engine, DETERMINATION_CHAIN) as conn:
                if conn.execute(select(reviews.c.seq).where(reviews.c.review_id == review_id)).first() is None:
                    raise NotFound(review_id)
                if conn.execute(select(determinations.c.seq).where(determinations.c.review_id == review_id)).first():
                    raise Conflict(review_id)
                last = conn.execute(select(determinations.c.seq, determinations.c.hash)
                                    .order_by(determinations.c.seq.desc()).limit(1)).first()
                row["seq"] = last.seq + 1 if last else 1
                row["prev_hash"] = last.hash if last else GENESIS
                row["hash"] = chain_hash(row["prev_hash"], row)
                conn.execute(insert(determinations), row)
        except IntegrityError as exc:  # a concurrent determination won the unique constraint
            raise Conflict(review_id) from exc
        return row

    # -- reports ------------------------------------------------------------------------------------------

    def stats(self, now: datetime | None = None) -> dict:
        """Counts by outcome, the worklist, and physician determinations against the engine's findings."""
        with self.engine.connect() as conn:
            by_outcome = dict(conn.execute(select(reviews.c.outcome, func.count()).group_by(reviews.c.outcome)).all())
            joined = determinations.join(reviews, reviews.c.review_id == determinations.c.review_id)
            on_time = func.count().filter(and_(reviews.c.due_at.is_not(None),
                                               determinations.c.decided_at <= reviews.c.due_at))
            decided = conn.execute(
                select(reviews.c.outcome, reviews.c.requested_status, determinations.c.decision, func.count(), on_time)
                .select_from(joined)
                .group_by(reviews.c.outcome, reviews.c.requested_status, determinations.c.decision)).all()
        _, open_, overdue = self.worklist(limit=0, now=now)
        return {"by_outcome": by_outcome, "open": open_, "overdue": overdue,
                "determinations": [{"outcome": o, "finding": f, "decision": d, "count": n, "on_time": t or 0}
                                   for o, f, d, n, t in decided]}

    def verify(self) -> dict:
        """Walk both chains; each problem names the table, the row's seq and what is wrong."""
        problems, heads, counts = [], {}, {}
        with self.engine.connect() as conn:
            for table in (reviews, determinations):
                prev, expected_seq, n = GENESIS, 1, 0
                result = conn.execution_options(yield_per=1000).execute(select(table).order_by(table.c.seq))
                for row in result.mappings():
                    row = dict(row)
                    n += 1
                    if row["seq"] != expected_seq:
                        problems.append({"table": str(table.name), "seq": row["seq"],
                                         "problem": f"row {expected_seq} is missing"})
                    if row["prev_hash"] != prev:
                        problems.append({"table": str(table.name), "seq": row["seq"],
                                         "problem": "prev_hash does not match the previous row's hash"})
                    if chain_hash(row["prev_hash"], row) != row["hash"]:
                        problems.append({"table": str(table.name), "seq": row["seq"],
                                         "problem": "the row's content does not match its hash"})
                    prev, expected_seq = row["hash"], row["seq"] + 1
                heads[str(table.name)], counts[str(table.name)] = (prev if n else None), n
        return {"ok": not problems, "counts": counts, "heads": heads, "problems": problems[:100]}

    # -- rule reloads -------------------------------------------------------------------------------------

    def add_reload(self, digest: str, actor: Actor) -> int:
        """Record an accepted rule library; returns its position in the log."""
        with write_transaction(self.engine, RELOADS) as conn:
            last = conn.execute(select(func.max(rule_reloads.c.seq))).scalar()
            seq = (last or 0) + 1
            conn.execute(insert(rule_reloads), {"seq": seq, "at": utc_text(), "digest": digest,
                                                "actor_key": actor.key_id, "actor_name": actor.name})
        return seq

    def latest_reload(self) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(rule_reloads).order_by(rule_reloads.c.seq.desc()).limit(1)).mappings().first()
        return dict(row) if row else None

    # -- API keys -----------------------------------------------------------------------------------------

    def add_key(self, key_id: str, *, name: str, role: str, key_hash: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(api_keys), {"key_id": key_id, "name": name, "role": role, "key_hash": key_hash,
                                            "created_at": utc_text(), "revoked_at": None})

    def get_key(self, key_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).mappings().first()
        return dict(row) if row else None

    def list_keys(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(api_keys).order_by(api_keys.c.created_at)).mappings()]

    def revoke_key(self, key_id: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(update(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                                .values(revoked_at=utc_text()))
        return done.rowcount == 1
