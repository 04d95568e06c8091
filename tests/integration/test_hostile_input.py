"""What a hostile client tries, refused as a class: ID numbers kept out of URLs, answers and logs; the same answer
for people in and out of sight; duplicate JSON keys; floods of failed logins; formulas in spreadsheets."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from hours_ledger.app import create_app as create_ledger
from xueshi_shared.exports import csv_document, safe_cell
from xueshi_shared.observability import RedactingJsonFormatter

from tests.support.factories import approved_base, approved_course, at, make_staff, online_sitting, record_body, ric
from tests.support.http import assert_problem, running


async def pushed(ledger, catalog, fuzhou) -> str:
    base = await approved_base(catalog, fuzhou)
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    person = ric(900)
    body = record_body(course, person, [online_sitting(at("09:00"), at("10:30"))])
    assert (await ledger.post("/v1/records", json=body, headers=base.headers)).status_code == 201
    return person


# ---- ID numbers leave URLs, answers and logs ---------------------------------------------------------------------

async def test_a_transcript_is_asked_for_with_the_number_in_the_body(ledger, catalog, engine):
    fuzhou = await make_staff(engine, "city_admin", region="350100")
    person = await pushed(ledger, catalog, fuzhou)
    answer = await ledger.post("/v1/people/transcript", json={"id_number": person, "year": 2026},
                               headers=fuzhou.headers)
    assert answer.status_code == 200 and answer.json()["public"]["credited_hours"] == 2
    assert person not in answer.text
    old = await ledger.get(f"/v1/people/{person}/transcript?year=2026", headers=fuzhou.headers)
    assert old.status_code == 200 and old.headers["Deprecation"] == "true"
    assert "successor-version" in old.headers["Link"]


async def test_no_problem_names_a_full_id_number(ledger, admin):
    number = ric(901)
    refused = await ledger.get(f"/v1/people/{number}/transcript?year=2026", headers=admin.headers)
    problem = assert_problem(refused, 404, "person-not-found")
    assert number not in refused.text and problem["instance"] == f"/v1/people/{number[:6]}********{number[-4:]}/transcript"
    assert refused.headers["Deprecation"] == "true"
    unmatched = await ledger.get(f"/v1/nothing/{number}", headers=admin.headers)
    assert number not in unmatched.text


async def test_no_log_line_holds_an_id_number_or_a_token():
    formatter = RedactingJsonFormatter("%(message)s")
    record = logging.LogRecord("xueshi", logging.ERROR, __file__, 1, "lookup of %s with %s failed", (
        "350102199003070012", "xs_tpTyE-zMZnPgZQT2DIWq5q0hCNRVPTyYSWe0gnG7UHs"), None)
    line = formatter.format(record)
    assert "350102199003070012" not in line and "350102********0012" in line
    assert "tpTyE" not in line and "xs_…" in line
    assert "12345678901234567890" in formatter.format(logging.LogRecord(
        "x", logging.INFO, __file__, 1, "a longer run of digits 12345678901234567890 is not one", (), None))


async def test_staff_out_of_scope_get_the_same_answer_for_anyone(ledger, catalog, engine):
    fuzhou = await make_staff(engine, "city_admin", region="350100")
    person = await pushed(ledger, catalog, fuzhou)
    xiamen = await make_staff(engine, "city_admin", region="350200")
    known = await ledger.post("/v1/people/transcript", json={"id_number": person, "year": 2026},
                              headers=xiamen.headers)
    unknown = await ledger.post("/v1/people/transcript", json={"id_number": ric(902), "year": 2026},
                                headers=xiamen.headers)
    assert known.status_code == unknown.status_code == 403
    assert known.json() == unknown.json()


# ---- duplicate keys -----------------------------------------------------------------------------------------------

async def test_a_key_twice_in_one_object_is_refused_before_anything_reads_it(ledger, catalog, engine):
    fuzhou = await make_staff(engine, "city_admin", region="350100")
    base = await approved_base(catalog, fuzhou)
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    body = ('{"external_id": "dup-1", "course_id": "COURSE", "id_type": "RIC", "id_number": "NUMBER", '
            '"name": "陈小明", "name": "王五", "unit": {"name": "福州市第一医院", "uscc": "91350100M000100Y43", '
            '"region": "350102"}, "sittings": []}').replace("COURSE", str(course)).replace("NUMBER", ric(903))
    headers = {**base.headers, "Content-Type": "application/json"}
    for path in ("/v1/records", "/v1/records/batch"):
        content = body if path == "/v1/records" else '{"records": [' + body + "]}"
        problem = assert_problem(await ledger.post(path, content=content, headers=headers), 422, "duplicate-key")
        assert problem["field"] == "name"
    nested = '{"decision": "approved", "reviewers": ["甲"], "checks": {"wording": true, "wording": false, ' \
             '"policy": true, "ideology": true}}'
    assert_problem(await catalog.post(f"/v1/courses/{course}/review", content=nested,
                                      headers={**fuzhou.headers, "Content-Type": "application/json"}), 422,
                   "duplicate-key")


async def test_a_credential_with_a_duplicate_claim_is_refused(verification):
    content = '{"credential": {"credentialSubject": {"creditsEarned": 90, "creditsEarned": 11}}}'
    response = await verification.post("/v1/verifications", content=content,
                                       headers={"Content-Type": "application/json"})
    assert assert_problem(response, 422, "duplicate-key")["field"] == "creditsEarned"


# ---- failed authentications -------------------------------------------------------------------------------------

async def test_a_flood_of_failed_logins_is_slowed_and_does_not_flood_the_audit_trail(settings, engine):
    async def audited() -> int:
        async with engine.connect() as conn:
            return await conn.scalar(sa.text(
                "SELECT count(*) FROM iam.audit_events WHERE outcome LIKE 'authentication-failed%'"))

    before = await audited()
    async with running(create_ledger(settings.model_copy(update={"failed_auth_per_minute": 5}))) as ledger:
        codes = [(await ledger.get("/v1/ledger/integrity", headers={"Authorization": f"Bearer xs_wrong{i}"})).status_code
                 for i in range(8)]
        pushes = [(await ledger.post("/v1/records", json={}, headers={"Authorization": "Bearer xs_nope"})).status_code
                  for _ in range(2)]
    assert codes == [401] * 5 + [429] * 3 and pushes == [429, 429]
    assert await audited() - before == 5


# ---- spreadsheets -------------------------------------------------------------------------------------------------

def test_cells_a_spreadsheet_would_run_are_neutralised():
    for formula in ("=HYPERLINK(\"http://x\",\"详情\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"):
        assert safe_cell(formula) == "'" + formula
    assert safe_cell("福州") == "福州" and safe_cell(-3) == -3 and safe_cell(None) is None
    document = csv_document(["title", "n"], [{"title": "=1+1", "n": -1}])
    assert document.splitlines()[1] == "'=1+1,-1"


async def test_the_seminar_overview_export_neutralises_a_formula_in_a_title(catalog, admin, auditor):
    from tests.integration.seminars.test_seminars import project

    created = await catalog.post("/v1/seminars", json=project(title='=HYPERLINK("http://evil","点击")'),
                                 headers=admin.headers)
    assert created.status_code == 201, created.text
    csv = (await catalog.get("/v1/seminar-overview/2025?format=csv", headers=auditor.headers)).text
    assert ",'=HYPERLINK(" in csv.replace('"', "")


async def test_a_request_id_shaped_like_an_id_number_is_not_taken(ledger):
    number = ric(904)
    answered = await ledger.get("/healthz", headers={"X-Request-ID": number})
    assert answered.headers["x-request-id"] != number and number not in str(answered.headers)
    kept = await ledger.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert kept.headers["x-request-id"] == "trace-42"
