"""published records say when and why a record was reversed, and which rules cut it: proofs whose records
changed are superseded, and a proof lists a record that earned nothing apart, with its rule

Revision ID: hours_ledger_0008
Revises: hours_ledger_0007
"""

from alembic import op

revision = "hours_ledger_0008"
down_revision = "hours_ledger_0007"
branch_labels = None
depends_on = None

# The view of hours_ledger_0005 with three columns added at its end (CREATE OR REPLACE keeps the others).
PUBLISHED_RECORDS = """
CREATE OR REPLACE VIEW hours_ledger.published_records AS
SELECT r.id, p.id_hash AS person_hash, p.id_masked, p.name AS person_name, r.year, r.category, r.topic,
       r.field, r.course_id, r.base_id, r.course_hours, r.credited_hours, r.unit_region,
       r.reversed_at IS NOT NULL AS reversed,
       (SELECT min(s.started_at) FROM hours_ledger.sittings s
        WHERE s.person_id = r.person_id AND s.year = r.year AND s.record_id = r.id) AS first_sitting,
       (SELECT max(s.ended_at) FROM hours_ledger.sittings s
        WHERE s.person_id = r.person_id AND s.year = r.year AND s.record_id = r.id) AS last_sitting,
       r.reversed_at, r.reversal_reason, r.adjustments
FROM hours_ledger.records r JOIN hours_ledger.people p ON p.id = r.person_id"""

PREVIOUS = """
CREATE VIEW hours_ledger.published_records AS
SELECT r.id, p.id_hash AS person_hash, p.id_masked, p.name AS person_name, r.year, r.category, r.topic,
       r.field, r.course_id, r.base_id, r.course_hours, r.credited_hours, r.unit_region,
       r.reversed_at IS NOT NULL AS reversed,
       (SELECT min(s.started_at) FROM hours_ledger.sittings s
        WHERE s.person_id = r.person_id AND s.year = r.year AND s.record_id = r.id) AS first_sitting,
       (SELECT max(s.ended_at) FROM hours_ledger.sittings s
        WHERE s.person_id = r.person_id AND s.year = r.year AND s.record_id = r.id) AS last_sitting
FROM hours_ledger.records r JOIN hours_ledger.people p ON p.id = r.person_id"""


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
