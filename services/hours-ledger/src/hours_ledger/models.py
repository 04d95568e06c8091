"""Tables of the `hours_ledger` schema (owned by this service alone).

Ready for Citus (deploy/scale-out.md): every per-person table carries the person key (`people.id`,
`person_id` elsewhere) in each primary key, unique constraint and foreign key, so that the tables can be
distributed by it and colocated; the two lookups that are not by person (a person by ID-number hash, a
record by base and external id) are tables of their own, keyed by what they look up. `records`,
`sittings` and `allocations` are partitioned by plan year (one partition per year, opened on its first
record: `open_year`). `xueshi_shared.distribution` says how each table is placed; a test checks it against
the database catalog.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "hours_ledger"
ZERO_HASH = b"\x00" * 32


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=SCHEMA)


class PersonKey(Base):
    """Finds a person by the keyed hash of the ID number; its primary key makes the ID number unique."""

    __tablename__ = "person_keys"
    id_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32), primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.BigInteger)


class Person(Base):
    """One learner. The ID number is kept encrypted; lookups go through a keyed hash (`person_keys`).

    The row is also the person's lock: every write about the person holds it (SELECT ... FOR UPDATE), so
    concurrent pushes for one person serialise while different people proceed in parallel.
    """

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    id_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32), index=True)
    id_type: Mapped[str] = mapped_column(sa.String(16))
    id_cipher: Mapped[bytes] = mapped_column(sa.LargeBinary)
    id_masked: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.Text)
    # Head of the person's hash chain: how many entries, and the last entry's hash.
    entry_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    last_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32), server_default=sa.text("'\\x" + "00" * 32 + "'::bytea"))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class ExternalId(Base):
    """Which person a base's external id names, for good: its primary key refuses the id for anyone else. Claimed
    before the person's transaction (intake.py), apart from the person's rows (Citus: distributed by the base)."""

    __tablename__ = "external_ids"
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    external_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.BigInteger)


class RecordKey(Base):
    """A base's external id of a record, with the person's rows: what makes a repeated push a replay."""

    __tablename__ = "record_keys"
    person_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    external_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    request_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    year: Mapped[int] = mapped_column(sa.SmallInteger)
    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))


PARTITIONED_BY_YEAR = ("records", "sittings", "allocations")


class Record(Base):
    __tablename__ = "records"
    person_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("people.id"), primary_key=True)
    year: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    external_id: Mapped[str] = mapped_column(sa.String(128))
    course_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    category: Mapped[str] = mapped_column(sa.String(16))
    topic: Mapped[str | None] = mapped_column(sa.String(8))
    field: Mapped[str | None] = mapped_column(sa.String(16))
    course_hours: Mapped[int] = mapped_column(sa.SmallInteger)
    mode: Mapped[str] = mapped_column(sa.String(16))
    unit_name: Mapped[str] = mapped_column(sa.Text)
    unit_uscc: Mapped[str] = mapped_column(sa.String(18))
    unit_region: Mapped[str] = mapped_column(sa.String(6))
    exam: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    counted_seconds: Mapped[int] = mapped_column(sa.Integer)
    credited_hours: Mapped[int] = mapped_column(sa.SmallInteger)
    status: Mapped[str] = mapped_column(sa.String(16))
    adjustments: Mapped[list[Any]] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    reversed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    reversed_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reversal_reason: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (
        sa.Index("records_id", "id"),
        {"postgresql_partition_by": "RANGE (year)"},
    )


def _record_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["person_id", "year", "record_id"],
                                   ["records.person_id", "records.year", "records.id"])


class Sitting(Base):
    __tablename__ = "sittings"
    person_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    year: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    started_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    ended_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    media_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    identity_passed: Mapped[int | None] = mapped_column(sa.Integer)
    identity_failed: Mapped[int | None] = mapped_column(sa.Integer)
    # A mixed course's sitting: 'online' or 'offline' (null for the sittings of other courses).
    mode: Mapped[str | None] = mapped_column(sa.String(8))
    __table_args__ = (
        _record_fk(),
        sa.Index("sittings_person_start", "person_id", "started_at"),
        sa.Index("sittings_record", "person_id", "record_id"),
        {"postgresql_partition_by": "RANGE (year)"},
    )


class Allocation(Base):
    """The seconds of a record that counted, where they lie and on which Fujian day."""

    __tablename__ = "allocations"
    person_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    year: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    day: Mapped[dt.date] = mapped_column(sa.Date)
    started_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    ended_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    seconds: Mapped[int] = mapped_column(sa.Integer)
    __table_args__ = (
        _record_fk(),
        sa.Index("allocations_person_day", "person_id", "day"),
        sa.Index("allocations_record", "person_id", "record_id"),
        {"postgresql_partition_by": "RANGE (year)"},
    )


class PersonDay(Base):
    """Seconds counted per person and Fujian day (the daily limit's running total)."""

    __tablename__ = "person_days"
    person_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    seconds: Mapped[int] = mapped_column(sa.Integer)


class Entry(Base):
    """The append-only ledger, chained by hash per person: a credit per record (its `facts`: what the record says),
    a reversal per correction, a rename per name correction (`facts`: the new name's digest)."""

    __tablename__ = "entries"
    person_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    record_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(sa.String(16))
    hours: Mapped[int] = mapped_column(sa.SmallInteger)
    seconds: Mapped[int] = mapped_column(sa.Integer)
    actor_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    prev_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    # Credits and renames since hours_ledger_0007 (null before; their hashes cover what they always did).
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    __table_args__ = (
        sa.CheckConstraint("kind IN ('credit', 'reversal', 'rename')", name="kind"),
        sa.CheckConstraint("(kind = 'rename') = (record_id IS NULL)", name="record_entries"),
        sa.Index("entries_reversals", "recorded_at", postgresql_where=sa.text("kind IN ('reversal', 'rename')")),
    )


class SeminarTrainee(Base):
    """A seminar's roster line: who attended, their title level, the completion assessment, the record."""

    __tablename__ = "seminar_trainees"
    seminar_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    person_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("people.id"), primary_key=True)
    title_level: Mapped[str] = mapped_column(sa.String(16))
    online: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    assessment_passed: Mapped[bool | None] = mapped_column(sa.Boolean)
    record_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    uploaded_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class NameChange(Base):
    """A correction of a person's name by HR staff: the name before and after, why, by whom (the history)."""

    __tablename__ = "name_changes"
    person_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("people.id"), primary_key=True)
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    old_name: Mapped[str] = mapped_column(sa.Text)
    new_name: Mapped[str] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.Text)
    actor_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    changed_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class Roster(Base):
    """A roster uploaded as a spreadsheet (POST /v1/rosters): who sent it, its size and its progress. Its rows'
    answers are in `roster_rows`; the file itself is not kept (it holds ID numbers in clear)."""

    __tablename__ = "rosters"
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    uploaded_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    format: Mapped[str] = mapped_column(sa.String(8))
    dry_run: Mapped[bool] = mapped_column(sa.Boolean)
    status: Mapped[str] = mapped_column(sa.String(16))  # processing, done, interrupted
    headers: Mapped[list[str]] = mapped_column(JSONB)
    rows_total: Mapped[int] = mapped_column(sa.Integer)
    records_total: Mapped[int] = mapped_column(sa.Integer)
    rows_done: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    heartbeat_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class RosterRow(Base):
    """A roster row's answer: its cells as uploaded (the ID number masked), its record's outcome."""

    __tablename__ = "roster_rows"
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    roster_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    row: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(sa.String(128))
    status: Mapped[str] = mapped_column(sa.String(16))  # credited, partial, not_credited, replayed, refused
    cells: Mapped[list[str | None]] = mapped_column(JSONB)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    problem: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class XapiStatement(Base):
    """An xAPI statement as a base sent it (with the LRS's `stored` and `authority`), and what its filters read:
    the verb, the voided target, the object's activity or statement, the registration, the agents' identifiers."""

    __tablename__ = "xapi_statements"
    __table_args__ = (sa.Index("xapi_statements_order", "base_id", "seq"),
                      sa.Index("xapi_statements_registration", "base_id", "registration",
                               postgresql_where=sa.text("registration IS NOT NULL")),
                      sa.Index("xapi_statements_voids", "base_id", "voids",
                               postgresql_where=sa.text("voids IS NOT NULL")))
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(always=True))
    stored: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    statement: Mapped[dict[str, Any]] = mapped_column(JSONB)
    voided: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    verb_id: Mapped[str] = mapped_column(sa.Text)
    voids: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    object_ref: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    activity_id: Mapped[str | None] = mapped_column(sa.Text)
    registration: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    agents: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    related_agents: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    related_activities: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))


