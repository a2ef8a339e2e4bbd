"""The audit store's tables as SQLAlchemy Core metadata (the shape at the head migration).

Migrations in ``migrations/versions`` create these tables; ``tests/test_service_store.py`` checks that the
migrated database and this metadata agree, so the two cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, MetaData, String, Table, Text

metadata = MetaData()

# Every review the service answered, append-only and hash-chained in ``seq`` order.
reviews = Table(
    "reviews", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("review_id", String(40), nullable=False, unique=True),
    Column("record_id", String(200), nullable=False),
    Column("received_at", String(32), nullable=False),  # ISO 8601 UTC, fixed width: sorts as text
    Column("actor_key", String(32), nullable=False),
    Column("actor_name", String(100), nullable=False),
    Column("review_type", String(20), nullable=False),
    Column("outcome", String(24), nullable=False),
    Column("requested", String(20), nullable=False),
    Column("requested_status", String(10), nullable=False),  # the criteria's finding on the requested level
    Column("urgency", String(10), nullable=False),
    Column("due_at", String(32)),  # pended reviews only
    Column("rule_version", String(64), nullable=False),
    Column("rule_digest", String(80), nullable=False),
    Column("record", Text, nullable=False),  # canonical JSON
    Column("decision", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_reviews_outcome_due", "outcome", "due_at"),
    Index("ix_reviews_record_id", "record_id"),
    Index("ix_reviews_received_at", "received_at"),
)

# A physician's determination, stored beside the engine's decision (never over it); at most one per review.
determinations = Table(
    "determinations", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("determination_id", String(40), nullable=False, unique=True),
    Column("review_id", String(40), ForeignKey("reviews.review_id"), nullable=False, unique=True),
    Column("decided_at", String(32), nullable=False),
    Column("actor_key", String(32), nullable=False),
    Column("actor_name", String(100), nullable=False),
    Column("decision", String(10), nullable=False),
    Column("reason_code", String(40)),
    Column("text", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# API keys: only a SHA-256 of the key is kept; ``key_id`` is the public part printed in the key itself.
api_keys = Table(
    "api_keys", metadata,
    Column("key_id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
)

# Rule libraries accepted by POST /v1/admin/reload, in order: each gunicorn worker follows this log, so a reload
# handled by one worker reaches them all.
rule_reloads = Table(
    "rule_reloads", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("actor_key", String(32), nullable=False),
    Column("actor_name", String(100), nullable=False),
)

# Tables whose rows may never change or go: the migration adds triggers refusing UPDATE and DELETE.
APPEND_ONLY = ("reviews", "determinations")
