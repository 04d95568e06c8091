"""cmi5 through the LRS: a course's AUs, a registration enrolled, launch data in the State API, statements, one
record credited by the same rules as every door, the outcome read back, a transcript. Real PostgreSQL, real apps."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import uuid

import pytest
import sqlalchemy as sa
from hours_ledger.xapi import cmi5

from tests.support.cmi5 import AU, LEARNER, Emitter, launch_data
from tests.support.factories import approved_base, approved_course, base_form, record_body, ric, uscc
from tests.support.http import assert_problem

V = {"X-Experience-API-Version": "1.0.3"}
BJ = dt.timezone(dt.timedelta(hours=8))
AU2 = "https://courses.example.cn/ai-gov/au/2"
UNIT = {"name": "福州市第一医院", "uscc": uscc(4242), "region": "350102"}


def basic(base) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{base.id}:{base.key}".encode()).decode(), **V}


def day(d: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(2026, 5, d, hh, mm, tzinfo=BJ)


def enrolment(course, person: str, actor=None, **more) -> dict:
    return {"course_id": str(course), "actor": actor or LEARNER, "id_type": "RIC", "id_number": person,
            "name": "陈小明", "unit": UNIT, **more}


@pytest.fixture
async def cmi5_course(catalog, base, fuzhou):
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    put = await catalog.put(f"/v1/courses/{course}/xapi-activity-ids", json={"xapi_activity_ids": [AU]},
                            headers=base.headers)
    assert put.status_code == 200, put.text
    assert put.json()["xapi_activity_ids"] == [AU]
    return course


async def send(ledger, base, statements) -> None:
    posted = await ledger.post("/xapi/statements", json=statements, headers=basic(base))
    assert posted.status_code == 200, posted.text


async def outcome(ledger, base, registration) -> dict:
    got = await ledger.get("/v1/records", params={"registration": registration}, headers=base.headers)
    assert got.status_code == 200, got.text
    return got.json()


async def test_a_cmi5_course_end_to_end(ledger, base, cmi5_course, fuzhou, engine):
    person = ric(611)
    lms = Emitter()
    reg = lms.registration
    enrolled = await ledger.put(f"/v1/registrations/{reg}", json=enrolment(cmi5_course, person),
                                headers=base.headers)
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json()["id_number"] == person[:6] + "********" + person[-4:]
    again = await ledger.put(f"/v1/registrations/{reg}", json=enrolment(cmi5_course, person), headers=base.headers)
    assert again.status_code == 200
    # The LMS writes the launch data before the launch (cmi5 §10), in the State API.
    state = await ledger.put("/xapi/activities/state", params={
        "activityId": AU, "agent": json.dumps(LEARNER), "registration": reg, "stateId": cmi5.LAUNCH_DATA},
        json=launch_data("CompletedAndPassed"), headers=basic(base))
    assert state.status_code == 204, state.text

    # First session: five hours of study, completed, no exam yet: moveOn is not met.
    await send(ledger, base, lms.session(day(4, 9), day(4, 14), played=5 * 3600, exam=None))
    pending = await outcome(ledger, base, reg)
    assert pending["state"] == "pending" and pending["record"] is None
    assert pending["pending_reason"].startswith("moveOn is not met")
    assert pending["units"] == [{"au": AU, "move_on": "CompletedAndPassed", "completed": True, "passed": False,
                                 "waived": False, "satisfied": False}]
    # Second session: three more hours and the exam, passed: the registration becomes one record.
    await send(ledger, base, lms.session(day(5, 9), day(5, 12), played=3 * 3600, exam=(True, 20, 18),
                                         completed=False))
    done = await outcome(ledger, base, reg)
    assert done["state"] == "recorded", done
    assert done["external_id"] == f"cmi5:{reg}" and done["violations"] == []
    assert done["record"]["credited_hours"] == 7 and done["record"]["status"] == "credited"
    assert [s["sitting"] for s in done["sessions"]] == [True, True]
    assert done["exam"] == {"questions": 20, "correct": 18, "passed": True}
    assert len(done["statements"]) == 8
    statements = await ledger.get("/xapi/statements", params={"registration": reg}, headers=basic(base))
    assert {s["id"] for s in statements.json()["statements"]} == set(done["statements"])
    # The transcript holds it like any record.
    transcript = await ledger.post("/v1/people/transcript", json={"id_number": person, "year": 2026},
                                   headers=fuzhou.headers)
    assert transcript.status_code == 200, transcript.text
    records = transcript.json()["records"]
    assert [(r["external_id"], r["credited_hours"]) for r in records] == [(f"cmi5:{reg}", 7)]
    assert transcript.json()["public"]["credited_hours"] == 7
    # The ID number is nowhere in clear: not in a statement, a document or the registration row.
    async with engine.connect() as conn:
        for table in ("xapi_statements", "xapi_documents", "xapi_registrations"):
            dump = (await conn.execute(sa.text(f"SELECT string_agg(t::text, '') FROM hours_ledger.{table} t"))).scalar()
            assert person not in (dump or ""), table

    # A session after the record is stored and named, and credits nothing more.
    await send(ledger, base, lms.session(day(6, 9), day(6, 10), played=3600, completed=False))
    later = await outcome(ledger, base, reg)
    assert later["state"] == "recorded" and later["record"]["credited_hours"] == 7
    assert {v["rule"] for v in later["violations"]} == {"xueshi-after-record"}
    assert len(later["violations"]) == 3


async def test_statements_credit_what_the_same_sittings_pushed_as_json_credit(ledger, base, cmi5_course, catalog,
                                                                              fuzhou):
    """One session over the daily limit and one short one: the adjustments are the rules' own."""
    lms = Emitter()
    person, twin = ric(612), ric(613)
    assert (await ledger.put(f"/v1/registrations/{lms.registration}", json=enrolment(cmi5_course, person),
                             headers=base.headers)).status_code == 201
    sessions = [(day(4, 6), day(4, 20), 13 * 3600, None), (day(7, 9), day(7, 9, 30), 1500, (True, 12, 11))]
    for start, end, played, exam in sessions:
        await send(ledger, base, lms.session(start, end, played=played, exam=exam, checks=(3, 1)))
    via_xapi = await outcome(ledger, base, lms.registration)
    assert via_xapi["state"] == "recorded", via_xapi
    json_course = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    pushed = await ledger.post("/v1/records", json=record_body(json_course, twin, [
        {"started_at": s.isoformat(), "ended_at": e.isoformat(), "media_seconds": p,
         "identity_checks": {"passed": 3, "failed": 1}} for s, e, p, _ in sessions],
        exam={"questions": 12, "correct": 11, "passed": True}), headers=base.headers)
    assert pushed.status_code == 201, pushed.text
    for key in ("credited_hours", "counted_minutes", "status"):
        assert via_xapi["record"][key] == pushed.json()[key]
    assert [(a["rule"], a["minutes"]) for a in via_xapi["record"]["adjustments"]] == \
        [(a["rule"], a["minutes"]) for a in pushed.json()["adjustments"]]
    assert via_xapi["record"]["adjustments"]


