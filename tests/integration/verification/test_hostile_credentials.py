"""A crafted credential cannot hold the verification service: RDFC-1.0's factorial cases are refused early
(`422 credential-too-complex`), and while eight of them arrive a normal verification, a status list and a stamp
are each answered in under a second."""

from __future__ import annotations

import asyncio
import copy
import time

import httpx
import pytest
from verification import jsonld
from verification.app import create_app as create_verification

from tests.support.http import assert_problem
from tests.support.servers import serving

KNOWS = "http://example.org/knows"


def poisoned(credential: dict, n: int = 7) -> dict:
    """The credential with `n` blank nodes all linked to each other: only their order tells them apart, so plain
    RDFC-1.0 tries n! orders of each (measured: 7 of them, 1.3 KB, 6.4 s)."""
    crafted = copy.deepcopy(credential)
    crafted["credentialSubject"][KNOWS] = [
        {"@id": f"_:b{i}", KNOWS: [{"@id": f"_:b{j}"} for j in range(n) if j != i]} for i in range(n)]
    return crafted


@pytest.mark.parametrize("n", [6, 7, 12])
def test_canonicalization_refuses_indistinguishable_blank_nodes_fast(n):
    document = {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"],
                "issuer": "did:web:x", "validFrom": "2026-01-01T00:00:00Z",
                "credentialSubject": {"id": "urn:x", KNOWS: poisoned({"credentialSubject": {}}, n)["credentialSubject"][
                    KNOWS]}}
    started = time.perf_counter()
    with pytest.raises(jsonld.TooComplex):
        jsonld.canonicalize(document)
    assert time.perf_counter() - started < 0.5


def test_the_bounded_algorithm_gives_the_same_n_quads():
    from pyld import jsonld as pyld

    small = poisoned({"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"],
                      "issuer": "did:web:x", "credentialSubject": {"id": "urn:x"}}, 3)
    expected = pyld.normalize(small, {"algorithm": "URDNA2015", "format": "application/n-quads",
                                      "documentLoader": jsonld.document_loader})
    assert jsonld.canonicalize(small) == expected


@pytest.mark.parametrize("shape", ["deep", "wide", "large"])
def test_documents_too_deep_too_wide_or_too_large_are_refused_before_expansion(shape):
    if shape == "deep":
        document: dict = {}
        for _ in range(40):
            document = {"a": document}
    elif shape == "wide":
        document = {"a": [{} for _ in range(2_000)]}
    else:
        document = {"a": "x" * 100_000}
    with pytest.raises(jsonld.TooComplex):
        jsonld.check_shape(document)


async def test_a_crafted_credential_is_refused_and_the_service_keeps_answering(settings, verification, fuzhou,
                                                                               studied):
    stamped = (await verification.post("/v1/proofs", json={"id_number": studied, "year": 2026, "scope": "public"},
                                       headers=fuzhou.headers)).json()
    credential = stamped["credential"]
    refused = await verification.post("/v1/verifications", json={"credential": poisoned(credential)})
    assert_problem(refused, 422, "credential-too-complex")
    entry = credential["credentialStatus"]["statusListCredential"].split("/v1/status-lists/")[1]

    async with serving(create_verification(settings)) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        async def timed(request) -> tuple[float, httpx.Response]:
            started = time.perf_counter()
            response = await request
            return time.perf_counter() - started, response

        attacks = [asyncio.ensure_future(timed(client.post("/v1/verifications",
                                                           json={"credential": poisoned(credential, 7 + i % 3)})))
                   for i in range(8)]
        await asyncio.sleep(0.05)  # the attacks are in flight
        normal = await timed(client.post("/v1/verifications", json={"credential": credential}))
        status = await timed(client.get(f"/v1/status-lists/{entry}"))
        stamp = await timed(client.post("/v1/proofs", json={"id_number": studied, "year": 2026, "scope": "public"},
                                        headers=fuzhou.headers))
        attacked = await asyncio.gather(*attacks)
    assert normal[1].status_code == 200 and normal[1].json()["verified"] is True
    assert status[1].status_code == 200 and stamp[1].status_code == 201
    assert all(r.status_code == 422 for _, r in attacked)
    worst = max(t for t, _ in attacked)
    print(f"crafted: worst {worst:.3f} s; normal verification {normal[0]:.3f} s, status list {status[0]:.3f} s, "
          f"stamping {stamp[0]:.3f} s")
    assert normal[0] < 1 and status[0] < 1 and stamp[0] < 1
