"""Proofs that stay true: a reversal of a covered record supersedes the proof (the API, the page, the status list
and the PDF download say so, with the date), the stamping body sees it waiting to be stamped again, a newer proof
supersedes the older, and HR finds a person's proofs by the ID number in the body."""

from __future__ import annotations

import base64
import gzip

from sqlalchemy.ext.asyncio import AsyncSession
from verification.service import sweep_reversals

from tests.support.factories import make_staff
from tests.support.http import assert_problem


async def _stamp(verification, staff, person, year: int = 2026) -> dict:
    response = await verification.post("/v1/proofs", json={"id_number": person, "year": year, "scope": "public"},
                                       headers=staff.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _status_bit(verification, credential: dict) -> bool:
    entry = credential["credentialStatus"]
    listed = (await verification.get("/v1/status-lists/" + entry["statusListCredential"].split("/v1/status-lists/")[1]))
    encoded = listed.json()["credentialSubject"]["encodedList"]
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    index = int(entry["statusListIndex"])
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


async def _reverse_one(ledger, verification, staff, proof: dict) -> str:
    record_id = proof["credential"]["evidence"][0]["id"].removeprefix("urn:uuid:")
    reversed_ = await ledger.post(f"/v1/records/{record_id}/reversal", json={"reason": "代学，核查撤销"},
                                  headers=staff.headers)
    assert reversed_.status_code == 200, reversed_.text
    return record_id


async def test_a_reversal_supersedes_the_proof_everywhere(ledger, verification, fuzhou, studied, engine):
    proof = await _stamp(verification, fuzhou, studied)
    credential = proof["credential"]
    assert (await verification.post("/v1/verifications", json={"credential": credential})).json()["verified"] is True
    await _reverse_one(ledger, verification, fuzhou, proof)

    # The sweep (the service runs it every XUESHI_SUPERSEDE_SECONDS) sets the status bit: offline verifiers see it.
    assert await _status_bit(verification, credential) is False
    async with AsyncSession(engine) as s, s.begin():
        assert await sweep_reversals(s) == 1
    assert await _status_bit(verification, credential) is True
    async with AsyncSession(engine) as s, s.begin():
        assert await sweep_reversals(s) == 0  # once

    result = (await verification.post("/v1/verifications", json={"credential": credential})).json()
    assert result["verified"] is False and result["revoked"] is False and result["status"] == "superseded"
    assert result["superseded_by"] is None and "代学，核查撤销" in result["status_reason"]
    assert result["status_since"] is not None
    status = next(c for c in result["checks"] if c["check"] == "status")
    assert status["ok"] is False and "superseded because its records changed on 2" in status["detail"]

    page = await verification.get(proof["verify_url"].split("8003", 1)[1])
    assert page.status_code == 200 and "已失效（已被取代）" in page.text and "失效时间" in page.text
    assert_problem(await verification.get(f"/v1/proofs/{proof['proof_id']}/pdf"), 410, "proof-superseded")
    signed = await verification.get(f"/v1/proofs/{proof['proof_id']}")
    assert signed.status_code == 200 and signed.json() == credential  # the credential stays what was signed

    waiting = await verification.get("/v1/proofs/awaiting-restamp", headers=fuzhou.headers)
    assert [p["proof_id"] for p in waiting.json()["proofs"]] == [proof["proof_id"]]
    assert waiting.json()["proofs"][0]["masked_id"].endswith(studied[-4:])
    xiamen = await make_staff(engine, "city_admin", region="350200")
    assert (await verification.get("/v1/proofs/awaiting-restamp", headers=xiamen.headers)).json()["proofs"] == []

    # Stamped again: the new proof has the remaining 学时, and the queue is empty.
    again = await _stamp(verification, fuzhou, studied)
    assert again["credential"]["credentialSubject"]["creditsEarned"] == 2
    assert (await verification.get("/v1/proofs/awaiting-restamp", headers=fuzhou.headers)).json()["proofs"] == []


async def test_a_reversal_is_seen_at_once_by_a_read_before_any_sweep(ledger, verification, fuzhou, studied):
    proof = await _stamp(verification, fuzhou, studied)
    await _reverse_one(ledger, verification, fuzhou, proof)
    result = (await verification.post("/v1/verifications", json={"credential": proof["credential"]})).json()
    assert result["status"] == "superseded" and result["verified"] is False
    assert await _status_bit(verification, proof["credential"]) is True  # the read set it


async def test_a_newer_proof_supersedes_the_older_and_hr_lists_both(verification, fuzhou, studied, engine):
    first = await _stamp(verification, fuzhou, studied)
    second = await _stamp(verification, fuzhou, studied)
    assert second["supersedes"] == [first["proof_id"]]
    older = (await verification.post("/v1/verifications", json={"credential": first["credential"]})).json()
    assert older["status"] == "superseded" and older["superseded_by"] == second["proof_id"]
    assert await _status_bit(verification, first["credential"]) is True
    assert_problem(await verification.get(f"/v1/proofs/{first['proof_id']}/pdf"), 410, "proof-superseded")
    page = await verification.get(f"/verify/{first['proof_id']}")
    assert second["proof_id"] in page.text

    listed = await verification.post("/v1/people/proofs", json={"id_number": studied}, headers=fuzhou.headers)
    assert listed.status_code == 200, listed.text
    proofs = listed.json()["proofs"]
    assert [(p["proof_id"], p["status"]) for p in proofs] == [(second["proof_id"], "valid"),
                                                            (first["proof_id"], "superseded")]
    assert proofs[1]["superseded_by"] == second["proof_id"] and proofs[0]["credited_hours"] == 9
    assert studied not in listed.text

    # Out of scope: the same empty answer for this person as for nobody at all; and never for a base.
    xiamen = await make_staff(engine, "city_admin", region="350200")
    for number in (studied, "350102199001010016"):
        other = await verification.post("/v1/people/proofs", json={"id_number": number}, headers=xiamen.headers)
        assert other.status_code == 200 and other.json() == {"proofs": []}
    province = await make_staff(engine, "province_admin")
    assert len((await verification.post("/v1/people/proofs", json={"id_number": studied, "year": 2026},
                                        headers=province.headers)).json()["proofs"]) == 2
    assert (await verification.post("/v1/people/proofs", json={"id_number": studied, "year": 2025},
                                    headers=province.headers)).json() == {"proofs": []}
    assert (await verification.post("/v1/people/proofs", json={"id_number": studied})).status_code == 401


async def test_a_revoked_proofs_pdf_is_gone_with_its_reason(verification, fuzhou, studied):
    proof = await _stamp(verification, fuzhou, studied)
    revoked = await verification.post(f"/v1/proofs/{proof['proof_id']}/revocation", json={"reason": "材料不实"},
                                      headers=fuzhou.headers)
    assert revoked.status_code == 200
    gone = await verification.get(f"/v1/proofs/{proof['proof_id']}/pdf")
    assert_problem(gone, 410, "proof-revoked")
    assert "材料不实" in gone.json()["detail"]
    assert (await verification.get(f"/v1/proofs/{proof['proof_id']}")).status_code == 200
    result = (await verification.post("/v1/verifications", json={"credential": proof["credential"]})).json()
    assert result["status"] == "revoked" and result["revoked"] is True and result["status_reason"] == "材料不实"


async def test_stamps_at_the_same_moment_leave_exactly_one_proof_standing(verification, fuzhou, studied, engine):
    import asyncio

    import sqlalchemy as sa

    body = {"id_number": studied, "year": 2026, "scope": "public"}
    answers = await asyncio.gather(*(verification.post("/v1/proofs", json=body, headers=fuzhou.headers)
                                     for _ in range(6)))
    assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
    ids = [a.json()["proof_id"] for a in answers]
    async with AsyncSession(engine) as s:
        standing = (await s.execute(sa.text(
            "SELECT id FROM verification.proofs WHERE id = ANY(CAST(:ids AS uuid[])) AND superseded_at IS NULL "
            "AND revoked_at IS NULL"), {"ids": ids})).scalars().all()
    assert len(standing) == 1
    listed = (await verification.post("/v1/people/proofs", json={"id_number": studied},
                                      headers=fuzhou.headers)).json()["proofs"]
    assert [p["status"] for p in listed].count("valid") == 1


async def test_a_name_correction_supersedes_the_proofs_that_carry_the_old_name(ledger, verification, fuzhou, studied,
                                                                              engine):
    proof = await _stamp(verification, fuzhou, studied)
    corrected = await ledger.post("/v1/people/name-corrections", json={
        "id_number": studied, "name": "陈晓明", "reason": "身份证核对"}, headers=fuzhou.headers)
    assert corrected.status_code == 201, corrected.text
    async with AsyncSession(engine) as s, s.begin():
        assert await sweep_reversals(s) == 1
    assert await _status_bit(verification, proof["credential"]) is True
    result = (await verification.post("/v1/verifications", json={"credential": proof["credential"]})).json()
    assert result["status"] == "superseded" and "name" in result["status_reason"]
    again = await _stamp(verification, fuzhou, studied)
    assert {i["identityHash"] for i in again["credential"]["credentialSubject"]["identifier"]} >= {"陈晓明"}