async def test_refusals_are_the_ledgers_own(ledger, base, cmi5_course):
    """No played duration on an online session: the ledger's `no-process-record`, named in the outcome."""
    lms = Emitter()
    assert (await ledger.put(f"/v1/registrations/{lms.registration}", json=enrolment(cmi5_course, ric(614)),
                             headers=base.headers)).status_code == 201
    await send(ledger, base, lms.session(day(4, 9), day(4, 14), played=None, exam=(True, 10, 10)))
    refused = await outcome(ledger, base, lms.registration)
    assert refused["state"] == "refused" and refused["record"] is None
    assert refused["problem"]["type"] == "/problems/no-process-record"


async def test_an_exam_of_nine_questions_credits_nothing(ledger, base, cmi5_course):
    lms = Emitter()
    assert (await ledger.put(f"/v1/registrations/{lms.registration}", json=enrolment(cmi5_course, ric(615)),
                             headers=base.headers)).status_code == 201
    await send(ledger, base, lms.session(day(4, 9), day(4, 14), played=5 * 3600, exam=(True, 9, 9)))
    got = await outcome(ledger, base, lms.registration)
    assert got["state"] == "refused" and got["record"] is None, got
    assert got["problem"]["type"] == "/problems/exam-too-short"


async def test_waived_never_credits_by_itself(ledger, base, cmi5_course, catalog):
    lms = Emitter()
    assert (await ledger.put(f"/v1/registrations/{lms.registration}", json=enrolment(cmi5_course, ric(616)),
                             headers=base.headers)).status_code == 201
    await send(ledger, base, [lms.waived(day(4, 9))])
    got = await outcome(ledger, base, lms.registration)
    assert got["state"] == "pending" and got["units"][0]["waived"] and got["units"][0]["satisfied"]
    assert got["pending_reason"].startswith("no session to credit")


