"""The rules as the notices mean them, each at its boundary (at the limit and one past), pure."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import pytest
from hours_ledger.domain.names import mask_name, same_name
from hours_ledger.domain.rules import (
    OTHER_TOPIC,
    CourseFacts,
    Exam,
    PersonState,
    PlanRules,
    Sitting,
    day_bounds,
    decide,
    refusals,
)
from hypothesis import given, settings
from hypothesis import strategies as st

M = 60
H = 3600
PLAN = PlanRules(window_start=day_bounds(dt.date(2026, 1, 1))[0], window_end=day_bounds(dt.date(2027, 3, 1))[0],
                 max_hours_per_day=12, minutes_per_hour=45, min_exam_questions=10, required_hours=30)
DAY = dt.date(2026, 5, 4)
T0 = day_bounds(DAY)[0]  # midnight in Fujian
PASSED = Exam(10, 9, True)
NOW = T0 + 40 * H


def online(start_min: int, minutes: int, passed: int = 1, failed: int = 0, media: int | None = None,
           mode: str | None = None) -> Sitting:
    s = T0 + start_min * M
    return Sitting(s, s + minutes * M, minutes * M if media is None else media, passed, failed, mode)


def offline(start_min: int, minutes: int, mode: str | None = None) -> Sitting:
    s = T0 + start_min * M
    return Sitting(s, s + minutes * M, mode=mode)


def rules_of(decision) -> set[str]:
    return {a.rule for a in decision.adjustments}


# ---- 每学时不低于45分钟, 每天不超过12学时: the day counts 学时 ------------------------------------------------

@pytest.mark.parametrize(("minutes", "credited"), [(44, 0), (45, 1), (89, 1), (90, 2)])
def test_a_record_draws_only_the_minutes_of_the_hours_it_credits(minutes, credited):
    d = decide(CourseFacts("offline", 7), PLAN, [offline(8 * 60, minutes)], None, PersonState())
    assert d.credited_hours == credited and d.counted_seconds == credited * 45 * M
    short = minutes - credited * 45
    assert [(a.rule, a.minutes) for a in d.adjustments] == ([("partial-hour", short)] if short else [])


@pytest.mark.parametrize("short_records", [20, 50])
def test_short_records_that_credit_nothing_do_not_block_a_real_one(short_records):
    """28-minute records, back to back from midnight (20 of them are 560 minutes: more than the day's 540 if their
    minutes counted), then a real 90-minute record the same day."""
    state = PersonState()
    for i in range(short_records):
        course = CourseFacts("offline", 1, key=f"short-{i}")
        sitting = offline(i * 28, 28)
        d = decide(course, PLAN, [sitting], None, state)
        assert d.credited_hours == 0 and d.allocations == () and rules_of(d) == {"partial-hour"}
        state.add(course, [sitting], d)
    assert state.day_used == {}
    real = decide(CourseFacts("offline", 2, key="real"), PLAN, [offline(short_records * 28, 90)], None, state)
    # (Fifty fill the day up to 23:20: the real record runs past midnight, and still nothing of either day was used.)
    assert real.credited_hours == 2 and "daily-limit" not in rules_of(real)


@settings(max_examples=200, deadline=None)
@given(st.integers(45, 300), st.integers(1, 12))
def test_twelve_hours_a_day_are_reachable_by_records_of_any_length(minutes, course_hours):
    """Records of `minutes` each, back to back from midnight, as many as fit in the day, each of a course of
    `course_hours` 学时: the day credits the 12 学时 the notice allows whenever the records hold that many."""
    state = PersonState()
    credited = 0
    count = 24 * 60 // minutes
    for i in range(count):
        course = CourseFacts("offline", course_hours, key=i)
        sitting = offline(i * minutes, minutes)
        d = decide(course, PLAN, [sitting], None, state)
        state.add(course, [sitting], d)
        credited += d.credited_hours
    assert credited == min(12, count * min(course_hours, minutes // 45))
    assert sum(state.day_used.values()) == credited * 45 * M <= PLAN.day_cap


def test_the_thirteenth_hour_of_a_day_is_refused_by_the_daily_limit():
    state = PersonState(day_used={DAY: 11 * 45 * M})
    d = decide(CourseFacts("offline", 7), PLAN, [offline(20 * 60, 120)], None, state)
    assert d.credited_hours == 1 and d.counted_seconds == 45 * M
    assert ("daily-limit", 75) in [(a.rule, a.minutes) for a in d.adjustments]


# ---- a course credits once per person -----------------------------------------------------------------------

def test_a_course_pushed_on_three_days_credits_its_hours_once():
    state = PersonState()
    course = CourseFacts("offline", 8, key="c8")
    results = []
    for day in range(3):
        sitting = offline(day * 24 * 60 + 8 * 60, 6 * 60)  # 6 h = 8 学时 each day
        d = decide(course, PLAN, [sitting], None, state)
        state.add(course, [sitting], d)
        results.append(d)
    assert [d.credited_hours for d in results] == [8, 0, 0]
    assert [a.rule for a in results[1].adjustments] == ["course-already-credited"]
    assert results[1].allocations == () and sum(state.day_used.values()) == 8 * 45 * M


@pytest.mark.parametrize(("already", "credited"), [(0, 8), (3, 5), (7, 1), (8, 0)])
def test_a_retake_credits_what_the_course_has_left_for_the_person(already, credited):
    state = PersonState(course_used={"c8": already} if already else {})
    d = decide(CourseFacts("offline", 8, key="c8"), PLAN, [offline(8 * 60, 6 * 60)], None, state)
    assert d.credited_hours == credited and d.counted_seconds == credited * 45 * M


def test_a_failed_attempt_that_credited_nothing_leaves_the_ceiling_whole():
    state = PersonState()
    course = CourseFacts("online", 7, key="c7")
    first = online(8 * 60, 315)
    failed = decide(course, PLAN, [first], Exam(10, 2, False), state)
    state.add(course, [first], failed)
    retake = decide(course, PLAN, [online(14 * 60, 315)], PASSED, state)
    assert failed.credited_hours == 0 and retake.credited_hours == 7


# ---- 上线前应组织专家评审: nothing before the review ------------------------------------------------------------

@pytest.mark.parametrize(("live_day", "credited", "cut"), [
    (DAY, 4, 0),                         # reviewed on the day of the sitting: it counts from midnight
    (DAY + dt.timedelta(days=1), 0, 180),  # reviewed the day after: nothing counts
])
def test_sittings_before_the_review_day_count_nothing(live_day, credited, cut):
    course = CourseFacts("offline", 7, live_from=day_bounds(live_day)[0])
    d = decide(course, PLAN, [offline(9 * 60, 180)], None, PersonState())
    assert d.credited_hours == credited
    assert [(a.rule, a.minutes) for a in d.adjustments if a.rule == "before-course-live"] == (
        [("before-course-live", cut)] if cut else [])


def test_a_sitting_across_the_review_midnight_counts_from_the_review_day():
    course = CourseFacts("offline", 7, live_from=day_bounds(DAY + dt.timedelta(days=1))[0])
    d = decide(course, PLAN, [offline(23 * 60, 135)], None, PersonState())  # 23:00 to 01:15
    assert d.credited_hours == 1 and d.counted_seconds == 45 * M
    assert ("before-course-live", 60) in [(a.rule, a.minutes) for a in d.adjustments]


# ---- 防假学替学: failed identity checks -------------------------------------------------------------------------

@pytest.mark.parametrize(("passed", "failed", "counts"), [(2, 2, True), (2, 3, False), (1, 0, True), (3, 4, False)])
def test_a_sitting_whose_failed_checks_outnumber_its_passed_ones_counts_nothing(passed, failed, counts):
    d = decide(CourseFacts("online", 7), PLAN, [online(9 * 60, 90, passed, failed)], PASSED, PersonState())
    assert (d.credited_hours == 2) is counts
    assert ("identity-failed" in rules_of(d)) is not counts


def test_the_identity_threshold_is_the_plans():
    strict = PlanRules(PLAN.window_start, PLAN.window_end, 12, 45, 10, identity_failed_share_max=Fraction(1, 4))
    assert decide(CourseFacts("online", 7), strict, [online(0, 90, 3, 1)], PASSED, PersonState()).credited_hours == 2
    cut = decide(CourseFacts("online", 7), strict, [online(0, 90, 3, 2)], PASSED, PersonState())
    assert cut.credited_hours == 0 and rules_of(cut) == {"identity-failed"}


# ---- mixed courses name each sitting's mode --------------------------------------------------------------------

def test_a_mixed_courses_sittings_say_their_mode_and_only_theirs():
    mixed = CourseFacts("mixed", 7)
    fields = {f: r for f, r, _ in refusals(mixed, PLAN, [offline(0, 60)], PASSED, NOW)}
    assert fields == {"sittings.0.mode": "sitting-mode"}
    assert refusals(mixed, PLAN, [offline(0, 60, mode="offline"), online(90, 60, mode="online")], PASSED, NOW) == []
    fields = {f: r for f, r, _ in refusals(CourseFacts("online", 7), PLAN, [online(0, 60, mode="online")], PASSED,
                                           NOW)}
    assert fields == {"sittings.0.mode": "sitting-mode"}


def test_a_mixed_courses_online_sitting_needs_the_process_record_and_nothing_is_inferred():
    mixed = CourseFacts("mixed", 7)
    bare_online = Sitting(T0, T0 + H, mode="online")
    assert {r for _, r, _ in refusals(mixed, PLAN, [bare_online], PASSED, NOW)} == {"no-process-record"}
    # An offline sitting carrying optional process fields is still offline: it counts its wall time.
    offline_with_checks = Sitting(T0, T0 + 90 * M, 10 * M, 0, 0, "offline")
    assert refusals(mixed, PLAN, [offline_with_checks], PASSED, NOW) == []
    assert decide(mixed, PLAN, [offline_with_checks], PASSED, PersonState()).credited_hours == 2


# ---- other topics only after the 30 学时 ------------------------------------------------------------------------

@pytest.mark.parametrize(("plan_topic_hours", "credited"), [(29, 0), (30, 3)])
def test_another_topic_credits_only_once_the_plan_topics_hold_the_required_hours(plan_topic_hours, credited):
    state = PersonState(topic_used={(2026, "1"): 7, (2026, "2"): 7, (2026, "3"): 2, (2026, "4"): 7,
                                    (2026, "5"): plan_topic_hours - 23, (2026, OTHER_TOPIC): 5})
    course = CourseFacts("offline", 3, year=2026, topic=OTHER_TOPIC, key="o")
    d = decide(course, PLAN, [offline(9 * 60, 135)], None, state)
    assert d.credited_hours == credited
    if not credited:
        assert d.allocations == () and rules_of(d) == {"other-topic-before-required"}


def test_other_topic_hours_never_count_toward_the_plans_requirement():
    state = PersonState(topic_used={(2026, OTHER_TOPIC): 30, (2026, "1"): 7, (2025, "2"): 30})
    assert state.plan_topic_hours(2026) == 7


# ---- seminars -------------------------------------------------------------------------------------------------

def test_a_seminars_attendance_needs_no_exam_and_its_online_days_need_identity_checks_only():
    seminar = CourseFacts("mixed", 60, seminar=True)
    days = [Sitting(T0 + 9 * H, T0 + 17 * H, mode="offline"),
            Sitting(T0 + 33 * H, T0 + 34 * H, None, 2, 0, "online")]
    assert refusals(seminar, PLAN, days, None, NOW + 24 * H) == []
    unchecked = Sitting(T0 + 33 * H, T0 + 34 * H, mode="online")
    assert {r for _, r, _ in refusals(seminar, PLAN, [unchecked], None, NOW + 24 * H)} == {"no-process-record"}
    assert {r for _, r, _ in refusals(CourseFacts("mixed", 60), PLAN, days, None, NOW + 24 * H)} == {
        "exam-too-short", "no-process-record"}


# ---- one person, one name ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b", "same"), [
    ("陈小明", "陈小明", True), ("陈小明", " 陈小明 ", True), ("陈小明", "陈大明", False),
    ("阿依古丽·买买提", "阿依古丽•买买提", True), ("阿依古丽·买买提", "阿依古丽 ・ 买买提", True),
    ("ＪＯＨＮ　SMITH", "John  Smith", True), ("John Smith", "Jon Smith", False), ("陈小明", "陈小", False),
])
def test_names_are_compared_as_people_write_them(a, b, same):
    assert same_name(a, b) is same


@pytest.mark.parametrize(("name", "masked"), [("陈小明", "陈*明"), ("欧阳小明", "欧**明"), ("陈明", "陈*"), ("陈", "*")])
def test_a_masked_name_keeps_the_first_and_last_character(name, masked):
    assert mask_name(name) == masked
