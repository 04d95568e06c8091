"""Fixtures shared by every test: one scratch database per run, migrated once, cleaned per test."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from xueshi.services import HISTORIES
from xueshi_shared.database import create_engine
from xueshi_shared.migrations import upgrade_all
from xueshi_shared.settings import Settings

from tests.support.db import (
    CLEANUP_LOCK_TIMEOUT,
    create_scratch_database,
    distribute,
    drop_database,
    server_admin_url,
)

# Tables a test may fill and the next test must not see. Reference data and the audit trail (which
# the database itself refuses to truncate) stay.
TEST_PII_KEY = base64.b64encode(b"xueshi test key, never in prod!!").decode()

MUTABLE_TABLES = [
    "iam.tokens", "iam.principals",
    "hours_ledger.entries", "hours_ledger.allocations", "hours_ledger.person_days", "hours_ledger.sittings",
    "hours_ledger.seminar_trainees", "hours_ledger.name_changes", "hours_ledger.records", "hours_ledger.record_keys",
    "hours_ledger.external_ids",
    "hours_ledger.people", "hours_ledger.person_keys", "hours_ledger.rosters", "hours_ledger.roster_rows",
    "hours_ledger.xapi_statements", "hours_ledger.xapi_documents", "hours_ledger.xapi_attachments",
    "hours_ledger.xapi_registrations", "hours_ledger.statistics_queue", "hours_ledger.statistics_groups",
    "hours_ledger.statistics_cuts", "hours_ledger.statistics_units",
    "verification.proofs", "verification.status_lists", "verification.holder_checks",
    "catalog.seminar_materials", "catalog.survey_responses", "catalog.seminar_changes", "catalog.seminars",
    "catalog.course_reviews", "catalog.course_activities",
    "catalog.courses", "catalog.base_decisions", "catalog.bases", "catalog.delegations",
]


# The embedded PostgreSQL the session runs on (None with TEST_DATABASE_URL): tests that restart the
# database server use it.
EMBEDDED: list = []


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    admin_url, _server = server_admin_url()
    EMBEDDED[:] = [_server] if _server is not None else []
    url = await create_scratch_database(admin_url)
    try:
        await asyncio.to_thread(upgrade_all, url, HISTORIES)
        await distribute(url)  # on a Citus cluster (TEST_DATABASE_URL to its coordinator); nothing otherwise
        yield url
    finally:
        if not os.environ.get("XUESHI_KEEP_TEST_DB"):
            await drop_database(admin_url, url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url, pool_size=5, max_overflow=5)
    yield eng
    await eng.dispose()


async def clean(eng: AsyncEngine, lock_timeout: str = CLEANUP_LOCK_TIMEOUT) -> None:
    """Empty what a test may have filled; a lock held elsewhere longer than `lock_timeout` fails it, never hangs."""
    async with eng.begin() as conn:
        await conn.execute(sa.text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
        await conn.execute(sa.text(f"TRUNCATE {', '.join(MUTABLE_TABLES)} CASCADE"))
        # Plans published through the API (reference plans have no creator) go too.
        await conn.execute(sa.text(
            "DELETE FROM catalog.topics WHERE year IN (SELECT year FROM catalog.plans WHERE created_by IS NOT NULL)"))
        await conn.execute(sa.text("DELETE FROM catalog.plans WHERE created_by IS NOT NULL"))
        # Seminar plans a test made (tests/integration/seminars/conftest.py).
        await conn.execute(sa.text("DELETE FROM catalog.seminar_plans WHERE source = 'test fixture'"))


@pytest.fixture(autouse=True)
async def _clean_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "engine" in request.fixturenames:
        await clean(request.getfixturevalue("engine"))


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed at the end of the test (so apps under test see it)."""
    async with AsyncSession(engine, expire_on_commit=False) as s, s.begin():
        yield s


@pytest.fixture
def settings(database_url: str, tmp_path) -> Settings:
    # gc_thresholds="": the test process starts hundreds of apps; freezing the collector at each start would
    # keep every earlier test's cyclic garbage (tune_garbage_collector is tested on its own).
    # failed_auth_per_minute=0: sweeps send hundreds of unauthenticated requests to one app (the limit is tested
    # on its own).
    return Settings(database_url=database_url, data_dir=tmp_path / "data", db_pool_size=5, db_max_overflow=5,
                    pii_key=TEST_PII_KEY, gc_thresholds="", failed_auth_per_minute=0,
                    supersede_seconds=0)
