"""Statistics kept as records are written: a queue of changes per person, counters per key, the units' names

Revision ID: hours_ledger_0012
Revises: hours_ledger_0011

- statistics_queue: a record credited or reversed, written in the same transaction as the change itself; the
  statistics fold (statistics.py) consumes it a person's year at a time. Existing records are queued here, so
  the first fold builds the counters from the ledger as it stands.
- statistics_groups / statistics_cuts: the counters per key (domain/statistics.py) and per key and rule.
- statistics_units: the latest name each unit (USCC) was reported under, for the groups by unit.
- statistics_state: up to when the counters hold everything committed (the answers' `as_of`).
- published_statistics: the counters with that instant, for the annual report (verification service).
"""

import sqlalchemy as sa
from alembic import op

revision = "hours_ledger_0012"
down_revision = "hours_ledger_0011"
branch_labels = None
depends_on = None

def _key() -> list[sa.Column]:
    return [sa.Column("year", sa.SmallInteger(), nullable=False), sa.Column("scope", sa.Text(), nullable=False),
            sa.Column("dim", sa.Text(), nullable=False), sa.Column("value", sa.Text(), nullable=False)]
_MEASURES = ("people", "people_credited", "people_public_met", "people_yearly_met", "records", "credited_hours",
             "public_hours", "other_topic_hours", "professional_hours", "reported_minutes", "counted_minutes")


def upgrade() -> None:
    op.create_table(
        "statistics_queue",
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("record_id", sa.UUID(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.CheckConstraint("change IN ('credit', 'reversal')", name="statistics_queue_change"),
        sa.PrimaryKeyConstraint("person_id", "id"),
        schema="hours_ledger",
    )
    op.create_table(
        "statistics_groups", *_key(),
        *[sa.Column(m, sa.BigInteger(), server_default="0", nullable=False) for m in _MEASURES],
        sa.PrimaryKeyConstraint("year", "scope", "dim", "value"),
        schema="hours_ledger",
    )
    op.create_table(
        "statistics_cuts", *_key(),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("records", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("minutes", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("year", "scope", "dim", "value", "rule"),
        schema="hours_ledger",
    )
    op.create_table(
        "statistics_units",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("uscc"),
        schema="hours_ledger",
    )
    op.create_table(
        "statistics_state",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("folded_through", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name="statistics_state_one"),
        sa.PrimaryKeyConstraint("id"),
        schema="hours_ledger",
    )
    op.execute("INSERT INTO hours_ledger.statistics_state (id, folded_through) VALUES (1, NULL)")
    # What the other services read (the annual report, verification service): the counters and their cut-off.
    op.execute("""CREATE VIEW hours_ledger.published_statistics AS
        SELECT g.*, (SELECT folded_through FROM hours_ledger.statistics_state WHERE id = 1) AS folded_through
        FROM hours_ledger.statistics_groups g""")
    op.execute("""
        INSERT INTO hours_ledger.statistics_queue (person_id, year, record_id, change)
        SELECT person_id, year, id, 'credit' FROM hours_ledger.records
        UNION ALL
        SELECT person_id, year, id, 'reversal' FROM hours_ledger.records WHERE reversed_at IS NOT NULL""")


def downgrade() -> None:
    op.execute("DROP VIEW hours_ledger.published_statistics")
    for table in ("statistics_state", "statistics_units", "statistics_cuts", "statistics_groups", "statistics_queue"):
        op.drop_table(table, schema="hours_ledger")
