"""Tables of the `verification` schema (owned by this service alone)."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "verification"


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=SCHEMA)


def _now() -> Mapped[dt.datetime]:
    return mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class CertificateAuthority(Base):
    """The deployment's own CA, which certifies each stamp's PDF-signing key."""

    __tablename__ = "certificate_authority"
    id: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    cert_pem: Mapped[str] = mapped_column(sa.Text)
    key_cipher: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[dt.datetime] = _now()
    __table_args__ = (sa.CheckConstraint("id = 1", name="single"),)


class Stamp(Base):
    """One version of a stamping body's keys. Versions are never deleted: earlier proofs keep verifying."""

    __tablename__ = "stamps"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    body: Mapped[str] = mapped_column(sa.String(16))
    version: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.Text)
    ed25519_public: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    ed25519_cipher: Mapped[bytes] = mapped_column(sa.LargeBinary)
    ec_cipher: Mapped[bytes] = mapped_column(sa.LargeBinary)
    cert_pem: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = _now()
    retired_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    __table_args__ = (sa.UniqueConstraint("body", "version", name="stamps_version_per_body"),)


class StatusList(Base):
    __tablename__ = "status_lists"
    body: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    list_no: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    bits: Mapped[bytes] = mapped_column(sa.LargeBinary)
    next_index: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    updated_at: Mapped[dt.datetime] = _now()


class Proof(Base):
    __tablename__ = "proofs"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    body: Mapped[str] = mapped_column(sa.String(16))
    stamp_version: Mapped[int] = mapped_column(sa.Integer)
    person_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32), index=True)
    year: Mapped[int] = mapped_column(sa.SmallInteger)
    scope: Mapped[str] = mapped_column(sa.String(16))
    field: Mapped[str | None] = mapped_column(sa.String(16))
    credited_hours: Mapped[int] = mapped_column(sa.Integer)
    record_ids: Mapped[list] = mapped_column(JSONB)
    credential: Mapped[dict] = mapped_column(JSONB)
    pdf: Mapped[bytes] = mapped_column(sa.LargeBinary)
    status_list_no: Mapped[int] = mapped_column(sa.Integer)
    status_index: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[dt.datetime] = _now()
    created_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    revocation_reason: Mapped[str | None] = mapped_column(sa.Text)
    # A proof whose records changed, or that a newer proof of the same person, year and scope replaced.
    superseded_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    superseded_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    supersession_reason: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (
        sa.UniqueConstraint("body", "status_list_no", "status_index", name="proofs_status_slot"),
        sa.Index("proofs_person_year", "person_hash", "year"),
        sa.Index("proofs_records", "record_ids", postgresql_using="gin", postgresql_ops={"record_ids": "jsonb_path_ops"}),
        sa.Index("proofs_awaiting_restamp", "body", "superseded_at",
                 postgresql_where=sa.text("superseded_by IS NULL AND superseded_at IS NOT NULL")),
    )

    @property
    def standing(self) -> str:
        """valid, revoked or superseded (a revocation is told first: it is the stamping body's own act)."""
        if self.revoked_at is not None:
            return "revoked"
        return "superseded" if self.superseded_at is not None else "valid"


class HolderCheck(Base):
    """One online confirmation of a proof's holder (an ID number checked against the proof's person): whether it
    matched, when, from which client. Never the number. Failed ones count against the proof's daily budget."""

    __tablename__ = "holder_checks"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    proof_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    matched: Mapped[bool] = mapped_column(sa.Boolean)
    client_address: Mapped[str | None] = mapped_column(sa.Text)
    checked_at: Mapped[dt.datetime] = _now()
    __table_args__ = (sa.Index("holder_checks_proof_time", "proof_id", "checked_at"),)


class Sweep(Base):
    """How far the sweep for reversed records has read the ledger's reversals (one row)."""

    __tablename__ = "sweeps"
    id: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    swept_to: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    __table_args__ = (sa.CheckConstraint("id = 1", name="single"),)
