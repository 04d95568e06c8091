"""What people read: transcripts name the base and the course in Beijing time, a base learns that its record was
reversed, audit events of stamping, revoking, reversing and staff creation name their target and reason, and
error texts say what happened."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.factories import approved_base, approved_course, online_sitting, record_body, ric
from tests.support.http import assert_problem


async def _events(engine, action: str) -> list[dict]:
    async with AsyncSession(engine) as s:
        rows = (await s.execute(sa.text("SELECT target FROM iam.audit_events WHERE action = :a ORDER BY id"),
                                {"a": action})).all()
    return [r.target for r in rows]


async def test_transcripts_name_bases_and_courses_and_a_base_sees_its_reversal(ledger, catalog, fuzhou, stamps):
    base = await approved_base(catalog, fuzhou)
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    person = ric(911)
    body = record_body(course, person, [online_sitting("2026-05-04T08:00:00+08:00", "2026-05-04T14:00:00+08:00")])
    record = (await ledger.post("/v1/records", json=body, headers=base.headers)).json()
    transcript = (await ledger.post("/v1/people/transcript", json={"id_number": person, "year": 2026},
                                    headers=fuzhou.headers)).json()
    line = transcript["records"][0]
    assert line["base_name"] and line["course_title"]
    assert line["period_beijing"] == "2026-05-04 08:00 – 2026-05-04 14:00"

    seen = (await ledger.get(f"/v1/records/{record['record_id']}", headers=base.headers)).json()
    assert seen["reversed"] is False and seen["reversed_at"] is None
    reversed_ = await ledger.post(f"/v1/records/{record['record_id']}/reversal", json={"reason": "重复上报"},
                                  headers=fuzhou.headers)
    assert reversed_.status_code == 200
    seen = (await ledger.get(f"/v1/records/{record['record_id']}", headers=base.headers)).json()
    assert seen["reversed"] is True and seen["reversal_reason"] == "重复上报" and seen["reversed_at"]


async def test_audit_events_carry_their_target_and_reason(ledger, verification, catalog, admin, engine, fuzhou,
                                                          studied):
    created = await catalog.post("/v1/staff", json={"name": "王审核", "role": "city_admin", "region": "350200"},
                                 headers=admin.headers)
    assert created.status_code == 201, created.text
    staff_id = created.json()["id"]
    assert {"staff": staff_id, "role": "city_admin", "region": "350200", "authority": None} in await _events(
        engine, "POST /v1/staff")

    proof = (await verification.post("/v1/proofs", json={"id_number": studied, "year": 2026, "scope": "public"},
                                     headers=fuzhou.headers)).json()
    stamped = [t for t in await _events(engine, "POST /v1/proofs") if t.get("proof") == proof["proof_id"]]
    assert stamped and stamped[0]["person"].endswith(studied[-4:]) and studied not in str(stamped[0])
    assert stamped[0]["credited_hours"] == 9 and stamped[0]["body"] == "350100"

    await verification.post(f"/v1/proofs/{proof['proof_id']}/revocation", json={"reason": "材料不实"},
                            headers=fuzhou.headers)
    revoked = [t for t in await _events(engine, "POST /v1/proofs/{proof_id}/revocation")
               if t.get("proof") == proof["proof_id"]]
    assert revoked and revoked[0]["reason"] == "材料不实"

    record_id = proof["credential"]["evidence"][0]["id"].removeprefix("urn:uuid:")
    await ledger.post(f"/v1/records/{record_id}/reversal", json={"reason": "代学"}, headers=fuzhou.headers)
    reversal = [t for t in await _events(engine, "POST /v1/records/{record_id}/reversal")
                if t.get("record") == record_id]
    assert reversal and reversal[0]["reason"] == "代学" and reversal[0]["person"].endswith(studied[-4:])
    assert studied not in str(reversal[0])


async def test_error_texts_say_what_happened(ledger, catalog, verification, fuzhou, engine, studied):
    base = await approved_base(catalog, fuzhou)
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    backwards = record_body(course, ric(912), [online_sitting("2026-05-04T14:00:00+08:00",
                                                              "2026-05-04T08:00:00+08:00", media_seconds=3600)])
    problem = assert_problem(await ledger.post("/v1/records", json=backwards, headers=base.headers), 422,
                             "sitting-order")
    assert "ends before it starts" in str(problem)

    proof = (await verification.post("/v1/proofs", json={"id_number": studied, "year": 2026, "scope": "public"},
                                     headers=fuzhou.headers)).json()
    missing = await verification.post(f"/v1/proofs/{proof['proof_id']}/revocation", headers=fuzhou.headers)
    assert missing.status_code == 422 and "reason" in missing.text, missing.text

    forged = {**proof["credential"], "credentialSubject": {**proof["credential"]["credentialSubject"],
                                                           "creditsEarned": 90}}
    result = (await verification.post("/v1/verifications", json={"credential": forged})).json()
    assert result["verified"] is False and result["credits"] is None and result["claimed_credits"] == 90
