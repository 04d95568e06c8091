"""ready for Citus: the person key in every key; lookups by ID hash and external id as their own tables;
records, sittings and allocations partitioned by plan year

Revision ID: hours_ledger_0005
Revises: hours_ledger_0004

Existing rows are kept: they are copied into the new tables (ids and hash chains unchanged; an entry's hash
covers the person id, the record id and the entry's content, none of which change here).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "hours_ledger_0005"
down_revision = "hours_ledger_0004"
branch_labels = None
depends_on = None

S = "hours_ledger"

# Opens a plan year: one partition of each year-partitioned table. Idempotent and safe to race: the
# ledger calls it (in its own transaction) the first time it sees a record of a year without partitions.
# A year's partitions that an operator detached (to archive them) are never silently replaced.
OPEN_YEAR = """
CREATE OR REPLACE FUNCTION hours_ledger.open_year(y integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    IF y < 2000 OR y > 2100 THEN
        RAISE EXCEPTION 'plan year % is out of range', y;
    END IF;
    FOREACH t IN ARRAY ARRAY['records', 'sittings', 'allocations'] LOOP
        IF to_regclass(format('hours_ledger.%s_y%s', t, y)) IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(format('hours_ledger.%s_y%s', t, y))) THEN
            RAISE EXCEPTION 'hours_ledger.%_y% exists but is detached: attach it again, or rename or drop it', t, y
                USING ERRCODE = 'object_in_use';
        END IF;
        IF to_regclass(format('hours_ledger.%s_y%s', t, y)) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE hours_ledger.%I PARTITION OF hours_ledger.%I FOR VALUES FROM (%s) TO (%s)',
                               t || '_y' || y, t, y, y + 1);
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                NULL;  -- another session opened it at the same moment (unique_violation: on pg_type)
            END;
        END IF;
    END LOOP;
END $$"""

PUBLISHED_RECORDS = """
CREATE VIEW hours_ledger.published_records AS
SELECT r.id, p.id_hash AS person_hash, p.id_masked, p.name AS person_name, r.year, r.category, r.topic,
       r.field, r.course_id, r.base_id, r.course_hours, r.credited_hours, r.unit_region,
       r.reversed_at IS NOT NULL AS reversed,
       (SELECT min(s.started_at) FROM hours_ledger.sittings s
        WHERE s.person_id = r.person_id AND s.year = r.year AND s.record_id = r.id) AS first_sitting,
       (SELECT max(s.ended_at) FROM hours_ledger.sittings s
        WHERE s.person_id = r.person_id AND s.year = r.year AND s.record_id = r.id) AS last_sitting
