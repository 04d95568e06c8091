"""Advanced seminars over HTTP: registration against the 2025 rules, changes, approval, attendance as 学时."""

from __future__ import annotations

import pytest

from tests.support.factories import (
    approved_base,
    approved_course,
    make_staff,
    online_sitting,
    professional_form,
    record_body,
    ric,
    uscc,
)
from tests.support.http import assert_problem

PLAN_2025 = {"year": 2025, "required_hours": 30, "window_start": "2025-01-01", "deadline": "2026-02-28",
             "max_hours_per_day": 12, "minutes_per_hour": 45, "min_exam_questions": 10,
             "topics": [{"code": "1", "title": "2025主题", "hours": 30}]}


def project(**overrides) -> dict:
    body = {"year": 2025, "kind": "national", "title": "人工智能赋能制造业高级研修班", "organizer": "福建工程学院",
            "fields": ["A08.1"], "start_date": "2025-09-01", "end_date": "2025-09-05", "location": "福州",
            "trainees": 50, "online_trainees": 0, "staff": 5, "mode": "offline", "budget_yuan": 105000,
            "funding": "fiscal", "plan_filed_on": "2025-07-31"}
    body.update(overrides)
    return body


async def test_the_2025_seminar_plan_is_reference_data(catalog):
    plan = (await catalog.get("/v1/seminar-plans/2025")).json()
    assert plan["planned_projects"] == {"national": 4, "provincial_demonstration": 5, "engineering": 5,
                                        "provincial_ordinary": 71}
    assert plan["rules"]["deadline"] == "2025-11-30" and plan["rules"]["national_fiscal_budget_max"] == 105000


async def test_a_valid_project_is_registered_with_warnings(catalog, admin):
    created = await catalog.post("/v1/seminars", json=project(), headers=admin.headers)
    assert created.status_code == 201, created.text
    assert created.json()["warnings"] == []
    ordinary = project(kind="provincial_ordinary", trainees=30, staff=3, end_date="2025-09-06", plan_filed_on=None,
                       funding="self")
    warned = await catalog.post("/v1/seminars", json=ordinary, headers=admin.headers)
    assert warned.status_code == 201 and "about 4 days" in warned.json()["warnings"][0]


@pytest.mark.parametrize(("change", "rule"), [
    ({"trainees": 49, "staff": 4}, "seminar-trainees"),
    ({"trainees": 100, "staff": 11}, "seminar-staff"),
    ({"end_date": "2025-09-04"}, "seminar-duration"),
    ({"mode": "mixed", "online_trainees": 26}, "seminar-online-share"),
    ({"start_date": "2025-11-27", "end_date": "2025-12-01", "plan_filed_on": "2025-10-01"}, "seminar-deadline"),
    ({"budget_yuan": 105001}, "seminar-budget"),
    ({"plan_filed_on": "2025-08-03"}, "seminar-filing"),
])
async def test_each_rule_refuses_with_its_problem_type(catalog, admin, change, rule):
    problem = assert_problem(await catalog.post("/v1/seminars", json=project(**change), headers=admin.headers), 422)
    assert problem["type"].endswith(rule), problem


async def test_only_the_province_registers_and_fields_must_exist(catalog, engine, admin):
    city = await make_staff(engine, "city_admin", region="350100")
    assert_problem(await catalog.post("/v1/seminars", json=project(), headers=city.headers), 403, "role-not-allowed")
    assert_problem(await catalog.post("/v1/seminars", json=project(fields=["Z9.9"]), headers=admin.headers), 422,
                   "field-unknown")
    assert_problem(await catalog.post("/v1/seminars", json=project(year=2031), headers=admin.headers), 422,
                   "seminar-plan-unknown")


async def test_changes_after_approval_need_a_reason_and_are_kept(catalog, admin, next_year):
    seminar_id = (await catalog.post("/v1/seminars", json=project(**next_year.dates()), headers=admin.headers)
                  ).json()["id"]
    before = await catalog.patch(f"/v1/seminars/{seminar_id}", json={"location": "厦门"}, headers=admin.headers)
    assert before.status_code == 200 and before.json()["location"] == "厦门"
    await catalog.post("/v1/seminars/" + seminar_id + "/approval", headers=admin.headers)
    assert_problem(await catalog.patch(f"/v1/seminars/{seminar_id}", json={"location": "泉州"},
                                       headers=admin.headers), 422, "seminar-change-reason")
    assert_problem(await catalog.patch(f"/v1/seminars/{seminar_id}", json={"trainees": 40, "reason": "报名不足"},
                                       headers=admin.headers), 422, "seminar-trainees")
    moved = await catalog.patch(f"/v1/seminars/{seminar_id}", json={"location": "泉州", "reason": "场地调整"},
                                headers=admin.headers)
    assert moved.status_code == 200
    history = (await catalog.get(f"/v1/seminars/{seminar_id}/history", headers=admin.headers)).json()
    assert [(h["before"], h["after"], h["reason"]) for h in history] == [
        ({"location": "福州"}, {"location": "厦门"}, None), ({"location": "厦门"}, {"location": "泉州"}, "场地调整")]