class XapiDocument(Base):
    """An xAPI document of a base: a state (activity, agent, registration), an activity or an agent profile."""

    __tablename__ = "xapi_documents"
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), primary_key=True)  # state, activity_profile, agent_profile
    activity_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)  # "" when the kind has none
    agent: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    registration: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    doc_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    content_type: Mapped[str] = mapped_column(sa.Text)
    etag: Mapped[str] = mapped_column(sa.String(40))
    updated: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


class XapiAttachment(Base):
    """An attachment's data, sent with its statement as multipart/mixed, found by its SHA-256 (`sha2`)."""

    __tablename__ = "xapi_attachments"
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    sha2: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    content_type: Mapped[str] = mapped_column(sa.Text)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)


class XapiRegistration(Base):
    """A cmi5 registration a base enrolled: its course, its learner (the agent, and the person as a record names
    them, the ID number encrypted) and what became of it (pending, recorded: the record, refused: the problem)."""

    __tablename__ = "xapi_registrations"
    __table_args__ = (sa.CheckConstraint("state IN ('pending', 'recorded', 'refused')", name="xapi_registrations_state"),)
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    registration: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    course_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    actor: Mapped[dict[str, Any]] = mapped_column(JSONB)
    learner: Mapped[str] = mapped_column(sa.Text)
    id_type: Mapped[str] = mapped_column(sa.String(16))
    id_number_enc: Mapped[bytes] = mapped_column(sa.LargeBinary)
    name: Mapped[str] = mapped_column(sa.Text)
    unit: Mapped[dict[str, Any]] = mapped_column(JSONB)
    request_hash: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    state: Mapped[str] = mapped_column(sa.String(16), server_default="pending")
    record_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    decided_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))


