"""Tables of the `iam` schema."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "iam"
STAFF_ROLES = ("province_admin", "city_admin", "authority_reviewer", "auditor")


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=SCHEMA)


class Principal(Base):
    """Someone who can hold tokens: a staff member or a training base."""

    __tablename__ = "principals"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('staff', 'base')", name="principal_kind"),
        sa.CheckConstraint(f"role IS NULL OR role IN {STAFF_ROLES!r}", name="principal_role"),
        sa.CheckConstraint("kind <> 'staff' OR role IS NOT NULL", name="staff_has_role"),
        sa.CheckConstraint("kind <> 'base' OR (base_id IS NOT NULL AND role IS NULL)", name="base_has_base_id"),
        sa.CheckConstraint("role IS DISTINCT FROM 'city_admin' OR region IS NOT NULL", name="city_admin_has_region"),
        sa.CheckConstraint(
            "role IS DISTINCT FROM 'authority_reviewer' OR authority IS NOT NULL", name="reviewer_has_authority"
        ),
        sa.CheckConstraint("region IS NULL OR region ~ '^[0-9]{6}$'", name="region_code_format"),
        sa.Index("principals_base_id", "base_id", unique=True, postgresql_where=sa.text("base_id IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=sa.text("gen_random_uuid()"))
    kind: Mapped[str] = mapped_column(sa.Text)
    name: Mapped[str] = mapped_column(sa.Text)
    role: Mapped[str | None] = mapped_column(sa.Text)
    region: Mapped[str | None] = mapped_column(sa.Text)
    authority: Mapped[str | None] = mapped_column(sa.Text)
    base_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class Token(Base):
    """A bearer token, kept only as its SHA-256 digest."""

    __tablename__ = "tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=sa.text("gen_random_uuid()"))
    principal_id: Mapped[uuid.UUID] = mapped_column(UUID, sa.ForeignKey("principals.id"), index=True)
    token_hash: Mapped[bytes] = mapped_column(sa.LargeBinary, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoke_reason: Mapped[str | None] = mapped_column(sa.Text)


class AuditEvent(Base):
    """Who did what, when, from where. Append-only; rows may be deleted only after six months."""

    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("audit_events_occurred_at", "occurred_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(always=True), primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    service: Mapped[str] = mapped_column(sa.Text)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID, index=True)
    actor_kind: Mapped[str | None] = mapped_column(sa.Text)
    actor_name: Mapped[str | None] = mapped_column(sa.Text)
    actor_role: Mapped[str | None] = mapped_column(sa.Text)
    action: Mapped[str] = mapped_column(sa.Text)
    target: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"))
    outcome: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[int | None] = mapped_column(sa.SmallInteger)
    client_address: Mapped[str | None] = mapped_column(sa.Text)
    request_id: Mapped[str | None] = mapped_column(sa.Text)
