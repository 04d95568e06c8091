"""Proofs checked by standard, independent tools, offline: Digital Bazaar's VC verifier (npm), poppler's
pdfsig against the deployment CA (NSS), and the public page rendered in headless Chromium.

The tools are installed by the tests (tests/support/tools.py); a test skips, printing why, only where
they cannot be installed.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from verification.app import create_app as create_verification

from tests.support.servers import serving
from tests.support.tools import debian_tool, npm_verifier

OUTPUT = Path(__file__).resolve().parents[3] / "test-output"


async def stamp(verification, staff, person) -> dict:
    response = await verification.post("/v1/proofs", json={"id_number": person, "year": 2026, "scope": "public"},
                                       headers=staff.headers)
    assert response.status_code == 201, response.text
    return response.json()


def node_verify(tmp_path: Path, credential: dict, documents: dict) -> dict:
    script = npm_verifier()
    path = tmp_path / f"input-{time.monotonic_ns()}.json"
    path.write_text(json.dumps({"credential": credential, "documents": documents}, ensure_ascii=False))
    proc = subprocess.run(["node", str(script), str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


async def test_digital_bazaar_verifies_the_credential_and_sees_revocation(verification, fuzhou, studied, tmp_path):
    proof = await stamp(verification, fuzhou, studied)
    credential = proof["credential"]
    did = (await verification.get("/issuers/350100/did.json")).json()
    list_url = credential["credentialStatus"]["statusListCredential"]
    status_path = "/v1/status-lists/" + list_url.split("/v1/status-lists/")[1]

    async def documents() -> dict:
        return {did["id"]: did, list_url: (await verification.get(status_path)).json()}

    result = node_verify(tmp_path, credential, await documents())
    assert result == {"verified": True, "error": None, "statusRevoked": False}

    forged = copy.deepcopy(credential)
    forged["credentialSubject"]["creditsEarned"] = 30
    assert node_verify(tmp_path, forged, await documents())["verified"] is False
    one_byte = json.loads(json.dumps(credential).replace('"valid', '"vaLid', 1))
    assert node_verify(tmp_path, one_byte, await documents())["verified"] is False

    await verification.post(f"/v1/proofs/{proof['proof_id']}/revocation", json={"reason": "核查撤销"},
                            headers=fuzhou.headers)
    revoked = node_verify(tmp_path, credential, await documents())
    assert revoked["verified"] is True and revoked["statusRevoked"] is True  # the signature stays good; status says revoked


async def test_the_status_list_credential_verifies_independently(verification, fuzhou, studied, tmp_path):
    credential = (await stamp(verification, fuzhou, studied))["credential"]
    did = (await verification.get("/issuers/350100/did.json")).json()
    list_url = credential["credentialStatus"]["statusListCredential"]
    status_list = (await verification.get("/v1/status-lists/" + list_url.split("/v1/status-lists/")[1])).json()
    assert node_verify(tmp_path, status_list, {did["id"]: did})["verified"] is True


def pdfsig_report(pdf: Path, ca_pem: str, workdir: Path) -> str:
    pdfsig = debian_tool("pdfsig", "poppler-utils")
    certutil = debian_tool("certutil", "libnss3-tools")
    nss = workdir / "nss"
    if not nss.exists():
        nss.mkdir()
        (workdir / "ca.pem").write_text(ca_pem)
        subprocess.run([certutil, "-N", "-d", f"sql:{nss}", "--empty-password"], check=True, capture_output=True)
        subprocess.run([certutil, "-A", "-d", f"sql:{nss}", "-n", "xueshi-ca", "-t", "CT,C,C", "-a", "-i",
                        str(workdir / "ca.pem")], check=True, capture_output=True)
    # pdfsig exits 0 even on a digest mismatch: its text is the verdict.
    proc = subprocess.run([pdfsig, "-nssdir", f"sql:{nss}", str(pdf)], capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr


async def test_pdfsig_finds_the_signature_valid_and_trusted_and_a_changed_byte_breaks_it(
        verification, fuzhou, studied, tmp_path):
    proof = await stamp(verification, fuzhou, studied)
    pdf = (await verification.get(f"/v1/proofs/{proof['proof_id']}/pdf")).content
    ca_pem = (await verification.get("/v1/trust/ca.pem")).text
    good = tmp_path / "proof.pdf"
    good.write_bytes(pdf)
    report = pdfsig_report(good, ca_pem, tmp_path)
    assert "Signature is Valid." in report and "Certificate is Trusted." in report, report
    assert "福州市人力资源和社会保障局" in report

    detach = debian_tool("pdfdetach", "poppler-utils")
    listing = subprocess.run([detach, "-list", str(good)], capture_output=True, text=True).stdout
    assert "credential.json" in listing
    subprocess.run([detach, "-save", "1", "-o", str(tmp_path / "embedded.json"), str(good)], check=True)
    assert json.loads((tmp_path / "embedded.json").read_text()) == proof["credential"]

    # Change one byte inside the signed content (the page's title string is in the first signed range).
    index = pdf.index(b"/Title")
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(pdf[:index + 1] + bytes([pdf[index + 1] ^ 0x01]) + pdf[index + 2:])
    report = pdfsig_report(tampered, ca_pem, tmp_path)
    assert "Signature is Valid." not in report, report


async def test_the_public_page_renders_in_headless_chromium(settings, verification, fuzhou, studied):
    chromium = None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        try:
            chromium = debian_tool(name, "chromium") if name == "chromium" else None
        except pytest.skip.Exception:
            chromium = None
        if chromium:
            break
    if chromium is None:
        pytest.skip("chromium could not be installed")
    proof = await stamp(verification, fuzhou, studied)

    async with serving(create_verification(settings)) as url:
        OUTPUT.mkdir(exist_ok=True)
        shot = OUTPUT / "verify-page.png"
        if shot.exists():
            shot.unlink()
        proc = await asyncio.to_thread(subprocess.run, [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--window-size=412,915", f"--screenshot={shot}", f"{url}/verify/{proof['proof_id']}"],
            capture_output=True, text=True, timeout=120, env=dict(os.environ, HOME=str(OUTPUT)))
        assert shot.exists() and shot.stat().st_size > 5_000, proc.stderr[-2000:]
        print(f"screenshot: {shot}")


def _loopback_tls(workdir: Path) -> tuple[str, str, str]:
    """A test CA and a certificate for 127.0.0.1 it signed: (certificate, key, CA) files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "xueshi test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = (workdir / "server.pem", workdir / "server.key", workdir / "ca.pem")
    files[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    files[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return str(files[0]), str(files[1]), str(files[2])


def dcc_verify(tmp_path: Path, credential: dict, ca_file: str) -> dict:
    npm_verifier()  # installs the test's npm packages
    path = tmp_path / f"dcc-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(credential, ensure_ascii=False))
    proc = subprocess.run(["node", str(Path(npm_verifier()).parent / "verify-dcc.mjs"), str(path)],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, NODE_EXTRA_CA_CERTS=ca_file))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The library prints its own notes (the OB schema it cannot fetch offline); the verdict is the last line.
    return json.loads(proc.stdout.strip().splitlines()[-1])


async def test_the_digital_credentials_consortium_verifier_resolves_did_web_over_https(
        settings, fuzhou, studied, tmp_path):
    import ssl

    import httpx

    from tests.support.servers import free_port

    tls = _loopback_tls(tmp_path)
    port = free_port()
    app = create_verification(settings.model_copy(update={"public_base_url": f"https://127.0.0.1:{port}"}))
    trust = ssl.create_default_context(cafile=tls[2])
    async with serving(app, port=port, tls=tls) as url, httpx.AsyncClient(base_url=url, verify=trust) as client:
        stamped = await client.post("/v1/proofs", json={"id_number": studied, "year": 2026, "scope": "public"},
                                    headers=fuzhou.headers)
        assert stamped.status_code == 201, stamped.text
        credential = stamped.json()["credential"]
        assert credential["issuer"]["id"].startswith("did:web:127.0.0.1%3A")

        good = await asyncio.to_thread(dcc_verify, tmp_path, credential, tls[2])
        print(json.dumps(good["steps"]))
        assert good["fatal"] is None, good
        assert good["steps"].get("valid_signature") is True and good["steps"].get("revocation_status") is True, good

        forged = copy.deepcopy(credential)
        forged["credentialSubject"]["creditsEarned"] = 90
        bad = await asyncio.to_thread(dcc_verify, tmp_path, forged, tls[2])
        assert bad["steps"].get("valid_signature") is not True, bad

        await client.post(f"/v1/proofs/{stamped.json()['proof_id']}/revocation", json={"reason": "核查撤销"},
                          headers=fuzhou.headers)
        revoked = await asyncio.to_thread(dcc_verify, tmp_path, credential, tls[2])
        assert revoked["steps"].get("revocation_status") is False, revoked
