"""Test databases: a scratch database on the embedded server or on TEST_DATABASE_URL's server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url
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


async def create_scratch_database(admin_url: str) -> str:
    name = f"xueshi_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(libpq_url(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.execute(f"ALTER DATABASE \"{name}\" SET idle_in_transaction_session_timeout = "
                           f"'{IDLE_IN_TRANSACTION_TIMEOUT}'")
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(libpq_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str, migrate: Callable[[str], None]) -> AsyncIterator[str]:
    """A new database on the server of `admin_url`, brought up by `migrate(url)`, dropped afterwards."""
    url = await create_scratch_database(admin_url)
    try:
        await asyncio.to_thread(migrate, url)
        yield url
    finally:
        await drop_database(admin_url, url)
