"""a course's cmi5 activity ids (its AUs' ids), each owned by one course of its base; published for the ledger

Revision ID: catalog_0007
Revises: catalog_0006

- course_activities: (base_id, activity_id) is the key, so one activity id of a base names one course: the
  ledger reads a base's statements about that activity as study of that course (cmi5).
- published_course_activities: the view the ledger reads.
"""

import sqlalchemy as sa
from alembic import op

revision = "catalog_0007"
down_revision = "catalog_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "course_activities",
        sa.Column("base_id", sa.UUID(), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=False),
        sa.Column("course_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(["base_id"], ["catalog.bases.id"], name="course_activities_base"),
        sa.ForeignKeyConstraint(["course_id"], ["catalog.courses.id"], name="course_activities_course"),
        sa.PrimaryKeyConstraint("base_id", "activity_id"),
        schema="catalog",
    )
    op.create_index("course_activities_course", "course_activities", ["course_id"], schema="catalog")
    op.execute("""CREATE VIEW catalog.published_course_activities AS
                  SELECT base_id, activity_id, course_id, position FROM catalog.course_activities""")


def downgrade() -> None:
    op.execute("DROP VIEW catalog.published_course_activities")
    op.drop_table("course_activities", schema="catalog")
