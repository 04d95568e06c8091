"""xAPI benchmark: cmi5 statements a second through the LRS, each registration's session ending in a record
decided by the same rules, next to single pushes of records measured in the same run on the same database.

Each of 32 clients plays AUs: registration after registration (each a learner of their own, enrolled
beforehand), it sends the session's statements one request each, in order (launched, initialized, completed,
passed, terminated); the terminated settles the registration into a record. Statements/s counts every statement
sent; the registrations must all end recorded.

    make bench                     # embedded PostgreSQL under .data/bench
    BENCH_XAPI_REGISTRATIONS=500 python bench/xapi.py
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
import orjson
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hours_ledger import loadgen  # noqa: E402
from hours_ledger.xapi import cmi5  # noqa: E402
from xueshi_shared.database import libpq_url  # noqa: E402

from bench.common import record_results, scratch_database  # noqa: E402
from bench.ledger import CLIENTS, Deployment, make_records  # noqa: E402
from tests.support.cmi5 import Emitter  # noqa: E402

console = Console()
BJ = dt.timezone(dt.timedelta(hours=8))
UNIT = {"name": "福州市第一医院", "uscc": "91350100M000100Y43", "region": "350102"}


def person_number(n: int, region: str = "350181") -> str:
    from stdnum.cn import ric

    body = f"{region}{1960 + n % 40}{1 + n % 12:02d}{1 + n % 28:02d}{n // 336 % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


async def run_clients(work: list, concurrency: int, job) -> float:
    """Seconds for `concurrency` clients (one keep-alive connection each) to do `job(session, item)` for all."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def client() -> None:
            while not queue.empty():
                await job(session, queue.get_nowait())
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.perf_counter() - started


