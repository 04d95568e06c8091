"""Every error class leaves the services as application/problem+json with a stable type."""

from __future__ import annotations

import httpx
from fastapi import APIRouter
from xueshi_shared.app import build_service_app
from xueshi_shared.migrations import IAM_HISTORY
from xueshi_shared.problems import Conflict

from tests.support.http import assert_problem, running


async def test_an_unknown_path_is_a_404_problem(catalog):
    assert_problem(await catalog.get("/v1/nothing-here"), 404, "not-found")


async def test_a_wrong_method_is_a_405_problem(catalog):
    assert_problem(await catalog.delete("/healthz"), 405, "method-not-allowed")


async def test_an_unknown_body_field_is_a_422_naming_the_field(catalog, admin):
    response = await catalog.post(
        "/v1/staff", json={"name": "x", "role": "auditor", "nickname": "y"}, headers=admin.headers
    )
    body = assert_problem(response, 422, "validation")
    assert body["field"] == "nickname"
    assert body["errors"][0] == {"field": "nickname", "rule": "unknown-field", "detail": body["errors"][0]["detail"]}


async def test_a_missing_field_is_a_422_naming_the_field(catalog, admin):
    body = assert_problem(await catalog.post("/v1/staff", json={"name": "x"}, headers=admin.headers), 422)
    assert {"field": "role", "rule": "required"}.items() <= body["errors"][0].items()


async def test_a_bad_enum_value_is_a_422_naming_the_field(catalog, admin):
    body = assert_problem(
        await catalog.post("/v1/staff", json={"name": "x", "role": "king"}, headers=admin.headers), 422
    )
    assert body["field"] == "role"


async def test_a_region_outside_fujian_is_a_422_naming_the_field(catalog, admin):
    response = await catalog.post(
        "/v1/staff", json={"name": "x", "role": "city_admin", "region": "110000"}, headers=admin.headers
    )
    assert assert_problem(response, 422)["field"] == "region"


async def test_a_city_admin_without_a_region_is_a_422_naming_the_rule(catalog, admin):
    response = await catalog.post("/v1/staff", json={"name": "x", "role": "city_admin"}, headers=admin.headers)
    body = assert_problem(response, 422, "scope-required")
    assert body["field"] == "region"


async def test_malformed_json_is_a_422_problem(catalog, admin):
    response = await catalog.post(
        "/v1/staff", content=b'{"name": ', headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert assert_problem(response, 422)["errors"][0]["rule"] == "malformed-json"


async def test_invalid_utf8_is_a_4xx_problem_and_writes_nothing(catalog, admin):
    response = await catalog.post(
        "/v1/staff", content=b'{"name": "\xff\xfe", "role": "auditor"}',
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/problem+json")
    staff = (await catalog.get("/v1/staff", headers=admin.headers)).json()
    assert len(staff) == 1


async def test_a_body_that_is_not_json_is_a_415_problem(catalog, admin):
    response = await catalog.post(
        "/v1/staff", content=b"name=x&role=auditor",
        headers={**admin.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_an_oversized_body_is_a_413_problem(settings, admin):
    from catalog.app import create_app

    small = settings.model_copy(update={"max_body_bytes": 1024})
    async with running(create_app(small)) as client:
        response = await client.post(
            "/v1/staff", json={"name": "x" * 5000, "role": "auditor"}, headers=admin.headers
        )
    assert_problem(response, 413, "payload-too-large")


async def test_an_oversized_body_without_content_length_is_a_413_problem(settings, admin):
    from catalog.app import create_app

    small = settings.model_copy(update={"max_body_bytes": 1024})

    async def chunks():
        for _ in range(10):
            yield b"x" * 500

    async with running(create_app(small)) as client:
        response = await client.post(
            "/v1/staff", content=chunks(), headers={**admin.headers, "Content-Type": "application/json"}
        )
    assert_problem(response, 413, "payload-too-large")


async def test_deeply_nested_json_is_a_4xx_problem_not_a_500(catalog, admin):
    deep = b"[" * 100_000 + b"]" * 100_000
    response = await catalog.post("/v1/staff", content=deep, headers={**admin.headers, "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.status_code
    assert response.headers["content-type"].startswith("application/problem+json")


def _probe_app(settings):
    router = APIRouter()

    @router.get("/conflict")
    async def conflict() -> None:
        raise Conflict("the record was already submitted with another body", rule="idempotency-conflict")

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    return build_service_app(
        name="probe", title="probe", description="probe", settings=settings, histories=(IAM_HISTORY,), routers=[router]
    )


async def test_a_domain_conflict_is_a_409_problem_with_its_rule(settings):
    async with running(_probe_app(settings)) as client:
        assert_problem(await client.get("/conflict"), 409, "idempotency-conflict")


async def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing(settings):
    app = _probe_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/boom")
    body = assert_problem(response, 500, "internal")
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert body["detail"]


async def test_a_nul_character_is_a_422_problem_and_writes_nothing(catalog, admin, engine):
    # Found by schemathesis: PostgreSQL text cannot hold U+0000.
    body = {"field": "A02\u0000.1", "starts_on": "2026-01-01", "reason": "x\u0000y"}
    response = await catalog.post("/v1/delegations", json=body, headers=admin.headers)
    problem = assert_problem(response, 422)
    assert {(e["field"], e["rule"]) for e in problem["errors"]} == {("field", "nul-character"),
                                                                     ("reason", "nul-character")}
    staff = await catalog.post("/v1/staff", json={"name": "a\u0000b", "role": "auditor"}, headers=admin.headers)
    assert assert_problem(staff, 422)["errors"][0]["rule"] == "nul-character"
    # Where no schema stands in front of the database (a query string), the database's refusal is mapped.
    audit = await catalog.get("/v1/audit-events?outcome_prefix=a%00b", headers=admin.headers)
    assert_problem(audit, 422, "nul-character")


async def test_an_integer_beyond_64_bits_in_a_query_is_a_422(catalog, admin):
    # Found by schemathesis: before_id=12997980643367512440832 reached the database driver.
    response = await catalog.get("/v1/audit-events?before_id=12997980643367512440832", headers=admin.headers)
    assert_problem(response, 422)
