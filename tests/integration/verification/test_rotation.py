"""Rotating a stamp never invalidates earlier proofs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from verification.app import STAMP_KEY_PURPOSE
from verification.keys import create_stamp
from xueshi_shared.pii import derive_key, load_master

from tests.conftest import TEST_PII_KEY


async def test_proofs_signed_before_a_rotation_still_verify(verification, fuzhou, studied, engine):
    body = {"id_number": studied, "year": 2026, "scope": "public"}
    before = (await verification.post("/v1/proofs", json=body, headers=fuzhou.headers)).json()["credential"]
    secret = derive_key(load_master(TEST_PII_KEY, None), STAMP_KEY_PURPOSE)  # type: ignore[arg-type]
    async with AsyncSession(engine) as s, s.begin():
        version = await create_stamp(s, secret, "350100", "福州市人力资源和社会保障局")
    after = (await verification.post("/v1/proofs", json=body, headers=fuzhou.headers)).json()["credential"]
    assert after["proof"]["verificationMethod"].endswith(f"#key-{version}")
    assert before["proof"]["verificationMethod"] != after["proof"]["verificationMethod"]
    did = (await verification.get("/issuers/350100/did.json")).json()
    assert {before["proof"]["verificationMethod"], after["proof"]["verificationMethod"]} <= set(did["assertionMethod"])
    # Both signatures verify under their own key versions; the older proof is superseded by the newer one.
    for credential in (before, after):
        result = (await verification.post("/v1/verifications", json={"credential": credential})).json()
        assert {c["check"]: c["ok"] for c in result["checks"]}["proof"] is True, result
    older = (await verification.post("/v1/verifications", json={"credential": before})).json()
    assert older["verified"] is False and older["status"] == "superseded"
    assert older["superseded_by"] == after["id"].rsplit("/", 1)[1]
    assert (await verification.post("/v1/verifications", json={"credential": after})).json()["verified"] is True
