"""cmi5 read as study (hours_ledger/xapi/cmi5.py): each rule by its id, the sessions, moveOn, the exam, and the
property that a session sent as statements is the sitting it would be as JSON."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hours_ledger import schemas
from hours_ledger.xapi import cmi5
from hours_ledger.xapi.store import ifi_key
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.cmi5 import AU, EXT, LEARNER, Emitter, launch_data

AU2 = "https://courses.example.cn/ai-gov/au/2"
T0 = dt.datetime(2026, 5, 4, 1, 0, tzinfo=dt.UTC)
ME = ifi_key(LEARNER)
PERSON = {"id_type": "RIC", "id_number": "350102199003071234", "name": "陈小明",
          "unit": {"name": "福州市第一医院", "uscc": "91350100M000100Y43", "region": "350102"}}


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def read(statements, aus=(AU,), launch=None) -> cmi5.Reading:
    return cmi5.read(statements, list(aus), ME, launch or {}, EXT)


def rules(reading: cmi5.Reading) -> list[str]:
    return [v.rule for v in reading.violations]


def session_id(statements) -> str:
    return statements[0]["context"]["extensions"][cmi5.SESSION_ID]


# ---- one session -------------------------------------------------------------------------------------------

def test_a_session_is_a_sitting_from_initialized_to_terminated():
    lms = Emitter()
    reading = read(lms.session(h(0), h(2), played=6000, checks=(3, 1), exam=(True, 10, 9)))
    assert reading.violations == [] and reading.satisfied and not reading.open_sessions
    [session] = reading.sessions
    assert (session.started_at, session.end, session.ended_by) == (h(0), h(2), "terminated")
    assert (session.media_seconds, session.identity_checks, session.sitting) == (6000, (3, 1), True)
    assert reading.exam() == schemas.ExamIn(questions=10, correct=9, passed=True)
    [sitting] = reading.sittings("online")
    assert sitting == schemas.SittingIn(started_at=h(0), ended_at=h(2), media_seconds=6000,
                                        identity_checks=schemas.IdentityChecks(passed=3, failed=1))
    assert reading.sittings("mixed")[0].mode == "online"


def test_an_abandoned_session_ends_at_the_aus_last_statement():
    lms = Emitter()
    reading = read(lms.session(h(0), h(1.5), played=5000, ended="abandoned", completed=False))
    [session] = reading.sessions
    assert session.ended_by == "abandoned" and session.end == h(1.5) and session.ended_at == h(2)
    assert session.sitting and session.media_seconds == 5000


def test_an_open_session_is_not_a_sitting_yet():
    lms = Emitter()
    reading = read(lms.session(h(0), h(1), played=3600, exam=(True, 10, 10))[:-1])
    assert reading.open_sessions and not reading.sessions[0].sitting
    assert cmi5.pending_reason(reading).startswith("a session is open")


def test_played_and_checks_are_cumulative_the_last_counts():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3000, checks=(4, 0), completed=False)
    sid = session_id(statements)
    progress = lms.statement("http://adlnet.gov/expapi/verbs/progressed", h(0.5), sid, defined=False,
                             result={"extensions": {EXT.played: "PT20M"}},
                             context_extensions={EXT.identity_checks: {"passed": 1, "failed": 0}})
    reading = read([*statements[:2], progress, *statements[2:]])
    assert (reading.sessions[0].media_seconds, reading.sessions[0].identity_checks) == (3000, (4, 0))
    reading = read([*statements[:2], progress, {**statements[-1], "result": {}, "context": {
        **statements[-1]["context"], "extensions": {cmi5.SESSION_ID: sid}}}])
    assert (reading.sessions[0].media_seconds, reading.sessions[0].identity_checks) == (1200, (1, 0))


def test_order_is_by_timestamp_not_by_arrival():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600, exam=(True, 10, 10))
    assert read(list(reversed(statements))).violations == []
    assert read(list(reversed(statements))).sessions[0].sitting


# ---- the rules, by id ------------------------------------------------------------------------------------

def test_cmi5_9_2_actor_another_learner_is_not_read():
    lms, other = Emitter(), Emitter(actor={"objectType": "Agent", "account": {"homePage": "https://x.cn", "name": "u-2"}})
    stranger = other.session(h(0), h(1), played=3600)
    stranger = [{**s, "context": {**s["context"], "registration": lms.registration}} for s in stranger]
    reading = read(stranger)
    assert set(rules(reading)) == {"cmi5-9.2-actor"} and reading.sessions == []


def test_cmi5_9_6_3_1_session_id_is_required():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600)
    del statements[1]["context"]["extensions"][cmi5.SESSION_ID]
    reading = read(statements)
    assert "cmi5-9.6.3.1-session-id" in rules(reading)
    assert "cmi5-9.3-initialized-first" in rules(reading)  # without its initialized the session never starts


def test_cmi5_9_6_2_1_a_cmi5_verb_without_the_category_is_only_allowed():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600, exam=(True, 10, 10))
    passed = statements[3]
    passed["context"].pop("contextActivities")
    reading = read(statements)
    assert rules(reading) == ["cmi5-9.6.2.1-category"] and not reading.units[0].passed


@pytest.mark.parametrize("verb", [cmi5.COMPLETED, cmi5.INITIALIZED, cmi5.LAUNCHED])
def test_cmi5_9_3_a_verb_is_not_repeated_in_a_session(verb):
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600)
    again = lms.statement(verb, h(1) - dt.timedelta(seconds=1.5), session_id(statements))  # after the first
    reading = read([*statements, again])
    assert [(v.statement_id, v.rule) for v in reading.violations] == [(again["id"], "cmi5-9.3-verb-repeated")]


def test_cmi5_9_3_one_of_passed_and_failed_in_a_session():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600, exam=(False, 10, 2))
    passed = lms.statement(cmi5.PASSED, h(1) - dt.timedelta(seconds=0.5), session_id(statements), result={
        "success": True, "extensions": {EXT.exam: {"questions": 10, "correct": 10}}})
    reading = read([*statements, passed])
    assert rules(reading) == ["cmi5-9.3-passed-and-failed"]
    assert reading.exam() == schemas.ExamIn(questions=10, correct=2, passed=False)


def test_cmi5_9_3_a_retake_in_a_new_session_may_pass_after_failing():
    """cmi5 forbids failed after passed, not passed after failed (a new session: a retake)."""
    lms = Emitter()
    first = lms.session(h(0), h(1), played=3600, exam=(False, 10, 3))
    second = lms.session(h(2), h(3), played=3600, exam=(True, 10, 9), completed=False)
    reading = read(first + second)
    assert reading.violations == [] and reading.satisfied
    assert reading.exam() == schemas.ExamIn(questions=10, correct=9, passed=True)


def test_cmi5_9_3_initialized_is_the_first_au_statement():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600)
    early = lms.statement(cmi5.COMPLETED, h(-0.001), session_id(statements))
    reading = read([*statements, early])
    assert rules(reading) == ["cmi5-9.3-initialized-first"]


def test_cmi5_9_3_terminated_is_the_last_statement():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600, exam=None)
    late = lms.statement(cmi5.PASSED, h(1.001), session_id(statements), result={"success": True})
    reading = read([*statements, late])
    assert rules(reading) == ["cmi5-9.3-terminated-last"] and not reading.units[0].passed


def test_cmi5_9_3_completed_once_per_registration():
    lms = Emitter()
    reading = read(lms.session(h(0), h(1), played=3600) + lms.session(h(2), h(3), played=3600))
    assert rules(reading) == ["cmi5-9.3-completed-once"]


def test_cmi5_9_3_passed_once_per_registration():
    lms = Emitter()
    reading = read(lms.session(h(0), h(1), played=3600, exam=(True, 10, 10))
                   + lms.session(h(2), h(3), played=3600, exam=(True, 20, 20), completed=False))
    assert rules(reading) == ["cmi5-9.3-passed-once"]
    assert reading.exam() == schemas.ExamIn(questions=10, correct=10, passed=True)


def test_cmi5_9_3_failed_does_not_follow_passed():
    lms = Emitter()
    reading = read(lms.session(h(0), h(1), played=3600, exam=(True, 10, 10))
                   + lms.session(h(2), h(3), played=3600, exam=(False, 10, 1), completed=False))
    assert rules(reading) == ["cmi5-9.3-failed-after-passed"] and reading.exam().passed


def test_cmi5_9_3_6_nothing_after_abandoned():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600, ended="abandoned", completed=False)
    after = lms.statement(cmi5.PASSED, h(2), session_id(statements), result={"success": True})
    reading = read([*statements, after])
    assert rules(reading) == ["cmi5-9.3.6-after-abandoned"] and not reading.units[0].passed


def test_cmi5_9_3_7_waived_once_and_alone_in_its_session():
    lms = Emitter()
    waived = lms.waived(h(0))
    again = lms.waived(h(1))
    inside = lms.statement(cmi5.INITIALIZED, h(0.5), waived["context"]["extensions"][cmi5.SESSION_ID])
    reading = read([waived, again, inside])
    assert rules(reading) == ["cmi5-9.3.7-waived-session", "cmi5-9.3.7-waived-once"]
    assert reading.units[0].waived and reading.satisfied
    assert cmi5.pending_reason(reading).startswith("no session to credit")


def test_cmi5_10_2_2_browse_and_review_credit_nothing():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600, exam=(True, 10, 10))
    reading = read(statements, launch={AU: launch_data(mode="Review")})
    assert rules(reading) == ["cmi5-10.2.2-launch-mode", "cmi5-10.2.2-launch-mode"]
    assert not reading.sessions[0].sitting and not reading.satisfied


def test_every_named_rule_is_documented():
    assert all(rule.startswith(("cmi5-", "xueshi-")) and text for rule, text in cmi5.RULES.items())


# ---- moveOn ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("move_on", "completed", "passed", "satisfied"), [
    ("Passed", False, True, True), ("Passed", True, False, False),
    ("Completed", True, False, True), ("Completed", False, True, False),
    ("CompletedAndPassed", True, True, True), ("CompletedAndPassed", True, False, False),
    ("CompletedAndPassed", False, True, False), ("CompletedOrPassed", False, True, True),
    ("CompletedOrPassed", True, False, True), ("CompletedOrPassed", False, False, False),
    ("NotApplicable", False, False, True)])
def test_move_on(move_on, completed, passed, satisfied):
    assert cmi5.Unit(AU, move_on, completed=completed, passed=passed).satisfied is satisfied


def test_move_on_comes_from_launch_data_then_launched_then_the_default():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600, completed=False, exam=(True, 10, 10), move_on="Passed")
    assert read(statements, launch={AU: launch_data("Completed")}).units[0].move_on == "Completed"
    assert read(statements).units[0].move_on == "Passed"
    assert read(statements[1:]).units[0].move_on == cmi5.DEFAULT_MOVE_ON
    assert read(statements[1:]).satisfied is False  # passed, not completed


def test_every_au_must_meet_its_move_on():
    lms = Emitter()
    one = lms.session(h(0), h(1), played=3600, exam=(True, 10, 10))
    reading = read(one, aus=(AU, AU2))
    assert not reading.satisfied and AU2 in cmi5.pending_reason(reading)
    both = read(one + lms.session(h(2), h(3), au=AU2, played=3600, exam=(False, 10, 7)), aus=(AU, AU2))
    assert not both.satisfied
    assert both.exam() == schemas.ExamIn(questions=20, correct=17, passed=False)


# ---- values -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("PT0S", 0), ("PT45M", 2700), ("PT1H5M", 3900), ("PT1.5S", 1), ("P1DT1S", 86401), ("P10D", 864000),
    ("P10DT1S", None), ("P", None), ("PT", None), ("P1Y", None), ("PT-5S", None), (3600, None), ("1H", None)])
def test_played_durations(text, seconds):
    assert cmi5.played_seconds(text) == seconds


@pytest.mark.parametrize(("value", "counts"), [
    ({"questions": 10, "correct": 10}, (10, 10)), ({"questions": 10, "correct": 11}, None),
    ({"questions": 10}, None), ({"questions": True, "correct": 0}, None), ({"questions": -1, "correct": 0}, None),
    ({"questions": 100_000, "correct": 0}, (100_000, 0)), ({"questions": 100_001, "correct": 0}, None)])
def test_exam_counts(value, counts):
    assert cmi5.exam_counts(value) == counts


def test_an_exam_without_the_extension_has_no_questions():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600, exam=(True, 10, 10))
    statements[3]["result"].pop("extensions")
    assert read(statements).exam() == schemas.ExamIn(questions=0, correct=0, passed=True)


def test_the_record_is_keyed_by_the_registration():
    lms = Emitter()
    statements = lms.session(h(0), h(1), played=3600, exam=(True, 10, 10))
    course = uuid.uuid4()
    body = cmi5.record(read(statements), lms.registration, course, "online", PERSON)
    assert body.external_id == f"cmi5:{lms.registration}" and body.course_id == course
    assert body == cmi5.record(read(list(reversed(statements))), lms.registration, course, "online", PERSON)


# ---- the property ------------------------------------------------------------------------------------------

_sitting = st.tuples(st.integers(0, 60 * 24 * 20), st.integers(1, 60 * 14), st.integers(0, 60 * 14),
                     st.integers(0, 20), st.integers(0, 20))


@settings(max_examples=150, deadline=None)
@given(st.lists(_sitting, min_size=1, max_size=6), st.integers(0, 40), st.data(), st.booleans())
def test_a_session_as_statements_is_the_sitting_pushed_as_json(sittings, questions, data, abandon_last):
    """Whatever the sittings: emitted as cmi5 sessions, read back, they are the record the base would have pushed
    as JSON with the same sittings and exam, so the ledger credits both alike."""
    correct = data.draw(st.integers(0, questions))
    passed = data.draw(st.booleans())
    lms = Emitter()
    statements, expected = [], []
    for i, (start_minute, minutes, played_minutes, ok, failed) in enumerate(sittings):
        start = T0 + dt.timedelta(minutes=start_minute + i * 60 * 24 * 21)
        end = start + dt.timedelta(minutes=minutes)
        last = i == len(sittings) - 1
        statements += lms.session(start, end, played=played_minutes * 60, checks=(ok, failed),
                                  exam=(passed, questions, correct) if last else None, completed=i == 0,
                                  ended="abandoned" if last and abandon_last else "terminated")
        expected.append({"started_at": start, "ended_at": end, "media_seconds": played_minutes * 60,
                         "identity_checks": {"passed": ok, "failed": failed}})
    course = uuid.uuid4()
    reading = read(statements)
    if abandon_last:  # an abandoned session ends at the AU's last statement: the same instant here
        assert reading.sessions[-1].ended_by == "abandoned"
    assert reading.violations == []
    assert cmi5.pending_reason(reading) is None if passed else not reading.satisfied
    as_json = schemas.RecordIn.model_validate({
        "external_id": cmi5.external_id(lms.registration), "course_id": course, **PERSON, "sittings": expected,
        "exam": {"questions": questions, "correct": correct, "passed": passed}})
    assert cmi5.record(reading, lms.registration, course, "online", PERSON) == as_json
