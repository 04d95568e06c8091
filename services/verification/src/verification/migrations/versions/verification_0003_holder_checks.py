"""holder checks: online confirmations of a proof's holder, the budget against guessing

Revision ID: verification_0003
Revises: verification_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "verification_0003"
down_revision = "verification_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holder_checks",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("proof_id", sa.UUID(), nullable=False),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("client_address", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        schema="verification",
    )
    op.create_index("holder_checks_proof_time", "holder_checks", ["proof_id", "checked_at"], schema="verification")


def downgrade() -> None:
    op.drop_index("holder_checks_proof_time", table_name="holder_checks", schema="verification")
    op.drop_table("holder_checks", schema="verification")
