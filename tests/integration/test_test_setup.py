"""The test setup itself: a test that fails with a transaction open cannot hang the tests after it."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from tests.conftest import clean
from tests.support.db import IDLE_IN_TRANSACTION_TIMEOUT


async def test_the_scratch_database_ends_sessions_left_idle_in_a_transaction(engine):
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SHOW idle_in_transaction_session_timeout")) == IDLE_IN_TRANSACTION_TIMEOUT


async def test_the_cleanup_between_tests_fails_on_a_held_lock_instead_of_waiting(engine):
    """A session holding a lock on a table the cleanup empties (as a failed test's open transaction would) makes
    the cleanup fail after its lock timeout, not wait for ever."""
    async with engine.connect() as holder:
        await holder.execute(sa.text("LOCK TABLE hours_ledger.statistics_units IN ACCESS SHARE MODE"))
        started = time.monotonic()
        with pytest.raises(sa.exc.DBAPIError, match="lock timeout"):
            await clean(engine, lock_timeout="200ms")
        assert time.monotonic() - started < 10
        await holder.rollback()
    await clean(engine, lock_timeout="200ms")  # nothing held: it empties the tables