async def main() -> dict:
    n = int(os.environ.get("BENCH_XAPI_REGISTRATIONS", "2000"))
    n_single = int(os.environ.get("BENCH_RECORDS", "4000"))
    async with scratch_database() as url:
        deployment = Deployment(url, base64.b64encode(os.urandom(32)).decode())
        await deployment.populate(n_bases=1)
        key, courses = deployment.bases[0]
        course = courses[2]  # topic 3: two 学时
        conn = await asyncpg.connect(libpq_url(url))
        try:
            base_id = await conn.fetchval("SELECT base_id FROM catalog.courses WHERE id = $1::uuid", course)
            aus = [f"https://courses.example.cn/bench/au/{i}" for i in range(1)]
            await conn.executemany(
                "INSERT INTO catalog.course_activities (base_id, activity_id, course_id, position) "
                "VALUES ($1, $2, $3::uuid, $4)", [(base_id, au, course, i) for i, au in enumerate(aus)])
        finally:
            await conn.close()
        # One LMS's key sends every statement: 1,500 a second is 90,000 a minute, beyond the default per-key limit
        # (XUESHI_RATE_LIMIT_PER_MINUTE, 12,000), which a deployment serving such an LMS raises as this one does.
        os.environ.setdefault("XUESHI_RATE_LIMIT_PER_MINUTE", "1000000")
        deployment.start()
        base_url = f"http://127.0.0.1:{deployment.port}"
        ext = cmi5.Extensions.under(base_url)
        basic = "Basic " + base64.b64encode(f"{base_id}:{key}".encode()).decode()
        headers = {"Authorization": basic, "X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
        rng = random.Random(2028)

        def registrations(count: int, offset: int) -> list[tuple[str, dict, list[dict]]]:
            out = []
            for i in range(count):
                lms = Emitter(actor={"objectType": "Agent", "account": {"homePage": "https://lms.example.cn",
                                                                        "name": f"bench-{offset + i}"}}, ext=ext)
                start = dt.datetime(2026, 6, 1 + rng.randrange(28), 8 + rng.randrange(6), tzinfo=BJ)
                end = start + dt.timedelta(minutes=100)
                statements = lms.session(start, end, au=aus[0], played=6000, checks=(3, 0), exam=(True, 10, 9))
                enrolment = {"course_id": course, "actor": lms.actor, "id_type": "RIC",
                             "id_number": person_number(offset + i), "name": f"学员{offset + i}", "unit": UNIT}
                out.append((lms.registration, enrolment, statements))
            return out

        async def enrol(session: aiohttp.ClientSession, item) -> None:
            registration, enrolment, _ = item
            async with session.put(f"{base_url}/v1/registrations/{registration}", data=orjson.dumps(enrolment),
                                   headers={"Authorization": f"Bearer {key}",
                                            "Content-Type": "application/json"}) as r:
                assert r.status == 201, await r.text()
            # The LMS writes the AU's launch data before the launch (cmi5 §10), as a real one does.
            query = {"activityId": aus[0], "agent": orjson.dumps(enrolment["actor"]).decode(),
                     "registration": registration, "stateId": cmi5.LAUNCH_DATA}
            async with session.put(f"{base_url}/xapi/activities/state", params=query, headers=headers,
                                   data=orjson.dumps({"launchMode": "Normal", "moveOn": "CompletedAndPassed"})) as r:
                assert r.status == 204, await r.text()

        async def play(session: aiohttp.ClientSession, item) -> None:
            for statement in item[2]:
                async with session.post(f"{base_url}/xapi/statements", data=orjson.dumps(statement),
                                        headers=headers) as r:
                    assert r.status == 200, await r.text()

        try:
            console.print("warming up: single pushes, and 200 registrations through the LRS …")
            await loadgen.push_records(base_url, make_records(deployment, 1000, 3000, rng, "warm"), CLIENTS)
            warm = registrations(200, 10**6)
            await run_clients(warm, CLIENTS, enrol)
            await run_clients(warm, CLIENTS, play)
            console.print(f"single pushes: {n_single} records at {CLIENTS} clients …")
            single = await loadgen.push_records(base_url, make_records(deployment, n_single, 3000, rng, "single"),
                                                CLIENTS)
            assert set(single.statuses) <= {201}, single.statuses
            single_rps = n_single / single.seconds
            work = registrations(n, 0)
            console.print(f"enrolling {n} registrations …")
            enrol_seconds = await run_clients(work, CLIENTS, enrol)
            statements = sum(len(w[2]) for w in work)
            console.print(f"cmi5 statements: {statements} ({n} sessions) at {CLIENTS} clients …")
            xapi_seconds = await run_clients(work, CLIENTS, play)
        finally:
            deployment.stop()
        conn = await asyncpg.connect(libpq_url(url))
        try:
            states = dict(await conn.fetch(
                "SELECT state, count(*) FROM hours_ledger.xapi_registrations WHERE registration = ANY($1::uuid[]) "
                "GROUP BY state", [w[0] for w in work]))
        finally:
            await conn.close()
    assert states == {"recorded": n}, states

    results = {
        "xapi_statements_per_s": round(statements / xapi_seconds, 1),
        "xapi_registrations_recorded_per_s": round(n / xapi_seconds, 1),
        "xapi_enrolments_per_s": round(n / enrol_seconds, 1),
        "xapi_single_push_rps": round(single_rps, 1),
        "xapi_statements": statements,
        "xapi_target_statements_per_s": 1500,
    }
    table = Table("measure", "value", "baseline (same run)", "ratio", title="xAPI benchmark")
    table.add_row(f"cmi5 statements/s ({CLIENTS} clients, one per request, target 1,500)",
                  f"{statements / xapi_seconds:,.0f}", f"{single_rps:,.0f} single pushes (records)/s",
                  f"{statements / xapi_seconds / single_rps:.1%}")
    table.add_row("registrations settled into records/s", f"{n / xapi_seconds:,.0f}", f"{single_rps:,.0f}",
                  f"{n / xapi_seconds / single_rps:.1%}")
    table.add_row("enrolments/s", f"{n / enrol_seconds:,.0f}", "", "")
    console.print(table)
    return results


if __name__ == "__main__":
    results = asyncio.run(main())
    results["xapi_measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    console.print(f"wrote {record_results(results)}")
