"""Bearer-token authentication and role checks, on all three services."""

from __future__ import annotations

import pytest

from tests.support.factories import make_base_principal, make_staff
from tests.support.http import assert_problem


async def test_a_request_without_a_token_is_refused_with_401_problem(catalog):
    response = await catalog.get("/v1/staff")
    body = assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "missing" in body["detail"]


async def test_an_unknown_token_is_refused_with_401(catalog):
    response = await catalog.get("/v1/staff", headers={"Authorization": "Bearer xs_not-a-real-token"})
    assert_problem(response, 401, "unauthenticated")


async def test_a_header_that_is_not_a_bearer_token_is_refused_with_401(catalog, admin):
    response = await catalog.get("/v1/staff", headers={"Authorization": f"Basic {admin.token}"})
    assert_problem(response, 401, "unauthenticated")


async def test_a_valid_staff_token_is_accepted(catalog, admin):
    response = await catalog.get("/v1/staff", headers=admin.headers)
    assert response.status_code == 200
    assert any(s["id"] == str(admin.id) for s in response.json())


async def test_a_revoked_staff_token_stops_working_at_once(catalog, admin, engine):
    colleague = await make_staff(engine, "auditor")
    assert (await catalog.get("/v1/staff", headers=colleague.headers)).status_code == 200

    revoked = await catalog.post(
        f"/v1/staff/{colleague.id}/revocation", json={"reason": "left the bureau"}, headers=admin.headers
    )
    assert revoked.status_code == 200
    assert revoked.json()["tokens_revoked"] == 1
    assert_problem(await catalog.get("/v1/staff", headers=colleague.headers), 401, "unauthenticated")


async def test_one_token_works_on_all_three_services(catalog, ledger, verification, engine):
    auditor = await make_staff(engine, "auditor")
    for client in (catalog, ledger, verification):
        response = await client.get("/v1/me", headers=auditor.headers)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == str(auditor.id) and response.json()["role"] == "auditor"
        assert_problem(await client.get("/v1/me"), 401, "unauthenticated")


@pytest.mark.parametrize("role", ["auditor", "city_admin", "authority_reviewer"])
async def test_only_a_province_admin_creates_staff(catalog, engine, role):
    scope = {"region": "350100"} if role == "city_admin" else {"authority": "A06"} if role == "authority_reviewer" else {}
    actor = await make_staff(engine, role, **scope)
    response = await catalog.post("/v1/staff", json={"name": "x", "role": "auditor"}, headers=actor.headers)
    assert_problem(response, 403, "role-not-allowed")


async def test_a_training_base_key_cannot_do_staff_work(catalog, engine):
    base = await make_base_principal(engine)
    response = await catalog.get("/v1/audit-events", headers=base.headers)
    assert_problem(response, 403, "staff-only")


async def test_a_province_admin_creates_staff_whose_token_works(catalog, admin):
    created = await catalog.post(
        "/v1/staff", json={"name": "福州人社", "role": "city_admin", "region": "350100"}, headers=admin.headers
    )
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token.startswith("xs_")
    listed = await catalog.get("/v1/staff", headers={"Authorization": f"Bearer {token}"})
    # a city_admin may not list staff, but the token itself authenticates (403, not 401)
    assert_problem(listed, 403, "role-not-allowed")


async def test_tokens_are_stored_only_as_digests(catalog, admin, engine):
    import sqlalchemy as sa

    async with engine.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT token_hash FROM iam.tokens"))).scalars().all()
    assert stored and all(len(h) == 32 for h in stored)
    assert all(admin.token.encode() not in bytes(h) for h in stored)
