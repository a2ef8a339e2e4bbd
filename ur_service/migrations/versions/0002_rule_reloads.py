"""Accepted rule reloads: who reloaded which digest when; every worker follows this log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_reloads",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("actor_key", sa.String(32), nullable=False),
        sa.Column("actor_name", sa.String(100), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rule_reloads")
