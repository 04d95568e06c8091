"""xAPI statements, stored verbatim per base, with what the statement resource's filters read; xAPI documents
(state, activity and agent profiles)

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
    upgrade_documents()


def downgrade() -> None:
    op.drop_table("xapi_attachments", schema="hours_ledger")
    op.drop_table("xapi_documents", schema="hours_ledger")
    op.drop_table("xapi_statements", schema="hours_ledger")


def upgrade_documents() -> None:
    op.create_table(
        "xapi_documents",
        sa.Column("base_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=False),
        sa.Column("agent", sa.Text(), nullable=False),
        sa.Column("registration", sa.Text(), nullable=False),
        sa.Column("doc_id", sa.Text(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("etag", sa.String(length=40), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("base_id", "kind", "activity_id", "agent", "registration", "doc_id"),
        schema="hours_ledger",
    )
    op.create_table(
        "xapi_attachments",
        sa.Column("base_id", sa.UUID(), nullable=False),
        sa.Column("sha2", sa.String(length=128), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("base_id", "sha2"),
        schema="hours_ledger",
    )
