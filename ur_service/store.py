"""The audit store: every review kept with its record, decision, rule digest, who and when; append-only.

Four tables are hash chains: ``reviews``, ``determinations``, ``api_keys`` (one row per key event) and
``rule_reloads``. Each row carries ``hash = sha256(prev_hash + canonical JSON of the row)``, so changing,
removing or reordering a row breaks the chain from there on. A chain's tail has no later row to break, so
each append also records the chain's head (seq, hash) in ``audit_heads``, and ``verify`` checks the chains
against those heads and against an *anchor* kept outside the database (the heads as an earlier verification,
or the logs, gave them): a cut tail shows either way. A review is committed before the service answers, so
every acknowledged review survives a crash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum

import orjson
from sqlalchemy import and_, delete, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from ulid import ULID

from ur_engine.rules.library import Source
from ur_engine.rules.library import digest as library_digest

from . import migrate
from .db import ReadConnection, create_db_engine, driver_write_transaction, write_transaction
from .group_commit import GroupCommit
from .statements import follows, run
from .tables import (CHAINS, api_keys, audit_heads, determinations, login_failures, pas_requests, reviews,
                     rule_reloads, rule_snapshots)

GENESIS = "0" * 64
TABLES = {"reviews": reviews, "determinations": determinations, "api_keys": api_keys, "rule_reloads": rule_reloads}
# Advisory lock ids (PostgreSQL): one per chain, so appends to one chain never read the same head twice.
LOCKS = {"reviews": 0x55520010, "determinations": 0x55520011, "rule_reloads": 0x55520012, "api_keys": 0x55520013}
LOGINS = 0x55520014
REVIEW_CHAIN, DETERMINATION_CHAIN, RELOADS = LOCKS["reviews"], LOCKS["determinations"], LOCKS["rule_reloads"]
# CMS-0057-F: prior-authorization decisions within 72 hours (expedited) or 7 calendar days (standard).
DUE = {"expedited": timedelta(hours=72), "standard": timedelta(days=7)}
ANCHOR = re.compile(r"^([a-z_]+):([0-9]{1,18}):([0-9a-f]{64})$")
KEY_STATE = ("key_id", "name", "role", "key_hash", "created_at", "revoked_at")
KEY_VERSION_SQL = "SELECT seq FROM audit_heads WHERE chain = 'api_keys'"
KEYS_KEPT = 1024  # key rows kept per process before the cache starts afresh


class NotFound(LookupError):
    """No review with that id."""


class Conflict(Exception):
    """The review has a determination already, or (``followed_by``) a later review follows it already."""

    def __init__(self, review_id: str, followed_by: str | None = None):
        super().__init__(review_id)
        self.review_id, self.followed_by = review_id, followed_by


@dataclass(frozen=True)
class Actor:
    """Who did it: the API key's public id and name (never the key)."""

    key_id: str
    name: str
    role: str = ""


def _not_followed():
    """A pend a later review follows is closed: the later review is the one to decide."""
    later = reviews.alias("later")
    return ~exists().where(follows(later, reviews))


