"""the catalog schema

Revision ID: catalog_0001
Revises:
"""

from alembic import op

revision = "catalog_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # env.py creates the schema before the version table; this revision marks the history's start.
    op.execute('CREATE SCHEMA IF NOT EXISTS "catalog"')


def downgrade() -> None:
    op.execute('DROP SCHEMA IF EXISTS "catalog" CASCADE')
