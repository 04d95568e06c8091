"""A service whose connections are all busy answers 503 database-busy with Retry-After, never 500 (found by the
roster benchmark: 200 batch requests at once exhausted the pool and got 500s)."""

from __future__ import annotations

import asyncio

from hours_ledger.app import create_app

from tests.support.factories import approved_base, approved_course, at, online_sitting, record_body, ric
from tests.support.http import running


async def test_an_exhausted_pool_is_503_with_retry_after(settings, catalog, fuzhou):
    base = await approved_base(catalog, fuzhou)
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    tight = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_seconds": 0.3})
    app = create_app(tight)
    async with running(app) as ledger:
        engine = app.state.engine
        async with engine.connect() as held:  # the pool's only connection
            await held.exec_driver_sql("SELECT 1")
            batch = await ledger.post("/v1/records/batch", headers=base.headers, json={"records": [
                record_body(course, ric(1), [online_sitting(at("09:00"), at("10:00"))])]})
            me = await ledger.get("/v1/me", headers=base.headers)
        for response in (batch, me):
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == "/problems/database-busy" and response.headers["retry-after"] == "1"
        await asyncio.sleep(0)
        again = await ledger.get("/v1/me", headers=base.headers)  # the connection is back: served
        assert again.status_code == 200
