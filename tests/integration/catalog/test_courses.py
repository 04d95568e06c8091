"""Courses (课件): submission by an approved base, expert review (专家评审), withdrawal."""

from __future__ import annotations

import datetime as dt

import pytest
from xueshi_shared.timekeeping import today

from tests.support.factories import approved_base, approved_course, course_form, make_staff, professional_form
from tests.support.http import assert_problem

REVIEW = {"decision": "approved", "reviewers": ["张教授", "李研究员"],
          "checks": {"wording": True, "policy": True, "ideology": True}}


async def test_a_course_goes_live_only_after_an_expert_review(catalog, base, fuzhou):
    submitted = await catalog.post("/v1/courses", json=course_form(), headers=base.headers)
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["status"] == "pending_review"
    course_id = submitted.json()["id"]

    reviewed = await catalog.post(f"/v1/courses/{course_id}/review", json=REVIEW, headers=fuzhou.headers)
    assert reviewed.status_code == 200, reviewed.text
    course = reviewed.json()
    assert course["status"] == "approved"
    assert course["review"]["reviewers"] == ["张教授", "李研究员"]
    assert course["review"]["checks"] == {"wording": True, "policy": True, "ideology": True}
    assert_problem(await catalog.post(f"/v1/courses/{course_id}/review", json=REVIEW, headers=fuzhou.headers), 409,
                   "course-not-pending")


@pytest.mark.parametrize("check", ["wording", "policy", "ideology"])
async def test_approval_needs_all_three_checks(catalog, base, fuzhou, check):
    course_id = (await catalog.post("/v1/courses", json=course_form(), headers=base.headers)).json()["id"]
    body = {**REVIEW, "checks": {**REVIEW["checks"], check: False}}
    problem = assert_problem(await catalog.post(f"/v1/courses/{course_id}/review", json=body, headers=fuzhou.headers),
                             422, "review-checks")
    assert problem["field"] == f"checks.{check}"
    rejected = await catalog.post(f"/v1/courses/{course_id}/review", json={**body, "decision": "rejected"},
                                  headers=fuzhou.headers)
    assert rejected.json()["status"] == "rejected"


async def test_a_review_lists_each_expert_once(catalog, base, fuzhou):
    course_id = (await catalog.post("/v1/courses", json=course_form(), headers=base.headers)).json()["id"]
    body = {**REVIEW, "reviewers": ["张教授", "张教授"]}
    assert_problem(await catalog.post(f"/v1/courses/{course_id}/review", json=body, headers=fuzhou.headers), 422,
                   "reviewers-distinct")


async def test_staff_outside_the_scope_cannot_review(catalog, base, engine, auditor):
    xiamen = await make_staff(engine, "city_admin", region="350200")
    reviewer = await make_staff(engine, "authority_reviewer", authority="A15")
    course_id = (await catalog.post("/v1/courses", json=course_form(), headers=base.headers)).json()["id"]
    url = f"/v1/courses/{course_id}/review"
    assert_problem(await catalog.post(url, json=REVIEW, headers=xiamen.headers), 403, "out-of-scope")
    assert_problem(await catalog.post(url, json=REVIEW, headers=reviewer.headers), 403, "out-of-scope")
    assert_problem(await catalog.post(url, json=REVIEW, headers=auditor.headers), 403, "role-not-allowed")
    assert_problem(await catalog.post(url, json=REVIEW, headers=base.headers), 403, "staff-only")


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"mode": "online", "exam_questions": 9}, "exam_questions", "exam-questions"),
        ({"mode": "mixed", "exam_questions": 0}, "exam_questions", "exam-questions"),
        ({"mode": "live", "exam_questions": 5}, "exam_questions", "exam-questions"),
        ({"topic": "6"}, "topic", "topic-unknown"),
        ({"topic": None}, "topic", "topic-or-field"),
        ({"field": "A15.1"}, "field", "topic-or-field"),
        ({"year": 2031}, "year", "plan-unknown"),
        ({"topic": "3", "hours": 3}, "hours", "course-hours-topic"),
        ({"hours": 0}, "hours", None),
        ({"category": "professional", "topic": None, "field": "A15.1"}, "category", "course-category"),
        ({"mode": "podcast"}, "mode", None),
        ({"code": "有空格 的代码"}, "code", None),
    ],
)
async def test_a_course_breaking_a_rule_is_refused_naming_the_field(catalog, base, overrides, field, rule):
    problem = assert_problem(await catalog.post("/v1/courses", json=course_form(**overrides), headers=base.headers),
                             422)
    assert problem["field"] == field, problem
    if rule:
        assert rule in {e["rule"] for e in problem["errors"]}, problem


async def test_an_offline_course_needs_no_exam(catalog, base):
    response = await catalog.post("/v1/courses", json=course_form(mode="offline", exam_questions=0),
                                  headers=base.headers)
    assert response.status_code == 201, response.text


async def test_course_codes_are_unique_per_base(catalog, base, fuzhou):
    form = course_form()
    assert (await catalog.post("/v1/courses", json=form, headers=base.headers)).status_code == 201
    assert_problem(await catalog.post("/v1/courses", json=form, headers=base.headers), 409, "course-code-taken")
    other = await approved_base(catalog, fuzhou)
    assert (await catalog.post("/v1/courses", json=form, headers=other.headers)).status_code == 201


