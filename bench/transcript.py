"""Transcript benchmark: p99 of reading one person's year (500 records) while the ledger holds 1 million and
then 10 million records. The cost must stay flat as the ledger grows: every read goes through the
person's indexes (person_keys, records(person_id, year, id) in the year's partition, sittings(person_id,
record_id)), never a scan.

The background rows are generated inside PostgreSQL (generate_series), the measured person's records are
real ones with sittings; the reads go through the real hours-ledger app (ASGI, in process) with an
auditor's token.

    BENCH_TRANSCRIPT_SIZES=1000000,10000000 (default)   BENCH_DATABASE_URL=... for another server
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
from pathlib import Path

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hours_ledger.loadgen import ric  # noqa: E402
from xueshi_shared.database import libpq_url  # noqa: E402
from xueshi_shared.pii import PiiKeys, load_master  # noqa: E402

from bench.common import record_results, scratch_database  # noqa: E402

console = Console()
PER_PERSON = 20  # background records per background person
PEOPLE_START = 500 // PER_PERSON  # index of the first background person

BACKGROUND = """
WITH p AS (
  INSERT INTO hours_ledger.people (id_hash, id_type, id_cipher, id_masked, name)
  SELECT decode(md5('p' || g) || md5('q' || g), 'hex'), 'RIC', '\\x00', '350102********0000', 'bg'
  FROM generate_series($1::bigint, $2::bigint - 1) AS g
  RETURNING id, id_hash)
INSERT INTO hours_ledger.person_keys (id_hash, person_id) SELECT id_hash, id FROM p;

WITH r AS (
  INSERT INTO hours_ledger.records (id, base_id, external_id, person_id, course_id, year, category,
    topic, field, course_hours, mode, unit_name, unit_uscc, unit_region, exam, counted_seconds, credited_hours,
    status, adjustments)
  SELECT gen_random_uuid(), ('00000000-0000-4000-8000-00000000000' || (g % 10))::uuid, 'bg-' || g,
    $1::bigint + (g / {per}), '00000000-0000-4000-8000-000000000100'::uuid, 2026, 'public', '1', NULL, 7,
    'online', '单位', '91350100M000000000', '350102', NULL, 3600, 1, 'partial', '[]'
  FROM generate_series($2::bigint, $3::bigint - 1) AS g
  RETURNING id, person_id, external_id)
INSERT INTO hours_ledger.sittings (record_id, person_id, year, started_at, ended_at, media_seconds,
  identity_passed, identity_failed)
SELECT r.id, r.person_id, 2026, timestamptz '2026-06-01 08:00+08' + (abs(hashtext(r.external_id)) % 100) * interval '1 day',
       timestamptz '2026-06-01 09:00+08' + (abs(hashtext(r.external_id)) % 100) * interval '1 day', 3600, 1, 0
