"""The ledger's rules as invariants over random records (pure; the database twin is in integration/)."""

from __future__ import annotations

import datetime as dt

from hours_ledger.domain.rules import (
    OTHER_TOPIC,
    CourseFacts,
    Exam,
    PersonState,
    PlanRules,
    Sitting,
    day_bounds,
    day_of,
    decide,
    merge,
    refusals,
    subtract,
    total,
)
from hypothesis import given, settings
from hypothesis import strategies as st

H = 3600
PLAN = PlanRules(window_start=day_bounds(dt.date(2026, 1, 1))[0], window_end=day_bounds(dt.date(2027, 3, 1))[0],
                 max_hours_per_day=12, minutes_per_hour=45, min_exam_questions=10)
T0 = day_bounds(dt.date(2026, 5, 4))[0]  # midnight in Fujian
PASSED = Exam(10, 9, True)


def online(start_h: float, end_h: float, media_h: float | None = None, passed: int = 1) -> Sitting:
    s, e = T0 + int(start_h * H), T0 + int(end_h * H)
    return Sitting(s, e, int((media_h if media_h is not None else end_h - start_h) * H), passed, 0)


def offline(start_h: float, end_h: float) -> Sitting:
    return Sitting(T0 + int(start_h * H), T0 + int(end_h * H))


def test_days_are_fujian_days():
    assert day_of(T0) == dt.date(2026, 5, 4)
    assert day_of(T0 - 1) == dt.date(2026, 5, 3)
    assert day_bounds(dt.date(2026, 5, 4)) == (T0, T0 + 86400)


def test_a_sitting_counts_what_was_played_not_the_wall_time():
    d = decide(CourseFacts("online", 7), PLAN, [online(9, 12, media_h=2.25)], PASSED, PersonState())
    assert d.counted_seconds == 3 * 45 * 60 and d.credited_hours == 3
    assert {a.rule for a in d.adjustments} == {"media-shortfall"}


def test_speeding_up_adds_nothing():
    d = decide(CourseFacts("online", 7), PLAN, [online(9, 10.5, media_h=3)], PASSED, PersonState())
    assert d.counted_seconds == 90 * 60 and d.credited_hours == 2


def test_proxy_study_counts_nothing():
    d = decide(CourseFacts("online", 7), PLAN, [online(9, 12, passed=0)], PASSED, PersonState())
    assert d.counted_seconds == 0 and d.credited_hours == 0
    assert d.adjustments[0].rule == "identity-unverified" and d.adjustments[0].minutes == 180


def test_parallel_videos_count_once():
    state = PersonState(busy=[(T0 + 9 * H, T0 + 11 * H)])
    d = decide(CourseFacts("online", 7), PLAN, [online(10, 12.5)], PASSED, state)
    assert d.counted_seconds == 90 * 60
    assert [(a.rule, a.minutes) for a in d.adjustments] == [("parallel-study", 60)]


def test_the_daily_limit_is_first_come_first_served():
    state = PersonState(day_used={dt.date(2026, 5, 4): 450 * 60})
    d = decide(CourseFacts("offline", 7), PLAN, [offline(13, 15)], None, state)
    assert d.counted_seconds == 90 * 60 and d.credited_hours == 2
    assert [(a.rule, a.minutes, a.day) for a in d.adjustments] == [("daily-limit", 30, dt.date(2026, 5, 4))]


def test_one_long_course_never_uses_up_the_day_for_another():
    d = decide(CourseFacts("offline", 2), PLAN, [offline(8, 20)], None, PersonState())
    assert d.counted_seconds == 2 * 45 * 60 and d.credited_hours == 2
    assert {a.rule for a in d.adjustments} == {"course-hours"}


def test_minutes_after_the_deadline_do_not_count():
    late = PlanRules(PLAN.window_start, T0 + 10 * H + 30 * 60, 12, 45, 10)
    d = decide(CourseFacts("offline", 7), late, [offline(9, 12)], None, PersonState())
    assert d.counted_seconds == 90 * 60
    assert [a.rule for a in d.adjustments] == ["outside-window"]


def test_a_failed_exam_credits_nothing_and_draws_nothing():
    d = decide(CourseFacts("online", 7), PLAN, [online(9, 12)], Exam(10, 3, False), PersonState())
    assert d.credited_hours == 0 and d.allocations == ()
    assert d.adjustments[-1].rule == "exam-not-passed" and d.adjustments[-1].hours == 4


def test_a_topic_never_credits_beyond_its_allotment_and_gives_the_minutes_back():
    course = CourseFacts("online", 7, year=2026, topic="5", allotment=7, key="c")
    d = decide(course, PLAN, [online(9, 16)], PASSED, PersonState(topic_used={(2026, "5"): 5}))
    assert d.credited_hours == 2 and d.counted_seconds == 2 * 45 * 60
    allot = [a for a in d.adjustments if a.rule == "topic-allotment"]
    assert sum(a.hours for a in allot) == 5


def course(mode: str, **facts) -> CourseFacts:
    return CourseFacts(mode, 7, **facts)


