"""hours_ledger_0005 rebuilds the ledger's tables (person key in every key, partitions by year): a ledger
written under the earlier schema comes through with every row, id and hash chain intact."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from hours_ledger.service import check_integrity, entry_hash
from sqlalchemy.ext.asyncio import AsyncSession
from xueshi.services import HISTORIES, history
from xueshi_shared.database import create_engine
from xueshi_shared.iam.principal import Principal
from xueshi_shared.migrations import alembic_config

from tests.support.db import scratch_database, server_admin_url

UTC = dt.UTC
ACTOR = uuid.uuid4()


def _upgrade_to_0004(url: str) -> None:
    for item in HISTORIES:
        command.upgrade(alembic_config(item, url), "hours_ledger_0004" if item.schema == "hours_ledger" else "head")


@pytest.fixture
async def old_ledger():
    admin_url, _server = server_admin_url()
    async with scratch_database(admin_url, _upgrade_to_0004) as url:
        yield url


async def _write_old_rows(conn) -> dict:
    """Two people, three records over two years, written as the 0004 schema stored them."""
    made: dict = {"records": {}, "people": []}
    for p in range(2):
        id_hash = os.urandom(32)
        person = (await conn.execute(sa.text(
            "INSERT INTO hours_ledger.people (id_hash, id_type, id_cipher, id_masked, name) "
            "VALUES (:h, 'RIC', '\\x00', '350102********0000', :n) RETURNING id"), {"h": id_hash, "n": f"学员{p}"})).scalar()
        made["people"].append((person, id_hash))
        prev = b"\x00" * 32
        for seq, year in enumerate((2025, 2026) if p == 0 else (2026,), start=1):
            record, base, request = uuid.uuid4(), uuid.uuid4(), os.urandom(32)
            start = dt.datetime(year, 5, 4, 1, 0, tzinfo=UTC)
            await conn.execute(sa.text("""
                INSERT INTO hours_ledger.records (id, base_id, external_id, request_hash, person_id, course_id, year,
                  category, topic, course_hours, mode, unit_name, unit_uscc, unit_region, counted_seconds,
                  credited_hours, status, adjustments)
                VALUES (:id, :b, :e, :rh, :p, :c, :y, 'public', '1', 2, 'online', '单位', '91350100M000000000',
                  '350102', 5400, 2, 'credited', '[]')"""),
                {"id": record, "b": base, "e": f"ext-{p}-{seq}", "rh": request, "p": person, "c": uuid.uuid4(), "y": year})
            sitting = (await conn.execute(sa.text("""
                INSERT INTO hours_ledger.sittings (record_id, person_id, started_at, ended_at, media_seconds,
                  identity_passed, identity_failed)
                VALUES (:r, :p, :s, :e, 5400, 2, 0) RETURNING id"""),
                {"r": record, "p": person, "s": start, "e": start + dt.timedelta(minutes=90)})).scalar()
            await conn.execute(sa.text("""
                INSERT INTO hours_ledger.allocations (record_id, person_id, day, started_at, ended_at, seconds)
                VALUES (:r, :p, :d, :s, :e, 5400)"""),
                {"r": record, "p": person, "d": dt.date(year, 5, 4), "s": start, "e": start + dt.timedelta(minutes=90)})
            await conn.execute(sa.text("INSERT INTO hours_ledger.person_days (person_id, day, seconds) "
                                       "VALUES (:p, :d, 5400)"), {"p": person, "d": dt.date(year, 5, 4)})
            at = start + dt.timedelta(hours=2)
            digest = entry_hash(prev, person_id=person, seq=seq, record_id=record, kind="credit", hours=2,
                                seconds=5400, actor_id=ACTOR, reason=None, recorded_at=at)
            await conn.execute(sa.text("""
                INSERT INTO hours_ledger.entries (person_id, seq, record_id, kind, hours, seconds, actor_id,
                  recorded_at, prev_hash, hash)
                VALUES (:p, :s, :r, 'credit', 2, 5400, :a, :at, :prev, :h)"""),
                {"p": person, "s": seq, "r": record, "a": ACTOR, "at": at, "prev": prev, "h": digest})
            await conn.execute(sa.text("UPDATE hours_ledger.people SET entry_count = :s, last_hash = :h WHERE id = :p"),
                               {"s": seq, "h": digest, "p": person})
            prev = digest
            made["records"][record] = (person, year, base, f"ext-{p}-{seq}", request, sitting)
    return made


async def test_the_rebuild_keeps_every_row_id_and_chain(old_ledger):
    engine = create_engine(old_ledger, pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as conn:
            made = await _write_old_rows(conn)
        await asyncio.to_thread(command.upgrade, alembic_config(history("hours_ledger"), old_ledger), "head")

        async with engine.connect() as conn:
            keys = dict((await conn.execute(sa.text("SELECT id_hash, person_id FROM hours_ledger.person_keys"))).all())
            assert keys == {bytes(h): p for p, h in made["people"]}
            for record, (person, year, base, external, request, sitting) in made["records"].items():
                key = (await conn.execute(sa.text(
                    "SELECT request_hash, person_id, year, record_id FROM hours_ledger.record_keys "
                    "WHERE base_id = :b AND external_id = :e"), {"b": base, "e": external})).one()
                assert (bytes(key.request_hash), key.person_id, key.year, key.record_id) == (request, person, year,
                                                                                               record)
                home = await conn.scalar(sa.text(
                    "SELECT tableoid::regclass::text FROM hours_ledger.records WHERE id = :r"), {"r": record})
                assert home == f"hours_ledger.records_y{year}"
                assert await conn.scalar(sa.text(
                    "SELECT id FROM hours_ledger.sittings WHERE person_id = :p AND year = :y AND record_id = :r"),
                    {"p": person, "y": year, "r": record}) == sitting
                assert await conn.scalar(sa.text(
                    "SELECT count(*) FROM hours_ledger.allocations WHERE person_id = :p AND year = :y "
                    "AND record_id = :r"), {"p": person, "y": year, "r": record}) == 1
            # New sittings continue after the copied ids.
            person, year = made["people"][0][0], 2026
            record = next(r for r, v in made["records"].items() if v[:2] == (person, year))
            new_id = (await conn.execute(sa.text("""
                INSERT INTO hours_ledger.sittings (person_id, year, record_id, started_at, ended_at)
                VALUES (:p, :y, :r, now(), now()) RETURNING id"""), {"p": person, "y": year, "r": record})).scalar()
            assert new_id > max(v[5] for v in made["records"].values())
            await conn.rollback()

        async with AsyncSession(engine) as session, session.begin():
            auditor = Principal(id=uuid.uuid4(), kind="staff", name="审计", role="auditor")
            report = await check_integrity(session, auditor)
        assert report == {"valid": True, "entries_checked": 3, "people_checked": 2, "problems": []}
    finally:
        await engine.dispose()
