"""Training bases: registration (接入申请表), decisions, API keys, suspension, scopes."""

from __future__ import annotations

import pytest

from tests.support.factories import approved_base, base_form, make_staff, professional_form
from tests.support.http import assert_problem, bearer


@pytest.fixture
async def xiamen(engine):
    return await make_staff(engine, "city_admin", region="350200")


async def test_a_city_admin_registers_and_approves_a_base_whose_key_then_works(catalog, fuzhou, ledger):
    created = await catalog.post("/v1/bases", json=base_form(), headers=fuzhou.headers)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending"
    base_id = created.json()["id"]

    approved = await catalog.post(f"/v1/bases/{base_id}/approval", headers=fuzhou.headers)
    assert approved.status_code == 200, approved.text
    key = approved.json()["api_key"]
    assert key.startswith("xs_")
    me = await ledger.get("/v1/me", headers=bearer(key))
    assert me.json()["kind"] == "base" and me.json()["base_id"] == base_id
    base = (await catalog.get(f"/v1/bases/{base_id}", headers=fuzhou.headers)).json()
    assert base["status"] == "approved" and base["decisions"][0]["decision"] == "approved"
    assert base["operations_lead"] == {"name": "林海", "phone": "13800000001"}


async def test_a_city_admin_cannot_act_on_a_base_of_another_city(catalog, fuzhou, xiamen):
    assert_problem(await catalog.post("/v1/bases", json=base_form(), headers=xiamen.headers), 403, "out-of-scope")
    base_id = (await catalog.post("/v1/bases", json=base_form(), headers=fuzhou.headers)).json()["id"]
    assert_problem(await catalog.post(f"/v1/bases/{base_id}/approval", headers=xiamen.headers), 403, "out-of-scope")
    await catalog.post(f"/v1/bases/{base_id}/approval", headers=fuzhou.headers)
    assert_problem(await catalog.post(f"/v1/bases/{base_id}/suspension", json={"reason": "x"},
                                      headers=xiamen.headers), 403, "out-of-scope")


async def test_a_province_wide_public_base_belongs_to_the_province(catalog, fuzhou, admin):
    form = base_form(level="provincial", region="350000", scope_region="350000")
    assert_problem(await catalog.post("/v1/bases", json=form, headers=fuzhou.headers), 403, "out-of-scope")
    assert (await catalog.post("/v1/bases", json=form, headers=admin.headers)).status_code == 201


async def test_auditors_and_bases_cannot_register(catalog, auditor, admin):
    assert_problem(await catalog.post("/v1/bases", json=base_form(), headers=auditor.headers), 403, "role-not-allowed")
    base = await approved_base(catalog, admin)
    assert_problem(await catalog.post("/v1/bases", json=base_form(), headers=base.headers), 403, "staff-only")


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"uscc": "91350100M000100Y44"}, "uscc", "uscc-check-digit"),
        ({"uscc": "123"}, "uscc", None),
        ({"level": "municipal", "region": "350000"}, "region", "base-level-region"),
        ({"level": "county", "region": "350100"}, "region", "base-level-region"),
        ({"level": "provincial", "region": "350100"}, "region", "base-level-region"),
        ({"scope_region": "350000"}, "scope_region", "scope-outside-region"),
        ({"scope_region": "350203"}, "scope_region", "scope-outside-region"),
        ({"scope_region": "110000"}, "scope_region", "region-code"),
        ({"fields": ["A15.1"]}, "fields", "fields-not-allowed"),
        ({"level": "galactic"}, "level", None),
        ({"operations_lead": {"name": "林海"}}, "operations_lead.phone", "required"),
        ({"operations_lead": {"name": "林海", "phone": "call me"}}, "operations_lead.phone", None),
        ({"platform_url": "ftp://edu.example.cn"}, "platform_url", None),
        ({"nickname": "x"}, "nickname", "unknown-field"),
    ],
)
async def test_an_inconsistent_application_is_refused_naming_the_field(catalog, admin, overrides, field, rule):
    problem = assert_problem(await catalog.post("/v1/bases", json=base_form(**overrides), headers=admin.headers), 422)
    assert problem["field"] == field, problem
    if rule:
        assert rule in {e["rule"] for e in problem["errors"]}, problem


async def test_a_county_base_trains_within_its_county(catalog, fuzhou):
    form = base_form(level="county", region="350102", scope_region="350102")
    assert (await catalog.post("/v1/bases", json=form, headers=fuzhou.headers)).status_code == 201


async def test_professional_applications_name_existing_fields(catalog, engine):
    reviewer = await make_staff(engine, "authority_reviewer", authority="A15")
    no_fields = assert_problem(await catalog.post("/v1/bases", json=professional_form([]), headers=reviewer.headers),
                               422, "fields-required")
    assert no_fields["field"] == "fields"
    unknown = assert_problem(await catalog.post("/v1/bases", json=professional_form(["A15.1", "Z99.9"]),
                                                headers=reviewer.headers), 422, "field-unknown")
    assert unknown["field"] == "fields.1"


