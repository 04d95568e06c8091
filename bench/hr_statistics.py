"""Statistics benchmark: p99 of statistics requests when the ledger holds 10 million records, next to the same
questions answered by scanning the ledger, in the same run.

The ledger is generated inside PostgreSQL (generate_series): 1 million people of 10 records each, public (five
topics) and professional (six fields of four authorities), 60 bases, 20,000 units over Fujian's counties,
one sitting a record spread over 40 weeks, a fifth of the records with cuts. Every record is queued as the
push path queues it, and the counters are built by the ledger's own fold (statistics.fold), so the bench also
measures how long a full rebuild takes. The requests go through the real hours-ledger app (ASGI, in process):
a province auditor by region, base and week (filtered by topic), a city administrator by county, base quality.
The scan answers the first question (people, records and 学时 by city) with one GROUP BY over the records.

    BENCH_STATISTICS_RECORDS=10000000 (default)   BENCH_DATABASE_URL=... for another server
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xueshi_shared.database import libpq_url  # noqa: E402
from xueshi_shared.regions import CODES  # noqa: E402

from bench.common import record_results, scratch_database  # noqa: E402

console = Console()
PER_PERSON = 10
COUNTIES = sorted(c for c in CODES if c != "350000")

PEOPLE = """
INSERT INTO hours_ledger.people (id_hash, id_type, id_cipher, id_masked, name)
SELECT decode(md5('p' || g) || md5('q' || g), 'hex'), 'RIC', '\\x00', '350102********0000', 'bg'
FROM generate_series(1, $1::bigint) AS g"""

RECORDS = """
WITH r AS (
  INSERT INTO hours_ledger.records (id, base_id, external_id, person_id, course_id, year, category, topic, field,
    course_hours, mode, unit_name, unit_uscc, unit_region, exam, counted_seconds, credited_hours, status, adjustments)
  SELECT gen_random_uuid(), ('00000000-0000-4000-8000-0000000000' || lpad(((g / 10 + g % 3) % 60)::text, 2, '0'))::uuid,
    'bg-' || g, $1::bigint + g / {per}, '00000000-0000-4000-8000-000000000100'::uuid, 2026,
    CASE WHEN g % 10 < 6 THEN 'public' ELSE 'professional' END,
    CASE WHEN g % 10 < 6 THEN ((g % 10) % 5 + 1)::text END,
    CASE WHEN g % 10 >= 6 THEN (ARRAY['A20.1','A20.2','A05.1','A08.1','A15.1','A02.2'])[1 + (g / 10) % 6] END,
    7, 'online', '单位' || ((g / 10) % 20000), '91350100M' || lpad(((g / 10) % 20000)::text, 9, '0'),
    (ARRAY[{counties}])[1 + ((g / 10) % 20000) % {n_counties}], NULL,
    CASE WHEN g % 5 = 0 THEN 14400 ELSE 18900 END, CASE WHEN g % 5 = 0 THEN 5 ELSE 7 END,
    CASE WHEN g % 5 = 0 THEN 'partial' ELSE 'credited' END,
    CASE WHEN g % 5 = 0 THEN '[{{"rule": "parallel-study", "minutes": 75, "hours": 0, "day": null, "detail": ""}}]'
         ELSE '[]' END::jsonb
  FROM generate_series($2::bigint, $3::bigint - 1) AS g
  RETURNING id, person_id, external_id),
s AS (
  INSERT INTO hours_ledger.sittings (record_id, person_id, year, started_at, ended_at, media_seconds,
    identity_passed, identity_failed)
  SELECT r.id, r.person_id, 2026,
         timestamptz '2026-03-02 08:00+08' + (abs(hashtext(r.external_id)) % 280) * interval '1 day',
         timestamptz '2026-03-02 13:15+08' + (abs(hashtext(r.external_id)) % 280) * interval '1 day', 18900, 2, 0
  FROM r)
INSERT INTO hours_ledger.statistics_queue (person_id, year, record_id, change)
SELECT person_id, 2026, id, 'credit' FROM r"""

SCAN = """
SELECT CASE WHEN unit_region = '350128' THEN unit_region ELSE left(unit_region, 4) || '00' END AS city,
       count(DISTINCT person_id) AS people, count(*) AS records, sum(credited_hours) AS hours
