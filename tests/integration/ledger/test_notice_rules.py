"""The rules as the notices mean them, through HTTP: each refusal a problem naming its rule, each cut an adjustment.

Single pushes and the batch endpoint answer alike (test_batch.py holds them to each other); these push singly
except where the batch is the point.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from stdnum.cn import ric as stdnum_ric

from tests.support.factories import (
    approved_base,
    approved_course,
    at,
    base_form,
    make_staff,
    online_sitting,
    professional_form,
    record_body,
    ric,
)
from tests.support.http import assert_problem

DAY = "2026-05-04"



def offline_sitting(start: str, end: str, **extra) -> dict:
    return {"started_at": start, "ended_at": end, **extra}


async def push(ledger, base, body) -> dict:
    response = await ledger.post("/v1/records", json=body, headers=base.headers)
    assert response.status_code == 201, response.text
    return response.json()


def rules(result: dict) -> list[str]:
    return [a["rule"] for a in result["adjustments"]]


# ---- real people are not refused ------------------------------------------------------------------------------

async def test_a_resident_id_whose_region_is_younger_than_its_holder_is_accepted(ledger, base, course):
    body = f"35011119800101{123:03d}"  # 晋安区 (1995), holder born 1980
    number = body + stdnum_ric.calc_check_digit(body + "0")
    result = await push(ledger, base, record_body(course, number, [online_sitting(at("09:00"), at("10:30"))]))
    assert result["credited_hours"] == 2


async def test_an_unknown_region_is_a_clear_refusal_not_an_error(ledger, base, course):
    number = ric(1, region="359999")
    response = await ledger.post("/v1/records", json=record_body(course, number, [
        online_sitting(at("09:00"), at("10:30"))]), headers=base.headers)
    problem = assert_problem(response, 422, "id-number")
    assert problem["field"] == "id_number" and problem["part"] == "region"
    assert number not in response.text


async def test_a_resident_id_sent_as_a_passport_is_refused(ledger, base, course):
    response = await ledger.post("/v1/records", json=record_body(
        course, ric(2), [online_sitting(at("09:00"), at("10:30"))], id_type="passport"), headers=base.headers)
    assert assert_problem(response, 422, "id-type-mismatch")["field"] == "id_type"


# ---- a course credits once per person ---------------------------------------------------------------------------

async def test_the_same_course_pushed_on_three_days_credits_its_hours_once(ledger, catalog, engine):
    reviewer = await make_staff(engine, "authority_reviewer", authority="A15")
    base = await approved_base(catalog, reviewer, professional_form(["A15.1"]))
    course = await approved_course(catalog, base, reviewer, category="professional", topic=None, field="A15.1",
                                   hours=8, mode="offline", exam_questions=0)
    person = ric(10)
    answers = [await push(ledger, base, record_body(course, person, [
        offline_sitting(at("08:00", f"2026-05-0{day}"), at("14:00", f"2026-05-0{day}"))], exam=None,
        external_id=f"day-{day}")) for day in (4, 5, 6)]
    assert [a["credited_hours"] for a in answers] == [8, 0, 0]
    assert rules(answers[1]) == ["course-already-credited"] and answers[1]["counted_minutes"] == 0
    transcript = (await ledger.get(f"/v1/people/{person}/transcript?year=2026", headers=reviewer.headers)).json()
    assert transcript["professional"]["fields"] == [{"code": "A15.1", "credited_hours": 8}]


async def test_a_failed_attempt_does_not_use_the_course(ledger, base, course):
    person = ric(11)
    failed = await push(ledger, base, record_body(course, person, [online_sitting(at("08:00"), at("13:15"))],
                                                  exam={"questions": 10, "correct": 2, "passed": False}))
    retake = await push(ledger, base, record_body(course, person, [online_sitting(at("14:00"), at("19:15"))]))
    assert (failed["credited_hours"], retake["credited_hours"]) == (0, 7)


# ---- nothing before the course's expert review -----------------------------------------------------------------

async def test_sittings_before_the_review_meeting_count_nothing(ledger, catalog, base, fuzhou):
    course = await approved_course(catalog, base, fuzhou, topic="2", hours=7, reviewed_on="2026-05-05")
    person = ric(20)
    before = await push(ledger, base, record_body(course, person, [online_sitting(at("09:00"), at("10:30"))]))
    on_the_day = await push(ledger, base, record_body(course, person, [
        online_sitting(at("09:00", "2026-05-05"), at("10:30", "2026-05-05"))]))
    assert (before["credited_hours"], rules(before)) == (0, ["before-course-live"])
    assert on_the_day["credited_hours"] == 2 and on_the_day["adjustments"] == []


# ---- 每天不超过12学时: the day counts 学时 -------------------------------------------------------------------------

async def test_short_records_that_credit_nothing_leave_the_day_for_a_real_one(ledger, catalog, base, fuzhou):
    courses = [await approved_course(catalog, base, fuzhou, topic=t, hours=h) for t, h in (("1", 7), ("2", 7))]
    person = ric(30)
    start = dt.datetime.fromisoformat(at("00:00"))
    for i in range(20):  # 20 records of 28 minutes: 560 minutes, more than the day's 540 if they counted
        s, e = start + dt.timedelta(minutes=28 * i), start + dt.timedelta(minutes=28 * i + 28)
        result = await push(ledger, base, record_body(courses[i % 2], person, [
            online_sitting(s.isoformat(), e.isoformat())]))
        assert result["credited_hours"] == 0 and rules(result) == ["partial-hour"]
    real = await push(ledger, base, record_body(courses[0], person, [online_sitting(at("20:00"), at("21:30"))]))
    assert real["credited_hours"] == 2 and real["counted_minutes"] == 90


async def test_twelve_hours_a_day_are_reachable_with_records_of_fifty_minutes(ledger, catalog, base, fuzhou):
    courses = [await approved_course(catalog, base, fuzhou, topic=t, hours=7) for t in ("1", "2", "4", "5")]
    person = ric(31)
    start = dt.datetime.fromisoformat(at("06:00"))
    credited = []
    for i in range(13):
        s, e = start + dt.timedelta(minutes=50 * i), start + dt.timedelta(minutes=50 * i + 50)
        credited.append((await push(ledger, base, record_body(courses[i % 4], person, [
            online_sitting(s.isoformat(), e.isoformat())])))["credited_hours"])
    assert credited == [1] * 12 + [0]


# ---- 防假学替学 ----------------------------------------------------------------------------------------------------

async def test_failed_identity_checks_that_outnumber_the_passed_ones_count_nothing(ledger, catalog, base, course):
    plan = (await catalog.get("/v1/plans/2026")).json()
    assert plan["identity_failed_share_max"] == "0.5" and plan["other_topics_allowed"] is True
    even = await push(ledger, base, record_body(course, ric(40), [
        online_sitting(at("09:00"), at("10:30"), passed=2, failed=2)]))
    more = await push(ledger, base, record_body(course, ric(41), [
        online_sitting(at("09:00"), at("10:30"), passed=2, failed=3)]))
    assert even["credited_hours"] == 2
    assert (more["credited_hours"], rules(more)) == (0, ["identity-failed"])


# ---- mixed courses name each sitting's mode ---------------------------------------------------------------------

async def test_a_mixed_courses_sittings_say_whether_they_were_online(ledger, catalog, base, fuzhou):
    mixed = await approved_course(catalog, base, fuzhou, topic="4", hours=7, mode="mixed")
    person = ric(50)
    unsaid = record_body(mixed, person, [offline_sitting(at("09:00"), at("10:30"))])
    assert assert_problem(await ledger.post("/v1/records", json=unsaid, headers=base.headers), 422,
                          "sitting-mode")["field"] == "sittings.0.mode"
    bare_online = record_body(mixed, person, [offline_sitting(at("09:00"), at("10:30"), mode="online")])
    assert assert_problem(await ledger.post("/v1/records", json=bare_online, headers=base.headers), 422,
                          "no-process-record")["field"] == "sittings.0.media_seconds"
    both = await push(ledger, base, record_body(mixed, person, [
        offline_sitting(at("09:00"), at("10:30"), mode="offline"),
        {**online_sitting(at("14:00"), at("15:30"), passed=0), "mode": "online"}]))
    assert both["credited_hours"] == 2 and rules(both) == ["identity-unverified"]


async def test_only_a_mixed_courses_sittings_carry_a_mode(ledger, base, course):
    body = record_body(course, ric(51), [{**online_sitting(at("09:00"), at("10:30")), "mode": "online"}])
    assert_problem(await ledger.post("/v1/records", json=body, headers=base.headers), 422, "sitting-mode")


# ---- other topics only after the plan's 30 学时 -------------------------------------------------------------------

async def test_another_topic_credits_only_after_the_thirty_hours_and_is_listed_apart(ledger, catalog, base, fuzhou):
    other = await approved_course(catalog, base, fuzhou, topic="other", hours=10, mode="offline", exam_questions=0)
    plan_courses = {t: await approved_course(catalog, base, fuzhou, topic=t, hours=h)
                    for t, h in (("1", 7), ("2", 7), ("3", 2), ("4", 7), ("5", 7))}
    person = ric(60)
    early = await push(ledger, base, record_body(other, person, [offline_sitting(at("07:00"), at("09:15"))]))
    assert (early["credited_hours"], early["counted_minutes"], rules(early)) == (0, 0, ["other-topic-before-required"])
    day = dt.date(2026, 6, 1)
    for topic, course in plan_courses.items():  # the plan's five topics, one day each
        minutes = {"3": 90}.get(topic, 315)
        start = dt.datetime.combine(day, dt.time(8), dt.timezone(dt.timedelta(hours=8)))
        await push(ledger, base, record_body(course, person, [online_sitting(
            start.isoformat(), (start + dt.timedelta(minutes=minutes)).isoformat())]))
        day += dt.timedelta(days=1)
    after = await push(ledger, base, record_body(other, person, [
        offline_sitting(at("07:00", "2026-07-01"), at("09:15", "2026-07-01"))]))
    assert after["credited_hours"] == 3
    transcript = (await ledger.get(f"/v1/people/{person}/transcript?year=2026", headers=fuzhou.headers)).json()
    assert transcript["public"]["credited_hours"] == 30 and transcript["public"]["other_topics_hours"] == 3
    assert transcript["public_requirement_met"] and transcript["total_hours"] == 33


async def test_a_plan_without_other_topics_refuses_them(catalog, admin, base):
    plan = {"year": 2025, "required_hours": 10, "window_start": "2025-01-01", "deadline": "2026-01-31",
            "max_hours_per_day": 12, "minutes_per_hour": 45, "min_exam_questions": 10,
            "topics": [{"code": "1", "title": "旧主题", "hours": 10}]}
    created = await catalog.post("/v1/plans", json=plan, headers=admin.headers)
    assert created.json()["other_topics_allowed"] is False and created.json()["identity_failed_share_max"] == "0.5"
    form = {"code": "OT-2025", "title": "其它主题", "year": 2025, "category": "public", "topic": "other", "hours": 4,
            "mode": "offline"}
    assert_problem(await catalog.post("/v1/courses", json=form, headers=base.headers), 422, "other-topics-not-allowed")


# ---- the unit's region ------------------------------------------------------------------------------------------

async def test_a_units_region_is_a_real_fujian_code(ledger, base, course):
    body = record_body(course, ric(70), [online_sitting(at("09:00"), at("10:30"))])
    body["unit"]["region"] = "359999"
    problem = assert_problem(await ledger.post("/v1/records", json=body, headers=base.headers), 422)
    assert problem["errors"][0] == {**problem["errors"][0], "field": "unit.region", "rule": "region-code"}


async def test_a_municipal_base_pushes_only_units_of_its_city(ledger, catalog, base, course, admin):
    # `base` is a Fuzhou municipal base (scope 350100): a Xiamen unit is outside it, Pingtan too.
    for region in ("350203", "350128"):
        body = record_body(course, ric(71), [online_sitting(at("09:00"), at("10:30"))])
        body["unit"]["region"] = region
        problem = assert_problem(await ledger.post("/v1/records", json=body, headers=base.headers), 422,
                                 "unit-outside-scope")
        assert problem["field"] == "unit.region"
    # The batch door refuses it the same way.
    body = record_body(course, ric(71), [online_sitting(at("09:00"), at("10:30"))])
    body["unit"]["region"] = "350203"
    batch = (await ledger.post("/v1/records/batch", json={"records": [body]}, headers=base.headers)).json()
    assert batch["results"][0]["problem"]["type"] == "/problems/unit-outside-scope"
    # A provincial base trains the whole province.
    province = await approved_base(catalog, admin, base_form(level="provincial", region="350000",
                                                             scope_region="350000"))
    provincial_course = await approved_course(catalog, province, admin, topic="5", hours=7)
    body = record_body(provincial_course, ric(72), [online_sitting(at("09:00"), at("10:30"))])
    body["unit"]["region"] = "350203"
    assert (await push(ledger, province, body))["credited_hours"] == 2


# ---- one person, one name -----------------------------------------------------------------------------------------

async def test_a_different_name_for_a_registered_number_is_refused_naming_both_masked(ledger, catalog, fuzhou, base,
                                                                                       course):
    person = ric(80)
    await push(ledger, base, record_body(course, person, [online_sitting(at("09:00"), at("10:30"))], name="陈小明"))
    other = await approved_base(catalog, fuzhou)
    other_course = await approved_course(catalog, other, fuzhou, topic="4", hours=7)
    renamed = record_body(other_course, person, [online_sitting(at("14:00"), at("15:30"))], name="陈大明")
    response = await ledger.post("/v1/records", json=renamed, headers=other.headers)
    problem = assert_problem(response, 409, "name-mismatch")
    assert (problem["field"], problem["registered_name"], problem["sent_name"]) == ("name", "陈*明", "陈*明")
    assert "陈小明" not in response.text and "陈大明" not in response.text
    batch = (await ledger.post("/v1/records/batch", json={"records": [renamed]}, headers=other.headers)).json()
    assert batch["results"][0]["status"] == 409
    # Spacing and look-alike characters are the same name.
    assert (await push(ledger, other, {**renamed, "name": " 陈小明 "}))["credited_hours"] == 2
    transcript = (await ledger.get(f"/v1/people/{person}/transcript?year=2026", headers=fuzhou.headers)).json()
    assert transcript["name"] == "陈小明" and len(transcript["records"]) == 2


async def test_the_first_record_of_a_batch_fixes_a_new_persons_name(ledger, base, course):
    person = ric(81)
    records = [record_body(course, person, [online_sitting(at("09:00"), at("10:30"))], name="林一"),
               record_body(course, person, [online_sitting(at("14:00"), at("15:30"))], name="林二")]
    results = (await ledger.post("/v1/records/batch", json={"records": records}, headers=base.headers)).json()
    assert [r["status"] for r in results["results"]] == [201, 409]
    assert results["results"][1]["problem"]["registered_name"] == "林*"


async def test_hr_staff_correct_a_name_and_the_old_one_stays_in_the_history(ledger, engine, base, course, fuzhou,
                                                                            admin, auditor):
    person = ric(82)
    await push(ledger, base, record_body(course, person, [online_sitting(at("09:00"), at("10:30"))], name="王小二"))
    correction = {"id_number": person, "name": "王晓二", "reason": "身份证件姓名为王晓二"}
    xiamen = await make_staff(engine, "city_admin", region="350200")
    assert_problem(await ledger.post("/v1/people/name-corrections", json=correction, headers=xiamen.headers), 403,
                   "out-of-scope")
    reviewer = await make_staff(engine, "authority_reviewer", authority="A15")
    assert_problem(await ledger.post("/v1/people/name-corrections", json=correction, headers=reviewer.headers), 403)
    # Nobody with that number: a city's staff get what they get for a person outside their region.
    assert_problem(await ledger.post("/v1/people/name-corrections", json={**correction, "id_number": ric(83)},
                                     headers=fuzhou.headers), 403, "out-of-scope")
    assert_problem(await ledger.post("/v1/people/name-corrections", json={**correction, "id_number": ric(83)},
                                     headers=admin.headers), 404, "person-not-found")
    corrected = await ledger.post("/v1/people/name-corrections", json=correction, headers=fuzhou.headers)
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["name"] == "王晓二" and corrected.json()["previous_name"] == "王小二"
    assert person not in corrected.text
    assert_problem(await ledger.post("/v1/people/name-corrections", json=correction, headers=fuzhou.headers), 422,
                   "name-unchanged")
    # The registry now knows the person by the corrected name only.
    assert_problem(await ledger.post("/v1/records", json=record_body(
        course, person, [online_sitting(at("14:00"), at("15:30"))], name="王小二"), headers=base.headers), 409,
        "name-mismatch")
    await push(ledger, base, record_body(course, person, [online_sitting(at("14:00"), at("15:30"))], name="王晓二"))
    transcript = (await ledger.get(f"/v1/people/{person}/transcript?year=2026", headers=admin.headers)).json()
    assert transcript["name"] == "王晓二"
    assert [(h["old_name"], h["new_name"], h["reason"]) for h in transcript["name_history"]] == [
        ("王小二", "王晓二", "身份证件姓名为王晓二")]
    async with engine.connect() as conn:
        event = (await conn.execute(sa.text(
            "SELECT target, outcome FROM iam.audit_events WHERE action = 'POST /v1/people/name-corrections' "
            "AND outcome = 'succeeded' ORDER BY id DESC LIMIT 1"))).one()
    assert set(event.target) == {"person"} and person not in str(event.target)
