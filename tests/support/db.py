"""Test databases: a scratch database on the embedded server or on TEST_DATABASE_URL's server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from xueshi.distribution import apply_citus
from xueshi_shared.database import asyncpg_url, embedded_server, libpq_url

ROOT = Path(__file__).resolve().parents[2]


def server_admin_url() -> tuple[str, object | None]:
    """A URL to an administrative database on the test server, and the embedded handle if any."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return asyncpg_url(configured), None
    # XUESHI_TEST_DATA_DIR: where the embedded server lives (the test of the test setup uses one of its own).
    server = embedded_server(Path(os.environ.get("XUESHI_TEST_DATA_DIR") or ROOT / ".data" / "test"))
    return asyncpg_url(server.get_uri("postgres")), server


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


# A test that fails with a transaction open must not hang the tests after it (one run waited 18 minutes on such a
# session's lock): the server ends a session left idle in a transaction this long, and the cleanup between tests
# (tests/conftest.py) waits for a lock at most CLEANUP_LOCK_TIMEOUT, failing instead of waiting for ever.
IDLE_IN_TRANSACTION_TIMEOUT = "5min"
CLEANUP_LOCK_TIMEOUT = "30s"


async def cluster_workers(admin_url: str) -> list[tuple[str, int]]:
    """The workers of the Citus cluster whose coordinator `admin_url` names ([] on plain PostgreSQL): a scratch
    database there is created on every node, with the extension, and its workers added (`create_scratch_database`)."""
    conn = await asyncpg.connect(libpq_url(admin_url))
    try:
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"):
            return []
        rows = await conn.fetch("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 AND "
                                "noderole = 'primary' AND isactive ORDER BY nodeport")
    finally:
        await conn.close()
    return [(r["nodename"], r["nodeport"]) for r in rows]


def on_node(url: str, host: str, port: int) -> str:
    return make_url(url).set(host=host, port=port).render_as_string(hide_password=False)


async def _create(url: str, name: str) -> None:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.execute(f"ALTER DATABASE \"{name}\" SET idle_in_transaction_session_timeout = "
                           f"'{IDLE_IN_TRANSACTION_TIMEOUT}'")
    finally:
        await conn.close()


async def create_scratch_database(admin_url: str) -> str:
    """A new, empty database on the test server. On a Citus cluster it exists on every node, with the extension on
    each, and the coordinator knows itself and the workers: ready for `xueshi db citus --apply`."""
    name = f"xueshi_test_{uuid.uuid4().hex[:12]}"
    workers = await cluster_workers(admin_url)
    await _create(admin_url, name)
    url = with_database(admin_url, name)
    if workers:
        for host, port in workers:
            await _create(on_node(admin_url, host, port), name)
            worker = await asyncpg.connect(libpq_url(on_node(url, host, port)))
            try:
                await worker.execute("CREATE EXTENSION citus")
            finally:
                await worker.close()
        coordinator = await asyncpg.connect(libpq_url(url))
        try:
            await coordinator.execute("CREATE EXTENSION citus")
            parsed = make_url(url)
            await coordinator.execute("SELECT citus_set_coordinator_host($1, $2)", parsed.host, parsed.port or 5432)
            for host, port in workers:
                await coordinator.execute("SELECT citus_add_node($1, $2)", host, port)
        finally:
            await coordinator.close()
    return url


async def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    workers = await cluster_workers(admin_url)
    for node in [admin_url] + [on_node(admin_url, host, port) for host, port in workers]:
        conn = await asyncpg.connect(libpq_url(node))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def on_citus(engine: Any) -> bool:
    """Whether the test database (an AsyncEngine's) is on a Citus cluster."""
    async with engine.connect() as conn:
        return bool(await conn.scalar(sa.text(CITUS_INSTALLED)))


CITUS_INSTALLED = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"


# Shards of each distributed table in a test database: two a worker is enough to spread people over both, and the
# cleanup between tests truncates every shard (with Citus's default of 32 it took most of each test's time).
TEST_SHARD_COUNT = 4


async def distribute(url: str, shard_count: int | None = TEST_SHARD_COUNT) -> list[str]:
    """On a Citus cluster, place the migrated scratch database's tables, as `xueshi db citus --apply` does (nothing
    on plain PostgreSQL), with `shard_count` shards a table (None: Citus's default). Returns the tables placed."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            if not await conn.scalar(sa.text(CITUS_INSTALLED)):
                return []
            return await apply_citus(conn, shard_count=shard_count)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str, migrate: Callable[[str], None]) -> AsyncIterator[str]:
    """A new database on the server of `admin_url`, brought up by `migrate(url)`, dropped afterwards."""
    url = await create_scratch_database(admin_url)
    try:
        await asyncio.to_thread(migrate, url)
        yield url
    finally:
        await drop_database(admin_url, url)
