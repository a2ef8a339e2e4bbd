"""The audit store's tables as SQLAlchemy Core metadata (the shape at the head migration).

Migrations in ``migrations/versions`` create these tables; ``tests/test_service_store.py`` checks that the
migrated database and this metadata agree, so the two cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, MetaData, String, Table, Text

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

# API keys, append-only and hash-chained: one row per event (created, revoked, role_changed) with the key's whole
# state after it; the newest row of a key_id is its state. Only a SHA-256 of the key is kept; ``key_id`` is the
# public part printed in the key itself.
api_keys = Table(
    "api_keys", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("key_id", String(32), nullable=False),
    Column("event", String(16), nullable=False),
    Column("name", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
    Column("at", String(32), nullable=False),
    Column("by", String(100), nullable=False),  # who made the change (a key id, or the command line)
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_api_keys_key_id", "key_id", "seq"),
)

# Every rule reload attempt (accepted or refused, with its errors) and the library each process loaded at
# startup, append-only and hash-chained. Each worker follows the newest accepted row, loading its library from
# ``rule_snapshots`` (never from the rule folder as it happens to be by then).
rule_reloads = Table(
    "rule_reloads", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("kind", String(10), nullable=False),  # reload | startup
    Column("ok", Boolean, nullable=False),
    Column("digest", String(80), nullable=False),  # "" when the files could not even be read
    Column("errors", Text, nullable=False),  # JSON list
    Column("actor_key", String(32), nullable=False),
    Column("actor_name", String(100), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_rule_reloads_ok", "ok", "seq"),
)

# Accepted rule libraries by digest: their files as JSON [[name, text], …]. Immutable: the digest is a hash of
# the files, so a row can be checked against its own key.
rule_snapshots = Table(
    "rule_snapshots", metadata,
    Column("digest", String(80), primary_key=True),
    Column("files", Text, nullable=False),
)

# Each chain's head (last seq and hash), written with every append: kept apart from the rows it vouches for, so
# a row cut from a chain's tail shows. (Exported too: /v1/audit/verify's ``anchor``, for an outside copy.)
audit_heads = Table(
    "audit_heads", metadata,
    Column("chain", String(32), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# The Da Vinci PAS Claim a review answers (as JSON, with the request Bundle's identifier), found again by the
# Claim's first identifier or its id when the submitter inquires.
pas_requests = Table(
    "pas_requests", metadata,
    Column("review_id", String(40), ForeignKey("reviews.review_id"), primary_key=True),
    Column("claim_id", String(64)),
    Column("identifier_system", String(255)),
    Column("identifier_value", String(255)),
    Column("request", Text, nullable=False),  # {"claim": …, "bundle_identifier": …}
    Index("ix_pas_requests_identifier", "identifier_value", "identifier_system"),
    Index("ix_pas_requests_claim_id", "claim_id"),
)

# Failed sign-ins by client address, for the login rate limit shared by every worker; old rows are deleted.
login_failures = Table(
    "login_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Index("ix_login_failures_client_at", "client", "at"),
)

# Tables whose rows may never change or go: the migrations add triggers refusing UPDATE and DELETE.
APPEND_ONLY = ("reviews", "determinations", "api_keys", "rule_reloads", "rule_snapshots", "pas_requests")
# The hash chains, in the order verification walks them.
CHAINS = ("reviews", "determinations", "api_keys", "rule_reloads")