async def test_broken_ordering_is_stored_named_and_not_credited(ledger, base, cmi5_course):
    lms = Emitter()
    assert (await ledger.put(f"/v1/registrations/{lms.registration}", json=enrolment(cmi5_course, ric(617)),
                             headers=base.headers)).status_code == 201
    first = lms.session(day(4, 9), day(4, 14), played=5 * 3600, exam=(False, 10, 3))
    sid = first[1]["context"]["extensions"][cmi5.SESSION_ID]
    # passed after failed in the same session: a second judgement, not read
    sneaky = lms.statement(cmi5.PASSED, day(4, 13, 59) + dt.timedelta(seconds=59.5), sid, result={
        "success": True, "extensions": {lms.ext.exam: {"questions": 10, "correct": 10}}})
    await send(ledger, base, first[:-1] + [sneaky, first[-1]])
    got = await outcome(ledger, base, lms.registration)
    assert got["state"] == "pending" and got["exam"] == {"questions": 10, "correct": 3, "passed": False}
    assert [(v["statement_id"], v["rule"]) for v in got["violations"]] == [(sneaky["id"], "cmi5-9.3-passed-and-failed")]
    stored = await ledger.get("/xapi/statements", params={"statementId": sneaky["id"]}, headers=basic(base))
    assert stored.status_code == 200  # kept in the LRS whatever the rules decide


async def test_enrolment_is_checked(ledger, catalog, base, cmi5_course, fuzhou):
    reg = str(uuid.uuid4())
    person = ric(618)
    no_account = {"objectType": "Agent", "mbox": "mailto:xiaoming@example.cn"}
    assert_problem(await ledger.put(f"/v1/registrations/{reg}", json=enrolment(cmi5_course, person, no_account),
                                    headers=base.headers), 422, "cmi5-9.2-actor")
    bad = enrolment(cmi5_course, person[:-1] + ("0" if person[-1] != "0" else "1"))
    assert_problem(await ledger.put(f"/v1/registrations/{reg}", json=bad, headers=base.headers), 422, "id-number")
    plain = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    assert_problem(await ledger.put(f"/v1/registrations/{reg}", json=enrolment(plain, person), headers=base.headers),
                   422, "xapi-no-activities")
    assert (await ledger.put(f"/v1/registrations/{reg}", json=enrolment(cmi5_course, person),
                             headers=base.headers)).status_code == 201
    assert_problem(await ledger.put(f"/v1/registrations/{reg}", json=enrolment(cmi5_course, ric(619)),
                                    headers=base.headers), 409, "registration-mismatch")
    # Another base neither reads it nor enrols in the first base's course.
    other = await approved_base(catalog, fuzhou, base_form(unit_name="另一个教育科技有限公司", uscc=uscc(779)))
    assert_problem(await ledger.get("/v1/records", params={"registration": reg}, headers=other.headers), 404,
                   "registration-not-found")
    assert_problem(await ledger.put(f"/v1/registrations/{uuid.uuid4()}", json=enrolment(cmi5_course, person),
                                    headers=other.headers), 422, "course-unknown")
    assert (await ledger.put(f"/v1/registrations/{reg}", json=enrolment(cmi5_course, person))).status_code == 401


