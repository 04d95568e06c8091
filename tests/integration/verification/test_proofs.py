"""Stamping proofs, publishing, revoking and verifying them."""

from __future__ import annotations

import copy

from verification.domain.encoding import decode_status_list, status_bit

from tests.support.factories import make_staff
from tests.support.http import assert_problem


async def stamp(verification, staff, person, **body):
    response = await verification.post("/v1/proofs", json={"id_number": person, "year": 2026, "scope": "public",
                                                           **body}, headers=staff.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_city_bureau_stamps_a_persons_public_hours(verification, fuzhou, studied):
    proof = await stamp(verification, fuzhou, studied)
    credential = proof["credential"]
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["issuer"]["id"].endswith(":issuers:350100")
    assert credential["issuer"]["name"] == "福州市人力资源和社会保障局"
    subject = credential["credentialSubject"]
    assert subject["creditsEarned"] == 9 and subject["achievement"]["creditsAvailable"] == 30
    assert [r["value"] for r in subject["result"]] == ["0", "0", "2", "0", "7"]
    assert len(credential["evidence"]) == 2
    assert credential["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    assert credential["credentialStatus"]["type"] == "BitstringStatusListEntry"
    assert studied not in str(credential) and studied[:6] not in str(credential)  # the last four characters only
    ids = {i["identityType"]: i for i in subject["identifier"]}
    assert set(ids) == {"name", "identifier"} and ids["identifier"]["identityHash"] == "*" * 14 + studied[-4:]

    published = await verification.get(f"/v1/proofs/{proof['proof_id']}")
    assert published.status_code == 200 and published.json() == credential
    pdf = await verification.get(f"/v1/proofs/{proof['proof_id']}/pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert proof["verify_url"].endswith(f"/verify/{proof['proof_id']}")


async def test_verification_checks_proof_issuer_status_validity_and_holder(verification, fuzhou, studied):
    credential = (await stamp(verification, fuzhou, studied))["credential"]
    result = (await verification.post("/v1/verifications", json={"credential": credential,
                                                                 "id_number": studied})).json()
    assert result["verified"] is True and result["revoked"] is False and result["credits"] == 9
    assert {c["check"]: c["ok"] for c in result["checks"]} == {
        "issuer": True, "proof": True, "validity": True, "status": True, "holder": True}
    other = (await verification.post("/v1/verifications", json={"credential": credential,
                                                                "id_number": "350102199003070012"})).json()
    assert other["verified"] is False and {c["check"]: c["ok"] for c in other["checks"]}["holder"] is False


async def test_a_changed_credential_fails_verification(verification, fuzhou, studied):
    credential = (await stamp(verification, fuzhou, studied))["credential"]
    for change in (lambda c: c["credentialSubject"].__setitem__("creditsEarned", 30),
                   lambda c: c["credentialSubject"]["identifier"][0].__setitem__("identityHash", "张三"),
                   lambda c: c.__setitem__("validFrom", "2020-01-01T00:00:00Z"),
                   lambda c: c.__setitem__("extraClaim", "unsigned")):
        forged = copy.deepcopy(credential)
        change(forged)
        result = (await verification.post("/v1/verifications", json={"credential": forged})).json()
        assert result["verified"] is False, forged


async def test_revocation_flips_the_status_bit_and_shows_everywhere(verification, fuzhou, studied, engine):
    proof = await stamp(verification, fuzhou, studied)
    xiamen = await make_staff(engine, "city_admin", region="350200")
    url = f"/v1/proofs/{proof['proof_id']}/revocation"
    assert_problem(await verification.post(url, json={"reason": "x"}, headers=xiamen.headers), 403, "out-of-scope")
    revoked = await verification.post(url, json={"reason": "学习记录经核实为替学"}, headers=fuzhou.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert_problem(await verification.post(url, json={"reason": "again"}, headers=fuzhou.headers), 409,
                   "already-revoked")

    result = (await verification.post("/v1/verifications", json={"credential": proof["credential"]})).json()
    assert result["revoked"] is True and result["verified"] is False
    entry = proof["credential"]["credentialStatus"]
    status_path = "/v1/status-lists/" + entry["statusListCredential"].split("/v1/status-lists/")[1]
    status_list = (await verification.get(status_path)).json()
    bits = decode_status_list(status_list["credentialSubject"]["encodedList"])
    assert len(bits) * 8 >= 131_072 and status_bit(bits, int(entry["statusListIndex"]))
    page = await verification.get(f"/verify/{proof['proof_id']}")
    assert "已撤销" in page.text and "替学" in page.text
    # The proof stays readable.
    assert (await verification.get(f"/v1/proofs/{proof['proof_id']}")).status_code == 200


async def test_the_public_page_is_chinese_first_and_masks_the_id(verification, fuzhou, studied):
    proof = await stamp(verification, fuzhou, studied)
    page = await verification.get(f"/verify/{proof['proof_id']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "有效" in page.text and "9 学时" in page.text and 'name="viewport"' in page.text
    assert studied not in page.text and studied[:6] not in page.text and "*" * 14 + studied[-4:] in page.text
    unknown = await verification.get("/verify/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404 and "未找到" in unknown.text


async def test_only_staff_covering_the_person_and_subject_stamp(verification, engine, studied, auditor):
    xiamen = await make_staff(engine, "city_admin", region="350200")
    body = {"id_number": studied, "year": 2026, "scope": "public"}
    assert_problem(await verification.post("/v1/proofs", json=body, headers=xiamen.headers), 403, "out-of-scope")
    assert_problem(await verification.post("/v1/proofs", json=body, headers=auditor.headers), 403, "role-not-allowed")
    assert_problem(await verification.post("/v1/proofs", json=body), 401)
    reviewer = await make_staff(engine, "authority_reviewer", authority="A15")
    assert_problem(await verification.post("/v1/proofs", json={**body, "scope": "professional", "field": "A20.1"},
                                           headers=reviewer.headers), 403, "out-of-scope")


async def test_nothing_to_stamp_is_refused(verification, fuzhou, studied, admin):
    assert_problem(await verification.post("/v1/proofs", json={"id_number": studied, "year": 2025, "scope": "public"},
                                           headers=admin.headers), 422, "nothing-to-stamp")
    assert_problem(await verification.post("/v1/proofs", json={"id_number": studied, "year": 2026,
                                                               "scope": "professional"}, headers=admin.headers), 422)


async def test_the_province_stamps_with_its_own_key(verification, admin, studied):
    proof = await stamp(verification, admin, studied)
    assert proof["credential"]["issuer"]["id"].endswith(":issuers:350000")


async def test_did_documents_and_the_ca_are_published(verification, fuzhou, studied):
    credential = (await stamp(verification, fuzhou, studied))["credential"]
    did = (await verification.get("/issuers/350100/did.json")).json()
    assert did["id"] == credential["issuer"]["id"]
    assert credential["proof"]["verificationMethod"] in did["assertionMethod"]
    assert did["verificationMethod"][0]["publicKeyMultibase"].startswith("z6Mk")
    ca = await verification.get("/v1/trust/ca.pem")
    assert ca.text.startswith("-----BEGIN CERTIFICATE-----")
    assert (await verification.get("/issuers/A99/did.json")).status_code == 404


async def test_bulk_verification_answers_each_credential(verification, fuzhou, studied):
    credential = (await stamp(verification, fuzhou, studied))["credential"]
    forged = copy.deepcopy(credential)
    forged["credentialSubject"]["creditsEarned"] = 90
    response = await verification.post("/v1/verifications/batch",
                                       json={"credentials": [credential, forged, "not a credential", {}]})
    assert response.status_code == 200
    assert [r["verified"] for r in response.json()["results"]] == [True, False, False, False]
    assert_problem(await verification.post("/v1/verifications/batch", json={"credentials": [{}] * 1001}), 422)
