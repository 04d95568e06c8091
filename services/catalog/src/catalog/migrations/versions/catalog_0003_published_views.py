"""read-only views other services may read (the catalog's published interface)

Revision ID: catalog_0003
Revises: catalog_0002
"""

from alembic import op

revision = "catalog_0003"
down_revision = "catalog_0002"
branch_labels = None
depends_on = None

# The only catalog objects another service may read. Their columns are a contract: add, never rename.
VIEWS = {
    "published_plans": """
        SELECT year, required_hours, window_start, deadline, max_hours_per_day, minutes_per_hour, min_exam_questions
        FROM catalog.plans""",
    "published_topics": """
        SELECT year, code, title, hours FROM catalog.topics""",
    "published_authorities": """
        SELECT code, name, self_managed FROM catalog.authorities""",
    "published_fields": """
        SELECT f.code, f.name, f.authority,
               CASE WHEN EXISTS (
                   SELECT 1 FROM catalog.delegations d
                   WHERE d.field = f.code
                     AND d.starts_on <= (now() AT TIME ZONE 'Asia/Shanghai')::date
                     AND (d.ends_on IS NULL OR (now() AT TIME ZONE 'Asia/Shanghai')::date <= d.ends_on))
                    THEN 'A12' ELSE f.authority END AS stamped_by
        FROM catalog.fields f""",
    "published_bases": """
        SELECT id, unit_name, category, scope_region, status, suspended_at IS NOT NULL AS suspended
        FROM catalog.bases""",
    "published_courses": """
        SELECT c.id, c.base_id, c.code, c.title, c.year, c.category, c.topic, c.field, c.hours, c.mode,
               c.exam_questions, c.status,
               (c.status = 'approved' AND b.status = 'approved' AND b.suspended_at IS NULL) AS accepting_records
        FROM catalog.courses c JOIN catalog.bases b ON b.id = c.base_id""",
}


def upgrade() -> None:
    for name, body in VIEWS.items():
        op.execute(f"CREATE OR REPLACE VIEW catalog.{name} AS {body}")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS catalog.{name}")
