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
        assert await admin.scalar(sa.text("SELECT pg_terminate_backend(CAST(:pid AS integer))"), {"pid": first})
    for _ in range(50):  # the event loop sees the socket close
        if conn.is_closed():
            break
        await asyncio.sleep(0.02)
    async with one_connection.connect() as again:
        assert await again.scalar(sa.text("SELECT pg_backend_pid()")) != first
    async with pooled(one_connection) as conn:
        assert await conn.fetchval("SELECT 1") == 1


async def test_an_overflow_connection_given_back_to_a_full_pool_is_closed(database_url, engine, caplog):
    """Under load the pool lends overflow connections; given back to a full pool they must really close
    (SQLAlchemy closes them with an await, which needs its greenlet: without it the close failed, was logged as
    an error and left the server's backend open)."""
    small = create_engine(database_url, pool_size=1, max_overflow=2)
    try:
        borrowed = asyncio.Event()
        pids: list[int] = []

        async def borrow() -> None:
            async with pooled(small) as conn:
                pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
                if len(pids) == 3:
                    borrowed.set()
                await borrowed.wait()

        with caplog.at_level("ERROR"):
            await asyncio.gather(borrow(), borrow(), borrow())
        assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
        assert small.pool.checkedout() == 0
        async with engine.connect() as admin:
            for _ in range(50):
                alive = await admin.scalar(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:p)"),
                                           {"p": pids})
                if alive == 1:
                    break
                await asyncio.sleep(0.02)
        assert alive == 1  # the one the pool keeps; the two overflow backends are gone
    finally:
        await small.dispose()
