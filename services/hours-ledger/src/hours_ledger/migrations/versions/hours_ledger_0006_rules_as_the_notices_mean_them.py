"""the rules as the notices mean them: a mixed course's sittings say their mode, seminar trainees say whether they
attended online, a person's former names are kept

Revision ID: hours_ledger_0006
Revises: hours_ledger_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "hours_ledger_0006"
down_revision = "hours_ledger_0005"
branch_labels = None
depends_on = None

S = "hours_ledger"

# What the catalog reads of a seminar's roster (the overview's head count and online share).
PUBLISHED_ROSTERS = """
CREATE VIEW hours_ledger.published_seminar_rosters AS
SELECT seminar_id, count(*) AS trainees, count(*) FILTER (WHERE online) AS online_trainees
FROM hours_ledger.seminar_trainees GROUP BY seminar_id"""


def upgrade() -> None:
    # A mixed course's sitting: 'online' or 'offline' (null for the sittings of other courses).
    op.add_column("sittings", sa.Column("mode", sa.String(length=8), nullable=True), schema=S)
    op.add_column("seminar_trainees", sa.Column("online", sa.Boolean(), server_default=sa.false(), nullable=False),
                  schema=S)
    op.create_table(
        "name_changes",
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("old_name", sa.Text(), nullable=False),
        sa.Column("new_name", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["hours_ledger.people.id"]),
        sa.PrimaryKeyConstraint("person_id", "id"),
        schema=S,
    )
    op.execute(PUBLISHED_ROSTERS)


def downgrade() -> None:
    op.execute("DROP VIEW hours_ledger.published_seminar_rosters")
    op.drop_table("name_changes", schema=S)
    op.drop_column("seminar_trainees", "online", schema=S)
    op.drop_column("sittings", "mode", schema=S)
