"""The ledger's rules as invariants over random records (pure; the database twin is in integration/)."""

from __future__ import annotations

import datetime as dt

from hours_ledger.domain.rules import (
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
    d = decide(CourseFacts("online", 7), PLAN, [online(9, 12, media_h=2)], PASSED, PersonState())
    assert d.counted_seconds == 2 * H and d.credited_hours == 2
    assert {a.rule for a in d.adjustments} == {"media-shortfall"}


def test_speeding_up_adds_nothing():
    d = decide(CourseFacts("online", 7), PLAN, [online(9, 10, media_h=3)], PASSED, PersonState())
    assert d.counted_seconds == H


def test_proxy_study_counts_nothing():
    d = decide(CourseFacts("online", 7), PLAN, [online(9, 12, passed=0)], PASSED, PersonState())
    assert d.counted_seconds == 0 and d.credited_hours == 0
    assert d.adjustments[0].rule == "identity-unverified" and d.adjustments[0].minutes == 180


def test_parallel_videos_count_once():
    state = PersonState(busy=[(T0 + 9 * H, T0 + 11 * H)])
    d = decide(CourseFacts("online", 7), PLAN, [online(10, 12)], PASSED, state)
    assert d.counted_seconds == H
    assert [(a.rule, a.minutes) for a in d.adjustments] == [("parallel-study", 60)]


def test_the_daily_limit_is_first_come_first_served():
    state = PersonState(day_used={dt.date(2026, 5, 4): 500 * 60})
    d = decide(CourseFacts("offline", 7), PLAN, [offline(13, 15)], None, state)
    assert d.counted_seconds == 40 * 60
    assert [(a.rule, a.minutes, a.day) for a in d.adjustments] == [("daily-limit", 80, dt.date(2026, 5, 4))]


def test_one_long_course_never_uses_up_the_day_for_another():
    d = decide(CourseFacts("offline", 2), PLAN, [offline(8, 20)], None, PersonState())
    assert d.counted_seconds == 2 * 45 * 60 and d.credited_hours == 2
    assert {a.rule for a in d.adjustments} == {"course-hours"}


def test_minutes_after_the_deadline_do_not_count():
    late = PlanRules(PLAN.window_start, T0 + 10 * H, 12, 45, 10)
    d = decide(CourseFacts("offline", 7), late, [offline(9, 12)], None, PersonState())
    assert d.counted_seconds == H
    assert [a.rule for a in d.adjustments] == ["outside-window"]


def test_a_failed_exam_credits_nothing_and_draws_nothing():
    d = decide(CourseFacts("online", 7), PLAN, [online(9, 12)], Exam(10, 3, False), PersonState())
    assert d.credited_hours == 0 and d.allocations == ()
    assert d.adjustments[-1].rule == "exam-not-passed" and d.adjustments[-1].hours == 4


def test_a_topic_never_credits_beyond_its_allotment_and_gives_the_minutes_back():
    d = decide(CourseFacts("online", 7, topic_remaining=2), PLAN, [online(9, 16)], PASSED, PersonState())
    assert d.credited_hours == 2 and d.counted_seconds == 2 * 45 * 60
    allot = [a for a in d.adjustments if a.rule == "topic-allotment"]
    assert sum(a.hours for a in allot) == 5


def test_records_are_refused_without_process_records_or_a_long_enough_exam():
    now = T0 + 30 * H
    rules = {r for _, r, _ in refusals("online", PLAN, [Sitting(T0, T0 + H)], Exam(9, 9, True), now)}
    assert rules == {"no-process-record", "exam-too-short"}
    assert {r for _, r, _ in refusals("live", PLAN, [online(1, 2)], None, now)} == {"exam-too-short"}
    assert refusals("offline", PLAN, [offline(1, 2)], None, now) == []
    assert {r for _, r, _ in refusals("offline", PLAN, [offline(3, 2), offline(1, 26)], None, now)} == {
        "sitting-order", "sitting-too-long"}
    assert {r for _, r, _ in refusals("offline", PLAN, [offline(1, 3), offline(2, 4)], None, now)} == {
        "parallel-study"}
    assert {r for _, r, _ in refusals("offline", PLAN, [offline(29, 31)], None, now)} == {"sitting-in-future"}


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
            if mode in ("online", "live") or (mode == "mixed" and draw(st.booleans())):
                sittings.append(Sitting(s, e, draw(st.integers(0, length * 90)), draw(st.integers(0, 2)), 0))
            else:
                sittings.append(Sitting(s, e))
        exam = Exam(10, 8, draw(st.booleans())) if mode != "offline" else None
        topic_left = draw(st.none() | st.integers(0, 7))
        records.append((CourseFacts(mode, hours, topic_left), sittings, exam))
    return records


@settings(max_examples=300, deadline=None)
@given(histories())
def test_the_rules_hold_for_any_history(history):
    state = PersonState()
    all_allocations = []
    for course, sittings, exam in history:
        d = decide(course, PLAN, sittings, exam, state)
        allocs = list(d.allocations)
        # Rule 3: counted time lies inside the record's own sittings; online sittings count at most what played,
        # and nothing without a passed identity check.
        for s in sittings:
            inside = [(a.start, a.end) for a in allocs if s.start <= a.start and a.end <= s.end]
            if s.is_online(course.mode):
                assert total(inside) <= (s.media_seconds or 0)
                if not s.id_passed:
                    assert inside == []
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
        # Rule 7 and 8.
        assert d.credited_hours <= min(course.hours, d.counted_seconds // PLAN.seconds_per_hour)
        if course.topic_remaining is not None:
            assert d.credited_hours <= course.topic_remaining
        else:
            assert d.credited_hours == min(course.hours, d.counted_seconds // PLAN.seconds_per_hour)
        if exam is not None and not exam.passed:
            assert d.credited_hours == 0 and allocs == []
        # Every reduction is explained.
        assert all(a.seconds >= 0 and a.hours >= 0 for a in d.adjustments)

        all_allocations += allocs
        state.busy += [(s.start, s.end) for s in sittings]
        for a in allocs:
            state.day_used[a.day] = state.day_used.get(a.day, 0) + a.seconds

    # Rule 6 across records: no day above the cap; rule 4: no second counted twice.
    assert all(v <= PLAN.day_cap for v in state.day_used.values())
    spans = [(a.start, a.end) for a in all_allocations]
    assert total(merge(spans)) == total(spans)
