"""The identity pre-check (POST /v1/people/check): a base learns before it pushes whether a person's record would
pass the identity rules, and whether the name is the registry's, never the registry's name or the number."""

from __future__ import annotations

import sqlalchemy as sa
from hours_ledger.schemas import PersonCheckOut
from xueshi_shared.ratelimit import RateLimiter

from tests.support.factories import at, online_sitting, record_body, ric
from tests.support.http import assert_problem


def _check(id_number: str, name: str = "陈小明", id_type: str = "RIC") -> dict:
    return {"id_type": id_type, "id_number": id_number, "name": name}


async def test_a_number_the_registry_has_never_credited_is_valid_and_its_name_unknown(ledger, base):
    answer = await ledger.post("/v1/people/check", json=_check(ric(9101)), headers=base.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"valid": True, "problems": [], "name_matches": None}
    assert PersonCheckOut.model_validate(answer.json())


async def test_the_name_is_compared_with_the_registry_and_never_told(ledger, base, course):
    number = ric(9102)
    pushed = await ledger.post("/v1/records", json=record_body(course, number, [online_sitting(at("09:00"), at("10:30"))]),
                               headers=base.headers)
    assert pushed.status_code == 201, pushed.text
    same = await ledger.post("/v1/people/check", json=_check(number, "陈小明"), headers=base.headers)
    assert same.json() == {"valid": True, "problems": [], "name_matches": True}
    spaced = await ledger.post("/v1/people/check", json=_check(number, " 陈小明 "), headers=base.headers)
    assert spaced.json()["name_matches"] is True  # the intake's own comparison (names.same_name)
    other = await ledger.post("/v1/people/check", json=_check(number, "王大明"), headers=base.headers)
    assert other.status_code == 200
    body = other.json()
    assert body["valid"] is False and body["name_matches"] is False
    assert [p["type"] for p in body["problems"]] == ["/problems/name-mismatch"]
    assert body["problems"][0]["field"] == "name"
    assert "陈" not in other.text and "小明" not in other.text and number not in other.text
    # The push the check predicted is refused the same way.
    refused = await ledger.post("/v1/records", json=record_body(course, number, [online_sitting(at("11:00"), at("12:30"))],
                                                                name="王大明"), headers=base.headers)
    assert_problem(refused, 409, "name-mismatch")


async def test_an_invalid_number_gets_the_problem_the_push_would_get(ledger, base, course):
    number = ric(9103)
    broken = number[:-1] + ("0" if number[-1] != "0" else "1")
    answer = await ledger.post("/v1/people/check", json=_check(broken), headers=base.headers)
    body = answer.json()
    assert body["valid"] is False and body["name_matches"] is None
    pushed = await ledger.post("/v1/records", json=record_body(course, broken, [online_sitting(at("09:00"), at("10:30"))]),
                               headers=base.headers)
    refusal = assert_problem(pushed, 422)
    assert [p["type"] for p in body["problems"]] == [refusal["type"]]
    assert body["problems"][0]["field"] == refusal["field"] == "id_number"
    mismatch = await ledger.post("/v1/people/check", json=_check(number, id_type="passport"), headers=base.headers)
    assert [p["type"] for p in mismatch.json()["problems"]] == ["/problems/id-type-mismatch"]


async def test_only_a_base_checks_and_bad_bodies_name_the_field(ledger, base, admin):
    assert_problem(await ledger.post("/v1/people/check", json=_check(ric(9104)), headers=admin.headers), 403)
    assert_problem(await ledger.post("/v1/people/check", json=_check(ric(9104))), 401)
    missing = assert_problem(await ledger.post("/v1/people/check", json={"id_type": "RIC", "name": "陈小明"},
                                               headers=base.headers), 422)
    assert "id_number" in str(missing)


async def test_checks_are_limited_per_key_and_audited_without_the_number(ledger, base, engine):
    app = ledger._transport.app
    saved = app.state.people_check_limiter
    app.state.people_check_limiter = RateLimiter(3)
    try:
        number = ric(9105)
        for _ in range(3):
            assert (await ledger.post("/v1/people/check", json=_check(number), headers=base.headers)).status_code == 200
        limited = assert_problem(await ledger.post("/v1/people/check", json=_check(number), headers=base.headers), 429)
        assert "dry_run" in limited["detail"]
        assert int((await ledger.post("/v1/people/check", json=_check(number), headers=base.headers))
                   .headers["Retry-After"]) >= 1
    finally:
        app.state.people_check_limiter = saved
    async with engine.connect() as conn:
        events = (await conn.execute(sa.text(
            "SELECT actor_kind, outcome, status, target::text AS target FROM iam.audit_events "
            "WHERE action = 'POST /v1/people/check' ORDER BY id DESC LIMIT 3"))).all()
    assert len(events) == 3
    assert all(e.actor_kind == "base" and e.outcome == "succeeded" and '"valid": true' in e.target for e in events)
    assert all(number not in e.target and number[-4:] not in e.target for e in events)
