"""Seminars (seed 003) as the notice means them: mixed seminars credit their trainees, the attendance upload is the
only door to a seminar's course, the online share holds on the roster, money and materials follow the kind, and
nothing of a project changes after it ended."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import sqlalchemy as sa

from tests.integration.seminars.test_seminars import PLAN_2025, project
from tests.support.factories import make_staff, professional_form, record_body, ric, uscc
from tests.support.http import assert_problem

MIXED = {"kind": "provincial_ordinary", "trainees": 30, "online_trainees": 15, "staff": 3, "mode": "mixed",
         "end_date": "2025-09-04", "plan_filed_on": None, "funding": "self", "budget_yuan": 80000}


@pytest.fixture
async def organiser(catalog, engine, admin):
    """An approved professional base of field A08.1 that organises seminars, and the 2025 public plan."""
    assert (await catalog.post("/v1/plans", json=PLAN_2025, headers=admin.headers)).status_code == 201
    reviewer = await make_staff(engine, "authority_reviewer", authority="A08")
    created = (await catalog.post("/v1/bases", json=professional_form(["A08.1"], uscc=uscc(779)),
                                  headers=reviewer.headers)).json()
    key = (await catalog.post(f"/v1/bases/{created['id']}/approval", headers=reviewer.headers)).json()["api_key"]
    return created["id"], {"Authorization": f"Bearer {key}"}


async def approved_seminar(catalog, admin, organiser, **overrides) -> dict:
    base_id, _ = organiser
    seminar_id = (await catalog.post("/v1/seminars", json=project(organizer=base_id, **overrides),
                                     headers=admin.headers)).json()["id"]
    approved = (await catalog.post(f"/v1/seminars/{seminar_id}/approval", headers=admin.headers)).json()
    assert approved["status"] == "approved", approved
    return approved


def trainee(serial: int, online: bool, *, checks: bool = True, days: int = 4) -> dict:
    def day(d: int) -> dict:
        out = {"started_at": f"2025-09-0{d}T08:30:00+08:00", "ended_at": f"2025-09-0{d}T17:30:00+08:00"}
        if online and checks:
            out["identity_checks"] = {"passed": 3, "failed": 0}
        return out

    return {"id_type": "RIC", "id_number": ric(500 + serial), "name": f"学员{serial}", "title_level": "intermediate",
            "unit": {"name": "福州某厂", "uscc": uscc(88), "region": "350102"}, "online": online,
            "days": [day(d) for d in range(1, days + 1)]}


async def upload(ledger, organiser, seminar: dict, trainees: list[dict]):
    return await ledger.post(f"/v1/seminars/{seminar['id']}/attendance", json={"trainees": trainees},
                             headers=organiser[1])


async def roster_size(engine, seminar: dict) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.seminar_trainees WHERE seminar_id = :s"),
                                 {"s": seminar["id"]})


async def test_a_mixed_seminar_credits_its_online_and_offline_trainees(catalog, ledger, admin, organiser, auditor):
    seminar = await approved_seminar(catalog, admin, organiser, **MIXED)
    response = await upload(ledger, organiser, seminar, [trainee(1, False), trainee(2, True), trainee(3, False)])
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 201, 201]
    assert all(r["result"]["credited_hours"] == 48 for r in results)  # 4 days, 12 学时 each
    overview = (await catalog.get("/v1/seminar-overview/2025", headers=auditor.headers)).json()
    line = next(p for p in overview["projects"] if p["id"] == seminar["id"])
    assert (line["roster_trainees"], line["roster_online_trainees"]) == (3, 1)
    assert any("fewer than the 30" in w for w in line["warnings"])


async def test_an_online_trainees_days_need_identity_checks(catalog, ledger, admin, organiser):
    seminar = await approved_seminar(catalog, admin, organiser, **MIXED)
    response = await upload(ledger, organiser, seminar, [trainee(1, False), trainee(2, True, checks=False)])
    results = response.json()["results"]
    assert results[0]["status"] == 201
    problem = results[1]["problem"]
    assert problem["type"] == "/problems/no-process-record" and problem["field"] == "trainees.1.days.0.identity_checks"


async def test_an_upload_that_breaks_the_online_share_is_refused_whole(catalog, ledger, admin, organiser, engine):
    seminar = await approved_seminar(catalog, admin, organiser, **MIXED)
    response = await upload(ledger, organiser, seminar, [trainee(1, True), trainee(2, True), trainee(3, False)])
    assert assert_problem(response, 422, "seminar-online-share")["field"] == "trainees"
    assert await roster_size(engine, seminar) == 0  # nothing kept: no roster line, no record
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 0
    fine = await upload(ledger, organiser, seminar, [trainee(1, True), trainee(2, True), trainee(3, False),
                                                     trainee(4, False)])
    assert [r["status"] for r in fine.json()["results"]] == [201] * 4


@contextlib.asynccontextmanager
async def slow_commits(engine):
    """Every transaction that adds a roster line takes a while to commit (a deferred trigger), so that two
    uploads checked at the same moment are both still uncommitted when the other checks: without the upload's
    lock both would pass."""
    async with engine.begin() as conn:
        await conn.execute(sa.text("""
            CREATE FUNCTION hours_ledger.test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN PERFORM pg_sleep(0.2); RETURN NULL; END $$"""))
        # On a Citus cluster a trigger on a distributed table needs this (a placeholder elsewhere).
        await conn.execute(sa.text("SET LOCAL citus.enable_unsafe_triggers = on"))
        await conn.execute(sa.text("""
            CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON hours_ledger.seminar_trainees
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hours_ledger.test_slow_commit()"""))
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text("SET LOCAL citus.enable_unsafe_triggers = on"))
            await conn.execute(sa.text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))  # (Citus)
            await conn.execute(sa.text("DROP TRIGGER test_slow_commit ON hours_ledger.seminar_trainees"))
            await conn.execute(sa.text("DROP FUNCTION hours_ledger.test_slow_commit()"))


async def test_concurrent_uploads_cannot_together_break_the_online_share(catalog, ledger, admin, organiser, engine):
    seminar = await approved_seminar(catalog, admin, organiser, **MIXED)
    first = await upload(ledger, organiser, seminar, [trainee(i, i >= 3) for i in range(5)])  # 3 offline, 2 online
    assert first.status_code == 200
    # Each alone makes 4 of 8 online (50%); together 6 of 11.
    async with slow_commits(engine):
        one, two = await asyncio.gather(
            upload(ledger, organiser, seminar, [trainee(10, True), trainee(11, True), trainee(12, False)]),
            upload(ledger, organiser, seminar, [trainee(20, True), trainee(21, True), trainee(22, False)]))
    assert sorted([one.status_code, two.status_code]) == [200, 422]
    assert await roster_size(engine, seminar) == 8


async def test_an_offline_seminar_has_no_online_trainees(catalog, ledger, admin, organiser):
    seminar = await approved_seminar(catalog, admin, organiser)
    response = await upload(ledger, organiser, seminar, [{**trainee(1, True, days=5), "assessment_passed": True}])
    assert_problem(response, 422, "seminar-online-share")


async def test_a_seminars_course_takes_records_only_through_the_attendance_upload(catalog, ledger, admin, organiser):
    seminar = await approved_seminar(catalog, admin, organiser)
    body = record_body(seminar["course_id"], ric(600), [{"started_at": "2025-09-01T08:30:00+08:00",
                                                         "ended_at": "2025-09-01T17:30:00+08:00"}])
    problem = assert_problem(await ledger.post("/v1/records", json=body, headers=organiser[1]), 422, "seminar-course")
    assert problem["field"] == "course_id"
    batch = (await ledger.post("/v1/records/batch", json={"records": [body]}, headers=organiser[1])).json()
    assert batch["results"][0]["problem"]["type"] == "/problems/seminar-course"


# ---- money and materials by kind ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "field"), [
    ({"budget_yuan": 150000, "subsidy_yuan": 105000}, None),        # national: the subsidy is what the cap limits
    ({"budget_yuan": 150000, "subsidy_yuan": 105001}, "subsidy_yuan"),
    ({"budget_yuan": 105001}, "budget_yuan"),                        # no subsidy given: the whole budget is it
    ({"budget_yuan": 300000, "funding": "self"}, None),              # self-funded: no cap
    ({"budget_yuan": 300000, "funding": "self", "subsidy_yuan": 1000}, "subsidy_yuan"),
    ({"budget_yuan": 50000, "subsidy_yuan": 60000}, "subsidy_yuan"),  # more than the budget
    ({"kind": "provincial_demonstration", "trainees": 30, "staff": 3, "end_date": "2025-09-04",
      "budget_yuan": 80000, "subsidy_yuan": 50000, "plan_filed_on": "2025-07-01"}, None),
    ({"kind": "engineering", "trainees": 30, "staff": 3, "end_date": "2025-09-04", "budget_yuan": 80000,
      "subsidy_yuan": 50001}, "subsidy_yuan"),
])
async def test_the_caps_limit_the_subsidy_not_the_budget(catalog, admin, change, field):
    response = await catalog.post("/v1/seminars", json=project(**change), headers=admin.headers)
    if field is None:
        assert response.status_code == 201, response.text
    else:
        assert assert_problem(response, 422, "seminar-budget")["field"] == field


@pytest.mark.parametrize(("change", "owed"), [
    ({"kind": "provincial_demonstration", "trainees": 30, "staff": 3, "end_date": "2025-09-04", "budget_yuan": 50000,
      "plan_filed_on": "2025-07-01"}, 9),
    ({"kind": "engineering", "trainees": 30, "staff": 3, "end_date": "2025-09-04", "budget_yuan": 50000}, 9),
    ({}, 1),                                                                     # national, fiscal: reimbursement
    ({"funding": "self"}, 0),
    ({"kind": "provincial_ordinary", "trainees": 30, "staff": 3, "end_date": "2025-09-04", "funding": "self"}, 0),
])
async def test_what_is_owed_after_the_seminar_follows_its_kind(catalog, admin, change, owed):
    seminar_id = (await catalog.post("/v1/seminars", json=project(**change), headers=admin.headers)).json()["id"]
    checklist = (await catalog.get(f"/v1/seminars/{seminar_id}/materials", headers=admin.headers)).json()
    due = change.get("end_date", "2025-09-05").replace("-09-", "-10-")  # a month after the end
    assert len(checklist["items"]) == owed and checklist["due"] == due
    if owed == 1:
        assert [i["item"] for i in checklist["items"]] == ["reimbursement"]
        assert checklist["subsidy_eligible"] is False  # overdue long since
    if owed == 0:
        assert checklist["subsidy_eligible"] is None
        assert_problem(await catalog.post(f"/v1/seminars/{seminar_id}/materials",
                                          json={"item": "summary", "submitted_on": "2025-09-10"},
                                          headers=admin.headers), 422, "material-not-owed")


# ---- no change after the seminar ended; no nulls ------------------------------------------------------------------

async def test_a_project_is_not_changed_after_it_ended(catalog, admin):
    seminar_id = (await catalog.post("/v1/seminars", json=project(), headers=admin.headers)).json()["id"]
    assert_problem(await catalog.patch(f"/v1/seminars/{seminar_id}", json={"location": "厦门"},
                                       headers=admin.headers), 409, "seminar-ended")


@pytest.mark.parametrize("field", ["staff", "title", "start_date", "budget_yuan", "fields", "mode"])
async def test_an_explicit_null_is_refused_naming_the_field(catalog, admin, next_year, field):
    seminar_id = (await catalog.post("/v1/seminars", json=project(**next_year.dates()), headers=admin.headers)
                  ).json()["id"]
    problem = assert_problem(await catalog.patch(f"/v1/seminars/{seminar_id}", json={field: None, "reason": "x"},
                                                 headers=admin.headers), 422)
    assert problem["field"] == field and problem["errors"][0]["rule"] == "not-nullable"


async def test_the_subsidy_and_the_filing_day_may_be_cleared(catalog, admin, next_year):
    body = project(**next_year.dates(), budget_yuan=150000, subsidy_yuan=100000)
    seminar_id = (await catalog.post("/v1/seminars", json=body, headers=admin.headers)).json()["id"]
    cleared = await catalog.patch(f"/v1/seminars/{seminar_id}", json={"subsidy_yuan": None}, headers=admin.headers)
    # The whole budget is then the subsidy, beyond the national cap.
    assert assert_problem(cleared, 422, "seminar-budget")["field"] == "budget_yuan"
    lowered = await catalog.patch(f"/v1/seminars/{seminar_id}", json={"subsidy_yuan": None, "budget_yuan": 105000},
                                  headers=admin.headers)
    assert lowered.status_code == 200 and lowered.json()["subsidy_yuan"] is None
