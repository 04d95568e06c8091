"""The audit trail: every staff action and every authentication failure, append-only, six months."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tests.support.factories import make_staff
from tests.support.http import assert_problem


async def _events(catalog, auditor, **params) -> list[dict]:
    response = await catalog.get("/v1/audit-events", params=params, headers=auditor.headers)
    assert response.status_code == 200, response.text
    return response.json()["events"]


async def test_a_staff_action_is_recorded_with_who_what_when_and_where(catalog, admin, auditor):
    created = await catalog.post("/v1/staff", json={"name": "审计员乙", "role": "auditor"}, headers=admin.headers)
    assert created.status_code == 201

    events = await _events(catalog, auditor, actor_id=str(admin.id))
    event = next(e for e in events if e["action"] == "POST /v1/staff")
    assert event["outcome"] == "succeeded"
    assert event["actor_role"] == "province_admin"
    assert event["client_address"] == "203.0.113.7"
    assert event["service"] == "catalog"
    assert event["occurred_at"] and event["request_id"]


async def test_a_refused_staff_action_is_recorded_with_its_status(catalog, engine, auditor):
    reviewer = await make_staff(engine, "authority_reviewer", authority="A06")
    assert_problem(await catalog.post("/v1/staff", json={"name": "x", "role": "auditor"}, headers=reviewer.headers), 403)
    events = await _events(catalog, auditor, actor_id=str(reviewer.id))
    assert [(e["action"], e["outcome"], e["status"]) for e in events] == [("POST /v1/staff", "refused", 403)]


async def test_a_refused_action_leaves_only_the_audit_event_behind(catalog, admin, auditor):
    response = await catalog.post(
        f"/v1/staff/{admin.id}/revocation", json={"reason": "oops"}, headers=admin.headers
    )
    assert_problem(response, 422, "self-revocation")
    staff = (await catalog.get("/v1/staff", headers=admin.headers)).json()
    assert next(s for s in staff if s["id"] == str(admin.id))["disabled_at"] is None


async def test_an_authentication_failure_is_recorded_with_the_address(catalog, auditor):
    await catalog.get("/v1/staff", headers={"Authorization": "Bearer xs_forged"})
    events = await _events(catalog, auditor, outcome_prefix="authentication-failed")
    assert events[0]["action"] == "GET /v1/staff"
    assert events[0]["status"] == 401
    assert events[0]["actor_id"] is None
    assert events[0]["client_address"] == "203.0.113.7"
    assert "xs_forged" not in str(events[0])


async def test_only_auditors_and_province_admins_read_the_trail(catalog, engine):
    city = await make_staff(engine, "city_admin", region="350100")
    assert_problem(await catalog.get("/v1/audit-events", headers=city.headers), 403, "role-not-allowed")


async def test_the_trail_pages_backwards_by_id(catalog, admin, auditor):
    for _ in range(3):
        await catalog.get("/v1/staff", headers=admin.headers)
    first = (await catalog.get("/v1/audit-events", params={"limit": 2}, headers=auditor.headers)).json()
    assert len(first["events"]) == 2 and first["next_before_id"] == first["events"][-1]["id"]
    second = (
        await catalog.get(
            "/v1/audit-events", params={"limit": 2, "before_id": first["next_before_id"]}, headers=auditor.headers
        )
    ).json()
    assert all(e["id"] < first["next_before_id"] for e in second["events"])


async def test_the_database_refuses_to_change_an_audit_event(engine, catalog, admin):
    await catalog.get("/v1/staff", headers=admin.headers)
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE iam.audit_events SET outcome = 'nothing happened'"))


async def test_the_database_refuses_to_delete_an_event_younger_than_six_months(engine, catalog, admin):
    await catalog.get("/v1/staff", headers=admin.headers)
    with pytest.raises(DBAPIError, match="six months"):
        async with engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM iam.audit_events"))
    with pytest.raises(DBAPIError, match="truncated"):
        async with engine.begin() as conn:
            await conn.execute(sa.text("TRUNCATE iam.audit_events"))


async def test_an_event_older_than_six_months_may_be_purged(engine):
    async with engine.begin() as conn:
        old_id = await conn.scalar(
            sa.text(
                "INSERT INTO iam.audit_events (occurred_at, service, action, outcome) "
                "VALUES (now() - interval '7 months', 'catalog', 'GET /v1/staff', 'succeeded') RETURNING id"
            )
        )
    async with engine.begin() as conn:
        deleted = await conn.execute(sa.text("DELETE FROM iam.audit_events WHERE id = :id"), {"id": old_id})
    assert deleted.rowcount == 1
