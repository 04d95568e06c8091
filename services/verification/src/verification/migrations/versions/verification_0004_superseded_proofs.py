"""superseded proofs: a proof whose records changed (one was reversed), or that a newer proof of the same
person, year and scope replaced, no longer stands; when, why and by what

Revision ID: verification_0004
Revises: verification_0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "verification_0004"
down_revision = "verification_0003"
branch_labels = None
depends_on = None

S = "verification"


def upgrade() -> None:
    op.add_column("proofs", sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True), schema=S)
    op.add_column("proofs", sa.Column("superseded_by", postgresql.UUID(as_uuid=True), nullable=True), schema=S)
    op.add_column("proofs", sa.Column("supersession_reason", sa.Text(), nullable=True), schema=S)
    # A person's proofs by year (HR's lookup, and the newer proof that supersedes the older).
    op.create_index("proofs_person_year", "proofs", ["person_hash", "year"], schema=S)
    # Which proofs cover a record (the sweep after a reversal).
    op.create_index("proofs_records", "proofs", ["record_ids"], schema=S, postgresql_using="gin",
                    postgresql_ops={"record_ids": "jsonb_path_ops"})
    # The stamping bodies' queue of proofs waiting to be stamped again.
    op.create_index("proofs_awaiting_restamp", "proofs", ["body", "superseded_at"], schema=S,
                    postgresql_where=sa.text("superseded_by IS NULL AND superseded_at IS NOT NULL"))
    op.create_table(
        "sweeps",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("swept_to", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("id = 1", name="single"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("sweeps", schema=S)
    op.drop_index("proofs_awaiting_restamp", table_name="proofs", schema=S)
    op.drop_index("proofs_records", table_name="proofs", schema=S)
    op.drop_index("proofs_person_year", table_name="proofs", schema=S)
    for column in ("supersession_reason", "superseded_by", "superseded_at"):
        op.drop_column("proofs", column, schema=S)