async def test_only_an_approved_unsuspended_base_submits(catalog, base, fuzhou, admin):
    assert_problem(await catalog.post("/v1/courses", json=course_form(), headers=admin.headers), 403, "base-only")
    await catalog.post(f"/v1/bases/{base.id}/suspension", json={"reason": "核查"}, headers=fuzhou.headers)
    assert_problem(await catalog.post("/v1/courses", json=course_form(), headers=base.headers), 403, "base-suspended")
    await catalog.delete(f"/v1/bases/{base.id}/suspension", headers=fuzhou.headers)
    assert (await catalog.post("/v1/courses", json=course_form(), headers=base.headers)).status_code == 201


async def test_a_professional_course_names_one_of_the_bases_approved_fields(catalog, engine):
    housing = await make_staff(engine, "authority_reviewer", authority="A15")
    transport = await make_staff(engine, "authority_reviewer", authority="A16")
    form = professional_form(["A15.1", "A16.1"])
    created = (await catalog.post("/v1/bases", json=form, headers=housing.headers)).json()
    key = (await catalog.post(f"/v1/bases/{created['id']}/approval", headers=housing.headers)).json()["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    professional = {"category": "professional", "topic": None, "hours": 12}

    ok = await catalog.post("/v1/courses", json=course_form(field="A15.1", **professional), headers=headers)
    assert ok.status_code == 201, ok.text
    for field in ("A16.1", "A20.1"):  # applied for but not yet approved; never applied for
        assert_problem(await catalog.post("/v1/courses", json=course_form(field=field, **professional),
                                          headers=headers), 422, "field-not-approved")
    # The field's authority reviews it; another authority cannot.
    course_id = ok.json()["id"]
    assert_problem(await catalog.post(f"/v1/courses/{course_id}/review", json=REVIEW, headers=transport.headers),
                   403, "out-of-scope")
    assert (await catalog.post(f"/v1/courses/{course_id}/review", json=REVIEW,
                               headers=housing.headers)).status_code == 200


async def test_withdrawing_a_course_is_final(catalog, base, fuzhou):
    course_id = await approved_course(catalog, base, fuzhou)
    withdrawn = await catalog.post(f"/v1/courses/{course_id}/withdrawal", json={"reason": "政策更新，课件下线"},
                                   headers=base.headers)
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn" and withdrawn.json()["withdrawal_reason"]
    assert_problem(await catalog.post(f"/v1/courses/{course_id}/withdrawal", json={"reason": "again"},
                                      headers=fuzhou.headers), 409, "course-not-withdrawable")


async def test_a_base_sees_and_withdraws_only_its_own_courses(catalog, base, fuzhou):
    other = await approved_base(catalog, fuzhou)
    mine = await approved_course(catalog, base, fuzhou)
    theirs = await approved_course(catalog, other, fuzhou)
    assert [c["id"] for c in (await catalog.get("/v1/courses", headers=base.headers)).json()] == [str(mine)]
    assert_problem(await catalog.get(f"/v1/courses/{theirs}", headers=base.headers), 403, "other-base")
    assert_problem(await catalog.post(f"/v1/courses/{theirs}/withdrawal", json={"reason": "x"}, headers=base.headers),
                   403, "other-base")
    assert len((await catalog.get("/v1/courses?status=approved", headers=fuzhou.headers)).json()) == 2


async def test_the_review_records_the_day_of_the_meeting(catalog, base, fuzhou):
    course_id = (await catalog.post("/v1/courses", json=course_form(), headers=base.headers)).json()["id"]
    url = f"/v1/courses/{course_id}/review"
    tomorrow = (today() + dt.timedelta(days=1)).isoformat()
    for day in (tomorrow, "2025-12-31"):  # in the future; before the 2026 plan's window
        problem = assert_problem(await catalog.post(url, json={**REVIEW, "reviewed_on": day}, headers=fuzhou.headers),
                                 422, "reviewed-on")
        assert problem["field"] == "reviewed_on"
    reviewed = (await catalog.post(url, json={**REVIEW, "reviewed_on": "2026-01-01"}, headers=fuzhou.headers)).json()
    assert reviewed["review"]["reviewed_on"] == "2026-01-01" and reviewed["live_from"] == "2026-01-01"
    other = (await catalog.post("/v1/courses", json=course_form(), headers=base.headers)).json()["id"]
    by_default = (await catalog.post(f"/v1/courses/{other}/review", json=REVIEW, headers=fuzhou.headers)).json()
    assert by_default["review"]["reviewed_on"] == today().isoformat() == by_default["live_from"]


async def test_a_rejected_course_never_goes_live(catalog, base, fuzhou):
    course_id = (await catalog.post("/v1/courses", json=course_form(), headers=base.headers)).json()["id"]
    rejected = (await catalog.post(f"/v1/courses/{course_id}/review", json={**REVIEW, "decision": "rejected",
                                   "checks": {**REVIEW["checks"], "policy": False}}, headers=fuzhou.headers)).json()
    assert rejected["status"] == "rejected" and rejected["live_from"] is None


async def test_another_topic_may_carry_any_hours_when_the_plan_allows_it(catalog, base):
    created = await catalog.post("/v1/courses", json=course_form(topic="other", hours=12), headers=base.headers)
    assert created.status_code == 201, created.text
    course = (await catalog.get(f"/v1/courses/{created.json()['id']}", headers=base.headers)).json()
    assert course["topic"] == "other" and course["hours"] == 12
    assert_problem(await catalog.post("/v1/courses", json=course_form(topic="9"), headers=base.headers), 422,
                   "topic-unknown")
