"""Proof benchmark: credentials issued per second (build, JSON-LD term check, RDFC-1.0 canonicalisation,
Ed25519), PDFs per second (page, seal, QR, embedded credential, PAdES signature), and verifications per
second (canonicalisation + Ed25519 verify), next to bare Ed25519 sign/verify from `cryptography` measured
in the same run. Each first in one process (per worker process), then in two processes at once (`*_2cores`: the
service's deployment on the 2-core machines the targets are set for: 300 credentials, 300 verifications and 40
PDFs a second).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from verification import jsonld  # noqa: E402
from verification.domain import integrity  # noqa: E402
from verification.domain.credential import Evidence, Line, ProofFacts, build_credential  # noqa: E402
from verification.keys import StampKeys  # noqa: E402
from verification.pdf import PdfLine, PdfProof, PdfRecord, render_and_sign  # noqa: E402

from bench.common import record_results  # noqa: E402

console = Console()


def rate(fn, seconds: float = 3.0) -> float:
    fn()  # warm caches (contexts, fonts, seal image)
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - started)


def facts(i: int) -> ProofFacts:
    return ProofFacts(
        proof_url=f"https://xueshi.example.gov.cn/v1/proofs/{i}", issuer_did="did:web:xueshi.example.gov.cn:issuers:350100",
        issuer_name="福州市人力资源和社会保障局", year=2026, scope="public", field=None, title="2026年度公需科目学时证明",
        name="陈小明", masked_id="**************0012",
        credited_hours=30, available_hours=30,
        lines=tuple(Line(str(t), f"主题{t}", h, h) for t, h in ((1, 7), (2, 7), (3, 2), (4, 7), (5, 7))),
        evidence=tuple(Evidence(f"5b1f0b3e-0000-4000-8000-{j:012d}", "课程", 6, "平台", "2026-05-04") for j in range(6)),
        issued_at="2026-11-24T00:00:00Z", status_list_url="https://xueshi.example.gov.cn/v1/status-lists/350100/1",
        status_index=i)


def stamp_keys() -> tuple[StampKeys, str]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")]))
            .issuer_name(name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    signing = Ed25519PrivateKey.generate()
    return (StampKeys("350100", 1, "福州市人力资源和社会保障局", signing, signing.public_key(), key, cert),
            ca.public_bytes(serialization.Encoding.PEM).decode())


def _in_two_processes(kind: str, seconds: float = 3.0) -> float:
    """The summed rate of `kind` in two processes running at once (spawned: nothing shared but the machine)."""
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return sum(pool.map(_one_process, [kind, kind], [seconds, seconds]))


def _one_process(kind: str, seconds: float) -> float:
    return _workloads()[kind](seconds)


def _workloads() -> dict:
    stamp, ca_pem = stamp_keys()
    key = stamp.signing
    method = "did:web:xueshi.example.gov.cn:issuers:350100#key-1"
    counter = iter(range(10**9))

    def issue() -> dict:
        credential = build_credential(facts(next(counter)))
        jsonld.check_fully_defined(credential)
        return integrity.sign(credential, key, method, "2026-11-24T00:00:00Z", jsonld.canonicalize)

    signed = issue()
    proof = PdfProof("bench", stamp.name, "陈小明", "350102********0012", 2026, "公需科目", 30,
                     tuple(PdfLine(f"主题{t}", 7, 7) for t in range(5)),
                     tuple(PdfRecord("课程", "平台", "2026-05-04", 6) for _ in range(6)), "2026年11月24日",
                     "https://xueshi.example.gov.cn/verify/bench")
    payload = orjson.dumps(signed)

    def verify() -> None:
        jsonld.check_fully_defined(signed)
        assert integrity.verify(signed, key.public_key(), jsonld.canonicalize)[0]

    return {"proofs": lambda t: rate(issue, t), "verifications": lambda t: rate(verify, t),
            "pdfs": lambda t: rate(lambda: render_and_sign(proof, payload, stamp, ca_pem), t)}


def main() -> dict:
    key = Ed25519PrivateKey.generate()
    workloads = _workloads()
    message = os.urandom(64)
    signature = key.sign(message)
    public = key.public_key()
    console.print("measuring proofs (3 s each) …")
    results = {
        "proofs_per_s": round(workloads["proofs"](3.0), 1),
        "pdfs_per_s": round(workloads["pdfs"](3.0), 1),
        "verifications_per_s": round(workloads["verifications"](3.0), 1),
        "ed25519_sign_per_s": round(rate(lambda: key.sign(message), 1.0), 1),
        "ed25519_verify_per_s": round(rate(lambda: public.verify(signature, message), 1.0), 1),
    }
    console.print("… and in two processes at once (3 s each) …")
    for kind in ("proofs", "pdfs", "verifications"):
        results[f"{kind}_per_s_2cores"] = round(_in_two_processes(kind), 1)
    results["proof_targets_2cores"] = {"proofs_per_s": 300, "verifications_per_s": 300, "pdfs_per_s": 40}
    table = Table("measure (one process)", "per second", "baseline (same run)", "ratio", title="Proof benchmark")
    table.add_row("credentials issued (build, term check, RDFC-1.0, Ed25519)", f"{results['proofs_per_s']:,.0f}",
                  f"{results['ed25519_sign_per_s']:,.0f} bare Ed25519 signs",
                  f"{results['proofs_per_s'] / results['ed25519_sign_per_s']:.2%}")
    table.add_row("PDFs (page, seal, QR, attachment, PAdES)", f"{results['pdfs_per_s']:,.0f}",
                  f"{results['ed25519_sign_per_s']:,.0f} bare Ed25519 signs",
                  f"{results['pdfs_per_s'] / results['ed25519_sign_per_s']:.2%}")
    table.add_row("verifications (RDFC-1.0, Ed25519 verify)", f"{results['verifications_per_s']:,.0f}",
                  f"{results['ed25519_verify_per_s']:,.0f} bare Ed25519 verifies",
                  f"{results['verifications_per_s'] / results['ed25519_verify_per_s']:.2%}")
    for kind, label in (("proofs", "credentials issued"), ("pdfs", "PDFs"), ("verifications", "verifications")):
        table.add_row(f"{label}, two processes (target {results['proof_targets_2cores'][kind + '_per_s']})",
                      f"{results[kind + '_per_s_2cores']:,.0f}", "", "")
    console.print(table)
    return results


if __name__ == "__main__":
    results = main()
    out = record_results(results)
    console.print(f"wrote {out}")