async def test_one_live_application_per_unit_and_category(catalog, admin):
    form = base_form()
    assert (await catalog.post("/v1/bases", json=form, headers=admin.headers)).status_code == 201
    assert_problem(await catalog.post("/v1/bases", json=form, headers=admin.headers), 409, "base-exists")
    # The same unit may apply for professional subjects separately.
    reviewer_form = professional_form(["A12.1"], uscc=form["uscc"])
    assert (await catalog.post("/v1/bases", json=reviewer_form, headers=admin.headers)).status_code == 201


async def test_a_rejected_unit_can_apply_again(catalog, admin):
    form = base_form()
    base_id = (await catalog.post("/v1/bases", json=form, headers=admin.headers)).json()["id"]
    rejected = await catalog.post(f"/v1/bases/{base_id}/approval",
                                  json={"decision": "rejected", "reason": "ICP 备案不符"}, headers=admin.headers)
    assert rejected.json()["status"] == "rejected" and rejected.json()["api_key"] is None
    assert (await catalog.post("/v1/bases", json=form, headers=admin.headers)).status_code == 201


async def test_each_authority_decides_its_own_fields_of_a_professional_base(catalog, engine, ledger):
    housing = await make_staff(engine, "authority_reviewer", authority="A15")    # 省住建厅: 土建
    transport = await make_staff(engine, "authority_reviewer", authority="A16")  # 省交通运输厅: 交通
    base_id = (await catalog.post("/v1/bases", json=professional_form(["A15.1", "A16.1"]),
                                  headers=housing.headers)).json()["id"]

    first = (await catalog.post(f"/v1/bases/{base_id}/approval", headers=housing.headers)).json()
    assert [d["field"] for d in first["decided"]] == ["A15.1"] and first["api_key"]
    assert_problem(await catalog.post(f"/v1/bases/{base_id}/approval", json={"fields": ["A16.1"]},
                                      headers=housing.headers), 403, "out-of-scope")
    assert_problem(await catalog.post(f"/v1/bases/{base_id}/approval", headers=housing.headers), 409,
                   "already-decided")
    second = (await catalog.post(f"/v1/bases/{base_id}/approval", headers=transport.headers)).json()
    assert [d["field"] for d in second["decided"]] == ["A16.1"] and second["api_key"] is None
    base = (await catalog.get(f"/v1/bases/{base_id}", headers=housing.headers)).json()
    assert base["approved_fields"] == ["A15.1", "A16.1"]
    assert (await ledger.get("/v1/me", headers=bearer(first["api_key"]))).status_code == 200


async def test_suspension_and_reinstatement(catalog, fuzhou):
    base = await approved_base(catalog, fuzhou)
    url = f"/v1/bases/{base.id}/suspension"
    suspended = await catalog.post(url, json={"reason": "替学投诉核查中"}, headers=fuzhou.headers)
    assert suspended.json() == {"id": str(base.id), "status": "approved", "suspended": True}
    assert_problem(await catalog.post(url, json={"reason": "again"}, headers=fuzhou.headers), 409, "base-suspended")
    assert (await catalog.get(f"/v1/bases/{base.id}", headers=fuzhou.headers)).json()["suspension_reason"]
    assert (await catalog.delete(url, headers=fuzhou.headers)).json()["suspended"] is False
    assert_problem(await catalog.delete(url, headers=fuzhou.headers), 409, "base-not-suspended")


async def test_a_pending_base_cannot_be_suspended_or_given_a_key(catalog, fuzhou):
    base_id = (await catalog.post("/v1/bases", json=base_form(), headers=fuzhou.headers)).json()["id"]
    assert_problem(await catalog.post(f"/v1/bases/{base_id}/suspension", json={"reason": "x"},
                                      headers=fuzhou.headers), 409, "base-not-approved")
    assert_problem(await catalog.post(f"/v1/bases/{base_id}/api-key", headers=fuzhou.headers), 409,
                   "base-not-approved")


async def test_rotating_the_key_retires_the_old_one_and_revoking_retires_all(catalog, fuzhou, ledger):
    base = await approved_base(catalog, fuzhou)
    rotated = await catalog.post(f"/v1/bases/{base.id}/api-key", headers=base.headers)
    new_key = rotated.json()["api_key"]
    assert_problem(await ledger.get("/v1/me", headers=base.headers), 401)
    assert (await ledger.get("/v1/me", headers=bearer(new_key))).status_code == 200

    revoked = await catalog.request("DELETE", f"/v1/bases/{base.id}/api-key", json={"reason": "密钥泄露"},
                                    headers=fuzhou.headers)
    assert revoked.status_code == 204
    assert_problem(await ledger.get("/v1/me", headers=bearer(new_key)), 401)


async def test_a_base_sees_only_itself(catalog, fuzhou):
    one = await approved_base(catalog, fuzhou)
    other = await approved_base(catalog, fuzhou)
    listed = (await catalog.get("/v1/bases", headers=one.headers)).json()
    assert [b["id"] for b in listed] == [str(one.id)]
    assert_problem(await catalog.get(f"/v1/bases/{other.id}", headers=one.headers), 403, "other-base")
    assert_problem(await catalog.post(f"/v1/bases/{other.id}/api-key", headers=one.headers), 403, "other-base")


async def test_an_unknown_base_is_a_404(catalog, admin):
    assert_problem(await catalog.get("/v1/bases/00000000-0000-0000-0000-000000000000", headers=admin.headers), 404,
                   "base-not-found")
