"""entries cover the facts: a credit entry holds what its record says (year, course, field or topic, the unit's
region, the sittings and allocations, the person's name), chained with it; a name correction is an entry too

Revision ID: hours_ledger_0007
Revises: hours_ledger_0006

Entries written before keep `facts` null; their hash is computed as before.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "hours_ledger_0007"
down_revision = "hours_ledger_0006"
branch_labels = None
depends_on = None

S = "hours_ledger"


def upgrade() -> None:
    op.add_column("entries", sa.Column("facts", postgresql.JSONB(astext_type=sa.Text()), nullable=True), schema=S)
    op.alter_column("entries", "record_id", nullable=True, schema=S)
    op.drop_constraint("kind", "entries", schema=S, type_="check")
    op.create_check_constraint("kind", "entries", "kind IN ('credit', 'reversal', 'rename')", schema=S)
    op.create_check_constraint("record_entries", "entries", "(kind = 'rename') = (record_id IS NULL)", schema=S)


def downgrade() -> None:
    op.drop_constraint("record_entries", "entries", schema=S, type_="check")
    op.drop_constraint("kind", "entries", schema=S, type_="check")
    op.create_check_constraint("kind", "entries", "kind IN ('credit', 'reversal')", schema=S)
    op.alter_column("entries", "record_id", nullable=False, schema=S)
    op.drop_column("entries", "facts", schema=S)