def utc_text(when: datetime | None = None) -> str:
    """Fixed-width ISO 8601 UTC with milliseconds, so text order is time order."""
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def canonical(value) -> str:
    """Sorted keys, no spaces, UTF-8 as is: the text every chain hash is taken over, so it may never change.

    orjson writes exactly this, ten times faster, except for floats printed with an exponent (below 1e-4 or
    from 1e16: ``1e-05`` here, ``0.00001`` there), NaN and infinities (``null`` there, an error here), and what it
    refuses (lone surrogates, integers past 64 bits, keys that are not strings); those take the reference.
    tests/test_service_canonical.py checks the two agree on arbitrary JSON.
    """
    if _plain_floats(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            pass
    return canonical_reference(value)


def canonical_bytes(value) -> bytes:
    """``canonical(value).encode()``, as hashed: orjson writes those bytes itself, so the ~14 KB of a review's
    row are not decoded into text only to be encoded again for the hash."""
    if _plain_floats(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            pass
    return canonical_reference(value).encode()


def canonical_reference(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _plain_floats(value) -> bool:
    """Every float in ``value`` is one both writers print alike (0, or from 1e-4 up to but not including 1e16),
    and it holds nothing but JSON's own types (anything else takes the reference)."""
    stack = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is dict:
            extend(item.values())
        elif kind is list:
            extend(item)
        elif kind is float:
            if item != 0.0 and not 1e-4 <= abs(item) < 1e16:  # NaN fails the range too
                return False
        elif not (isinstance(item, str) and isinstance(item, Enum)):  # the decision's str enums write alike
            return False
    return True


def chain_hash(prev_hash: str, row: dict) -> str:
    body = {k: v for k, v in row.items() if k not in ("hash", "prev_hash")}
    return hashlib.sha256(prev_hash.encode() + canonical_bytes(body)).hexdigest()


def _append(conn, chain: str, row: dict) -> dict:
    """Append ``row`` to ``chain`` inside the caller's write transaction and move the chain's recorded head."""
    return _append_rows(conn, chain, [row])[0]


def _append_reviews(conn, rows: list[dict]) -> list[dict]:
    """Reviews, each with the PAS request it answers (``_pas``) in the same transaction, a review that follows
    another (``_follows``) only if it still may. The rows queued are left as they came: a batch that fails is
    retried from them row by row."""
    followed: set[str] = set()
    for r in rows:
        if r.get("_follows") is not None:
            _may_follow(conn, r["_follows"], followed)
    stored = _append_rows(conn, "reviews", [{k: v for k, v in r.items() if k not in ("_pas", "_follows")}
                                            for r in rows])
    pas = [_pas_row(row["review_id"], r["_pas"]) for row, r in zip(stored, rows) if r.get("_pas") is not None]
    if pas:
        run(conn, "insert", "pas_requests", pas)
    return stored


def _may_follow(conn, earlier: str, followed: set[str]) -> None:
    """Raise Conflict unless a new review may follow ``earlier``: no physician has decided it and no other review
    follows it. Checked inside the write transaction that stores the new review, so that two answers to one
    questionnaire sent at once never both follow it, nor does an answer follow a review decided meanwhile.
    ``followed``: the reviews followed by earlier rows of the same transaction (a second is retried alone)."""
    if conn.dialect.name == "postgresql":
        # Determinations append under a lock of their own: wait for one being added to the review meanwhile. (No
        # transaction holds the determinations' lock and then asks for the reviews'.)
        conn.run("SELECT pg_advisory_xact_lock(%s)", (DETERMINATION_CHAIN,))
    if run(conn, "decided", "determinations", [{"review_id": earlier}]).fetchone() is not None:
        raise Conflict(earlier)
    first = run(conn, "later", "reviews", [{"review_id": earlier}]).fetchone()
    later = first[0] if first is not None else None
    if later is not None or earlier in followed:
        raise Conflict(earlier, followed_by=later)
    followed.add(earlier)


def _append_rows(conn, chain: str, rows: list[dict]) -> list[dict]:
    """Append ``rows`` in order, chained one to the next: one read of the head, one insert, one head move."""
    last = run(conn, "head", chain).fetchone()
    seq, prev = (last[0], last[1]) if last else (0, GENESIS)
    for row in rows:
        seq += 1
        row["seq"], row["prev_hash"] = seq, prev
        row["hash"] = prev = chain_hash(prev, row)
    run(conn, "insert", chain, rows)
    head = {"chain": chain, "seq": seq, "hash": prev}
    if not run(conn, "move_head", "audit_heads", [head]).rowcount:
        run(conn, "insert", "audit_heads", [head])
    return rows


def anchor_text(anchor: dict[str, tuple[int, str]]) -> str:
    """``reviews:12:<hash>,determinations:3:<hash>,…``: the heads, as ``verify(expect=…)`` takes them back."""
    return ",".join(f"{chain}:{seq}:{hash_}" for chain, (seq, hash_) in anchor.items())


def parse_anchor(text: str) -> dict[str, tuple[int, str]]:
    """The inverse of ``anchor_text``; raises ValueError naming the part it cannot read."""
    out = {}
    for part in text.split(","):
        m = ANCHOR.match(part.strip())
        if not m or m[1] not in TABLES:
            raise ValueError(f"'{part[:100]}' is not chain:seq:hash with a chain of {', '.join(TABLES)}")
        out[m[1]] = (int(m[2]), m[3])
    return out


def _fresh_pool_in_child(ref) -> None:
    store = ref()  # weak: the fork hook cannot be unregistered and must not keep a closed store alive
    if store is not None:
        store.engine.dispose(close=False)
        store.review_commits.reset()


class Store:
    """One database; ``Store(url)`` upgrades it to the head migration unless ``upgrade=False``."""

    def __init__(self, url: str, upgrade: bool = True):
        self.url = url
        self.engine = create_db_engine(url)
        # Reviews arriving together share a transaction and its fsync; each is answered once its row is in.
        self.review_commits = GroupCommit(functools.partial(driver_write_transaction, self.engine, REVIEW_CHAIN),
                                          _append_reviews)
        self._keys: tuple[int | None, dict[str, dict]] = (None, {})  # see get_key
        self._key_reads = ReadConnection(self.engine)  # see key_version
        # gunicorn forks workers after the app is built (preload): a child must open its own connections,
        # never reuse the parent's sockets. dispose(close=False) leaves the parent's connections alone.
        os.register_at_fork(after_in_child=functools.partial(_fresh_pool_in_child, weakref.ref(self)))
        if upgrade:
            migrate.upgrade(self.engine)

    def close(self) -> None:
        self._key_reads.close()
        self.engine.dispose()

    # -- reviews ------------------------------------------------------------------------------------------

    def add_review(self, *, record: dict, decision: dict, actor: Actor, urgency: str = "standard",
                   received: datetime | None = None, pas_request: dict | None = None) -> dict:
        """Append one review and commit (with any arriving at the same time); returns the stored row.
        ``pas_request`` (``{"claim": …, "bundle_identifier": …}``): the Da Vinci PAS request it answers, stored in
        the same transaction."""
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
        if pas_request is not None:
            row["_pas"] = pas_request  # not a column: stored beside the row, in its transaction (_append_reviews)
        if decision.get("follows"):
            row["_follows"] = decision["follows"]["review_id"]  # checked in the transaction too (_may_follow)
        return self.review_commits.submit(row)

    def pas_request(self, review_id: str) -> dict | None:
        """The PAS request a review answers (``{"claim": …, "bundle_identifier": …}``), or None."""
        with self.engine.connect() as conn:
            text = conn.execute(select(pas_requests.c.request).where(pas_requests.c.review_id == review_id)).scalar()
        return json.loads(text) if text is not None else None

    def find_pas_request(self, identifiers: list[tuple[str | None, str]], claim_id: str | None = None) -> str | None:
        """The review id of the newest PAS request whose Claim has one of ``identifiers`` ((system, value); a
        None system matches any), else whose Claim id is ``claim_id``; None when nothing matches."""
        conds = [and_(pas_requests.c.identifier_value == value,
                      *([pas_requests.c.identifier_system == system] if system else []))
                 for system, value in identifiers if value]
        with self.engine.connect() as conn:
            for cond in ([or_(*conds)] if conds else []) + ([pas_requests.c.claim_id == claim_id] if claim_id else []):
                found = conn.execute(
                    select(pas_requests.c.review_id).select_from(
                        pas_requests.join(reviews, reviews.c.review_id == pas_requests.c.review_id))
                    .where(cond).order_by(reviews.c.seq.desc()).limit(1)).scalar()
                if found is not None:
                    return str(found)
        return None

    def get_review(self, review_id: str) -> tuple[dict, dict | None] | None:
        """The review row and its determination row (or None); None when there is no such review."""
        with self.engine.connect() as conn:
            found = conn.execute(select(reviews).where(reviews.c.review_id == review_id)).mappings().first()
            if found is None:
                return None
            det = conn.execute(select(determinations).where(determinations.c.review_id == review_id)
                               ).mappings().first()
        return dict(found), dict(det) if det else None

    def followed_by(self, review_id: str) -> str | None:
        """The review_id of the review that follows ``review_id`` (the first, if several), or None."""
        later = reviews.alias("later")
        with self.engine.connect() as conn:
            return conn.execute(select(later.c.review_id).where(reviews.c.review_id == review_id,
                                                                follows(later, reviews))
                                .order_by(later.c.seq).limit(1)).scalar()

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
            conds += [reviews.c.outcome == "pend", determinations.c.review_id.is_(None), _not_followed()]
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
        """Pended reviews without a determination nor a later review following them, the soonest due first;
        returns (rows, open, overdue)."""
        now_text = utc_text(now)
        cols = [c for c in reviews.c if c.name not in ("record", "decision", "prev_hash", "hash")]
        joined = reviews.outerjoin(determinations, determinations.c.review_id == reviews.c.review_id)
        conds = [reviews.c.outcome == "pend", determinations.c.review_id.is_(None), _not_followed()]
        if urgency:
            conds.append(reviews.c.urgency == urgency)
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).select_from(joined).where(*conds)
                                .order_by(reviews.c.due_at, reviews.c.seq).limit(limit)).mappings().all()
            counts = conn.execute(select(func.count(), func.count().filter(reviews.c.due_at < now_text))
                                  .select_from(joined).where(*conds)).one()
        return [dict(r) for r in rows], counts[0], counts[1] or 0

    def open_reviews(self, *, outcomes: tuple[str, ...] = ("pend", "alternative_setting"),
                     urgency: str | None = None, requested: str | None = None, limit: int = 200, offset: int = 0):
        """Reviews awaiting a person (no determination yet), with their decisions: the pended ones soonest due
        first, then the rest oldest first; ``offset`` rows of that order skipped. For the triage worklist, which
        shows why each one waits, a page at a time."""
        cols = [c for c in reviews.c if c.name not in ("record", "prev_hash", "hash")]
        joined = reviews.outerjoin(determinations, determinations.c.review_id == reviews.c.review_id)
        conds = [reviews.c.outcome.in_(outcomes), determinations.c.review_id.is_(None)]
        if urgency:
            conds.append(reviews.c.urgency == urgency)
        if requested:
            conds.append(reviews.c.requested == requested)
        query = (select(*cols).select_from(joined).where(*conds)
                 .order_by(reviews.c.due_at.is_(None), reviews.c.due_at, reviews.c.seq).limit(limit).offset(offset))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def record_counts(self, record_ids) -> dict[str, int]:
        """How many reviews each stay id has had (a stay submitted twice shows 2)."""
        ids = sorted(set(record_ids))
        if not ids:
            return {}
        with self.engine.connect() as conn:
            return dict(conn.execute(select(reviews.c.record_id, func.count()).where(reviews.c.record_id.in_(ids))
                                     .group_by(reviews.c.record_id)).all())

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
                _append(conn, "determinations", row)
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

    def verify(self, expect: dict[str, tuple[int, str]] | None = None) -> dict:
        """Walk every chain; check its end against the recorded head and against ``expect`` (an anchor from
        outside the database: chain → (seq, hash)). Each problem names the table, the row's seq and what is wrong.
        """
        problems, heads, counts, anchor = [], {}, {}, {}
        expect = expect or {}

        def problem(table: str, seq: int, text: str) -> None:
            problems.append({"table": table, "seq": seq, "problem": text})

        with self.engine.connect() as conn:
            recorded = {r.chain: (r.seq, r.hash) for r in conn.execute(select(audit_heads))}
            for name in CHAINS:
                table = TABLES[name]
                prev, expected_seq, n, at_anchor = GENESIS, 1, 0, None
                wanted = expect.get(name)
                result = conn.execution_options(yield_per=1000).execute(select(table).order_by(table.c.seq))
                for row in result.mappings():
                    row = dict(row)
                    n += 1
                    if row["seq"] != expected_seq:
                        problem(name, row["seq"], f"row {expected_seq} is missing")
                    if row["prev_hash"] != prev:
                        problem(name, row["seq"], "prev_hash does not match the previous row's hash")
                    if chain_hash(row["prev_hash"], row) != row["hash"]:
                        problem(name, row["seq"], "the row's content does not match its hash")
                    if wanted and row["seq"] == wanted[0]:
                        at_anchor = row["hash"]
                    prev, expected_seq = row["hash"], row["seq"] + 1
                end = (expected_seq - 1, prev) if n else (0, GENESIS)
                head = recorded.get(name, (0, GENESIS))
                if end != head:
                    problem(name, end[0], f"the chain ends at row {end[0]} but its recorded head is row {head[0]}"
                            + (": rows were cut from its tail" if head[0] > end[0] else " with another hash"))
                if wanted and wanted[0] > end[0]:
                    problem(name, end[0], f"the anchor names row {wanted[0]} but the chain ends at row {end[0]}: "
                                          "rows were cut from its tail")
                elif wanted and wanted[0] > 0 and at_anchor != wanted[1]:
                    problem(name, wanted[0], f"row {wanted[0]} does not match the anchor's hash")
                heads[name], counts[name], anchor[name] = (prev if n else None), n, end
            for snap in conn.execute(select(rule_snapshots)).mappings():
                files = [Source(n, t) for n, t in json.loads(snap["files"])]
                if library_digest(files) != snap["digest"]:
                    seq = conn.execute(select(func.min(rule_reloads.c.seq))
                                       .where(rule_reloads.c.digest == snap["digest"])).scalar() or 0
                    problem("rule_snapshots", seq, f"the files kept for {snap['digest']} do not hash to it")
        return {"ok": not problems, "counts": counts, "heads": heads, "anchor": anchor_text(anchor),
                "problems": problems[:100]}

    def head(self) -> str:
        """The recorded heads as an anchor (what to keep outside the database)."""
        with self.engine.connect() as conn:
            recorded = {r.chain: (r.seq, r.hash) for r in conn.execute(select(audit_heads))}
        return anchor_text({c: recorded.get(c, (0, GENESIS)) for c in CHAINS})

    # -- rule reloads -------------------------------------------------------------------------------------

    def add_reload(self, *, ok: bool, digest: str | None, actor: Actor, files: list | None = None,
                   errors: list[str] = (), kind: str = "reload") -> dict:
        """Log a reload attempt (or the library loaded at startup); an accepted one keeps its files by digest."""
        with write_transaction(self.engine, LOCKS["rule_reloads"]) as conn:
            if ok and files is not None and conn.execute(
                    select(rule_snapshots.c.digest).where(rule_snapshots.c.digest == digest)).first() is None:
                conn.execute(insert(rule_snapshots), {"digest": digest,
                                                      "files": canonical([[f.name, f.text] for f in files])})
            return _append(conn, "rule_reloads", {
                "at": utc_text(), "kind": kind, "ok": ok, "digest": digest or "", "errors": canonical(list(errors)),
                "actor_key": actor.key_id, "actor_name": actor.name})

    def latest_reload(self, accepted: bool = True) -> dict | None:
        """The newest accepted reload (or the newest attempt of any outcome)."""
        query = select(rule_reloads).order_by(rule_reloads.c.seq.desc()).limit(1)
        if accepted:
            query = query.where(rule_reloads.c.ok.is_(True))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def reloads(self, limit: int = 20) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(rule_reloads).order_by(rule_reloads.c.seq.desc())
                                                  .limit(limit)).mappings()]

    def snapshot(self, digest: str) -> list[Source] | None:
        """The files of the accepted library ``digest``, or None when none were kept."""
        with self.engine.connect() as conn:
            files = conn.execute(select(rule_snapshots.c.files).where(rule_snapshots.c.digest == digest)).scalar()
        return None if files is None else [Source(n, t) for n, t in json.loads(files)]

    # -- API keys -----------------------------------------------------------------------------------------

    def add_key(self, key_id: str, *, name: str, role: str, key_hash: str, by: str = "command line") -> None:
        now = utc_text()
        with write_transaction(self.engine, LOCKS["api_keys"]) as conn:
            _append(conn, "api_keys", {"key_id": key_id, "event": "created", "name": name, "role": role,
                                       "key_hash": key_hash, "created_at": now, "revoked_at": None, "at": now,
                                       "by": by})

    def get_key(self, key_id: str) -> dict | None:
        """The key's state: its newest row.

        Every request asks for its key, so found rows are kept per process, labelled with the key chain's head
        as read *before* the row: every key event (created, revoked, role changed, from any process) moves that
        head, so a kept row is served only while the head is still the one it was read under. That check is one
        small query on the driver's own connection; a revocation takes effect on the very next request.
        """
        version = self.key_version()
        held, rows = self._keys
        if held != version or len(rows) > KEYS_KEPT:
            rows = {}
            self._keys = (version, rows)
        found = rows.get(key_id)
        if found is None:
            with self.engine.connect() as conn:
                row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)
                                   .order_by(api_keys.c.seq.desc()).limit(1)).mappings().first()
            if row is None:
                return None  # unknown ids are not kept: anyone may send any number of them
            found = rows[key_id] = dict(row)
        return dict(found)

    def key_version(self) -> int:
        """The key chain's head seq (0 before the first key); it moves with every key event. Read on a
        connection this process keeps for it (db.ReadConnection), below SQLAlchemy's statement layer."""
        seq = self._key_reads.scalar(KEY_VERSION_SQL)
        return int(seq) if seq is not None else 0

    def list_keys(self) -> list[dict]:
        with self.engine.connect() as conn:
            state = {r["key_id"]: dict(r) for r in conn.execute(select(api_keys).order_by(api_keys.c.seq)).mappings()}
        return sorted(state.values(), key=lambda k: (k["created_at"], k["key_id"]))

    def _key_event(self, key_id: str, event: str, by: str, **changes) -> bool:
        with write_transaction(self.engine, LOCKS["api_keys"]) as conn:
            now = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)
                               .order_by(api_keys.c.seq.desc()).limit(1)).mappings().first()
            if now is None or now["revoked_at"]:
                return False
            _append(conn, "api_keys", {**{k: now[k] for k in KEY_STATE}, **changes, "event": event,
                                       "at": utc_text(), "by": by})
        return True

    def revoke_key(self, key_id: str, by: str = "command line") -> bool:
        """Revoke an active key (a new row); False when there is no such active key."""
        return self._key_event(key_id, "revoked", by, revoked_at=utc_text())

    def set_role(self, key_id: str, role: str, by: str = "command line") -> bool:
        """Give an active key another role (a new row); False when there is no such active key."""
        return self._key_event(key_id, "role_changed", by, role=role)

    # -- sign-in attempts ---------------------------------------------------------------------------------

    def login_failures(self, client: str, since: datetime) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(login_failures).where(
                login_failures.c.client == client, login_failures.c.at >= utc_text(since))).scalar()

    def add_login_failure(self, client: str, keep: timedelta) -> None:
        now = datetime.now(timezone.utc)
        with write_transaction(self.engine, LOGINS) as conn:
            conn.execute(delete(login_failures).where(login_failures.c.at < utc_text(now - keep)))
            conn.execute(insert(login_failures), {"client": client[:64], "at": utc_text(now)})


def _pas_row(review_id: str, request: dict) -> dict:
    claim = request.get("claim") or {}
    first = next((i for i in claim.get("identifier") or () if isinstance(i, dict) and i.get("value")), {})
    claim_id = claim.get("id")
    return {"review_id": review_id, "claim_id": claim_id[:64] if isinstance(claim_id, str) else None,
            "identifier_system": str(first["system"])[:255] if first.get("system") else None,
            "identifier_value": str(first["value"])[:255] if first.get("value") else None,
            "request": canonical(request)}
