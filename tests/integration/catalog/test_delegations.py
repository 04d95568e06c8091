"""Delegations (annex 2): while a field is delegated, 省人社厅 approves and stamps it instead."""

from __future__ import annotations

import datetime as dt

from xueshi_shared.timekeeping import today

from tests.support.factories import make_staff, professional_form
from tests.support.http import assert_problem


def stamped_by(fields: list[dict], code: str) -> str:
    return next(f["stamped_by"] for f in fields if f["code"] == code)


async def test_a_delegated_field_is_governed_by_the_province_until_the_delegation_ends(catalog, admin, engine):
    propaganda = await make_staff(engine, "authority_reviewer", authority="A02")
    recorded = await catalog.post("/v1/delegations", json={
        "field": "A02.2", "starts_on": (today() - dt.timedelta(days=10)).isoformat(),
        "reason": "机构调整，暂无法履行出版领域专业科目主管职责"}, headers=propaganda.headers)
    assert recorded.status_code == 201, recorded.text
    delegation = recorded.json()
    assert delegation["delegated_to"] == "A12" and delegation["active_today"]

    fields = (await catalog.get("/v1/fields")).json()
    assert stamped_by(fields, "A02.2") == "A12"
    assert stamped_by(fields, "A02.1") == "A02"  # 新闻 stays with the department

    # The department's reviewer no longer governs the field; the province does.
    assert_problem(await catalog.post("/v1/bases", json=professional_form(["A02.2"]), headers=propaganda.headers),
                   403, "out-of-scope")
    base_id = (await catalog.post("/v1/bases", json=professional_form(["A02.2"]), headers=admin.headers)).json()["id"]
    assert (await catalog.post(f"/v1/bases/{base_id}/approval", headers=admin.headers)).status_code == 200

    ended = await catalog.post(f"/v1/delegations/{delegation['id']}/end", json={
        "ends_on": (today() - dt.timedelta(days=1)).isoformat(), "reason": "已恢复履职"}, headers=admin.headers)
    assert ended.status_code == 200 and not ended.json()["active_today"]
    assert stamped_by((await catalog.get("/v1/fields")).json(), "A02.2") == "A02"
    assert_problem(await catalog.post(f"/v1/delegations/{delegation['id']}/end", json={
        "ends_on": today().isoformat(), "reason": "again"}, headers=admin.headers), 409, "delegation-ended")


async def test_a_delegation_starting_later_does_not_apply_yet(catalog, admin):
    start = today() + dt.timedelta(days=30)
    created = await catalog.post("/v1/delegations", json={"field": "A29.1", "starts_on": start.isoformat(),
                                                           "reason": "下月起委托"}, headers=admin.headers)
    assert created.status_code == 201 and not created.json()["active_today"]
    assert stamped_by((await catalog.get("/v1/fields")).json(), "A29.1") == "A29"
    assert len((await catalog.get("/v1/delegations")).json()) == 1


async def test_overlapping_delegations_of_one_field_are_refused(catalog, admin):
    body = {"field": "A30.1", "starts_on": "2026-01-01", "ends_on": "2026-12-31", "reason": "委托"}
    assert (await catalog.post("/v1/delegations", json=body, headers=admin.headers)).status_code == 201
    again = {**body, "starts_on": "2026-12-01", "ends_on": None}
    assert_problem(await catalog.post("/v1/delegations", json=again, headers=admin.headers), 409,
                   "delegation-overlap")
    later = {**body, "starts_on": "2027-01-01", "ends_on": None}
    assert (await catalog.post("/v1/delegations", json=later, headers=admin.headers)).status_code == 201


async def test_only_the_owning_authority_or_the_province_records_a_delegation(catalog, engine, auditor):
    other = await make_staff(engine, "authority_reviewer", authority="A03")
    body = {"field": "A02.1", "starts_on": "2026-01-01", "reason": "委托"}
    assert_problem(await catalog.post("/v1/delegations", json=body, headers=other.headers), 403, "out-of-scope")
    assert_problem(await catalog.post("/v1/delegations", json=body, headers=auditor.headers), 403, "role-not-allowed")


async def test_delegations_name_a_real_field_a_sane_period_and_not_the_province_itself(catalog, admin):
    for body, field, rule in [
        ({"field": "Z1", "starts_on": "2026-01-01", "reason": "x"}, "field", "field-unknown"),
        ({"field": "A12.1", "starts_on": "2026-01-01", "reason": "x"}, "field", "delegation-to-self"),
        ({"field": "A02.1", "starts_on": "2026-02-01", "ends_on": "2026-01-01", "reason": "x"}, "ends_on",
         "period-order"),
        ({"field": "A02.1", "starts_on": "2026-01-01"}, "reason", "required"),
    ]:
        problem = assert_problem(await catalog.post("/v1/delegations", json=body, headers=admin.headers), 422)
        assert problem["field"] == field and rule in {e["rule"] for e in problem["errors"]}, problem
