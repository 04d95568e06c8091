"""A base's external ids, claimed apart from the person's rows: every write of a push stays with the person

Revision ID: hours_ledger_0013
Revises: hours_ledger_0012

- external_ids: which person each (base, external id) names, for good; its primary key refuses reuse of an external
  id for a different person. Distributed by the base on Citus, and written before the person's transaction
  (intake.py: the claim), so that the transaction itself touches the person's rows alone.
- record_keys: the person's own copy of each key (its request hash and record), now keyed by the person first, so
  that it sits with the person's rows (Citus: the person's colocation group) and a replay is read under the
  person's lock, on the person's shard.
"""

import sqlalchemy as sa
from alembic import op

revision = "hours_ledger_0013"
down_revision = "hours_ledger_0012"
branch_labels = None
depends_on = None

S = "hours_ledger"


def upgrade() -> None:
    op.create_table(
        "external_ids",
        sa.Column("base_id", sa.UUID(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("base_id", "external_id"),
        schema=S,
    )
    op.execute("""INSERT INTO hours_ledger.external_ids (base_id, external_id, person_id)
                  SELECT base_id, external_id, person_id FROM hours_ledger.record_keys""")
    op.drop_constraint("record_keys_pkey", "record_keys", schema=S, type_="primary")
    op.create_primary_key("record_keys_pkey", "record_keys", ["person_id", "base_id", "external_id"], schema=S)


def downgrade() -> None:
    op.drop_constraint("record_keys_pkey", "record_keys", schema=S, type_="primary")
    op.create_primary_key("record_keys_pkey", "record_keys", ["base_id", "external_id"], schema=S)
    op.drop_table("external_ids", schema=S)
