"""the rules as the notices mean them: plan numbers for identity checks and other topics, the day a course went
live, seminar courses marked as such, subsidies apart from budgets

Revision ID: catalog_0006
Revises: catalog_0005

- plans: `identity_failed_share_max` (防假学替学: a sitting whose failed identity checks exceed this share counts
  nothing; 0.5) and `other_topics_allowed` (other public topics after the 30 学时; the 2026 plan allows them).
- course_reviews: `reviewed_on`, the day of the review meeting (existing reviews: the day they were recorded).
- courses: `live_from` (the day its sittings start to count: the approving review's day, or a seminar's first
  day), `seminar_id` (a seminar's attendance course), and the topic `other`, which names no topic of the plan:
  the foreign key to the plan's topics now runs through `plan_topic` (the topic, or null for `other`).
- seminars: `subsidy_yuan` (the fiscal subsidy; null: a fiscal project's whole budget, as before).
- published views: the new columns, added at the end (a view's columns are a contract).
"""

import sqlalchemy as sa
from alembic import op

revision = "catalog_0006"
down_revision = "catalog_0005"
branch_labels = None
depends_on = None

PUBLISHED = {
    "published_plans": """
        SELECT year, required_hours, window_start, deadline, max_hours_per_day, minutes_per_hour, min_exam_questions,
               identity_failed_share_max, other_topics_allowed
        FROM catalog.plans""",
    "published_courses": """
        SELECT c.id, c.base_id, c.code, c.title, c.year, c.category, c.topic, c.field, c.hours, c.mode,
               c.exam_questions, c.status,
               (c.status = 'approved' AND b.status = 'approved' AND b.suspended_at IS NULL) AS accepting_records,
               c.live_from, c.seminar_id, b.scope_region AS base_scope_region
        FROM catalog.courses c JOIN catalog.bases b ON b.id = c.base_id""",
    "published_seminars": """
        SELECT s.id, s.year, s.kind, s.title, s.organizer_base_id, s.course_id, s.status, s.start_date, s.end_date,
               s.mode, (sp.rules ->> 'online_percent_max')::int AS online_percent_max
        FROM catalog.seminars s JOIN catalog.seminar_plans sp ON sp.year = s.year""",
}

PREVIOUS = {
    "published_plans": """
        SELECT year, required_hours, window_start, deadline, max_hours_per_day, minutes_per_hour, min_exam_questions
        FROM catalog.plans""",
    "published_courses": """
        SELECT c.id, c.base_id, c.code, c.title, c.year, c.category, c.topic, c.field, c.hours, c.mode,
               c.exam_questions, c.status,
               (c.status = 'approved' AND b.status = 'approved' AND b.suspended_at IS NULL) AS accepting_records
        FROM catalog.courses c JOIN catalog.bases b ON b.id = c.base_id""",
    "published_seminars": """
        SELECT id, year, kind, title, organizer_base_id, course_id, status, start_date, end_date, mode
        FROM catalog.seminars""",
}


def upgrade() -> None:
    op.add_column("plans", sa.Column("identity_failed_share_max", sa.Numeric(4, 3), server_default="0.5",
                                     nullable=False), schema="catalog")
    op.add_column("plans", sa.Column("other_topics_allowed", sa.Boolean(), server_default=sa.false(),
                                     nullable=False), schema="catalog")
    op.create_check_constraint("identity_share_range", "plans",
                               "identity_failed_share_max >= 0 AND identity_failed_share_max <= 1", schema="catalog")

    op.add_column("course_reviews", sa.Column("reviewed_on", sa.Date(), nullable=True), schema="catalog")
    op.execute("UPDATE catalog.course_reviews SET reviewed_on = (recorded_at AT TIME ZONE 'Asia/Shanghai')::date")
    op.alter_column("course_reviews", "reviewed_on", nullable=False, schema="catalog")

    op.add_column("courses", sa.Column("live_from", sa.Date(), nullable=True), schema="catalog")
    op.add_column("courses", sa.Column("seminar_id", sa.UUID(), nullable=True), schema="catalog")
    op.execute("""
        UPDATE catalog.courses c SET live_from = r.reviewed_on
        FROM (SELECT DISTINCT ON (course_id) course_id, reviewed_on FROM catalog.course_reviews
              WHERE decision = 'approved' ORDER BY course_id, recorded_at DESC) r
        WHERE r.course_id = c.id""")
    op.execute("""
        UPDATE catalog.courses c SET seminar_id = s.id, live_from = s.start_date
        FROM catalog.seminars s WHERE s.course_id = c.id""")
    op.create_index("courses_seminar", "courses", ["seminar_id"], unique=True, schema="catalog",
                    postgresql_where=sa.text("seminar_id IS NOT NULL"))

    op.drop_constraint("courses_topic", "courses", schema="catalog", type_="foreignkey")
    op.add_column("courses", sa.Column("plan_topic", sa.String(length=8),
                                       sa.Computed("NULLIF(topic, 'other')", persisted=True), nullable=True),
                  schema="catalog")
    op.create_foreign_key("courses_topic", "courses", "topics", ["year", "plan_topic"], ["year", "code"],
                          source_schema="catalog", referent_schema="catalog")

    op.add_column("seminars", sa.Column("subsidy_yuan", sa.Integer(), nullable=True), schema="catalog")

    for name, body in PUBLISHED.items():
        op.execute(f"CREATE OR REPLACE VIEW catalog.{name} AS {body}")


def downgrade() -> None:
    for name in PUBLISHED:
        op.execute(f"DROP VIEW catalog.{name}")
        op.execute(f"CREATE VIEW catalog.{name} AS {PREVIOUS[name]}")
    op.drop_column("seminars", "subsidy_yuan", schema="catalog")
    op.drop_constraint("courses_topic", "courses", schema="catalog", type_="foreignkey")
    op.drop_column("courses", "plan_topic", schema="catalog")
    op.execute("DELETE FROM catalog.courses WHERE topic = 'other'")
    op.create_foreign_key("courses_topic", "courses", "topics", ["year", "topic"], ["year", "code"],
                          source_schema="catalog", referent_schema="catalog")
    op.drop_index("courses_seminar", table_name="courses", schema="catalog")
    op.drop_column("courses", "seminar_id", schema="catalog")
    op.drop_column("courses", "live_from", schema="catalog")
    op.drop_column("course_reviews", "reviewed_on", schema="catalog")
    op.drop_constraint("identity_share_range", "plans", schema="catalog", type_="check")
    op.drop_column("plans", "other_topics_allowed", schema="catalog")
    op.drop_column("plans", "identity_failed_share_max", schema="catalog")
