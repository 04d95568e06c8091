"""Pure pieces of the verification service: encodings, the credential's shape, the signing guard."""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from verification import jsonld
from verification.domain import integrity
from verification.domain.credential import (
    Evidence,
    Line,
    ProofFacts,
    build_credential,
    has_hashed_identifier,
    public_mask,
)
from verification.domain.encoding import (
    MIN_STATUS_BITS,
    decode_multikey,
    decode_status_list,
    encode_multikey,
    encode_status_list,
    set_status_bit,
    status_bit,
)
from verification.service import Urls

FACTS = ProofFacts(
    proof_url="https://xueshi.example.gov.cn/v1/proofs/1", issuer_did="did:web:xueshi.example.gov.cn:issuers:350100",
    issuer_name="福州市人力资源和社会保障局", year=2026, scope="public", field=None, title="2026年度公需科目学时证明",
    name="陈小明", masked_id="**************0012",
    credited_hours=9, available_hours=30, lines=(Line("3", "国际合作新机遇", 2, 2), Line("5", "人工智能实战运用", 7, 7)),
    evidence=(Evidence("5b1f0b3e-0000-4000-8000-000000000001", "人工智能赋能政务服务", 7, "智学平台", "2026-05-04"),),
    issued_at="2026-11-24T00:00:00Z", status_list_url="https://xueshi.example.gov.cn/v1/status-lists/350100/1",
    status_index=42)


@given(st.sets(st.integers(0, MIN_STATUS_BITS - 1), max_size=50))
def test_status_lists_round_trip_most_significant_bit_first(indexes):
    bits = bytearray(MIN_STATUS_BITS // 8)
    for i in indexes:
        set_status_bit(bits, i)
    decoded = decode_status_list(encode_status_list(bytes(bits)))
    assert all(status_bit(decoded, i) == (i in indexes) for i in list(indexes) + [0, 7, 8, MIN_STATUS_BITS - 1])


def test_bit_42_is_byte_5_mask_0x20():
    bits = bytearray(16)
    set_status_bit(bits, 42)
    assert bits[5] == 0x20


def test_multikeys_are_ed25519_multicodec_in_base58btc():
    public = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    encoded = encode_multikey(public)
    assert encoded.startswith("z6Mk") and decode_multikey(encoded) == public


def test_did_web_identifiers_follow_the_method():
    urls = Urls("https://xueshi.fujian.gov.cn:8443/registry")
    assert urls.did("350100") == "did:web:xueshi.fujian.gov.cn%3A8443:registry:issuers:350100"
    assert urls.did_document_url("350100") == "https://xueshi.fujian.gov.cn:8443/registry/issuers/350100/did.json"
    assert urls.body_of(urls.did("A15")) == "A15"
    assert urls.body_of("did:web:evil.example:issuers:350100") is None


def test_every_term_of_the_credential_is_defined_and_the_issuer_refuses_any_other():
    credential = build_credential(FACTS)
    jsonld.check_fully_defined(credential)
    for bad in (lambda c: c.__setitem__("hours", 90),
                lambda c: c["credentialSubject"].__setitem__("idNumber", "350102199003070012"),
                lambda c: c["credentialSubject"]["achievement"].__setitem__("学时", 30)):
        forged = copy.deepcopy(credential)
        bad(forged)
        with pytest.raises(jsonld.UndefinedTerms):
            jsonld.check_fully_defined(forged)


def test_the_signature_covers_every_claim():
    key = Ed25519PrivateKey.generate()
    signed = integrity.sign(build_credential(FACTS), key, FACTS.issuer_did + "#key-1", FACTS.issued_at,
                            jsonld.canonicalize)
    assert integrity.verify(signed, key.public_key(), jsonld.canonicalize)[0]
    forged = copy.deepcopy(signed)
    forged["evidence"][0]["narrative"] = "70 学时"
    assert not integrity.verify(forged, key.public_key(), jsonld.canonicalize)[0]
    other = Ed25519PrivateKey.generate().public_key()
    assert not integrity.verify(signed, other, jsonld.canonicalize)[0]


def test_a_credential_holds_nothing_of_the_id_number_but_its_last_four_characters():
    credential = build_credential(FACTS)
    identifiers = credential["credentialSubject"]["identifier"]
    assert [i["identityType"] for i in identifiers] == ["name", "identifier"]
    assert not has_hashed_identifier(credential) and "salt" not in str(credential)
    assert identifiers[1]["identityHash"] == "**************0012" == public_mask("350102********0012")
    legacy = {"credentialSubject": {"identifier": [{"hashed": True, "identityHash": "sha256$…", "salt": "00"}]}}
    assert has_hashed_identifier(legacy)