FROM hours_ledger.records WHERE year = 2026 AND reversed_at IS NULL GROUP BY 1"""


async def generate(url: str, records: int) -> None:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute("SELECT hours_ledger.open_year(2026)")
        people = records // PER_PERSON
        await conn.execute(PEOPLE, people)
        first = await conn.fetchval("SELECT min(id) FROM hours_ledger.people")
        sql = RECORDS.format(per=PER_PERSON, counties=", ".join(f"'{c}'" for c in COUNTIES), n_counties=len(COUNTIES))
        step = 500_000
        for start in range(0, records, step):
            await conn.execute(sql, first, start, min(records, start + step))
            console.print(f"  {min(records, start + step):,} records")
        for table in ("people", "records", "sittings", "statistics_queue"):
            await conn.execute(f"VACUUM (ANALYZE) hours_ledger.{table}")
    finally:
        await conn.close()


async def scan_p99(url: str, n: int = 5) -> tuple[float, list]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        latencies, rows = [], []
        for _ in range(n + 1):
            t = time.perf_counter()
            rows = await conn.fetch(SCAN)
            latencies.append(time.perf_counter() - t)
        latencies = sorted(latencies[1:])
        return latencies[-1] * 1000, rows
    finally:
        await conn.close()


async def requests_p99(url: str, pii_key: str, tokens: dict[str, str], scanned: list, n: int = 100) -> float:
    from hours_ledger.app import create_app
    from xueshi_shared.settings import Settings

    app = create_app(Settings(database_url=url, pii_key=pii_key, log_level="WARNING", rate_limit_per_minute=0,
                              statistics_fold_seconds=3600))
    questions = [("auditor", "?group_by=region"), ("auditor", "?group_by=base"), ("auditor", "?group_by=week&topic=3"),
                 ("city", "?group_by=region"), ("city", "?group_by=field"), ("auditor", "/base-quality")]
    latencies = []
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            by_city = (await client.get("/v1/statistics/2026?group_by=region",
                                        headers={"Authorization": f"Bearer {tokens['auditor']}"})).json()
            got = {g["key"]: (g["people"], g["records"], g["credited_hours"]) for g in by_city["groups"]}
            want = {r["city"]: (r["people"], r["records"], r["hours"]) for r in scanned}
            assert got == want, "the counters differ from the scan"
            for i in range(n + 10):
                who, query = questions[i % len(questions)]
                path = "/v1/statistics/2026/base-quality" if query == "/base-quality" else f"/v1/statistics/2026{query}"
                t = time.perf_counter()
                r = await client.get(path, headers={"Authorization": f"Bearer {tokens[who]}"})
                if i >= 10:
                    latencies.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text[:300]
    latencies.sort()
    return latencies[int(len(latencies) * 0.99) - 1] * 1000


async def main() -> dict:
    records = int(os.environ.get("BENCH_STATISTICS_RECORDS", "10000000"))
    label = f"{records // 1_000_000}m" if records >= 1_000_000 else str(records)
    async with scratch_database() as url:
        pii_key = base64.b64encode(os.urandom(32)).decode()
        from sqlalchemy.ext.asyncio import AsyncSession
        from xueshi_shared.database import create_engine
        from xueshi_shared.iam.service import create_staff

        engine = create_engine(url, pool_size=2, max_overflow=0)
        async with AsyncSession(engine) as s, s.begin():
            _, auditor = await create_staff(s, name="bench auditor", role="auditor")
            _, city = await create_staff(s, name="bench Fuzhou", role="city_admin", region="350100")
        console.print(f"generating {records:,} records …")
        t = time.perf_counter()
        await generate(url, records)
        generated = time.perf_counter() - t
        console.print(f"  {generated:.0f} s; folding them into the counters …")
        from hours_ledger import statistics

        t = time.perf_counter()
        folded = await statistics.fold(engine, batch=20_000)
        rebuild = time.perf_counter() - t
        assert folded == records, (folded, records)
        async with engine.connect() as c:
            conn = await statistics.raw(c)
            counters = await conn.fetchval("SELECT count(*) FROM hours_ledger.statistics_groups")
        await engine.dispose()
        console.print(f"  {rebuild:.0f} s ({records / rebuild:,.0f} records/s), {counters:,} counter rows")
        scan, scanned = await scan_p99(url)
        p99 = await requests_p99(url, pii_key, {"auditor": auditor, "city": city}, scanned)
    console.print(f"statistics p99 {p99:.1f} ms, the same question by a full scan p99 {scan:.0f} ms "
                  f"({scan / p99:,.0f}x), at {records:,} records")
    return {f"statistics_p99_ms_{label}": round(p99, 2), f"statistics_scan_p99_ms_{label}": round(scan, 2),
            f"statistics_rebuild_records_per_s_{label}": round(records / rebuild),
            f"statistics_counter_rows_{label}": counters}


if __name__ == "__main__":
    results = asyncio.run(main())
    out = record_results(results)
    console.print(f"wrote {out}")
