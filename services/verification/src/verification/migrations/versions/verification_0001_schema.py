"""the verification schema

Revision ID: verification_0001
Revises:
"""

from alembic import op

revision = "verification_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # env.py creates the schema before the version table; this revision marks the history's start.
    op.execute('CREATE SCHEMA IF NOT EXISTS "verification"')


def downgrade() -> None:
    op.execute('DROP SCHEMA IF EXISTS "verification" CASCADE')
