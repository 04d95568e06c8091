"""The ledger is partitioned by plan year: a year's partitions open on its first record, records of a year
live in that year's partitions, and a year whose partitions vanish under a running ledger recovers on retry."""

from __future__ import annotations

import asyncio
import re

import sqlalchemy as sa
from hours_ledger import intake
from xueshi_shared.database import libpq_url

from tests.support.db import on_citus
from tests.support.factories import approved_course, online_sitting, record_body, ric
from tests.support.http import assert_problem

YEAR = 2019  # a plan year no other test uses: its partitions are this module's to create and drop
TABLES = ("records", "sittings", "allocations")


async def _detach_year(engine, year: int, *, drop: bool = True) -> None:
    """What an operator does to archive a year: detach the referring partitions first, then the records."""
    citus = await on_citus(engine)
    async with engine.begin() as conn:
        for table in reversed(TABLES):
            if await conn.scalar(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"hours_ledger.{table}_y{year}"}):
                await conn.execute(sa.text(f"ALTER TABLE hours_ledger.{table} DETACH PARTITION "
                                           f"hours_ledger.{table}_y{year}"))
                if drop:
                    await conn.execute(sa.text(f"DROP TABLE hours_ledger.{table}_y{year}"))
                    continue
                if citus:
                    # On Citus the detached table's copy of the foreign key cannot be dropped by name (each shard's
                    # copy is named after the parent's shard): the archive keeps the rows in a table of their own,
                    # under the same name, without the key (deploy/scale-out.md).
                    name = f"hours_ledger.{table}_y{year}"
                    await conn.execute(sa.text(f"CREATE TABLE {name}_archive (LIKE hours_ledger.{table} "
                                               "INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
                    await conn.execute(sa.text(f"INSERT INTO {name}_archive SELECT * FROM {name}"))
                    await conn.execute(sa.text(f"DROP TABLE {name}"))
                    await conn.execute(sa.text(f"ALTER TABLE {name}_archive RENAME TO {table}_y{year}"))
                    continue
                # Kept as an archive: its copy of the foreign key to the records would pin the records' partition.
                for fk in (await conn.execute(sa.text(
                        "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:t) AND contype = 'f' "
                        "AND conparentid = 0"),
                        {"t": f"hours_ledger.{table}_y{year}"})).scalars():
                    await conn.execute(sa.text(f'ALTER TABLE hours_ledger.{table}_y{year} DROP CONSTRAINT "{fk}"'))


async def _drop_year(engine, year: int) -> None:
    await _detach_year(engine, year)
    intake._open_years.discard(year)


async def _partitions(engine, year: int) -> list[str]:
    async with engine.connect() as conn:
        return [t for t in TABLES if await conn.scalar(sa.text("SELECT to_regclass(:t) IS NOT NULL"),
                                                       {"t": f"hours_ledger.{t}_y{year}"})]


async def _plan(catalog, admin, year: int) -> None:
    plan = {"year": year, "required_hours": 10, "window_start": f"{year}-01-01", "deadline": "2026-12-31",
            "max_hours_per_day": 12, "minutes_per_hour": 45, "min_exam_questions": 10,
            "topics": [{"code": "1", "title": "专题", "hours": 10}]}
    response = await catalog.post("/v1/plans", json=plan, headers=admin.headers)
    assert response.status_code == 201, response.text


async def test_a_years_first_record_opens_its_partitions_and_lands_in_them(engine, ledger, catalog, admin, fuzhou,
                                                                            base):
    await _drop_year(engine, YEAR)
    await _plan(catalog, admin, YEAR)
    course = await approved_course(catalog, base, fuzhou, year=YEAR, topic="1", hours=2)
    assert await _partitions(engine, YEAR) == []

    body = record_body(course, ric(1), [online_sitting("2026-05-04T09:00:00+08:00", "2026-05-04T10:30:00+08:00")])
    response = await ledger.post("/v1/records", json=body, headers=base.headers)
    assert response.status_code == 201, response.text
    assert await _partitions(engine, YEAR) == list(TABLES)
    async with engine.connect() as conn:
        for table in TABLES:
            homes = (await conn.execute(sa.text(f"SELECT DISTINCT tableoid::regclass::text FROM hours_ledger.{table} "
                                                "WHERE record_id = :r" if table != "records" else
                                                "SELECT DISTINCT tableoid::regclass::text FROM hours_ledger.records "
                                                "WHERE id = :r"), {"r": response.json()["record_id"]})).scalars().all()
            # (on Citus the row's table is a shard of the partition: its name ends with the shard's id)
            assert [re.sub(r"_y(\d{4})_\d+$", r"_y\1", h) for h in homes] == [f"hours_ledger.{table}_y{YEAR}"]
        # A year's reads touch only that year's partition (pruned at plan time).
        plan = await conn.scalar(sa.text(
            f"EXPLAIN (FORMAT JSON) SELECT * FROM hours_ledger.records WHERE person_id = 1 AND year = {YEAR}"))
    assert f"records_y{YEAR}" in str(plan) and "records_y2026" not in str(plan)
    # The transcript of that year reads the record back.
    transcript = await ledger.get(f"/v1/people/{ric(1)}/transcript?year={YEAR}", headers=admin.headers)
    assert [r["record_id"] for r in transcript.json()["records"]] == [response.json()["record_id"]]


async def test_partitions_removed_under_a_running_ledger_are_reopened_by_the_next_push(
        engine, ledger, catalog, admin, fuzhou, base, monkeypatch):
    await _drop_year(engine, YEAR)
    await _plan(catalog, admin, YEAR)
    course = await approved_course(catalog, base, fuzhou, year=YEAR, topic="1", hours=2)
    first = record_body(course, ric(2), [online_sitting("2026-05-04T09:00:00+08:00", "2026-05-04T10:30:00+08:00")])
    assert (await ledger.post("/v1/records", json=first, headers=base.headers)).status_code == 201
    # An operator archives the year while the ledger runs (which still holds it open): detached, then dropped.
    await _detach_year(engine, YEAR)
    assert YEAR in intake._open_years
    writes = []

    def counted(real):
        async def write(*args, **kwargs):
            writes.append(real.__name__)
            return await real(*args, **kwargs)
        return write

    monkeypatch.setattr(intake, "_write", counted(intake._write))
    monkeypatch.setattr(intake, "_write_on_worker", counted(intake._write_on_worker))
    # The write finds the partitions gone; nothing of it stays, the year is forgotten, and the record's retry
    # (the same code, inside the same request) reopens the year and is written.
    second = record_body(course, ric(3), [online_sitting("2026-05-05T09:00:00+08:00", "2026-05-05T10:30:00+08:00")])
    pushed = await ledger.post("/v1/records", json=second, headers=base.headers)
    assert pushed.status_code == 201, pushed.text
    if not await on_citus(engine):
        assert writes == ["_write", "_write"]
    else:  # the worker's call fails, then the person's own transaction under the lock (the year not reopened yet),
        # then the record's retry, which reopens the year
        assert writes == ["_write_on_worker", "_write", "_write_on_worker"]
    assert await _partitions(engine, YEAR) == list(TABLES)
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.record_keys WHERE external_id = :e"),
                                 {"e": second["external_id"]}) == 1


async def test_many_sessions_opening_the_same_year_at_once_all_succeed(engine, database_url):
    import asyncpg

    year = 2018
    await _drop_year(engine, year)

    async def open_() -> None:
        conn = await asyncpg.connect(libpq_url(database_url))
        try:
            await conn.execute("SELECT hours_ledger.open_year($1)", year)
        finally:
            await conn.close()

    await asyncio.gather(*(open_() for _ in range(8)))
    assert await _partitions(engine, year) == list(TABLES)
    await _drop_year(engine, year)


async def test_a_detached_year_is_never_silently_replaced(engine, ledger, catalog, admin, fuzhou, base):
    await _drop_year(engine, YEAR)
    await _plan(catalog, admin, YEAR)
    course = await approved_course(catalog, base, fuzhou, year=YEAR, topic="1", hours=2)
    first = record_body(course, ric(4), [online_sitting("2026-05-04T09:00:00+08:00", "2026-05-04T10:30:00+08:00")])
    assert (await ledger.post("/v1/records", json=first, headers=base.headers)).status_code == 201
    await _detach_year(engine, YEAR, drop=False)  # archived but kept: new partitions would hide its rows
    intake._open_years.discard(YEAR)
    second = record_body(course, ric(5), [online_sitting("2026-05-05T09:00:00+08:00", "2026-05-05T10:30:00+08:00")])
    refused = assert_problem(await ledger.post("/v1/records", json=second, headers=base.headers), 503, "year-not-open")
    assert "detached" in refused["detail"]
    async with engine.begin() as conn:  # attached again, the year works
        for table in TABLES:
            await conn.execute(sa.text(f"ALTER TABLE hours_ledger.{table} ATTACH PARTITION hours_ledger.{table}_y{YEAR} "
                                       f"FOR VALUES FROM ({YEAR}) TO ({YEAR + 1})"))
    assert (await ledger.post("/v1/records", json=second, headers=base.headers)).status_code == 201
