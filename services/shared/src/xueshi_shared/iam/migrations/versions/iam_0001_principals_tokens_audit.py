"""principals, tokens and the append-only audit trail

Revision ID: iam_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "iam_0001"
down_revision = None
branch_labels = None
depends_on = None

ROLES = "('province_admin', 'city_admin', 'authority_reviewer', 'auditor')"


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text),
        sa.Column("region", sa.Text),
        sa.Column("authority", sa.Text),
        sa.Column("base_id", UUID),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("kind IN ('staff', 'base')", name="principal_kind"),
        sa.CheckConstraint(f"role IS NULL OR role IN {ROLES}", name="principal_role"),
        sa.CheckConstraint("kind <> 'staff' OR role IS NOT NULL", name="staff_has_role"),
        sa.CheckConstraint("kind <> 'base' OR (base_id IS NOT NULL AND role IS NULL)", name="base_has_base_id"),
        sa.CheckConstraint("role IS DISTINCT FROM 'city_admin' OR region IS NOT NULL", name="city_admin_has_region"),
        sa.CheckConstraint(
            "role IS DISTINCT FROM 'authority_reviewer' OR authority IS NOT NULL", name="reviewer_has_authority"
        ),
        sa.CheckConstraint("region IS NULL OR region ~ '^[0-9]{6}$'", name="region_code_format"),
        schema="iam",
    )
    op.create_index(
        "principals_base_id", "principals", ["base_id"], unique=True, schema="iam",
        postgresql_where=sa.text("base_id IS NOT NULL"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("principal_id", UUID, sa.ForeignKey("iam.principals.id"), nullable=False),
        sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoke_reason", sa.Text),
        schema="iam",
    )
    op.create_index("ix_iam_tokens_principal_id", "tokens", ["principal_id"], schema="iam")
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("actor_id", UUID),
        sa.Column("actor_kind", sa.Text),
        sa.Column("actor_name", sa.Text),
        sa.Column("actor_role", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("status", sa.SmallInteger),
        sa.Column("client_address", sa.Text),
        sa.Column("request_id", sa.Text),
        schema="iam",
    )
    op.create_index("audit_events_occurred_at", "audit_events", ["occurred_at"], schema="iam")
    op.create_index("ix_iam_audit_events_actor_id", "audit_events", ["actor_id"], schema="iam")
    # MLPS level 3 wants the trail tamper-resistant and kept at least six months: refuse every UPDATE,
    # and every DELETE of a row younger than six months, whoever asks.
    op.execute(
        """
        CREATE FUNCTION iam.audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF OLD.occurred_at > now() - interval '6 months' THEN
                RAISE EXCEPTION 'audit events are kept at least six months' USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN OLD;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_events_guard BEFORE UPDATE OR DELETE ON iam.audit_events "
        "FOR EACH ROW EXECUTE FUNCTION iam.audit_events_guard()"
    )
    op.execute(
        """
        CREATE FUNCTION iam.audit_events_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit events cannot be truncated' USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON iam.audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION iam.audit_events_no_truncate()"
    )


def downgrade() -> None:
    op.drop_table("audit_events", schema="iam")
    op.execute("DROP FUNCTION IF EXISTS iam.audit_events_guard()")
    op.execute("DROP FUNCTION IF EXISTS iam.audit_events_no_truncate()")
    op.drop_table("tokens", schema="iam")
    op.drop_table("principals", schema="iam")