async def test_activity_ids_belong_to_one_course_of_a_base(catalog, base, cmi5_course, fuzhou):
    second = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    assert_problem(await catalog.put(f"/v1/courses/{second}/xapi-activity-ids", json={"xapi_activity_ids": [AU]},
                                     headers=base.headers), 409, "xapi-activity-id-taken")
    assert_problem(await catalog.put(f"/v1/courses/{second}/xapi-activity-ids",
                                     json={"xapi_activity_ids": [AU2, AU2]}, headers=base.headers),
                   422, "xapi-activity-id-repeated")
    invalid = assert_problem(await catalog.put(f"/v1/courses/{second}/xapi-activity-ids",
                                               json={"xapi_activity_ids": ["not an iri"]}, headers=base.headers), 422)
    assert invalid["errors"][0]["rule"] == "xapi-activity-id"
    offline = await approved_course(catalog, base, fuzhou, topic="5", hours=7, mode="offline", exam_questions=0)
    assert_problem(await catalog.put(f"/v1/courses/{offline}/xapi-activity-ids", json={"xapi_activity_ids": [AU2]},
                                     headers=base.headers), 422, "xapi-course-mode")
    other = await approved_base(catalog, fuzhou, base_form(unit_name="另一个教育科技有限公司", uscc=uscc(780)))
    assert_problem(await catalog.put(f"/v1/courses/{second}/xapi-activity-ids", json={"xapi_activity_ids": [AU2]},
                                     headers=other.headers), 403, "other-base")
    assert (await catalog.put(f"/v1/courses/{second}/xapi-activity-ids", json={"xapi_activity_ids": [AU2]},
                              headers=base.headers)).json()["xapi_activity_ids"] == [AU2]


async def test_the_extensions_resolve_to_their_schemas(ledger):
    for name in ("played", "identity-checks", "exam"):
        got = await ledger.get(f"/xapi/extensions/{name}")
        assert got.status_code == 200 and got.headers["content-type"].startswith("application/schema+json")
        assert got.json()["$id"].endswith(f"/xapi/extensions/{name}")
    assert (await ledger.get("/xapi/extensions/nope")).status_code == 404


async def test_concurrent_session_ends_write_one_record(ledger, base, cmi5_course):
    """Two AUs' sessions end at once (two requests): the registration is settled once, under its row lock."""
    lms = Emitter()
    assert (await ledger.put(f"/v1/registrations/{lms.registration}", json=enrolment(cmi5_course, ric(620)),
                             headers=base.headers)).status_code == 201
    a = lms.session(day(4, 9), day(4, 12), played=3 * 3600, exam=(True, 10, 10))
    b = lms.session(day(5, 9), day(5, 12), played=3 * 3600, completed=False)
    await send(ledger, base, a[:-1] + b[:-1])
    await asyncio.gather(send(ledger, base, [a[-1]]), send(ledger, base, [b[-1]]))
    got = await outcome(ledger, base, lms.registration)
    assert got["state"] == "recorded" and got["record"]["credited_hours"] == 7
    assert [s["sitting"] for s in got["sessions"]] in ([True, True], [True])


async def test_many_sessions_ending_at_once_are_settled_together(ledger, base, cmi5_course, engine):
    """Sixteen learners' sessions end in sixteen concurrent requests: the settler writes them in groups (one set
    of the intake each), and every registration ends recorded with the rules' answer."""
    emitters = [Emitter(actor={"objectType": "Agent", "account": {"homePage": "https://lms.example.cn",
                                                                  "name": f"u-{i}"}}) for i in range(16)]
    sessions = []
    for i, lms in enumerate(emitters):
        assert (await ledger.put(f"/v1/registrations/{lms.registration}", json=enrolment(
            cmi5_course, ric(700 + i), lms.actor), headers=base.headers)).status_code == 201
        session = lms.session(day(4, 8), day(4, 14), played=6 * 3600, exam=(True, 10, 10))
        await send(ledger, base, session[:-1])
        sessions.append(session[-1])
    await asyncio.gather(*(send(ledger, base, [last]) for last in sessions))
    # Settled by the statements' requests themselves (read in the database: reading the outcome would settle).
    async with engine.connect() as conn:
        states = dict((await conn.execute(sa.text(
            "SELECT state, count(*) FROM hours_ledger.xapi_registrations GROUP BY state"))).all())
    assert states == {"recorded": 16}
    for lms in emitters:
        assert (await outcome(ledger, base, lms.registration))["record"]["credited_hours"] == 7

