"""published records say when and why a record was reversed, and which rules cut it: proofs whose records
changed are superseded, and a proof lists a record that earned nothing apart, with its rule

Revision ID: hours_ledger_0008
Revises: hours_ledger_0007
"""

from alembic import op

from hours_ledger.migrations.versions.hours_ledger_0005_distribution_and_years import (
    PUBLISHED_RECORDS as PREVIOUS,
)

revision = "hours_ledger_0008"
down_revision = "hours_ledger_0007"
branch_labels = None
depends_on = None

# The view of hours_ledger_0005, with three columns added at its end (CREATE OR REPLACE keeps the others).
PUBLISHED_RECORDS = PREVIOUS.replace("CREATE VIEW", "CREATE OR REPLACE VIEW").replace(
    "AS last_sitting\nFROM", "AS last_sitting,\n       r.reversed_at, r.reversal_reason, r.adjustments\nFROM")
assert PUBLISHED_RECORDS.count("r.adjustments") == 1


def upgrade() -> None:
    op.execute(PUBLISHED_RECORDS)
    # Reversals and renames in the order they happened, for the verification service's sweep (a partial index:
    # credits, the hot path's rows, are not in it).
    op.execute("CREATE INDEX entries_reversals ON hours_ledger.entries (recorded_at) "
               "WHERE kind IN ('reversal', 'rename')")


def downgrade() -> None:
    op.execute("DROP INDEX hours_ledger.entries_reversals")
    op.execute("DROP VIEW hours_ledger.published_records")
    op.execute(PREVIOUS)
