"""Pushing study records: the province's rules, idempotency, refusals, adjustments."""

from __future__ import annotations

import pytest
from hours_ledger.schemas import RecordResult

from tests.support.factories import (
    approved_base,
    approved_course,
    at,
    online_sitting,
    record_body,
    ric,
)
from tests.support.http import assert_problem

DAY = "2026-05-04"



async def test_a_full_course_is_credited(ledger, base, course):
    body = record_body(course, ric(1), [online_sitting(at("09:00"), at("14:15"))])
    response = await ledger.post("/v1/records", json=body, headers=base.headers)
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["credited_hours"] == 7 and result["counted_minutes"] == 315
    assert result["status"] == "credited" and result["adjustments"] == []
    assert result["external_id"] == body["external_id"]


async def test_a_retry_returns_the_first_result_and_a_changed_body_is_a_conflict(ledger, base, course):
    body = record_body(course, ric(2), [online_sitting(at("09:00"), at("10:30"))])
    first = await ledger.post("/v1/records", json=body, headers=base.headers)
    again = await ledger.post("/v1/records", json=body, headers=base.headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    changed = {**body, "name": "陈大明"}
    assert_problem(await ledger.post("/v1/records", json=changed, headers=base.headers), 409, "external-id-reused")


async def test_answers_are_exactly_in_record_result_shape(ledger, base, course):
    """The push route serialises its answers itself (no response model): hold them to RecordResult, for a new
    record, one with adjustments, and a replay read back from the database."""
    full = record_body(course, ric(30), [online_sitting(at("09:00"), at("14:15"))])
    short = record_body(course, ric(30), [online_sitting(at("13:00"), at("15:00"), media_seconds=50 * 60)])
    answers = [await ledger.post("/v1/records", json=b, headers=base.headers) for b in (full, short, full)]
    assert [a.status_code for a in answers] == [201, 201, 200]
    assert answers[1].json()["adjustments"], "the second record overlaps the first and falls short"
    for answer in answers:
        assert answer.headers["content-type"] == "application/json"
        assert RecordResult.model_validate(answer.json()).model_dump(mode="json") == answer.json()


async def test_media_time_not_wall_time_counts(ledger, base, course):
    body = record_body(course, ric(3), [online_sitting(at("09:00"), at("12:00"), media_seconds=90 * 60)])
    result = (await ledger.post("/v1/records", json=body, headers=base.headers)).json()
    assert result["counted_minutes"] == 90 and result["credited_hours"] == 2 and result["status"] == "partial"
    assert [(a["rule"], a["minutes"], a["day"]) for a in result["adjustments"]] == [("media-shortfall", 90, DAY)]


async def test_proxy_study_counts_nothing(ledger, base, course):
    body = record_body(course, ric(4), [online_sitting(at("09:00"), at("12:00"), passed=0, failed=3)])
    result = (await ledger.post("/v1/records", json=body, headers=base.headers)).json()
    assert result["credited_hours"] == 0 and result["status"] == "not_credited"
    assert result["adjustments"][0]["rule"] == "identity-unverified" and result["adjustments"][0]["minutes"] == 180


async def test_parallel_videos_at_two_bases_count_once(ledger, catalog, fuzhou, base, course):
    other = await approved_base(catalog, fuzhou)
    other_course = await approved_course(catalog, other, fuzhou, topic="4", hours=7)
    person = ric(5)
    await ledger.post("/v1/records", json=record_body(course, person, [online_sitting(at("09:00"), at("12:00"))]),
                      headers=base.headers)
    second = (await ledger.post("/v1/records", json=record_body(
        other_course, person, [online_sitting(at("10:00"), at("13:30"))]), headers=other.headers)).json()
    assert second["counted_minutes"] == 90
    assert [(a["rule"], a["minutes"]) for a in second["adjustments"]] == [("parallel-study", 120)]


async def test_the_daily_limit_holds_across_bases_first_come_first_served(ledger, catalog, fuzhou, base, course):
    other = await approved_base(catalog, fuzhou)
    other_course = await approved_course(catalog, other, fuzhou, topic="4", hours=7)
    third_course = await approved_course(catalog, base, fuzhou, topic="2", hours=7)
    person = ric(6)
    r1 = (await ledger.post("/v1/records", json=record_body(course, person, [
        online_sitting(at("06:00"), at("11:15"))]), headers=base.headers)).json()
    r2 = (await ledger.post("/v1/records", json=record_body(other_course, person, [
        online_sitting(at("12:00"), at("15:00"))]), headers=other.headers)).json()
    r3 = (await ledger.post("/v1/records", json=record_body(third_course, person, [
        online_sitting(at("16:00"), at("19:00"))]), headers=base.headers)).json()
    assert (r1["counted_minutes"], r2["counted_minutes"], r3["counted_minutes"]) == (315, 180, 45)
    assert r3["adjustments"] == [{"rule": "daily-limit", "minutes": 135, "hours": 0, "day": DAY,
                                  "detail": r3["adjustments"][0]["detail"]}]


async def test_a_topic_never_credits_beyond_its_allotment(ledger, catalog, fuzhou, base):
    first = await approved_course(catalog, base, fuzhou, topic="3", hours=2)
    second = await approved_course(catalog, base, fuzhou, topic="3", hours=2)
    person = ric(7)
    await ledger.post("/v1/records", json=record_body(first, person, [online_sitting(at("09:00"), at("10:30"))]),
                      headers=base.headers)
    result = (await ledger.post("/v1/records", json=record_body(second, person, [
        online_sitting(at("14:00"), at("15:30"))]), headers=base.headers)).json()
    assert result["credited_hours"] == 0 and result["counted_minutes"] == 0
    allotment = [a for a in result["adjustments"] if a["rule"] == "topic-allotment"]
    assert sum(a["hours"] for a in allotment) == 2 and sum(a["minutes"] for a in allotment) == 90


async def test_a_failed_exam_credits_nothing(ledger, base, course):
    body = record_body(course, ric(8), [online_sitting(at("09:00"), at("14:15"))],
                       exam={"questions": 10, "correct": 3, "passed": False})
    result = (await ledger.post("/v1/records", json=body, headers=base.headers)).json()
    assert result["credited_hours"] == 0 and result["status"] == "not_credited"
    assert [(a["rule"], a["hours"]) for a in result["adjustments"]] == [("exam-not-passed", 7)]


async def test_minutes_after_the_deadline_do_not_count(ledger, catalog, admin, fuzhou, base):
    plan = {"year": 2025, "required_hours": 10, "window_start": "2025-01-01", "deadline": "2026-01-01",
            "max_hours_per_day": 12, "minutes_per_hour": 45, "min_exam_questions": 10,
            "topics": [{"code": "1", "title": "旧主题", "hours": 10}]}
    assert (await catalog.post("/v1/plans", json=plan, headers=admin.headers)).status_code == 201
    old_course = await approved_course(catalog, base, fuzhou, year=2025, topic="1", hours=7)
    body = record_body(old_course, ric(9), [online_sitting("2026-01-01T22:30:00+08:00", "2026-01-02T02:00:00+08:00")])
    result = (await ledger.post("/v1/records", json=body, headers=base.headers)).json()
    assert result["counted_minutes"] == 90
    assert [(a["rule"], a["minutes"], a["day"]) for a in result["adjustments"]] == [
        ("outside-window", 120, "2026-01-02")]


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"exam": None}, "exam", "exam-too-short"),
        ({"exam": {"questions": 9, "correct": 9, "passed": True}}, "exam.questions", "exam-too-short"),
        ({"sittings": [{"started_at": at("09:00"), "ended_at": at("10:00")}]}, "sittings.0.media_seconds",
         "no-process-record"),
        ({"sittings": [{"started_at": at("09:00"), "ended_at": at("10:00"), "media_seconds": 3600}]},
         "sittings.0.identity_checks", "no-process-record"),
        ({"sittings": [online_sitting(at("10:00"), at("09:00"), media_seconds=1)]}, "sittings.0.ended_at",
         "sitting-order"),
        ({"sittings": [online_sitting("2026-05-04T09:00:00+08:00", "2026-05-05T09:30:00+08:00")]},
         "sittings.0.ended_at", "sitting-too-long"),
        ({"sittings": [online_sitting(at("09:00"), at("10:00")), online_sitting(at("09:30"), at("11:00"))]},
         "sittings.1.started_at", "parallel-study"),
        ({"sittings": [online_sitting("2099-01-01T09:00:00+08:00", "2099-01-01T10:00:00+08:00")]},
         "sittings.0.ended_at", "sitting-in-future"),
        ({"sittings": [online_sitting("2026-05-04T09:00:00", "2026-05-04T10:00:00")]}, "sittings.0.started_at",
         "timezone-aware"),
        ({"id_number": "350102199003071230"}, "id_number", "id-number"),
        ({"id_type": "passport", "id_number": "E1234$678"}, "id_number", "id-number"),
        ({"unit": {"name": "某单位", "uscc": "91350100M000100Y44", "region": "350102"}}, "unit.uscc",
         "uscc-check-digit"),
        ({"course_id": "00000000-0000-0000-0000-000000000000"}, "course_id", "course-unknown"),
        ({"sittings": []}, "sittings", "too-short"),
        ({"surprise": 1}, "surprise", "unknown-field"),
    ],
)
async def test_bad_records_are_refused_naming_field_and_rule(ledger, base, course, change, field, rule):
    body = {**record_body(course, ric(10), [online_sitting(at("09:00"), at("10:00"))]), **change}
    problem = assert_problem(await ledger.post("/v1/records", json=body, headers=base.headers), 422)
    assert problem["field"] == field, problem
    assert rule in {e["rule"] for e in problem["errors"]}, problem


