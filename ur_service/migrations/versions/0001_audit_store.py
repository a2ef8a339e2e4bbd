"""The audit store: reviews and determinations (append-only, hash-chained) and API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("reviews", "determinations")


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("review_id", sa.String(40), nullable=False, unique=True),
        sa.Column("record_id", sa.String(200), nullable=False),
        sa.Column("received_at", sa.String(32), nullable=False),
        sa.Column("actor_key", sa.String(32), nullable=False),
        sa.Column("actor_name", sa.String(100), nullable=False),
        sa.Column("review_type", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("requested", sa.String(20), nullable=False),
        sa.Column("requested_status", sa.String(10), nullable=False),
        sa.Column("urgency", sa.String(10), nullable=False),
        sa.Column("due_at", sa.String(32)),
        sa.Column("rule_version", sa.String(64), nullable=False),
        sa.Column("rule_digest", sa.String(80), nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_reviews_outcome_due", "reviews", ["outcome", "due_at"])
    op.create_index("ix_reviews_record_id", "reviews", ["record_id"])
    op.create_index("ix_reviews_received_at", "reviews", ["received_at"])
    op.create_table(
        "determinations",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("determination_id", sa.String(40), nullable=False, unique=True),
        sa.Column("review_id", sa.String(40), sa.ForeignKey("reviews.review_id"), nullable=False, unique=True),
        sa.Column("decided_at", sa.String(32), nullable=False),
        sa.Column("actor_key", sa.String(32), nullable=False),
        sa.Column("actor_name", sa.String(100), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("reason_code", sa.String(40)),
        sa.Column("text", sa.Text),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.String(32)),
    )
    # The database itself refuses to change or remove an audit row; the hash chain shows it if someone
    # with the rights to drop these triggers does so anyway.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE FUNCTION ur_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION ur_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION ur_append_only()")
    else:
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ur_append_only()")
    else:
        for table in APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    op.drop_table("api_keys")
    op.drop_table("determinations")
    op.drop_table("reviews")
