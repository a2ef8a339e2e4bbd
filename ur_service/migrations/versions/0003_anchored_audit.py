"""An anchored audit trail: every chain's head kept apart from its rows; API keys and rule reloads become
append-only hash chains; accepted rule libraries are kept as snapshots addressed by digest; failed logins are
counted for the login rate limit.

* ``audit_heads``: each chain's last seq and hash, written in the transaction that appends the row, so a row
  cut from a chain's tail no longer leaves a chain that verifies (the head says how far it reached).
* ``api_keys``: one row per event (created, revoked, role changed) carrying the key's whole state after it;
  the key's current state is its newest row. A role change or a revocation is a new row, never an UPDATE.
* ``rule_reloads``: every reload attempt, accepted or refused (with its errors), and the library loaded at
  startup, hash-chained; ``rule_snapshots`` holds each accepted library's files under its digest, which is
  what every worker loads when it follows a reload (never the live rule folder).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
NEW_APPEND_ONLY = ("api_keys", "rule_reloads", "rule_snapshots")


def _hash(prev_hash: str, row: dict) -> str:
    # As ur_service.store.chain_hash at this revision; a copy, so later changes there cannot alter this step.
    body = {k: v for k, v in row.items() if k not in ("hash", "prev_hash")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


def _chain(rows: list[dict]) -> list[dict]:
    prev = GENESIS
    for seq, row in enumerate(rows, start=1):
        row["seq"] = seq
        row["prev_hash"] = prev
        row["hash"] = prev = _hash(prev, row)
    return rows


def upgrade() -> None:
    bind = op.get_bind()
    heads = op.create_table(
        "audit_heads",
        sa.Column("chain", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    for chain in ("reviews", "determinations"):
        last = bind.execute(sa.text(f"SELECT seq, hash FROM {chain} ORDER BY seq DESC LIMIT 1")).first()
        if last is not None:
            op.bulk_insert(heads, [{"chain": chain, "seq": last.seq, "hash": last.hash}])

    # API keys: the old rows (mutable) become events of a chain.
    old_keys = bind.execute(sa.text("SELECT key_id, name, role, key_hash, created_at, revoked_at FROM api_keys")
                            ).mappings().all()
    events = []
    for k in old_keys:
        state = {"key_id": k["key_id"], "name": k["name"], "role": k["role"], "key_hash": k["key_hash"],
                 "created_at": k["created_at"], "revoked_at": None}
        events.append({**state, "event": "created", "at": k["created_at"], "by": "migration 0003"})
        if k["revoked_at"]:
            events.append({**state, "revoked_at": k["revoked_at"], "event": "revoked", "at": k["revoked_at"],
                           "by": "migration 0003"})
    events.sort(key=lambda e: (e["at"], e["event"] != "created"))
    op.drop_table("api_keys")
    keys = op.create_table(
        "api_keys",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.String(32)),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("by", sa.String(100), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_api_keys_key_id", "api_keys", ["key_id", "seq"])
    if events:
        op.bulk_insert(keys, _chain(events))
        op.bulk_insert(heads, [{"chain": "api_keys", "seq": len(events), "hash": events[-1]["hash"]}])

    # Rule reloads: the accepted ones logged so far (no snapshot was kept for them) start the chain.
    old_reloads = bind.execute(sa.text("SELECT at, digest, actor_key, actor_name FROM rule_reloads ORDER BY seq")
                               ).mappings().all()
    op.drop_table("rule_reloads")
    reloads = op.create_table(
        "rule_reloads",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),  # reload | startup
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),  # "" when the files could not even be read
        sa.Column("errors", sa.Text, nullable=False),  # JSON list of the refusal's reasons
        sa.Column("actor_key", sa.String(32), nullable=False),
        sa.Column("actor_name", sa.String(100), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_rule_reloads_ok", "rule_reloads", ["ok", "seq"])
    rows = [{"at": r["at"], "kind": "reload", "ok": True, "digest": r["digest"], "errors": "[]",
             "actor_key": r["actor_key"], "actor_name": r["actor_name"]} for r in old_reloads]
    if rows:
        op.bulk_insert(reloads, _chain(rows))
        op.bulk_insert(heads, [{"chain": "rule_reloads", "seq": len(rows), "hash": rows[-1]["hash"]}])
    op.create_table(
        "rule_snapshots",
        sa.Column("digest", sa.String(80), primary_key=True),
        sa.Column("files", sa.Text, nullable=False),  # JSON [[name, text], …], the library's sources in order
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
    )
    op.create_index("ix_login_failures_client_at", "login_failures", ["client", "at"])

    if bind.dialect.name == "postgresql":  # ur_append_only() comes from revision 0001
        for table in NEW_APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION ur_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION ur_append_only()")
    else:
        for table in NEW_APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def downgrade() -> None:
    """Back to 0002's shapes: each key's newest state, the accepted reloads; the chains' history is lost."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in NEW_APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    else:
        for table in NEW_APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    keys = {}
    for row in bind.execute(sa.text("SELECT key_id, name, role, key_hash, created_at, revoked_at FROM api_keys "
                                    "ORDER BY seq")).mappings():
        keys[row["key_id"]] = dict(row)
    reloads = [dict(r) for r in bind.execute(sa.text(
        "SELECT at, digest, actor_key, actor_name FROM rule_reloads WHERE ok ORDER BY seq")).mappings()]
    for table in ("login_failures", "rule_snapshots", "rule_reloads", "api_keys", "audit_heads"):
        op.drop_table(table)
    old_keys = op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.String(32)),
    )
    old_reloads = op.create_table(
        "rule_reloads",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("actor_key", sa.String(32), nullable=False),
        sa.Column("actor_name", sa.String(100), nullable=False),
    )
    if keys:
        op.bulk_insert(old_keys, list(keys.values()))
    if reloads:
        op.bulk_insert(old_reloads, [{**r, "seq": i} for i, r in enumerate(reloads, start=1)])
