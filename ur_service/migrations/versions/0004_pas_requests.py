"""Da Vinci PAS requests: the Claim a review answers, so a later inquiry (by the Claim's identifier) and a
ClaimResponse fetched by id can echo what was asked. Append-only, written in the transaction that stores the
review; the review's own hash chain still holds the record that was judged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pas_requests",
        sa.Column("review_id", sa.String(40), sa.ForeignKey("reviews.review_id"), primary_key=True),
        sa.Column("claim_id", sa.String(64)),
        sa.Column("identifier_system", sa.String(255)),
        sa.Column("identifier_value", sa.String(255)),
        sa.Column("request", sa.Text, nullable=False),
    )
    op.create_index("ix_pas_requests_identifier", "pas_requests", ["identifier_value", "identifier_system"])
    op.create_index("ix_pas_requests_claim_id", "pas_requests", ["claim_id"])
    if op.get_bind().dialect.name == "postgresql":  # ur_append_only() comes from revision 0001
        op.execute("CREATE TRIGGER pas_requests_append_only BEFORE UPDATE OR DELETE ON pas_requests "
                   "FOR EACH ROW EXECUTE FUNCTION ur_append_only()")
        op.execute("CREATE TRIGGER pas_requests_no_truncate BEFORE TRUNCATE ON pas_requests "
                   "FOR EACH STATEMENT EXECUTE FUNCTION ur_append_only()")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER pas_requests_no_{action.lower()} BEFORE {action} ON pas_requests "
                       "BEGIN SELECT RAISE(ABORT, 'pas_requests is append-only'); END")


def downgrade() -> None:
    op.drop_table("pas_requests")  # its triggers go with it