FROM hours_ledger.records r JOIN hours_ledger.people p ON p.id = r.person_id"""


def _partitioned(name: str, *columns: sa.Column, constraints: tuple = (), indexes: tuple = ()) -> None:
    op.create_table(name, *columns, *constraints, schema=S, postgresql_partition_by="RANGE (year)")
    for index_name, cols in indexes:
        op.create_index(index_name, name, cols, unique=False, schema=S)


def _record_fk() -> sa.ForeignKeyConstraint:
    """A sitting's or allocation's record (one constraint object per table)."""
    return sa.ForeignKeyConstraint(
        ["person_id", "year", "record_id"],
        ["hours_ledger.records.person_id", "hours_ledger.records.year", "hours_ledger.records.id"])


def upgrade() -> None:
    op.execute("DROP VIEW hours_ledger.published_records")

    # -- people: found through person_keys, whose primary key keeps an ID number to one person ----------
    op.create_table(
        "person_keys",
        sa.Column("id_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
        schema=S,
    )
    op.execute("INSERT INTO hours_ledger.person_keys (id_hash, person_id) SELECT id_hash, id FROM hours_ledger.people")
    op.drop_constraint("people_id_hash_key", "people", schema=S, type_="unique")
    op.create_index(op.f("ix_hours_ledger_people_id_hash"), "people", ["id_hash"], unique=False, schema=S)

    # -- a base's external ids ----------------------------------------------------------------------
    op.create_table(
        "record_keys",
        sa.Column("base_id", sa.UUID(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("record_id", sa.UUID(), nullable=False),
        sa.PrimaryKeyConstraint("base_id", "external_id"),
        schema=S,
    )
    op.execute("""INSERT INTO hours_ledger.record_keys (base_id, external_id, request_hash, person_id, year, record_id)
                  SELECT base_id, external_id, request_hash, person_id, year, id FROM hours_ledger.records""")

    # -- entries: the person key leads the primary key ------------------------------------------------
    op.drop_constraint("entries_seq_per_person", "entries", schema=S, type_="unique")
    op.drop_column("entries", "id", schema=S)  # drops entries_pkey with it
    op.create_primary_key("entries_pkey", "entries", ["person_id", "seq"], schema=S)

    # -- records, sittings, allocations: rebuilt partitioned by year, rows copied ---------------------
    op.execute("CREATE TEMP TABLE old_records ON COMMIT DROP AS SELECT * FROM hours_ledger.records")
    op.execute("""CREATE TEMP TABLE old_sittings ON COMMIT DROP AS
                  SELECT s.*, r.year FROM hours_ledger.sittings s JOIN hours_ledger.records r ON r.id = s.record_id""")
    op.execute("""CREATE TEMP TABLE old_allocations ON COMMIT DROP AS
                  SELECT a.*, r.year FROM hours_ledger.allocations a JOIN hours_ledger.records r ON r.id = a.record_id""")
    op.drop_table("allocations", schema=S)
    op.drop_table("sittings", schema=S)
    op.drop_table("records", schema=S)

    _partitioned(
        "records",
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("base_id", sa.UUID(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("course_id", sa.UUID(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=8), nullable=True),
        sa.Column("field", sa.String(length=16), nullable=True),
        sa.Column("course_hours", sa.SmallInteger(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("unit_name", sa.Text(), nullable=False),
        sa.Column("unit_uscc", sa.String(length=18), nullable=False),
        sa.Column("unit_region", sa.String(length=6), nullable=False),
        sa.Column("exam", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("counted_seconds", sa.Integer(), nullable=False),
        sa.Column("credited_hours", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("adjustments", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversed_by", sa.UUID(), nullable=True),
        sa.Column("reversal_reason", sa.Text(), nullable=True),
        constraints=(sa.ForeignKeyConstraint(["person_id"], ["hours_ledger.people.id"]),
                     sa.PrimaryKeyConstraint("person_id", "year", "id")),
        indexes=(("records_id", ["id"]),),
    )
    _partitioned(
        "sittings",
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("record_id", sa.UUID(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("media_seconds", sa.Integer(), nullable=True),
        sa.Column("identity_passed", sa.Integer(), nullable=True),
        sa.Column("identity_failed", sa.Integer(), nullable=True),
        constraints=(_record_fk(), sa.PrimaryKeyConstraint("person_id", "year", "id")),
        indexes=(("sittings_person_start", ["person_id", "started_at"]), ("sittings_record", ["person_id", "record_id"])),
    )
    _partitioned(
        "allocations",
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("record_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        constraints=(_record_fk(), sa.PrimaryKeyConstraint("person_id", "year", "id")),
        indexes=(("allocations_person_day", ["person_id", "day"]), ("allocations_record", ["person_id", "record_id"])),
    )
    op.execute(OPEN_YEAR)
    op.execute("SELECT hours_ledger.open_year(y) FROM (SELECT DISTINCT year::int AS y FROM old_records) AS years")
    op.execute("""
        INSERT INTO hours_ledger.records (person_id, year, id, base_id, external_id, course_id, category, topic, field,
          course_hours, mode, unit_name, unit_uscc, unit_region, exam, counted_seconds, credited_hours, status,
          adjustments, created_at, reversed_at, reversed_by, reversal_reason)
        SELECT person_id, year, id, base_id, external_id, course_id, category, topic, field, course_hours, mode,
          unit_name, unit_uscc, unit_region, exam, counted_seconds, credited_hours, status, adjustments, created_at,
          reversed_at, reversed_by, reversal_reason FROM old_records""")
    op.execute("""
        INSERT INTO hours_ledger.sittings (person_id, year, id, record_id, started_at, ended_at, media_seconds,
          identity_passed, identity_failed)
        SELECT person_id, year, id, record_id, started_at, ended_at, media_seconds, identity_passed, identity_failed
        FROM old_sittings""")
    op.execute("""
        INSERT INTO hours_ledger.allocations (person_id, year, id, record_id, day, started_at, ended_at, seconds)
        SELECT person_id, year, id, record_id, day, started_at, ended_at, seconds FROM old_allocations""")
    for table in ("sittings", "allocations"):
        op.execute(f"""SELECT setval(pg_get_serial_sequence('hours_ledger.{table}', 'id'),
                                     coalesce((SELECT max(id) FROM hours_ledger.{table}), 0) + 1, false)""")
    op.execute(PUBLISHED_RECORDS)


def downgrade() -> None:
    raise NotImplementedError("hours_ledger_0005 is not reversible: restore from a backup taken before it")
