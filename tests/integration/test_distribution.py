"""Citus readiness, checked from the database catalog of the migrated schema: every table placed, every key of
a distributed table includes its distribution column, foreign keys stay within what Citus allows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from xueshi.distribution import PLACEMENTS, citus_sql, placement_problems


async def test_the_migrated_schema_is_ready_for_citus(engine):
    async with engine.connect() as conn:
        assert await placement_problems(conn) == []


async def test_every_per_person_table_is_distributed_by_the_person_key(engine):
    # Any ledger table with a person column belongs to the person group, distributed by that column.
    async with engine.connect() as conn:
        tables = (await conn.execute(sa.text("""
            SELECT c.relnamespace::regnamespace::text || '.' || c.relname FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = 'hours_ledger'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND a.attname = 'person_id' AND NOT a.attisdropped"""))).scalars().all()
    per_person = {t for t in tables if t not in ("hours_ledger.person_keys", "hours_ledger.external_ids")}
    assert per_person >= {"hours_ledger.records", "hours_ledger.record_keys", "hours_ledger.sittings",
                          "hours_ledger.allocations", "hours_ledger.entries", "hours_ledger.person_days",
                          "hours_ledger.seminar_trainees"}
    for table in per_person | {"hours_ledger.people"}:
        place = PLACEMENTS[table]
        assert (place.kind, place.group) == ("distributed", "person"), table
        assert place.column == ("id" if table == "hours_ledger.people" else "person_id"), table
    assert all(p.kind == "reference" for t, p in PLACEMENTS.items() if t.startswith("catalog.")
               and not t.endswith("alembic_version"))


# Each change is something Citus refuses; the check must name it. (Applied in a transaction rolled back.)
VIOLATIONS = [
    ("ALTER TABLE hours_ledger.records ADD CONSTRAINT bad_unique UNIQUE (base_id, external_id, year)",
     "hours_ledger.records: bad_unique (base_id, external_id, year) does not include the distribution column "
     "person_id"),
    ("CREATE TABLE hours_ledger.unplaced (id bigint PRIMARY KEY)",
     "hours_ledger.unplaced: no placement (add it to PLACEMENTS)"),
    ("ALTER TABLE catalog.plans ADD COLUMN person bigint CONSTRAINT bad_ref REFERENCES hours_ledger.people (id)",
     "catalog.plans: bad_ref refers from a reference table to a distributed table (hours_ledger.people)"),
    ("ALTER TABLE hours_ledger.entries ADD CONSTRAINT bad_pair FOREIGN KEY (seq) REFERENCES hours_ledger.people (id)",
     "hours_ledger.entries: bad_pair does not pair the distribution columns (person_id with id)"),
    ("ALTER TABLE hours_ledger.external_ids ADD CONSTRAINT bad_group FOREIGN KEY (person_id) "
     "REFERENCES hours_ledger.people (id)",
     "hours_ledger.external_ids: bad_group refers to hours_ledger.people, which is not in its colocation group"),
    ("ALTER TABLE hours_ledger.person_days ALTER COLUMN person_id TYPE integer",
     "colocation group 'person': distribution columns of different types ['bigint', 'integer']"),
    ("ALTER TABLE verification.proofs ADD COLUMN person bigint CONSTRAINT bad_local REFERENCES hours_ledger.people (id)",
     "verification.proofs: bad_local refers from a coordinator table to a distributed table (hours_ledger.people)"),
]


@pytest.mark.parametrize(("ddl", "problem"), VIOLATIONS, ids=[v[1].split(":")[1].split()[0] for v in VIOLATIONS])
async def test_the_check_names_what_citus_would_refuse(engine, ddl, problem):
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            await conn.execute(sa.text(ddl))
            problems = await placement_problems(conn)
            with pytest.raises(ValueError, match="not ready for Citus"):
                await citus_sql(conn)
        finally:
            await transaction.rollback()
    assert problems == [problem]


async def test_the_citus_statements_place_each_table_once_after_what_it_refers_to(engine):
    async with engine.connect() as conn:
        sql = await citus_sql(conn)
    statements = [line for line in sql.splitlines() if line.startswith("SELECT")]
    placed = [line.split("'")[1] for line in statements]
    assert sorted(placed) == sorted(PLACEMENTS)
    order = placed.index
    assert order("hours_ledger.people") < order("hours_ledger.records") < order("hours_ledger.sittings")
    assert order("catalog.plans") < order("catalog.topics") < order("catalog.courses")
    person_group = [s for s in statements if "create_distributed_table" in s and "person_id'" in s]
    first = placed[min(order(t) for t, p in PLACEMENTS.items() if p.group == "person")]
    assert all(f"colocate_with => '{first}'" in s for s in person_group if f"'{first}'," not in s)
    assert "SELECT create_distributed_table('hours_ledger.person_keys', 'id_hash', colocate_with => 'none');" in sql
    assert "SELECT create_reference_table('iam.tokens');" in sql
    assert "SELECT citus_add_local_table_to_metadata('iam.audit_events');" in sql
