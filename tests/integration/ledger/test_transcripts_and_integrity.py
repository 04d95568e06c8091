"""Transcripts, reversals, scopes, PII at rest, and the hash-chained ledger's integrity check."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.db import on_citus
from tests.support.factories import (
    approved_course,
    at,
    make_staff,
    online_sitting,
    professional_form,
    record_body,
    ric,
)
from tests.support.http import assert_problem


async def push(ledger, base, course, person, start, end, **kw):
    response = await ledger.post("/v1/records", json=record_body(course, person, [online_sitting(start, end)], **kw),
                                 headers=base.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_transcript_adds_up_public_and_professional_hours(ledger, catalog, fuzhou, base, course, engine):
    person = ric(101)
    await push(ledger, base, course, person, at("09:00"), at("14:15"))
    topic3 = await approved_course(catalog, base, fuzhou, topic="3", hours=2)
    await push(ledger, base, topic3, person, at("15:00"), at("16:30"))
    reviewer = await make_staff(engine, "authority_reviewer", authority="A20")  # 省卫健委: 卫生
    created = (await catalog.post("/v1/bases", json=professional_form(["A20.1"]), headers=reviewer.headers)).json()
    key = (await catalog.post(f"/v1/bases/{created['id']}/approval", headers=reviewer.headers)).json()["api_key"]
    from tests.support.factories import ApprovedBase
    health = ApprovedBase(created["id"], key)
    pro = await approved_course(catalog, health, reviewer, category="professional", topic=None, field="A20.1",
                                hours=8)
    await push(ledger, health, pro, person, at("09:00", "2026-05-05"), at("15:00", "2026-05-05"))

    response = await ledger.get(f"/v1/people/{person}/transcript?year=2026", headers=fuzhou.headers)
    assert response.status_code == 200, response.text
    t = response.json()
    assert t["id_number"] == person[:6] + "********" + person[-4:]
    assert person not in response.text
    assert t["public"]["credited_hours"] == 9
    assert [(x["code"], x["allotment"], x["credited_hours"]) for x in t["public"]["topics"]] == [
        ("1", 7, 0), ("2", 7, 0), ("3", 2, 2), ("4", 7, 0), ("5", 7, 7)]
    assert t["professional"]["credited_hours"] == 8
    assert t["professional"]["fields"] == [{"code": "A20.1", "credited_hours": 8}]
    assert t["total_hours"] == 17
    assert t["public_requirement_met"] is False and t["yearly_requirement_met"] is False
    assert len(t["records"]) == 3


async def test_the_public_requirement_is_met_at_30(ledger, catalog, fuzhou, base, course, admin):
    person = ric(102)
    days = ["2026-05-04", "2026-05-05", "2026-05-06", "2026-05-07", "2026-05-08"]
    for topic, hours, day in [("1", 7, days[0]), ("2", 7, days[1]), ("3", 2, days[2]), ("4", 7, days[3])]:
        c = await approved_course(catalog, base, fuzhou, topic=topic, hours=hours)
        await push(ledger, base, c, person, at("08:00", day), at("14:00", day))
    await push(ledger, base, course, person, at("08:00", days[4]), at("14:00", days[4]))
    t = (await ledger.get(f"/v1/people/{person}/transcript?year=2026", headers=admin.headers)).json()
    assert t["public"]["credited_hours"] == 30 and t["public_requirement_met"] is True


async def test_staff_see_only_people_in_their_scope(ledger, base, course, engine, auditor):
    person = ric(103)
    await push(ledger, base, course, person, at("09:00"), at("10:00"))
    xiamen = await make_staff(engine, "city_admin", region="350200")
    url = f"/v1/people/{person}/transcript?year=2026"
    assert_problem(await ledger.get(url, headers=xiamen.headers), 403, "out-of-scope")
    assert (await ledger.get(url, headers=auditor.headers)).status_code == 200
    assert_problem(await ledger.get(url, headers=base.headers), 403, "staff-only")
    assert_problem(await ledger.get(f"/v1/people/{ric(999)}/transcript?year=2026", headers=auditor.headers), 404,
                   "person-not-found")


async def test_id_numbers_are_encrypted_at_rest(ledger, base, course, engine):
    person = ric(104)
    await push(ledger, base, course, person, at("09:00"), at("10:00"))
    async with engine.connect() as conn:
        dump = " ".join(str(row) for row in (await conn.execute(sa.text(
            "SELECT p.*, r.* FROM hours_ledger.people p JOIN hours_ledger.records r ON r.person_id = p.id"))).all())
    assert person not in dump and person.encode().hex() not in dump


async def test_a_reversal_removes_the_hours_and_frees_the_day(ledger, base, course, fuzhou, catalog, auditor):
    person = ric(105)
    first = await push(ledger, base, course, person, at("06:00"), at("15:00"))
    assert first["counted_minutes"] == 315
    reversed_ = await ledger.post(f"/v1/records/{first['record_id']}/reversal", json={"reason": "替学核实"},
                                  headers=fuzhou.headers)
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["reversed_hours"] == 7
    assert_problem(await ledger.post(f"/v1/records/{first['record_id']}/reversal", json={"reason": "again"},
                                     headers=fuzhou.headers), 409, "already-reversed")
    t = (await ledger.get(f"/v1/people/{person}/transcript?year=2026", headers=auditor.headers)).json()
    assert t["public"]["credited_hours"] == 0 and t["records"][0]["reversed"] is True
    # The reversed sittings no longer block the time: a correct record for the same hours counts.
    again = await push(ledger, base, course, person, at("06:00"), at("15:00"))
    assert again["counted_minutes"] == 315
    integrity = (await ledger.get("/v1/ledger/integrity", headers=auditor.headers)).json()
    assert integrity == {"valid": True, "entries_checked": 3, "people_checked": 1, "problems": []}


async def test_only_governing_staff_reverse(ledger, base, course, engine, auditor):
    record = await push(ledger, base, course, ric(106), at("09:00"), at("10:00"))
    url = f"/v1/records/{record['record_id']}/reversal"
    xiamen = await make_staff(engine, "city_admin", region="350200")
    assert_problem(await ledger.post(url, json={"reason": "x"}, headers=xiamen.headers), 403, "out-of-scope")
    assert_problem(await ledger.post(url, json={"reason": "x"}, headers=auditor.headers), 403, "role-not-allowed")
    assert_problem(await ledger.post(url, json={"reason": "x"}, headers=base.headers), 403, "staff-only")


async def _tamper(engine, sql: str) -> None:
    citus = await on_citus(engine)
    async with engine.begin() as conn:
        # On a Citus cluster the trigger runs on the workers' shards: the SET LOCAL below goes there too.
        if citus:
            await conn.execute(sa.text("SET LOCAL citus.propagate_set_commands = 'local'"))
        await conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # bypass the append-only trigger
        for statement in sql.split(";"):
            if statement.strip():
                await conn.execute(sa.text(statement))


async def _ledger_with_entries(ledger, base, course):
    person = ric(107)
    for i, (s, e) in enumerate([("08:00", "09:00"), ("10:00", "11:00"), ("12:00", "13:00")]):
        await push(ledger, base, course, person, at(s, f"2026-05-0{i + 4}"), at(e, f"2026-05-0{i + 4}"))


async def test_the_service_itself_cannot_update_or_delete_entries(ledger, base, course, engine):
    await _ledger_with_entries(ledger, base, course)
    for statement in ("UPDATE hours_ledger.entries SET hours = 7", "DELETE FROM hours_ledger.entries"):
        async with engine.connect() as conn:
            try:
                await conn.execute(sa.text(statement))
                raise AssertionError(f"{statement} was allowed")
            except sa.exc.DBAPIError as exc:
                assert "append-only" in str(exc)


async def test_integrity_finds_a_changed_entry(ledger, base, course, engine, auditor):
    await _ledger_with_entries(ledger, base, course)
    await _tamper(engine, "UPDATE hours_ledger.entries SET hours = 7 WHERE seq = 2")
    report = (await ledger.get("/v1/ledger/integrity", headers=auditor.headers)).json()
    assert report["valid"] is False
    assert any(p["seq"] == 2 and "hash" in p["problem"] for p in report["problems"])


async def test_integrity_finds_a_deleted_entry(ledger, base, course, engine, auditor):
    await _ledger_with_entries(ledger, base, course)
    await _tamper(engine, "DELETE FROM hours_ledger.entries WHERE seq = 2")
    report = (await ledger.get("/v1/ledger/integrity", headers=auditor.headers)).json()
    assert report["valid"] is False and report["entries_checked"] == 2


async def test_integrity_finds_a_deleted_last_entry(ledger, base, course, engine, auditor):
    await _ledger_with_entries(ledger, base, course)
    await _tamper(engine, "DELETE FROM hours_ledger.entries WHERE seq = 3")
    assert (await ledger.get("/v1/ledger/integrity", headers=auditor.headers)).json()["valid"] is False


async def test_integrity_finds_reordered_entries(ledger, base, course, engine, auditor):
    await _ledger_with_entries(ledger, base, course)
    await _tamper(engine, "UPDATE hours_ledger.entries SET seq = -1 WHERE seq = 1;"
                          "UPDATE hours_ledger.entries SET seq = 1 WHERE seq = 2;"
                          "UPDATE hours_ledger.entries SET seq = 2 WHERE seq = -1")
    report = (await ledger.get("/v1/ledger/integrity", headers=auditor.headers)).json()
    assert report["valid"] is False


async def test_integrity_finds_a_record_changed_behind_its_entry(ledger, base, course, engine, auditor, fuzhou):
    await _ledger_with_entries(ledger, base, course)
    await _tamper(engine, "UPDATE hours_ledger.records SET credited_hours = 7 WHERE credited_hours = 1")
    report = (await ledger.get("/v1/ledger/integrity", headers=auditor.headers)).json()
    assert report["valid"] is False and "record" in report["problems"][0]["problem"]
    assert_problem(await ledger.get("/v1/ledger/integrity", headers=fuzhou.headers), 403, "role-not-allowed")


# ---- everything a transcript or a proof is computed from is covered ------------------------------------------------

TAMPERING = {
    "a reversal undone": (
        "UPDATE hours_ledger.records SET reversed_at = NULL, reversed_by = NULL, reversal_reason = NULL "
        "WHERE reversed_at IS NOT NULL", "reversal was undone"),
    "a reversal forged": ("UPDATE hours_ledger.records SET reversed_at = now() WHERE id = "
                          "(SELECT id FROM hours_ledger.records WHERE reversed_at IS NULL LIMIT 1)",
                          "without a reversal entry"),
    "a record hidden (its sittings deleted)": (
        "DELETE FROM hours_ledger.sittings WHERE record_id = (SELECT id FROM hours_ledger.records "
        "WHERE reversed_at IS NULL LIMIT 1)", "sittings"),
    "a record moved to another course": (
        "UPDATE hours_ledger.records SET course_id = '6f1c2e0a-4b7d-4e59-9a3b-2d8c1f0e7a55' WHERE id = "
        "(SELECT id FROM hours_ledger.records WHERE reversed_at IS NULL LIMIT 1)", "course"),
    "a record deleted": (
        "DELETE FROM hours_ledger.allocations WHERE record_id = (SELECT id FROM hours_ledger.records "
        "WHERE reversed_at IS NULL LIMIT 1);"
        "DELETE FROM hours_ledger.sittings WHERE record_id = (SELECT id FROM hours_ledger.records "
        "WHERE reversed_at IS NULL LIMIT 1);"
        "DELETE FROM hours_ledger.records WHERE id = (SELECT id FROM hours_ledger.records WHERE reversed_at IS NULL "
        "LIMIT 1)", "is gone"),
    "a record moved to another field": ("UPDATE hours_ledger.records SET category = 'professional', topic = NULL, "
                                        "field = 'A20.1' WHERE reversed_at IS NULL", "category, field, topic"),
    "a record moved to another region": ("UPDATE hours_ledger.records SET unit_region = '350203'", "region"),
    "the person renamed": ("UPDATE hours_ledger.people SET name = '张冒名'", "name is not the one"),
    "a day's total reset": ("UPDATE hours_ledger.person_days SET seconds = 0", "counted allocations"),
    "a record inserted": (
        "INSERT INTO hours_ledger.records (person_id, year, id, base_id, external_id, course_id, category, topic, "
        "field, course_hours, mode, unit_name, unit_uscc, unit_region, counted_seconds, credited_hours, status, "
        "adjustments) SELECT person_id, year, gen_random_uuid(), base_id, 'forged', course_id, category, topic, field, "
        "course_hours, mode, unit_name, unit_uscc, unit_region, counted_seconds, credited_hours, status, adjustments "
        "FROM hours_ledger.records LIMIT 1", "has no ledger entry"),
}


@pytest.mark.parametrize("change", list(TAMPERING))
async def test_integrity_finds_each_change_made_behind_the_services_back(ledger, base, course, engine, auditor,
                                                                        admin, change):
    await _ledger_with_entries(ledger, base, course)
    first = (await ledger.post("/v1/people/transcript", json={"id_number": ric(107), "year": 2026},
                               headers=admin.headers)).json()["records"][0]["record_id"]
    assert (await ledger.post(f"/v1/records/{first}/reversal", json={"reason": "替学"},
                              headers=admin.headers)).status_code == 200
    await ledger.post("/v1/people/name-corrections", json={"id_number": ric(107), "name": "陈晓明", "reason": "证件"},
                      headers=admin.headers)
    clean = (await ledger.get("/v1/ledger/integrity", headers=auditor.headers)).json()
    assert clean["valid"] is True, clean
    sql, expected = TAMPERING[change]
    await _tamper(engine, sql)
    report = (await ledger.get("/v1/ledger/integrity", headers=auditor.headers)).json()
    assert report["valid"] is False
    assert any(expected in p["problem"] for p in report["problems"]), report["problems"]