async def test_the_problem_type_names_the_rule(ledger, base, course):
    body = record_body(course, ric(11), [online_sitting(at("09:00"), at("10:00"))],
                       exam={"questions": 5, "correct": 5, "passed": True})
    assert_problem(await ledger.post("/v1/records", json=body, headers=base.headers), 422, "exam-too-short")


async def test_only_approved_courses_of_the_pushing_base_receive_records(ledger, catalog, fuzhou, base, course):
    other = await approved_base(catalog, fuzhou)
    body = record_body(course, ric(12), [online_sitting(at("09:00"), at("10:00"))])
    assert_problem(await ledger.post("/v1/records", json=body, headers=other.headers), 422, "course-unknown")
    pending = (await catalog.post("/v1/courses", json={
        "code": "PENDING1", "title": "待审课件", "year": 2026, "category": "public", "topic": "1", "hours": 7,
        "mode": "online", "exam_questions": 10}, headers=base.headers)).json()["id"]
    assert_problem(await ledger.post("/v1/records", json={**body, "course_id": pending}, headers=base.headers), 422,
                   "course-not-approved")
    await catalog.post(f"/v1/courses/{course}/withdrawal", json={"reason": "下线"}, headers=base.headers)
    assert_problem(await ledger.post("/v1/records", json=body, headers=base.headers), 422, "course-not-approved")


