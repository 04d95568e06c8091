"""Nothing public gives away an ID number: a proof's public artifacts hold its last four characters and nothing to
test a guess against; the holder is confirmed online only, rate-limited per client and per proof, and audited."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess

import httpx
import sqlalchemy as sa
from verification.app import create_app as create_verification

from tests.support.http import assert_problem, running


async def stamp(verification, staff, person) -> dict:
    response = await verification.post("/v1/proofs", json={"id_number": person, "year": 2026, "scope": "public"},
                                       headers=staff.headers)
    assert response.status_code == 201, response.text
    return response.json()


@contextlib.asynccontextmanager
async def client_at(app, address: str):
    """The same running app, reached from another client address."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def pdf_text(pdf: bytes, tmp_path) -> str:
    """Everything a reader of the PDF can get at: its text, and its attachment."""
    path = tmp_path / "proof.pdf"
    path.write_bytes(pdf)
    text = subprocess.run([shutil.which("pdftotext") or "pdftotext", str(path), "-"], check=True,
                          capture_output=True).stdout.decode()
    subprocess.run(["pdfdetach", "-save", "1", "-o", str(tmp_path / "attached.json"), str(path)], check=True)
    return text + (tmp_path / "attached.json").read_text()


async def test_no_public_artifact_of_a_proof_holds_more_than_the_last_four_characters(verification, fuzhou, studied,
                                                                                      tmp_path):
    proof = await stamp(verification, fuzhou, studied)
    pid = proof["proof_id"]
    credential = (await verification.get(f"/v1/proofs/{pid}")).text
    page = (await verification.get(f"/verify/{pid}")).text
    pdf = pdf_text((await verification.get(f"/v1/proofs/{pid}/pdf")).content, tmp_path)
    entry = proof["credential"]["credentialStatus"]
    status = (await verification.get("/v1/status-lists/" + entry["statusListCredential"].split("/v1/status-lists/")[1]
                                     )).text
    for artifact in (credential, page, pdf, status):
        assert studied not in artifact and studied[:6] not in artifact and studied[6:14] not in artifact
        assert "sha256$" not in artifact and '"salt"' not in artifact and "hashed\": true" not in artifact
    assert "*" * 14 + studied[-4:] in credential and "*" * 14 + studied[-4:] in page


async def test_the_holder_is_confirmed_online_and_each_answer_is_audited(verification, fuzhou, studied, engine):
    credential = (await stamp(verification, fuzhou, studied))["credential"]
    right = await verification.post("/v1/verifications", json={"credential": credential, "id_number": studied})
    wrong = await verification.post("/v1/verifications", json={"credential": credential,
                                                               "id_number": "350102199003070012"})
    holder = {r: {c["check"]: c for c in r.json()["checks"]}["holder"] for r in (right, wrong)}
    assert holder[right]["ok"] is True and holder[wrong]["ok"] is False
    assert studied not in right.text and "350102199003070012" not in wrong.text
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT matched, client_address FROM verification.holder_checks "
                                           "ORDER BY id"))).all()
        events = (await conn.execute(sa.text(
            "SELECT outcome, target::text FROM iam.audit_events WHERE action = 'POST /v1/verifications (holder)' "
            "ORDER BY id DESC LIMIT 2"))).all()
    assert [tuple(r) for r in rows] == [(True, "203.0.113.7"), (False, "203.0.113.7")]
    assert sorted(e.outcome for e in events) == ["match", "no-match"]
    assert all(studied not in e.target and credential["id"].rsplit("/", 1)[1] in e.target for e in events)


async def test_a_client_asking_too_often_is_slowed_down(settings, fuzhou, studied):
    app = create_verification(settings.model_copy(update={"holder_checks_per_minute": 3}))
    async with running(app) as verification:
        credential = (await stamp(verification, fuzhou, studied))["credential"]
        answers = [await verification.post("/v1/verifications", json={"credential": credential, "id_number": studied})
                   for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert_problem(answers[3], 429, "rate-limited")
        assert answers[3].headers["Retry-After"]
        async with client_at(app, "198.51.100.9") as elsewhere:  # another client has its own allowance
            r = await elsewhere.post("/v1/verifications", json={"credential": credential, "id_number": studied})
            assert r.status_code == 200


async def test_a_proof_allows_few_wrong_guesses_a_day_from_all_clients_together(settings, fuzhou, studied, engine):
    app = create_verification(settings.model_copy(update={"holder_checks_per_minute": 0,
                                                          "holder_failures_per_proof_per_day": 5}))
    async with running(app) as verification:
        credential = (await stamp(verification, fuzhou, studied))["credential"]

        async def guess(i: int) -> int:
            async with client_at(app, f"198.51.100.{i}") as client:
                wrong = f"35010219900307{i:03d}9"
                r = await client.post("/v1/verifications", json={"credential": credential, "id_number": wrong})
                return r.status_code

        codes = await asyncio.gather(*(guess(i) for i in range(12)))  # twelve addresses at once
        assert sorted(codes) == [200] * 5 + [429] * 7
        limited = await verification.post("/v1/verifications", json={"credential": credential, "id_number": studied})
        assert_problem(limited, 429, "holder-check-limit")
        # Verifying without asking about the holder is not limited by the budget.
        assert (await verification.post("/v1/verifications", json={"credential": credential})).status_code == 200
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM verification.holder_checks WHERE NOT matched")) == 5


async def test_a_proof_stamped_with_a_hashed_number_is_no_longer_published(verification, fuzhou, studied, engine):
    proof = await stamp(verification, fuzhou, studied)
    legacy = {"type": "IdentityObject", "identityType": "nationalIdentityNumber", "hashed": True,
              "identityHash": "sha256$00", "salt": "00"}
    async with engine.begin() as conn:
        await conn.execute(sa.text(
            "UPDATE verification.proofs SET credential = jsonb_insert(credential, "
            "'{credentialSubject,identifier,-1}', CAST(:legacy AS jsonb), true) WHERE id = :id"),
            {"legacy": json.dumps(legacy), "id": proof["proof_id"]})
    for path in (f"/v1/proofs/{proof['proof_id']}", f"/v1/proofs/{proof['proof_id']}/pdf"):
        assert_problem(await verification.get(path), 410, "proof-withdrawn")
    page = await verification.get(f"/verify/{proof['proof_id']}")
    assert page.status_code == 410 and "已停止公开" in page.text


async def test_public_routes_are_rate_limited_per_client(settings):
    app = create_verification(settings.model_copy(update={"public_rate_limit_per_minute": 5}))
    async with running(app) as verification:
        codes = [(await verification.get("/v1/trust/ca.pem")).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        async with client_at(app, "198.51.100.1") as elsewhere:
            assert (await elsewhere.get("/v1/trust/ca.pem")).status_code == 200
