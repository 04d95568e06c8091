"""xAPI statements, stored verbatim per base, with what the statement resource's filters read

Revision ID: hours_ledger_0010
Revises: hours_ledger_0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "hours_ledger_0010"
down_revision = "hours_ledger_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "xapi_statements",
        sa.Column("base_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("stored", sa.DateTime(timezone=True), nullable=False),
        sa.Column("statement", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("voided", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("verb_id", sa.Text(), nullable=False),
        sa.Column("voids", sa.UUID(), nullable=True),
        sa.Column("object_ref", sa.UUID(), nullable=True),
        sa.Column("activity_id", sa.Text(), nullable=True),
        sa.Column("registration", sa.UUID(), nullable=True),
        sa.Column("agents", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("related_agents", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("related_activities", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("base_id", "id"),
        schema="hours_ledger",
    )
    op.create_index("xapi_statements_order", "xapi_statements", ["base_id", "seq"], schema="hours_ledger")


def downgrade() -> None:
    op.drop_table("xapi_statements", schema="hours_ledger")