def test_records_are_refused_without_process_records_or_a_long_enough_exam():
    now = T0 + 30 * H
    rules = {r for _, r, _ in refusals(course("online"), PLAN, [Sitting(T0, T0 + H)], Exam(9, 9, True), now)}
    assert rules == {"no-process-record", "exam-too-short"}
    assert {r for _, r, _ in refusals(course("live"), PLAN, [online(1, 2)], None, now)} == {"exam-too-short"}
    assert refusals(course("offline"), PLAN, [offline(1, 2)], None, now) == []
    assert {r for _, r, _ in refusals(course("offline"), PLAN, [offline(3, 2), offline(1, 26)], None, now)} == {
        "sitting-order", "sitting-too-long"}
    assert {r for _, r, _ in refusals(course("offline"), PLAN, [offline(1, 3), offline(2, 4)], None, now)} == {
        "parallel-study"}
    assert {r for _, r, _ in refusals(course("offline"), PLAN, [offline(29, 31)], None, now)} == {"sitting-in-future"}


# ---- invariants over random histories -------------------------------------------------------------

@st.composite
def histories(draw):
    """Several records for one person (from any bases), each a set of non-overlapping sittings."""
    records = []
    for _ in range(draw(st.integers(1, 6))):
        mode = draw(st.sampled_from(["online", "offline", "live", "mixed"]))
        hours = draw(st.integers(1, 8))
        n = draw(st.integers(1, 3))
        starts = sorted(draw(st.lists(st.integers(-30, 60 * 24 * 3), min_size=n, max_size=n, unique=True)))
        sittings = []
        for i, start_min in enumerate(starts):
            limit = (starts[i + 1] - start_min) if i + 1 < len(starts) else 60 * 20
            length = draw(st.integers(1, max(1, min(limit, 60 * 20))))
            s = T0 + start_min * 60 + 400 * 86400  # near the deadline, so the window matters too
            e = s + length * 60
            sitting_mode = draw(st.sampled_from(["online", "offline"])) if mode == "mixed" else None
            if mode in ("online", "live") or sitting_mode == "online":
                sittings.append(Sitting(s, e, draw(st.integers(0, length * 90)), draw(st.integers(0, 3)),
                                        draw(st.integers(0, 3)), sitting_mode))
            else:
                sittings.append(Sitting(s, e, mode=sitting_mode))
        exam = Exam(10, 8, draw(st.booleans())) if mode != "offline" else None
        topic = draw(st.sampled_from([None, "1", "3", OTHER_TOPIC]))
        facts = CourseFacts(mode, hours, year=2026, topic=topic, key=draw(st.sampled_from("abc")),
                            allotment={"1": 7, "3": 2}.get(topic or ""),
                            live_from=draw(st.none() | st.integers(T0 + 400 * 86400, T0 + 402 * 86400)))
        records.append((facts, sittings, exam))
    return records


@settings(max_examples=300, deadline=None)
@given(histories(), st.integers(0, 30))
def test_the_rules_hold_for_any_history(history, plan_topic_hours):
    state = PersonState(topic_used={(2026, "2"): plan_topic_hours})
    all_allocations = []
    for course, sittings, exam in history:
        before = PersonState(list(state.busy), dict(state.day_used), dict(state.topic_used), dict(state.course_used))
        d = decide(course, PLAN, sittings, exam, state)
        allocs = list(d.allocations)
        # Rule 3: counted time lies inside the record's own sittings; online sittings count at most what played,
        # and nothing without a passed identity check or with more failed checks than passed ones; nothing before
        # the course went live.
        for s in sittings:
            inside = [(a.start, a.end) for a in allocs if s.start <= a.start and a.end <= s.end]
            if s.is_online(course.mode):
                assert total(inside) <= (s.media_seconds or 0)
                if not s.id_passed or (s.id_failed or 0) > s.id_passed:
                    assert inside == []
            if course.live_from is not None:
                assert all(start >= course.live_from for start, _ in inside)
        assert total((a.start, a.end) for a in allocs) == total(
            (a.start, a.end) for a in allocs for s in sittings if s.start <= a.start and a.end <= s.end)
        # Rule 4: never overlaps anything already in the ledger.
        assert subtract(merge((a.start, a.end) for a in allocs), merge(state.busy)) == merge(
            (a.start, a.end) for a in allocs)
        # Rule 5: inside the window.
        assert all(PLAN.window_start <= a.start and a.end <= PLAN.window_end for a in allocs)
        # Rule 6: each allocation lies in its day; a record draws at most its hours.
        assert all(day_of(a.start) == a.day == day_of(a.end - 1) for a in allocs)
        assert d.counted_seconds <= course.hours * PLAN.seconds_per_hour
        # Rule 7 and 8: a record draws exactly the minutes of the 学时 it credits; a topic never beyond its allotment;
        # a course never beyond its 学时 for the person, whatever the number of its records.
        assert d.counted_seconds == d.credited_hours * PLAN.seconds_per_hour
        if course.allotment is not None:
            assert before.topic_used.get((2026, course.topic), 0) + d.credited_hours <= course.allotment
        assert before.course_used.get(course.key, 0) + d.credited_hours <= course.hours
        if exam is not None and not exam.passed:
            assert d.credited_hours == 0 and allocs == []
        if course.topic == OTHER_TOPIC and before.plan_topic_hours(2026) < PLAN.required_hours:
            assert d.credited_hours == 0 and allocs == []
        # Every reduction is explained.
        assert all(a.seconds >= 0 and a.hours >= 0 for a in d.adjustments)

        all_allocations += allocs
        state.add(course, sittings, d)

    # Rule 6 across records: no day above the cap; rule 4: no second counted twice.
    assert all(v <= PLAN.day_cap for v in state.day_used.values())
    spans = [(a.start, a.end) for a in all_allocations]
    assert total(merge(spans)) == total(spans)
