"""cmi5 registrations: who the learner of a base's registration is (the ID number encrypted), and what became of it

Revision ID: hours_ledger_0011
Revises: hours_ledger_0010

- xapi_registrations: a base's enrolment of a learner (an xAPI agent) in a course under a cmi5 registration id,
  with the person as a record names them (the ID number AES-GCM encrypted, as `people` holds it), and the outcome:
  `pending`, `recorded` (the record's id and answer) or `refused` (the problem).
- xapi_statements_registration: a registration's statements, read whenever a session of it ends.
- xapi_statements_voids: whether a statement is voided already when it is stored (each insert asks; without the
  index each asked by scanning the base's statements: measured, the LRS's inserts slowed as the base's statements
  grew).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "hours_ledger_0011"
down_revision = "hours_ledger_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "xapi_registrations",
        sa.Column("base_id", sa.UUID(), nullable=False),
        sa.Column("registration", sa.UUID(), nullable=False),
        sa.Column("course_id", sa.UUID(), nullable=False),
        sa.Column("actor", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("learner", sa.Text(), nullable=False),
        sa.Column("id_type", sa.String(length=16), nullable=False),
        sa.Column("id_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("unit", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("record_id", sa.UUID(), nullable=True),
        sa.Column("outcome", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'recorded', 'refused')", name="xapi_registrations_state"),
        sa.PrimaryKeyConstraint("base_id", "registration"),
        schema="hours_ledger",
    )
    op.create_index("xapi_statements_registration", "xapi_statements", ["base_id", "registration"],
                    schema="hours_ledger", postgresql_where=sa.text("registration IS NOT NULL"))
    op.create_index("xapi_statements_voids", "xapi_statements", ["base_id", "voids"],
                    schema="hours_ledger", postgresql_where=sa.text("voids IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("xapi_statements_voids", table_name="xapi_statements", schema="hours_ledger")
    op.drop_index("xapi_statements_registration", table_name="xapi_statements", schema="hours_ledger")
    op.drop_table("xapi_registrations", schema="hours_ledger")
