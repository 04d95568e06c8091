"""Ledger benchmark: single pushes at 32 concurrent clients over HTTP, and the batch endpoint, each next to
a baseline measured in the same run on the same database:

- single pushes vs. the same number of single-row autocommit INSERTs (asyncpg, 32 connections) of the
  records' rows into the records table: what the database alone costs for one durable row per request;
- the batch endpoint vs. COPY of the same rows into the same tables: everything a pushed record stores
  (record, external-id key, sitting, allocation, ledger entry), reported in records per second.

The ledger runs as a real service process (`xueshi serve hours-ledger`, uvicorn); the load comes from a
separate asyncio client with realistic traffic: several bases, people with existing history, overlapping
sittings and capped days.

    make bench                          # embedded PostgreSQL under .data/bench
    BENCH_DATABASE_URL=... make bench   # another server
    BENCH_CITUS_URL=... make bench      # and the same on a Citus cluster (its coordinator), next to it: citus_* keys
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hours_ledger import loadgen  # noqa: E402
from xueshi_shared.database import libpq_url  # noqa: E402

from bench.common import record_results, scratch_database  # noqa: E402

console = Console()
TZ = dt.timezone(dt.timedelta(hours=8))
CLIENTS = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uscc(n: int) -> str:
    from stdnum.cn import uscc as std

    body = f"91350100M{n:08d}"
    return body + std.calc_check_digit(body)


class Deployment:
    """A scratch database with bases and courses, and a running ledger process."""

    def __init__(self, url: str, pii_key: str):
        self.url, self.pii_key = url, pii_key
        self.port = free_port()
        self.bases: list[tuple[str, list[str]]] = []

    async def populate(self, n_bases: int = 5) -> None:
        from catalog.app import create_app as catalog_app
        from sqlalchemy.ext.asyncio import AsyncSession
        from xueshi_shared.database import create_engine
        from xueshi_shared.iam.service import create_staff
        from xueshi_shared.settings import Settings

        engine = create_engine(self.url, pool_size=2, max_overflow=0)
        async with AsyncSession(engine) as s, s.begin():
            _, token = await create_staff(s, name="bench admin", role="province_admin")
        await engine.dispose()
        headers = {"Authorization": f"Bearer {token}"}
        # In the benchmark's own process: leave its garbage collector as it is (the ledger under test runs
        # as a service process with its own settings).
        app = catalog_app(Settings(database_url=self.url, pii_key=self.pii_key, gc_thresholds=""))
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c") as c:
                for i in range(n_bases):
                    form = {
                        "unit_name": f"基地{i}", "uscc": uscc(5000 + i), "legal_representative": "甲",
                        "platform_name": f"平台{i}", "icp_filing": "闽ICP备00000001号",
                        "platform_url": "https://b.example.cn", "level": "provincial", "region": "350000",
                        "category": "public", "fields": [], "scope_region": "350000",
                        "operations_lead": {"name": "乙", "phone": "13800000000"},
                        "courseware_lead": {"name": "丙", "phone": "13800000001"}, "mlps_filing": "35000000000-1"}
                    base_id = (await c.post("/v1/bases", json=form, headers=headers)).json()["id"]
                    key = (await c.post(f"/v1/bases/{base_id}/approval", headers=headers)).json()["api_key"]
                    courses = []
                    for topic, hours in (("1", 7), ("2", 7), ("3", 2), ("4", 7), ("5", 7)):
                        course = {"code": f"B{i}T{topic}", "title": "课", "year": 2026, "category": "public",
                                  "topic": topic, "hours": hours, "mode": "online", "exam_questions": 10}
                        cid = (await c.post("/v1/courses", json=course, headers={"Authorization": f"Bearer {key}"})
                               ).json()["id"]
                        review = {"decision": "approved", "reviewers": ["专家"], "reviewed_on": "2026-01-01",
                                  "checks": {"wording": True, "policy": True, "ideology": True}}
                        await c.post(f"/v1/courses/{cid}/review", json=review, headers=headers)
                        courses.append(cid)
                    self.bases.append((key, courses))

    def start(self) -> None:
        env = dict(os.environ, XUESHI_DATABASE_URL=self.url, XUESHI_PII_KEY=self.pii_key,
                   XUESHI_LEDGER_PORT=str(self.port), XUESHI_LOG_LEVEL="WARNING",
                   # At least one connection per concurrent request: a pool that runs short opens and closes
                   # overflow connections under load, each preparing its statements anew (measured: 197 vs
                   # 307 records/s with 16 + 8 against 40).
                   XUESHI_DB_POOL_SIZE=os.environ.get("BENCH_POOL", "40"), XUESHI_DB_MAX_OVERFLOW="8",
                   XUESHI_WORKERS=os.environ.get("BENCH_WORKERS", "1"))
        self.proc = subprocess.Popen([sys.executable, "-m", "xueshi.cli", "serve", "hours-ledger"], env=env)
        # The statistics fold runs beside the ledger, as `xueshi run` and the deploy files run it: its CPU is
        # part of what a push costs the machine (BENCH_FOLD=0 leaves it out).
        self.folder = (subprocess.Popen([sys.executable, "-m", "xueshi.cli", "serve", "statistics-fold"], env=env)
                       if os.environ.get("BENCH_FOLD", "1") == "1" else None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the ledger did not start")

    async def catch_up(self, most_seconds: float = 600) -> float | None:
        """Seconds until the fold has folded every queued change (None without the fold process)."""
        if self.folder is None:
            return None
        conn = await asyncpg.connect(libpq_url(self.url))
        started = time.perf_counter()
        try:
            while await conn.fetchval("SELECT EXISTS (SELECT 1 FROM hours_ledger.statistics_queue)"):
                if time.perf_counter() - started > most_seconds:
                    raise RuntimeError("the statistics fold did not catch up")
                await asyncio.sleep(0.05)
        finally:
            await conn.close()
        return time.perf_counter() - started

    def fold_cpu_seconds(self) -> float | None:
        """The fold process's CPU time so far (Linux), its start included."""
        if self.folder is None:
            return None
        fields = Path(f"/proc/{self.folder.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for proc in (self.proc, self.folder):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)


def make_records(deployment: Deployment, n: int, people: int, rng: random.Random, tag: str) -> list[tuple[str, dict]]:
    return loadgen.make_records([loadgen.BaseKey(k, tuple(c)) for k, c in deployment.bases], n, people, rng, tag)


async def push_singles(base_url: str, records: list[tuple[str, dict]]) -> tuple[float, list[float]]:
    result = await loadgen.push_records(base_url, records, CLIENTS)
    bad = {k: v for k, v in result.statuses.items() if k not in (200, 201)}
    if bad:
        raise RuntimeError(f"pushes failed: {bad}")
    return result.rate, result.latencies


async def push_batches(base_url: str, records: list[tuple[str, dict]], size: int = 500) -> float:
    by_key: dict[str, list[dict]] = {}
    for key, body in records:
        by_key.setdefault(key, []).append(body)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as c:
        async def send(key: str, chunk: list[dict]) -> None:
            r = await c.post("/v1/records/batch", json={"records": chunk}, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text
            bad = [x for x in r.json()["results"] if x["status"] not in (200, 201)]
            assert not bad, bad[:2]
        await asyncio.gather(*(send(k, b[i:i + size]) for k, b in by_key.items() for i in range(0, len(b), size)))
    return len(records) / (time.perf_counter() - started)


# What the ledger stores for one pushed record, row by row: the record, its external-id key, its sitting, its
# allocation and its ledger entry (the day total and the chain head are updates of existing rows). The
# baselines write exactly these rows into the same tables, without any rule, lookup or lock.
TABLES = {
    "records": ("id", "base_id", "external_id", "person_id", "course_id", "year", "category", "topic", "field",
                "course_hours", "mode", "unit_name", "unit_uscc", "unit_region", "exam", "counted_seconds",
                "credited_hours", "status", "adjustments", "created_at"),
    "record_keys": ("base_id", "external_id", "request_hash", "person_id", "year", "record_id"),
    "sittings": ("person_id", "year", "record_id", "started_at", "ended_at", "media_seconds", "identity_passed",
                 "identity_failed"),
    "allocations": ("person_id", "year", "record_id", "day", "started_at", "ended_at", "seconds"),
    "entries": ("person_id", "seq", "record_id", "kind", "hours", "seconds", "actor_id", "reason", "recorded_at",
                "prev_hash", "hash"),
}


def baseline_rows(n: int, person_id: int, first_seq: int) -> dict[str, list[tuple]]:
    """The rows of `n` records, table by table."""
    now = dt.datetime.now(dt.UTC)
    base, actor = uuid.uuid4(), uuid.uuid4()
    rows: dict[str, list[tuple]] = {t: [] for t in TABLES}
    for i in range(n):
        record, external = uuid.uuid4(), f"baseline-{uuid.uuid4().hex}"
        start = dt.datetime(2026, 6, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=i)
        end = start + dt.timedelta(hours=1)
        rows["records"].append((record, base, external, person_id, uuid.uuid4(), 2026, "public", "1", None, 7, "online",
                                "单位", uscc(1), "350102", None, 3600, 1, "partial", "[]", now))
        rows["record_keys"].append((base, external, os.urandom(32), person_id, 2026, record))
        rows["sittings"].append((person_id, 2026, record, start, end, 3600, 1, 0))
        rows["allocations"].append((person_id, 2026, record, start.date(), start, end, 3600))
        rows["entries"].append((person_id, first_seq + i, record, "credit", 1, 3600, actor, None, now, os.urandom(32),
                                os.urandom(32)))
    return rows


async def _baseline_person(conn: asyncpg.Connection) -> tuple[int, int]:
    """A person of its own for the baseline rows, and the next free entry number."""
    person_id = await conn.fetchval("SELECT id FROM hours_ledger.people WHERE name = 'baseline'")
    if person_id is None:
        person_id = await conn.fetchval(
            "INSERT INTO hours_ledger.people (id_hash, id_type, id_cipher, id_masked, name) "
            "VALUES ($1, 'RIC', '\\x00', 'x', 'baseline') RETURNING id", os.urandom(32))
    seq = await conn.fetchval("SELECT coalesce(max(seq), 0) + 1 FROM hours_ledger.entries WHERE person_id = $1",
                              person_id)
    return person_id, seq


async def baseline_inserts(url: str, n: int) -> float:
    """Single-row autocommit INSERTs per second, one per record (its `records` row), on 32 connections."""
    conn = await asyncpg.connect(libpq_url(url))
    person_id, seq = await _baseline_person(conn)
    await conn.close()
    rows = baseline_rows(n, person_id, seq)
    columns = TABLES["records"]
    sql = (f"INSERT INTO hours_ledger.records ({', '.join(columns)}) "
           f"VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))})")
    queue = list(rows["records"])
    pool = await asyncpg.create_pool(libpq_url(url), min_size=CLIENTS, max_size=CLIENTS)

    async def worker() -> None:
        async with pool.acquire() as c:
            while queue:
                await c.execute(sql, *queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    rate = n / (time.perf_counter() - started)
    await pool.close()
    return rate


async def baseline_copy(url: str, n: int) -> float:
    """Records per second when the rows of `n` records are COPYed into their tables."""
    conn = await asyncpg.connect(libpq_url(url))
    person_id, seq = await _baseline_person(conn)
    rows = baseline_rows(n, person_id, seq)
    started = time.perf_counter()
    for table, columns in TABLES.items():
        await conn.copy_records_to_table(table, schema_name="hours_ledger", records=rows[table], columns=columns)
    rate = n / (time.perf_counter() - started)
    await conn.close()
    return rate


def _cpu_of(pid: int) -> float:
    """CPU seconds of a process and of its children it has reaped (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if _parent(int(entry.name)) == pid:
                    out.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


class DatabaseCpu:
    """The CPU the database servers behind some URLs have used (each server's postmaster, its live backends and
    those it has reaped): plain PostgreSQL is one server, a Citus cluster its coordinator and workers."""

    def __init__(self, postmasters: list[int]) -> None:
        self.postmasters = postmasters

    @classmethod
    async def of(cls, urls: list[str]) -> DatabaseCpu:
        postmasters = []
        for url in urls:
            conn = await asyncpg.connect(libpq_url(url))
            try:  # the backend's parent, while the backend lives
                postmasters.append(_parent(await conn.fetchval("SELECT pg_backend_pid()")))
            finally:
                await conn.close()
        return cls(postmasters)

    def seconds(self) -> float:
        total = 0.0
        for pm in self.postmasters:
            total += _cpu_of(pm)
            for child in _children(pm):
                with contextlib.suppress(OSError):
                    total += _cpu_of(child)
        return total


async def _node_urls(url: str) -> list[str]:
    """The URLs of every node holding `url`'s database: the server itself, and on Citus its workers too."""
    conn = await asyncpg.connect(libpq_url(url))
    try:
        citus = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
        workers = await conn.fetch("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0") if citus else []
    finally:
        await conn.close()
    return [url] + [make_url(url).set(host=w["nodename"], port=w["nodeport"]).render_as_string(hide_password=False)
                    for w in workers]


async def measure(url: str, n_single: int) -> dict:
    """The benchmark on the (migrated, and on Citus distributed) database at `url`."""
    pii_key = base64.b64encode(os.urandom(32)).decode()
    deployment = Deployment(url, pii_key)
    await deployment.populate()
    rng = random.Random(2026)
    # Every phase's records are made before the first push: a client that stops between phases to build the
    # next one leaves the ledger a quiet moment in which the fold would start (and would be measured as the
    # next phase's cost).
    n_batch = 2 * n_single
    history, singles = (make_records(deployment, 2000, 3000, rng, "history"),
                        make_records(deployment, n_single, 3000, rng, "single"))
    warm_up, batch = (make_records(deployment, 1000, 3000, rng, "batch-warm-up"),
                      make_records(deployment, n_batch, 3000, rng, "batch"))
    cpu = await DatabaseCpu.of(await _node_urls(url))
    deployment.start()
    base_url = f"http://127.0.0.1:{deployment.port}"
    try:
        console.print("warming up: existing history for 3,000 people …")
        await push_singles(base_url, history)
        console.print(f"single pushes: {n_single} records at {CLIENTS} concurrent clients …")
        before = cpu.seconds()
        single_rps, latencies = await push_singles(base_url, singles)
        single_db_cpu = cpu.seconds() - before
        # The batch path's statements are prepared per connection on first use: warm them, as the single
        # pushes above warmed theirs, so that both measure the steady state.
        await push_batches(base_url, warm_up)
        console.print(f"batch endpoint: {n_batch} records in batches of 500 …")
        before = cpu.seconds()
        batch_rps = await push_batches(base_url, batch)
        batch_db_cpu = cpu.seconds() - before
        catch_up = await deployment.catch_up()
        fold_cpu = deployment.fold_cpu_seconds()
    finally:
        deployment.stop()
    console.print("baselines …")
    insert_rps = await baseline_inserts(url, n_single)
    copy_rps = await baseline_copy(url, n_single * 5)
    latencies.sort()
    return {"single_rps": single_rps, "latencies": latencies, "batch_rps": batch_rps, "insert_rps": insert_rps,
            "copy_rps": copy_rps, "catch_up": catch_up, "fold_cpu": fold_cpu,
            "single_db_cpu_ms": single_db_cpu / n_single * 1000, "batch_db_cpu_ms": batch_db_cpu / n_batch * 1000}


def _table(title: str, m: dict) -> Table:
    table = Table("measure", "value", "baseline (same run)", "ratio", title=title)
    table.add_row("single pushes, records/s (32 clients, HTTP, all rules)", f"{m['single_rps']:,.0f}",
                  f"{m['insert_rps']:,.0f} single-row autocommit INSERTs/s", f"{m['single_rps'] / m['insert_rps']:.1%}")
    table.add_row("single pushes, p50 / p99 latency", f"{statistics.median(m['latencies']) * 1000:.2f} / "
                  f"{m['latencies'][int(len(m['latencies']) * 0.99) - 1] * 1000:.2f} ms", "", "")
    table.add_row("batch endpoint, records/s", f"{m['batch_rps']:,.0f}",
                  f"{m['copy_rps']:,.0f} records/s by COPY (5 rows each)", f"{m['batch_rps'] / m['copy_rps']:.1%}")
    table.add_row("database CPU per record: single / batch", f"{m['single_db_cpu_ms']:.2f} / "
                  f"{m['batch_db_cpu_ms']:.2f} ms", "", "")
    if m["catch_up"] is not None:
        table.add_row("statistics fold: caught up after the last push / its CPU",
                      f"{m['catch_up']:.2f} s / {m['fold_cpu']:.2f} s", "", "")
    return table


async def main() -> dict:
    n_single = int(os.environ.get("BENCH_RECORDS", "4000"))
    async with scratch_database() as url:
        plain = await measure(url, n_single)
    latencies = plain["latencies"]
    results = {
        "ledger_single_rps": round(plain["single_rps"], 1),
        "ledger_single_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "ledger_single_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "ledger_single_baseline_rps": round(plain["insert_rps"], 1),
        "ledger_batch_rps": round(plain["batch_rps"], 1),
        "ledger_batch_copy_rps": round(plain["copy_rps"], 1),
        # The statistics fold beside the pushes: how long after the last push the counters held everything, and
        # the CPU it took for all the pushes (its start included).
        "ledger_statistics_catch_up_s": None if plain["catch_up"] is None else round(plain["catch_up"], 2),
        "ledger_fold_cpu_s": None if plain["fold_cpu"] is None else round(plain["fold_cpu"], 2),
        "ledger_single_db_cpu_ms": round(plain["single_db_cpu_ms"], 3),
        "ledger_batch_db_cpu_ms": round(plain["batch_db_cpu_ms"], 3),
    }
    console.print(_table("Ledger benchmark", plain))
    citus_url = os.environ.get("BENCH_CITUS_URL")
    if citus_url:
        # The same benchmark on a Citus cluster (its coordinator's URL; the scratch database made on every node
        # and distributed as `xueshi db citus --apply` does), next to the plain run above, in the same run.
        async with scratch_database(citus_url, distributed=True) as url:
            citus = await measure(url, n_single)
        console.print(_table("Ledger benchmark on Citus", citus))
        results.update({
            "citus_single_rps": round(citus["single_rps"], 1),
            "citus_batch_rps": round(citus["batch_rps"], 1),
            "citus_plain_single_rps": results["ledger_single_rps"],
            "citus_plain_batch_rps": results["ledger_batch_rps"],
            "citus_single_baseline_rps": round(citus["insert_rps"], 1),
            "citus_batch_copy_rps": round(citus["copy_rps"], 1),
            "citus_single_p99_ms": round(citus["latencies"][int(len(citus["latencies"]) * 0.99) - 1] * 1000, 2),
            "citus_single_db_cpu_ms": round(citus["single_db_cpu_ms"], 3),
            "citus_batch_db_cpu_ms": round(citus["batch_db_cpu_ms"], 3),
            "citus_single_ratio_to_plain": round(citus["single_rps"] / plain["single_rps"], 3),
            "citus_batch_ratio_to_plain": round(citus["batch_rps"] / plain["batch_rps"], 3),
        })
    return results


if __name__ == "__main__":
    results = asyncio.run(main())
    results["measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    results["cpus"] = os.cpu_count()
    out = record_results(results)
    console.print(f"wrote {out}")
