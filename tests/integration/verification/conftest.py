from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from verification.app import STAMP_KEY_PURPOSE
from verification.service import ensure_stamps
from xueshi_shared.pii import derive_key, load_master

from tests.conftest import TEST_PII_KEY
from tests.support.factories import approved_base, approved_course, online_sitting, record_body, ric


@pytest.fixture(scope="session")
async def stamps(engine) -> None:
    """Every body's stamp, created once per run (stamps are kept across tests, like in production)."""
    secret = derive_key(load_master(TEST_PII_KEY, None), STAMP_KEY_PURPOSE)  # type: ignore[arg-type]
    async with AsyncSession(engine) as s, s.begin():
        await ensure_stamps(s, secret)


@pytest.fixture
async def studied(ledger, catalog, fuzhou, stamps):
    """A person with 9 public 学时 in 2026 (topic 5: 7, topic 3: 2) at a Fuzhou base."""
    base = await approved_base(catalog, fuzhou)
    person = ric(301)
    for topic, hours, day in (("5", 7, "2026-05-04"), ("3", 2, "2026-05-05")):
        course = await approved_course(catalog, base, fuzhou, topic=topic, hours=hours)
        body = record_body(course, person, [online_sitting(f"{day}T08:00:00+08:00", f"{day}T14:00:00+08:00")])
        assert (await ledger.post("/v1/records", json=body, headers=base.headers)).status_code == 201
    return person