async def test_attendance_reaches_transcripts_under_the_daily_limit(catalog, ledger, admin, engine):
    assert (await catalog.post("/v1/plans", json=PLAN_2025, headers=admin.headers)).status_code == 201
    reviewer = await make_staff(engine, "authority_reviewer", authority="A08")
    created = (await catalog.post("/v1/bases", json=professional_form(["A08.1"], uscc=uscc(777)),
                                  headers=reviewer.headers)).json()
    key = (await catalog.post(f"/v1/bases/{created['id']}/approval", headers=reviewer.headers)).json()["api_key"]
    organizer = {"Authorization": f"Bearer {key}"}
    seminar_id = (await catalog.post("/v1/seminars", json=project(organizer=created["id"]),
                                     headers=admin.headers)).json()["id"]
    approved = (await catalog.post(f"/v1/seminars/{seminar_id}/approval", headers=admin.headers)).json()
    assert approved["status"] == "approved" and approved["course_id"]

    # The same person studied online at another base on the first seminar day, 06:00-11:15 (7 学时).
    fuzhou = await make_staff(engine, "city_admin", region="350100")
    other = await approved_base(catalog, fuzhou)
    online_2025 = await approved_course(catalog, other, fuzhou, year=2025, topic="1", hours=7)
    person, passer, failer = ric(401), ric(402), ric(403)
    r = await ledger.post("/v1/records", json=record_body(online_2025, person, [
        online_sitting("2025-09-01T06:00:00+08:00", "2025-09-01T11:15:00+08:00")], name="学员"), headers=other.headers)
    assert r.status_code == 201 and r.json()["counted_minutes"] == 315

    def trainee(id_number: str, passed: bool | None) -> dict:
        return {"id_type": "RIC", "id_number": id_number, "name": "学员", "title_level": "intermediate",
                "unit": {"name": "福州某厂", "uscc": uscc(88), "region": "350102"}, "online": False,
                "days": [{"started_at": f"2025-09-0{d}T08:30:00+08:00", "ended_at": f"2025-09-0{d}T17:30:00+08:00"}
                         for d in range(1, 6)],
                "assessment_passed": passed}

    response = await ledger.post(f"/v1/seminars/{seminar_id}/attendance", headers=organizer, json={"trainees": [
        trainee(person, True), trainee(passer, True), trainee(failer, False), trainee(ric(404), None)]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 201, 422, 422]
    assert results[2]["problem"]["type"] == "/problems/seminar-assessment"
    # 9 h a day for 5 days; the first day of `person` is capped by the 540 minutes already used elsewhere
    # up to 11:15 (08:30-11:15 overlaps too), so it counts 540 - 315 = 225 minutes that day.
    first, second = results[0]["result"], results[1]["result"]
    assert second["counted_minutes"] == 5 * 540 and second["credited_hours"] == 60
    assert first["counted_minutes"] == 225 + 4 * 540
    assert {a["rule"] for a in first["adjustments"]} >= {"daily-limit", "parallel-study"}

    transcript = (await ledger.get(f"/v1/people/{passer}/transcript?year=2025", headers=admin.headers)).json()
    assert transcript["professional"]["fields"] == [{"code": "A08.1", "credited_hours": 60}]
    failed = (await ledger.get(f"/v1/people/{failer}/transcript?year=2025", headers=admin.headers)).json()
    assert failed["total_hours"] == 0 and failed["records"] == []  # on the roster, credited nothing


async def test_only_the_organising_base_uploads_and_only_for_approved_seminars(catalog, ledger, admin, engine):
    assert (await catalog.post("/v1/plans", json=PLAN_2025, headers=admin.headers)).status_code == 201
    fuzhou = await make_staff(engine, "city_admin", region="350100")
    stranger = await approved_base(catalog, fuzhou)
    reviewer = await make_staff(engine, "authority_reviewer", authority="A08")
    created = (await catalog.post("/v1/bases", json=professional_form(["A08.1"], uscc=uscc(778)),
                                  headers=reviewer.headers)).json()
    key = (await catalog.post(f"/v1/bases/{created['id']}/approval", headers=reviewer.headers)).json()["api_key"]
    seminar_id = (await catalog.post("/v1/seminars", json=project(organizer=created["id"]),
                                     headers=admin.headers)).json()["id"]
    body = {"trainees": [{}]}
    assert_problem(await ledger.post(f"/v1/seminars/{seminar_id}/attendance", json=body,
                                     headers={"Authorization": f"Bearer {key}"}), 409, "seminar-not-approved")
    await catalog.post(f"/v1/seminars/{seminar_id}/approval", headers=admin.headers)
    assert_problem(await ledger.post(f"/v1/seminars/{seminar_id}/attendance", json=body, headers=stranger.headers),
                   403, "other-base")


async def test_closing_materials_checklist_flags_late_subsidised_projects(catalog, admin):
    demo = project(kind="provincial_demonstration", trainees=30, staff=3, end_date="2025-09-04",
                   budget_yuan=50000, plan_filed_on="2025-07-01")
    seminar_id = (await catalog.post("/v1/seminars", json=demo, headers=admin.headers)).json()["id"]
    for item, day in (("notice", "2025-08-20"), ("summary", "2025-10-04"), ("settlement", "2025-10-05")):
        r = await catalog.post(f"/v1/seminars/{seminar_id}/materials", json={"item": item, "submitted_on": day},
                               headers=admin.headers)
        assert r.status_code == 204
    checklist = (await catalog.get(f"/v1/seminars/{seminar_id}/materials", headers=admin.headers)).json()
    assert checklist["due"] == "2025-10-04"  # one month after the end
    assert "settlement" in checklist["overdue"] and "summary" not in checklist["overdue"]
    assert "roster" in checklist["missing"] and "roster" in checklist["overdue"]  # today is long past the due day
    assert checklist["subsidy_eligible"] is False
    assert_problem(await catalog.post(f"/v1/seminars/{seminar_id}/materials",
                                      json={"item": "selfie", "submitted_on": "2025-09-05"}, headers=admin.headers), 422)


async def test_survey_statistics_per_project(catalog, admin):
    seminar_id = (await catalog.post("/v1/seminars", json=project(), headers=admin.headers)).json()["id"]
    responses = [{"answers": {"overall": "satisfied", "content": "satisfied"}},
                 {"answers": {"overall": "fairly_satisfied", "content": "dissatisfied"}, "comment": "时间太紧"},
                 {"answers": {"overall": "dissatisfied"}}]
    added = await catalog.post(f"/v1/seminars/{seminar_id}/survey-responses", json={"responses": responses},
                               headers=admin.headers)
    assert added.status_code == 201 and added.json() == {"added": 3}
    stats = (await catalog.get(f"/v1/seminars/{seminar_id}/survey", headers=admin.headers)).json()
    assert stats["responses"] == 3
    assert stats["items"]["overall"]["satisfaction_rate"] == round(2 / 3, 4)
    assert stats["items"]["content"]["answered"] == 2
    bad = await catalog.post(f"/v1/seminars/{seminar_id}/survey-responses",
                             json={"responses": [{"answers": {"overall": "meh"}}]}, headers=admin.headers)
    assert_problem(bad, 422)


async def test_the_year_overview_counts_and_exports_csv(catalog, admin, auditor):
    await catalog.post("/v1/seminars", json=project(), headers=admin.headers)
    ordinary = project(kind="provincial_ordinary", trainees=40, staff=3, end_date="2025-09-04", plan_filed_on=None,
                       funding="self", budget_yuan=80000)
    await catalog.post("/v1/seminars", json=ordinary, headers=admin.headers)
    data = (await catalog.get("/v1/seminar-overview/2025", headers=auditor.headers)).json()
    assert data["by_kind"]["national"] == {"planned": 4, "registered": 1}
    assert data["by_kind"]["provincial_ordinary"] == {"planned": 71, "registered": 1}
    assert data["trainees"] == 90 and data["budget_yuan"] == 185000 and data["fiscal_budget_yuan"] == 105000
    # The national fiscal project owes its reimbursement materials (long overdue); the ordinary one owes nothing.
    assert data["by_status"]["registered"] == 2 and data["overdue_items"] == 1
    csv = await catalog.get("/v1/seminar-overview/2025?format=csv", headers=auditor.headers)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.lstrip("\ufeff").strip().split("\r\n")
    assert lines[0].startswith("id,kind,title") and len(lines) == 3
