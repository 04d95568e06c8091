"""Citus: readiness, checked from the database catalog of the migrated schema (every table placed, every key of
a distributed table includes its distribution column, foreign keys stay within what Citus allows), and, when the
suite runs on a real cluster (TEST_DATABASE_URL to a coordinator: .ci/run), what Citus's own catalog says of the
placed tables, where the rows land and that entries stay append-only on every worker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest
import sqlalchemy as sa
from xueshi.distribution import DISTRIBUTED_FUNCTIONS, PLACEMENTS, apply_citus, citus_sql, placement_problems
from xueshi.services import HISTORIES
from xueshi_shared.database import libpq_url
from xueshi_shared.migrations import upgrade_all

from tests.support.db import (
    cluster_workers,
    create_scratch_database,
    drop_database,
    on_citus,
    on_node,
    server_admin_url,
)
from tests.support.factories import approved_course, at, online_sitting, record_body, ric


@pytest.fixture
async def citus_cluster(engine) -> bool:
    return await on_citus(engine)


@pytest.fixture
def plain(citus_cluster):
    if citus_cluster:
        pytest.skip("on the Citus cluster Citus itself refuses these shapes, and every table is placed already")


@pytest.fixture
def citus(citus_cluster):
    if not citus_cluster:
        pytest.skip("needs a Citus cluster (TEST_DATABASE_URL to its coordinator; .ci/run runs one)")


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
async def test_the_check_names_what_citus_would_refuse(engine, plain, ddl, problem):
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


async def test_the_citus_statements_place_each_table_once_after_what_it_refers_to(engine, plain):
    async with engine.connect() as conn:
        sql = await citus_sql(conn)
    statements = [line for line in sql.splitlines() if line.startswith("SELECT")]
    placed = [line.split("'")[1] for line in statements]
    assert sorted(placed) == sorted([*PLACEMENTS, *DISTRIBUTED_FUNCTIONS])
    order = placed.index
    assert order("hours_ledger.people") < order("hours_ledger.records") < order("hours_ledger.sittings")
    assert order("catalog.plans") < order("catalog.topics") < order("catalog.courses")
    person_group = [s for s in statements if "create_distributed_table" in s and "person_id'" in s]
    first = placed[min(order(t) for t, p in PLACEMENTS.items() if p.group == "person")]
    assert all(f"colocate_with => '{first}'" in s for s in person_group if f"'{first}'," not in s)
    assert "SELECT create_distributed_table('hours_ledger.person_keys', 'id_hash', colocate_with => 'none');" in sql
    assert "SELECT create_reference_table('iam.tokens');" in sql
    assert "SELECT citus_add_local_table_to_metadata('iam.audit_events');" in sql
    assert sql.index("SET LOCAL citus.enable_unsafe_triggers = on;") < sql.index("SELECT")


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XUESHI_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "xueshi.cli", "db", "citus", *args], env=env, capture_output=True,
                          text=True, timeout=600)


async def test_apply_refuses_a_database_that_is_not_a_citus_coordinator(database_url, plain):
    done = await asyncio.to_thread(_cli, database_url, "--apply")
    assert done.returncode == 1, done
    assert "citus extension is not installed" in done.stderr


# ---- on a real cluster ----------------------------------------------------------------------------------------

_KINDS = {"distributed": "distributed", "reference": "reference", "coordinator": "local"}


async def test_citus_holds_every_table_as_placed_and_the_person_tables_colocated(engine, citus):
    async with engine.connect() as conn:
        rows = {r.table_name: r for r in await conn.execute(sa.text(
            "SELECT table_name::text, citus_table_type, distribution_column, colocation_id FROM citus_tables "
            "WHERE NOT (SELECT relispartition FROM pg_class WHERE oid = table_name)"))}  # a year's partitions go along
    assert set(rows) == set(PLACEMENTS)
    for table, place in PLACEMENTS.items():
        assert rows[table].citus_table_type == _KINDS[place.kind], table
        if place.kind == "distributed":
            assert rows[table].distribution_column == place.column, table
    groups: dict[str, set[int]] = {}
    for table, place in PLACEMENTS.items():
        if place.group:
            groups.setdefault(place.group, set()).add(rows[table].colocation_id)
    assert all(len(ids) == 1 for ids in groups.values()), groups  # one colocation group each
    assert len({next(iter(ids)) for ids in groups.values()}) == len(groups)  # and each its own
    assert rows["hours_ledger.record_keys"].colocation_id == rows["hours_ledger.people"].colocation_id


async def _push_people(ledger, catalog, base, fuzhou, n: int, first: int) -> None:
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7, mode="online")
    for k in range(n):
        body = record_body(course, ric(first + k), [online_sitting(at("09:00"), at("10:30"))])
        response = await ledger.post("/v1/records", json=body, headers=base.headers)
        assert response.status_code == 201, response.text


async def test_on_citus_pushed_rows_land_on_both_workers_each_person_on_one(engine, database_url, citus, ledger, catalog,
                                                                           base, fuzhou):
    await _push_people(ledger, catalog, base, fuzhou, 24, 7100)
    async with engine.connect() as conn:
        placed = (await conn.execute(sa.text("""
            SELECT t.person_id, array_agg(DISTINCT s.nodeport) AS ports
            FROM (SELECT person_id, 'hours_ledger.records'::regclass AS tbl FROM hours_ledger.records
                  UNION ALL SELECT person_id, 'hours_ledger.entries'::regclass FROM hours_ledger.entries
                  UNION ALL SELECT person_id, 'hours_ledger.record_keys'::regclass FROM hours_ledger.record_keys
                  UNION ALL SELECT id, 'hours_ledger.people'::regclass FROM hours_ledger.people) t
            JOIN citus_shards s ON s.shardid = get_shard_id_for_distribution_column(t.tbl, t.person_id)
            GROUP BY t.person_id"""))).all()
    workers = {port for _, port in await cluster_workers(server_admin_url()[0])}
    assert len(placed) == 24
    assert all(len(ports) == 1 for _, ports in placed), placed  # a person's rows on one worker
    assert {ports[0] for _, ports in placed} == workers  # and the people spread over both


async def test_on_citus_entries_refuse_updates_and_deletes_on_every_worker(engine, database_url, citus, ledger, catalog,
                                                                          base, fuzhou):
    await _push_people(ledger, catalog, base, fuzhou, 12, 7200)
    async with engine.connect() as conn:
        for statement in ("UPDATE hours_ledger.entries SET hours = hours + 1", "DELETE FROM hours_ledger.entries"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                await conn.execute(sa.text(statement))
            await conn.rollback()
    refused = 0
    for host, port in await cluster_workers(server_admin_url()[0]):
        worker = await asyncpg.connect(libpq_url(on_node(database_url, host, port)))
        try:
            await worker.execute("SET citus.override_table_visibility = off")  # Citus hides shards from the catalog
            shards = await worker.fetch("""SELECT c.oid::regclass::text AS shard FROM pg_class c
                                           WHERE c.relnamespace = 'hours_ledger'::regnamespace AND c.relkind = 'r'
                                             AND c.relname ~ '^entries_[0-9]+$'""")
            assert shards, f"no shard of entries on {port}"
            for shard in [r["shard"] for r in shards]:
                if not await worker.fetchval(f"SELECT count(*) FROM {shard}"):
                    continue
                for statement in (f"UPDATE {shard} SET hours = hours + 1", f"DELETE FROM {shard}"):
                    with pytest.raises(asyncpg.RaiseError, match="append-only"):
                        await worker.execute(statement)
                    refused += 1
        finally:
            await worker.close()
    assert refused >= 4  # both statements, on shards of both workers


async def test_xueshi_db_citus_apply_places_a_migrated_database_once(citus):
    """The documented command on a fresh migrated database of the cluster: every table placed, in one go; run
    again, nothing more to place."""
    admin_url, _ = server_admin_url()
    url = await create_scratch_database(admin_url)
    try:
        await asyncio.to_thread(upgrade_all, url, HISTORIES)
        done = await asyncio.to_thread(_cli, url, "--apply")
        assert done.returncode == 0, done.stderr
        assert f"placed {len(PLACEMENTS)} tables and {len(DISTRIBUTED_FUNCTIONS)} functions" in done.stderr
        again = await asyncio.to_thread(_cli, url, "--apply")
        assert again.returncode == 0 and "every table is placed already" in again.stderr
        conn = await asyncpg.connect(libpq_url(url))
        try:
            assert await conn.fetchval("SELECT count(*) FROM citus_tables") == len(PLACEMENTS)
        finally:
            await conn.close()
    finally:
        await drop_database(admin_url, url)


async def test_apply_places_nothing_twice(engine, citus):
    async with engine.connect() as conn:
        assert await apply_citus(conn) == []
