"""The connection pool as the hot paths use it: asyncpg connections borrowed directly (`pooled`), and no
connection the server has closed ever handed out."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from xueshi_shared.database import create_engine, pooled


@pytest.fixture
async def one_connection(database_url):
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def test_a_connection_given_back_cleanly_is_reused(one_connection):
    async with pooled(one_connection) as conn:
        first = await conn.fetchval("SELECT pg_backend_pid()")
    async with pooled(one_connection) as conn, conn.transaction():
        assert await conn.fetchval("SELECT pg_backend_pid()") == first


async def test_a_connection_given_back_inside_a_transaction_is_closed_not_reused(one_connection):
    with pytest.raises(RuntimeError):
        async with pooled(one_connection) as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE half_done (x int)")
            first = await conn.fetchval("SELECT pg_backend_pid()")
            raise RuntimeError("the caller failed half-way")
    async with pooled(one_connection) as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT pg_backend_pid()") != first
        assert await conn.fetchval("SELECT to_regclass('pg_temp.half_done')") is None


async def test_a_connection_the_server_closed_is_replaced_at_checkout(one_connection, engine):
    async with pooled(one_connection) as conn:
        first = await conn.fetchval("SELECT pg_backend_pid()")
    async with engine.connect() as admin:
        assert await admin.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    for _ in range(50):  # the event loop sees the socket close
        if conn.is_closed():
            break
        await asyncio.sleep(0.02)
    async with one_connection.connect() as again:
        assert await again.scalar(sa.text("SELECT pg_backend_pid()")) != first
    async with pooled(one_connection) as conn:
        assert await conn.fetchval("SELECT 1") == 1
