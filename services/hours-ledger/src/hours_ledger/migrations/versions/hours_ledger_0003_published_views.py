"""read-only views other services may read (the ledger's published interface)

Revision ID: hours_ledger_0003
Revises: hours_ledger_0002
"""

from alembic import op

revision = "hours_ledger_0003"
down_revision = "hours_ledger_0002"
branch_labels = None
depends_on = None

# What the verification service reads to stamp a person's hours. Columns are a contract: add, never rename.
VIEWS = {
    "published_records": """
        SELECT r.id, p.id_hash AS person_hash, p.id_masked, p.name AS person_name, r.year, r.category, r.topic,
               r.field, r.course_id, r.base_id, r.course_hours, r.credited_hours, r.unit_region,
               r.reversed_at IS NOT NULL AS reversed,
               (SELECT min(s.started_at) FROM hours_ledger.sittings s WHERE s.record_id = r.id) AS first_sitting,
               (SELECT max(s.ended_at) FROM hours_ledger.sittings s WHERE s.record_id = r.id) AS last_sitting
        FROM hours_ledger.records r JOIN hours_ledger.people p ON p.id = r.person_id""",
}


def upgrade() -> None:
    for name, body in VIEWS.items():
        op.execute(f"CREATE OR REPLACE VIEW hours_ledger.{name} AS {body}")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS hours_ledger.{name}")
