"""The fast canonicalization (pyoxigraph) gives pyld's RDFC-1.0 N-Quads byte for byte, on every fixture and on
hypothesis-built credentials; documents it cannot take, or must not (blank nodes only their neighbours tell
apart), go the bounded pyld way; the remembered shapes of `check_fully_defined` never let an undefined term by."""

from __future__ import annotations

import copy
import json
import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from verification import jsonld
from verification.domain.credential import Evidence, Line, ProofFacts, build_credential, status_list_credential

from tests.integration.verification.test_hostile_credentials import KNOWS, poisoned

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
ids = st.from_regex(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}", fullmatch=True)


@st.composite
def facts(draw) -> ProofFacts:
    lines = draw(st.lists(st.tuples(st.sampled_from(string.digits), text, st.integers(0, 90),
                                    st.one_of(st.none(), st.integers(1, 9))), min_size=1, max_size=6))
    evidence = draw(st.lists(st.tuples(ids, text, st.integers(0, 12), text, text, st.one_of(st.none(), text)),
                             max_size=8))
    scope = draw(st.sampled_from(["public", "professional"]))
    return ProofFacts(
        proof_url=f"https://xueshi.example.gov.cn/v1/proofs/{draw(ids)}",
        issuer_did="did:web:xueshi.example.gov.cn:issuers:350100", issuer_name=draw(text), year=draw(
            st.integers(2000, 2100)), scope=scope, field=None if scope == "public" else draw(st.sampled_from(
                ["A01", "A12", "B03"])), title=draw(text), name=draw(text), masked_id="**************" + draw(
            st.from_regex(r"[0-9]{3}[0-9X]", fullmatch=True)),
        credited_hours=draw(st.integers(0, 200)), available_hours=draw(st.integers(0, 200)),
        lines=tuple(Line(code + str(i), name, hours, allotment) for i, (code, name, hours, allotment)
                    in enumerate(lines)),
        evidence=tuple(Evidence(*e) for e in evidence),
        issued_at=draw(st.datetimes().map(lambda d: d.replace(microsecond=0).isoformat() + "Z")),
        status_list_url="https://xueshi.example.gov.cn/v1/status-lists/350100/1",
        status_index=draw(st.integers(0, 131_071)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts())
def test_the_fast_path_gives_pyld_s_n_quads_for_any_credential(f):
    credential = build_credential(f)
    assert jsonld.canonicalize(credential) == jsonld.canonicalize_pyld(credential)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["name", "description", "narrative", "creditsEarned"]),
                          st.one_of(text, st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                                    st.booleans())), max_size=4))
@example(changes=[("name", 10**20)])  # found by CI: an integer beyond 64 bits
def test_the_fast_path_agrees_on_odd_values(changes):
    credential = build_credential(FIXTURE)
    for key, value in changes:
        credential["credentialSubject"][key] = value
    assert jsonld.canonicalize(credential) == jsonld.canonicalize_pyld(credential)


FIXTURE = ProofFacts(
    proof_url="https://xueshi.example.gov.cn/v1/proofs/1", issuer_did="did:web:xueshi.example.gov.cn:issuers:350100",
    issuer_name="福州市人力资源和社会保障局", year=2026, scope="public", field=None, title="2026年度公需科目学时证明",
    name="陈小明", masked_id="**************0012", credited_hours=9, available_hours=30,
    lines=(Line("3", "国际合作新机遇", 2, 2), Line("5", "人工智能实战运用", 7, 7)),
    evidence=(Evidence("5b1f0b3e-0000-4000-8000-000000000001", "人工智能赋能政务服务", 7, "智学平台", "2026-05-04"),
              Evidence("5b1f0b3e-0000-4000-8000-000000000002", "课程", 0, "智学平台", "2026-05-05", "考试未通过")),
    issued_at="2026-11-24T00:00:00Z", status_list_url="https://xueshi.example.gov.cn/v1/status-lists/350100/1",
    status_index=42)


def _fixtures() -> list[dict]:
    credential = build_credential(FIXTURE)
    config = {"@context": credential["@context"], "type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022",
              "created": "2026-11-24T00:00:00Z", "verificationMethod": FIXTURE.issuer_did + "#key-1",
              "proofPurpose": "assertionMethod"}
    status = status_list_credential(FIXTURE.status_list_url, FIXTURE.issuer_did, "uH4sIAAAAAAAA", "2026-11-24T00:00:00Z")
    with_blank_links = poisoned({"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"],
                                 "issuer": "did:web:x", "credentialSubject": {"id": "urn:x"}}, 3)
    return [credential, config, status, with_blank_links,
            {"@context": {"@vocab": "http://example.org/"}, "a": "inline context"}]


@pytest.mark.parametrize("index", range(5))
def test_every_fixture_gives_the_same_n_quads(index):
    document = _fixtures()[index]
    assert jsonld.canonicalize(document) == jsonld.canonicalize_pyld(document)


def test_blank_nodes_only_their_neighbours_tell_apart_go_the_bounded_way():
    import pyoxigraph as ox

    document = _fixtures()[3]
    dataset = ox.Dataset(ox.parse(jsonld._inlined(document), ox.RdfFormat.JSON_LD))
    assert jsonld._blank_nodes_told_apart(dataset) is False
    credential = build_credential(FIXTURE)
    dataset = ox.Dataset(ox.parse(jsonld._inlined(credential), ox.RdfFormat.JSON_LD))
    assert jsonld._blank_nodes_told_apart(dataset) is True
    crafted = {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"],
               "issuer": "did:web:x", "credentialSubject": {"id": "urn:x", KNOWS: poisoned(
                   {"credentialSubject": {}}, 9)["credentialSubject"][KNOWS]}}
    with pytest.raises(jsonld.TooComplex):
        jsonld.canonicalize(crafted)


def test_a_remembered_shape_never_lets_an_undefined_term_by():
    credential = build_credential(FIXTURE)
    jsonld.check_fully_defined(credential)
    jsonld.check_fully_defined(copy.deepcopy(credential))  # remembered
    for forge in (lambda c: c.__setitem__("hours", 90),
                  lambda c: c["credentialSubject"].__setitem__("idNumber", "x"),
                  lambda c: c["credentialSubject"].__setitem__("type", ["Unknown"]),
                  lambda c: c["credentialSubject"]["result"][0].__setitem__("学时", 3),
                  lambda c: c["evidence"].append({"id": "urn:x", "type": ["Evidence"], "extra": 1})):
        forged = copy.deepcopy(credential)
        forge(forged)
        with pytest.raises(jsonld.UndefinedTerms):
            jsonld.check_fully_defined(forged)
    # Only other values: the same shape, accepted without expanding again, and rightly so.
    changed = json.loads(json.dumps(credential).replace("陈小明", "李四"))
    jsonld.check_fully_defined(changed)
    jsonld._check_fully_defined(changed)
