"""Reliability and security properties across the three services: no 5xx from bad input, nothing written
by refused requests, every protected operation refuses anonymous callers, per-key rate limits."""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from catalog.app import create_app as create_catalog
from fastapi.routing import APIRoute
from hours_ledger.app import create_app as create_ledger
from verification.app import create_app as create_verification
from xueshi_shared.web import current_principal

from tests.support.factories import approved_base, approved_course, make_staff, online_sitting, record_body, ric
from tests.support.http import assert_problem, running

APPS = {"catalog": create_catalog, "hours-ledger": create_ledger, "verification": create_verification}


def _needs_principal(dependant) -> bool:
    return any(d.call is current_principal or _needs_principal(d) for d in dependant.dependencies)


def _routes(routes):
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.16x)
            yield from _routes(route.original_router.routes)


def _operations(app):
    for route in _routes(app.routes):
        for method in route.methods - {"HEAD"}:
            yield method, route.path, _needs_principal(route.dependant)


def _fill(path: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        return {"year": "2026", "body": "350100", "list_no": "1", "id_number": "350102199003070012"}.get(
            name, str(uuid.uuid4()))
    return re.sub(r"\{([a-z_]+)\}", value, path)


@pytest.mark.parametrize("service", list(APPS))
async def test_every_protected_operation_refuses_anonymous_callers_and_nothing_is_a_5xx(service, settings):
    app = APPS[service](settings)
    operations = list(_operations(app))
    assert operations
    async with running(app) as client:
        for method, path, protected in operations:
            url = _fill(path)
            for kwargs in ({}, {"json": {"garbage": [1, {"x": None}]}}, {"headers": {"Authorization": "Bearer xs_no"}}):
                response = await client.request(method, url, **kwargs)
                assert response.status_code < 500, (method, url, response.text)
                if protected and "Authorization" not in kwargs.get("headers", {}):
                    assert response.status_code in (401, 415, 422), (method, url, response.status_code)
                if protected and kwargs.get("headers"):
                    assert response.status_code in (401, 415, 422), (method, url, response.status_code)
                # /verify/ and /console/ are pages for people: they answer refusals as pages
                if response.status_code >= 400 and not path.startswith(("/verify/", "/console/")):
                    assert response.headers["content-type"].startswith("application/problem+json"), (method, url)


async def test_a_key_beyond_its_rate_gets_429_with_retry_after_and_others_do_not(settings, engine):
    limited = settings.model_copy(update={"rate_limit_per_minute": 3})
    one = await make_staff(engine, "auditor")
    other = await make_staff(engine, "auditor")
    async with running(create_ledger(limited)) as client:
        for _ in range(3):
            assert (await client.get("/v1/me", headers=one.headers)).status_code == 200
        refused = assert_problem(await client.get("/v1/me", headers=one.headers), 429, "rate-limited")
        assert refused["status"] == 429
        response = await client.get("/v1/me", headers=one.headers)
        assert int(response.headers["retry-after"]) >= 1
        assert (await client.get("/v1/me", headers=other.headers)).status_code == 200


@pytest.fixture
async def pushing(catalog, engine):
    fuzhou = await make_staff(engine, "city_admin", region="350100")
    base = await approved_base(catalog, fuzhou)
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    return base, course


@pytest.mark.parametrize("change", [
    {"sittings": [online_sitting("9999-12-31T09:00:00+08:00", "9999-12-31T10:00:00+08:00")]},
    {"sittings": [{**online_sitting("2026-05-04T09:00:00+08:00", "2026-05-04T10:00:00+08:00"),
                   "media_seconds": 10**30}]},
    {"exam": {"questions": 10**20, "correct": 1, "passed": True}},
    {"sittings": [online_sitting("2026-05-04T09:00:00+08:00", "2026-05-04T10:00:00+08:00")] * 201},
    {"name": "x" * 10_000},
    {"course_id": "not-a-uuid"},
    {"id_number": "３５０１０２１９９００３０７００１２"},  # full-width digits
])
async def test_hostile_records_are_clear_4xx_and_write_nothing(ledger, pushing, engine, change):
    base, course = pushing
    body = {**record_body(course, ric(501), [online_sitting("2026-05-04T09:00:00+08:00",
                                                              "2026-05-04T10:00:00+08:00")]), **change}
    response = await ledger.post("/v1/records", json=body, headers=base.headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 0
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.people")) == 0


async def test_raw_garbage_bodies_are_4xx_and_write_nothing(ledger, pushing, engine):
    base, _ = pushing
    headers = {**base.headers, "Content-Type": "application/json"}
    for content in (b"\xff\xfe\x00garbage", b"[" * 50_000, b'{"records": ' + b"1" * 5000 + b"}", b""):
        response = await ledger.post("/v1/records", content=content, headers=headers)
        assert 400 <= response.status_code < 500, (content[:20], response.status_code)
    # JSON that Python's own parser would take but PostgreSQL's JSON cannot hold: malformed, named as such.
    for content in (b'{"records": [NaN]}', b'{"records": [Infinity]}', b'{"records": ["\\ud800"]}'):
        malformed = assert_problem(await ledger.post("/v1/records/batch", content=content, headers=headers), 422)
        assert malformed["errors"][0]["rule"] == "malformed-json", (content, malformed)
    wrong_type = await ledger.post("/v1/records", content=b"a=1", headers={**base.headers,
                                                                         "Content-Type": "text/plain"})
    assert_problem(wrong_type, 415)
    assert_problem(await ledger.post("/v1/records/batch", json={"records": [{}] * 1001}, headers=base.headers), 422)
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 0


async def test_a_base_can_never_read_or_reverse_another_bases_records(ledger, catalog, pushing, engine):
    base, course = pushing
    fuzhou = await make_staff(engine, "city_admin", region="350100")
    other = await approved_base(catalog, fuzhou)
    record = (await ledger.post("/v1/records", json=record_body(course, ric(502), [
        online_sitting("2026-05-04T09:00:00+08:00", "2026-05-04T10:00:00+08:00")]), headers=base.headers)).json()
    assert_problem(await ledger.get(f"/v1/records/{record['record_id']}", headers=other.headers), 404)
    assert_problem(await ledger.post(f"/v1/records/{record['record_id']}/reversal", json={"reason": "x"},
                                     headers=other.headers), 403, "staff-only")
    assert_problem(await ledger.post(f"/v1/records/{record['record_id']}/reversal", json={"reason": "x"},
                                     headers=base.headers), 403, "staff-only")