class StatisticsQueue(Base):
    """A record credited or reversed, not yet in the statistics: written with the change, consumed by the fold."""

    __tablename__ = "statistics_queue"
    __table_args__ = (sa.CheckConstraint("change IN ('credit', 'reversal')", name="statistics_queue_change"),)
    person_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(always=False), primary_key=True)
    year: Mapped[int] = mapped_column(sa.SmallInteger)
    record_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    change: Mapped[str] = mapped_column(sa.String(16))


STATISTICS_MEASURES = ("people", "people_credited", "people_public_met", "people_yearly_met", "records",
                       "credited_hours", "public_hours", "other_topic_hours", "professional_hours", "reported_minutes",
                       "counted_minutes")


class StatisticsGroup(Base):
    """The statistics' counters of a key (domain/statistics.py): year, scope, dimension and value."""

    __tablename__ = "statistics_groups"
    year: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    scope: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    dim: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    people: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    people_credited: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    people_public_met: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    people_yearly_met: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    records: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    credited_hours: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    public_hours: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    other_topic_hours: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    professional_hours: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    reported_minutes: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    counted_minutes: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class StatisticsCut(Base):
    """The records and minutes a rule cut, per key."""

    __tablename__ = "statistics_cuts"
    year: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    scope: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    dim: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    rule: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    records: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    minutes: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class StatisticsUnit(Base):
    """The latest name a unit (USCC) was reported under."""

    __tablename__ = "statistics_units"
    uscc: Mapped[str] = mapped_column(sa.String(18), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)


class StatisticsState(Base):
    """Up to when the counters hold everything committed."""

    __tablename__ = "statistics_state"
    __table_args__ = (sa.CheckConstraint("id = 1", name="statistics_state_one"),)
    id: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    folded_through: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