FROM r
"""


async def grow(url: str, people_from: int, people_to: int, records_from: int, records_to: int) -> None:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        statements = [s for s in BACKGROUND.format(per=PER_PERSON).split(";\n") if s.strip()]
        await conn.execute("SELECT hours_ledger.open_year(2026)")
        await conn.execute(statements[0].replace("$1::bigint", str(people_from)).replace("$2::bigint", str(people_to)))
        # Background person k has id offset + k (identity values are consecutive: nothing else inserts).
        offset = await conn.fetchval("SELECT min(id) FROM hours_ledger.people WHERE name = 'bg'") - PEOPLE_START
        await conn.execute(statements[1], offset, records_from, records_to)
        # Settle the new rows before measuring (statistics, visibility map, hint bits), or autovacuum starts on
        # them in the middle of the measurement and the p99 measures it.
        for table in ("people", "person_keys", "records", "sittings"):
            await conn.execute(f"VACUUM (ANALYZE) hours_ledger.{table}")
    finally:
        await conn.close()


async def add_person_with_records(url: str, keys: PiiKeys, id_number: str, n: int) -> None:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute("SELECT hours_ledger.open_year(2026)")
        person = await conn.fetchval(
            "INSERT INTO hours_ledger.people (id_hash, id_type, id_cipher, id_masked, name) "
            "VALUES ($1, 'RIC', $2, $3, '学员') RETURNING id",
            keys.lookup_hash(id_number), keys.encrypt("RIC", id_number), id_number[:6] + "********" + id_number[-4:])
        await conn.execute("INSERT INTO hours_ledger.person_keys (id_hash, person_id) VALUES ($1, $2)",
                           keys.lookup_hash(id_number), person)
        await conn.execute("""
            WITH r AS (
              INSERT INTO hours_ledger.records (id, base_id, external_id, person_id, course_id, year,
                category, topic, field, course_hours, mode, unit_name, unit_uscc, unit_region, counted_seconds,
                credited_hours, status, adjustments)
              SELECT gen_random_uuid(), '00000000-0000-4000-8000-000000000001'::uuid, 'heavy-' || g, $1,
                '00000000-0000-4000-8000-000000000100'::uuid, 2026,
                CASE WHEN g % 5 = 0 THEN 'public' ELSE 'professional' END,
                CASE WHEN g % 5 = 0 THEN '1' END, CASE WHEN g % 5 = 0 THEN NULL ELSE 'A15.1' END, 2, 'online', '单位',
                '91350100M000000000', '350102', 5400, 2, 'credited', '[]'
              FROM generate_series(1, $2) AS g RETURNING id, external_id)
            INSERT INTO hours_ledger.sittings (record_id, person_id, year, started_at, ended_at, media_seconds,
              identity_passed, identity_failed)
            SELECT r.id, $1, 2026, timestamptz '2026-03-01 08:00+08' + (substr(r.external_id, 7)::int) * interval '2 hours',
                   timestamptz '2026-03-01 09:30+08' + (substr(r.external_id, 7)::int) * interval '2 hours', 5400, 1, 0
            FROM r""", person, n)
    finally:
        await conn.close()


async def read_p99(url: str, pii_key: str, id_number: str, token: str, n: int = 200) -> float:
    from hours_ledger.app import create_app
    from xueshi_shared.settings import Settings

    app = create_app(Settings(database_url=url, pii_key=pii_key, log_level="WARNING", rate_limit_per_minute=0))
    latencies = []
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            headers = {"Authorization": f"Bearer {token}"}
            for i in range(n + 20):
                t = time.perf_counter()
                r = await client.post("/v1/people/transcript", json={"id_number": id_number, "year": 2026},
                                      headers=headers)
                if i >= 20:  # warm-up excluded
                    latencies.append(time.perf_counter() - t)
                assert r.status_code == 200 and len(r.json()["records"]) == 500, r.text[:300]
    latencies.sort()
    return latencies[int(len(latencies) * 0.99) - 1] * 1000


async def main() -> dict:
    sizes = [int(x) for x in os.environ.get("BENCH_TRANSCRIPT_SIZES", "1000000,10000000").split(",")]
    results: dict[str, float] = {}
    rows = []
    async with scratch_database() as url:
        pii_key = base64.b64encode(os.urandom(32)).decode()
        keys = PiiKeys.from_master(load_master(pii_key, Path("/nonexistent")))
        from sqlalchemy.ext.asyncio import AsyncSession
        from xueshi_shared.database import create_engine
        from xueshi_shared.iam.service import create_staff

        engine = create_engine(url, pool_size=1, max_overflow=0)
        async with AsyncSession(engine) as s, s.begin():
            _, token = await create_staff(s, name="bench auditor", role="auditor")
        await engine.dispose()
        person = ric(4242)
        await add_person_with_records(url, keys, person, 500)
        have, people_have = 500, PEOPLE_START
        for size in sizes:
            started = time.perf_counter()
            console.print(f"growing the ledger to {size:,} records …")
            people_to = (size + PER_PERSON - 1) // PER_PERSON
            await grow(url, people_have, people_to, have, size)
            people_have = people_to
            took = time.perf_counter() - started
            p99 = await read_p99(url, pii_key, person, token)
            label = f"{size // 1_000_000}m" if size >= 1_000_000 else str(size)
            results[f"transcript_p99_ms_{label}"] = round(p99, 2)
            rows.append((f"{size:,}", f"{p99:.2f}", f"{took:.0f}"))
            have = size
    table = Table("records in the ledger", "transcript p99 (ms, 500 records)", "seconds to generate",
                  title="Transcript read as the ledger grows")
    for r in rows:
        table.add_row(*r)
    console.print(table)
    if len(rows) > 1:
        console.print(f"ratio largest / smallest: {float(rows[-1][1]) / float(rows[0][1]):.2f}")
    return results


if __name__ == "__main__":
    results = asyncio.run(main())
    out = record_results(results)
    console.print(f"wrote {out}")