async def test_a_suspended_base_and_staff_cannot_push(ledger, catalog, fuzhou, base, course, admin):
    body = record_body(course, ric(13), [online_sitting(at("09:00"), at("10:00"))])
    assert_problem(await ledger.post("/v1/records", json=body, headers=admin.headers), 403, "base-only")
    await catalog.post(f"/v1/bases/{base.id}/suspension", json={"reason": "核查"}, headers=fuzhou.headers)
    assert_problem(await ledger.post("/v1/records", json=body, headers=base.headers), 403, "base-suspended")
    assert_problem(await ledger.post("/v1/records", json=body), 401)


async def test_offline_attendance_counts_wall_time(ledger, catalog, fuzhou, base):
    offline = await approved_course(catalog, base, fuzhou, topic="1", hours=7, mode="offline", exam_questions=0)
    body = record_body(offline, ric(14), [{"started_at": at("08:30"), "ended_at": at("12:00")},
                                          {"started_at": at("14:00"), "ended_at": at("17:30")}], exam=None)
    body.pop("exam")
    result = (await ledger.post("/v1/records", json=body, headers=base.headers)).json()
    assert result["counted_minutes"] == 315 and result["credited_hours"] == 7
    assert {a["rule"] for a in result["adjustments"]} == {"course-hours"}


async def test_batch_gives_each_record_its_own_result(ledger, base, course):
    good = record_body(course, ric(15), [online_sitting(at("09:00"), at("10:30"))])
    bad = record_body(course, ric(16), [online_sitting(at("09:00"), at("10:30"))], exam=None)
    bad["exam"] = None
    broken = {"external_id": "x"}
    response = await ledger.post("/v1/records/batch", json={"records": [good, bad, broken, good]},
                                 headers=base.headers)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 422, 200]
    assert results[0]["result"]["credited_hours"] == 2
    assert results[1]["problem"]["type"] == "/problems/exam-too-short"
    assert results[2]["problem"]["field"] == "course_id"
    assert results[3]["result"] == results[0]["result"]


async def test_batches_hold_at_most_1000_records(ledger, base):
    assert_problem(await ledger.post("/v1/records/batch", json={"records": [{}] * 1001}, headers=base.headers), 422)


async def test_a_base_reads_only_its_own_records(ledger, catalog, fuzhou, base, course):
    other = await approved_base(catalog, fuzhou)
    record_id = (await ledger.post("/v1/records", json=record_body(
        course, ric(17), [online_sitting(at("09:00"), at("10:00"))]), headers=base.headers)).json()["record_id"]
    assert (await ledger.get(f"/v1/records/{record_id}", headers=base.headers)).status_code == 200
    assert_problem(await ledger.get(f"/v1/records/{record_id}", headers=other.headers), 404, "record-not-found")


async def test_a_nul_character_in_a_record_names_the_field_and_a_batch_survives_it(ledger, base, course):
    body = record_body(course, ric(18), [online_sitting(at("09:00"), at("10:00"))], name="陈\u0000明")
    problem = assert_problem(await ledger.post("/v1/records", json=body, headers=base.headers), 422)
    assert problem["field"] == "name" and problem["errors"][0]["rule"] == "nul-character"
    good = record_body(course, ric(19), [online_sitting(at("09:00"), at("10:00"))])
    response = await ledger.post("/v1/records/batch", json={"records": [body, good]}, headers=base.headers)
    assert [r["status"] for r in response.json()["results"]] == [422, 201]
