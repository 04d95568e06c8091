"""Stamps (signing keys) and the deployment's CA: created by command, stored encrypted, rotated, published.

Private keys are encrypted with AES-256-GCM under a key derived (HKDF) from the deployment's master
secret, with the body and version as associated data, so a ciphertext cannot be moved to another row.

Stamping bodies: 省人社厅 (`350000`), the city HR bureaus (`350100` … `350900`, Pingtan `350128`) for public
subjects, and each industry authority (`A01` … `A41`) for its fields. 省人社厅 is also authority `A12`, so
its fields and the fields delegated to it are stamped with `350000`.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.ext.asyncio import AsyncSession
from xueshi_shared.problems import Conflict
from xueshi_shared.regions import PROVINCE, REGIONS

from .models import CertificateAuthority, Stamp

__all__ = ["HR_AUTHORITY", "StampKeys", "body_for_authority", "body_names", "create_stamp", "current_stamp",
           "ensure_ca", "load_stamp"]

HR_AUTHORITY = "A12"


def body_for_authority(authority: str) -> str:
    return PROVINCE if authority == HR_AUTHORITY else authority


async def body_names(db: AsyncSession) -> dict[str, str]:
    """Every stamping body and its name (as it appears on seals and credentials)."""
    names = {PROVINCE: "福建省人力资源和社会保障厅"}
    for code, region in REGIONS.items():
        if code != PROVINCE:
            names[code] = "平潭综合实验区党群工作部" if code == "350128" else f"{region}人力资源和社会保障局"
    rows = (await db.execute(sa.text("SELECT code, name FROM catalog.published_authorities"))).all()
    for code, name in rows:
        if code != HR_AUTHORITY:
            names[code] = "福建" + name if name.startswith("省") else name
    return names


def _seal(secret: bytes, aad: str, data: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(secret).encrypt(nonce, data, aad.encode())


def _open(secret: bytes, aad: str, blob: bytes) -> bytes:
    return AESGCM(secret).decrypt(blob[:12], blob[12:], aad.encode())


def _raw_private(key) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class CaKeys:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


async def ensure_ca(db: AsyncSession, secret: bytes) -> CaKeys:
    row = await db.get(CertificateAuthority, 1)
    if row is None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Xueshi deployment"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "Xueshi stamp CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=365 * 20))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        row = CertificateAuthority(id=1, cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
                                   key_cipher=_seal(secret, "ca", _raw_private(key)))
        db.add(row)
        await db.flush()
    cert = x509.load_pem_x509_certificate(row.cert_pem.encode())
    key = serialization.load_der_private_key(_open(secret, "ca", row.key_cipher), None)
    return CaKeys(cert, key)  # type: ignore[arg-type]


@dataclass(frozen=True)
class StampKeys:
    body: str
    version: int
    name: str
    signing: Ed25519PrivateKey
    public: Ed25519PublicKey
    pdf_key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


async def create_stamp(db: AsyncSession, secret: bytes, body: str, name: str) -> int:
    """A new key version for `body` (the first, or a rotation: earlier versions stay published)."""
    ca = await ensure_ca(db, secret)
    version = (await db.scalar(sa.select(sa.func.coalesce(sa.func.max(Stamp.version), 0))
                               .where(Stamp.body == body))) + 1
    # Earlier versions stop signing but stay published, so proofs they signed keep verifying.
    await db.execute(sa.update(Stamp).where(Stamp.body == body, Stamp.retired_at.is_(None))
                     .values(retired_at=sa.func.now()))
    signing = Ed25519PrivateKey.generate()
    pdf_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{name} 学时验印 v{version}")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.cert.subject)
            .public_key(pdf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=365 * 10))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            # NSS (and so poppler's pdfsig) wants emailProtection to accept a document-signing certificate.
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
            .sign(ca.key, hashes.SHA256()))
    aad = f"{body}/{version}"
    db.add(Stamp(
        body=body, version=version, name=name,
        ed25519_public=signing.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        ed25519_cipher=_seal(secret, aad + "/ed25519", _raw_private(signing)),
        ec_cipher=_seal(secret, aad + "/ec", _raw_private(pdf_key)),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode()))
    await db.flush()
    return version


def load_stamp(row: Stamp, secret: bytes) -> StampKeys:
    aad = f"{row.body}/{row.version}"
    signing = serialization.load_der_private_key(_open(secret, aad + "/ed25519", row.ed25519_cipher), None)
    pdf_key = serialization.load_der_private_key(_open(secret, aad + "/ec", row.ec_cipher), None)
    return StampKeys(row.body, row.version, row.name, signing, signing.public_key(), pdf_key,  # type: ignore[arg-type]
                     x509.load_pem_x509_certificate(row.cert_pem.encode()))


async def current_stamp(db: AsyncSession, body: str) -> Stamp | None:
    return await db.scalar(sa.select(Stamp).where(Stamp.body == body, Stamp.retired_at.is_(None))
                           .order_by(Stamp.version.desc()).limit(1))


async def signing_stamp(db: AsyncSession, body: str, secret: bytes) -> tuple[StampKeys, str]:
    """What signs a proof or a report for `body`: its current stamp, opened, and the CA's certificate (PEM)."""
    row = await current_stamp(db, body)
    if row is None:
        raise Conflict(f"body {body} has no stamp yet; create it with `xueshi stamps create {body}`",
                       rule="stamp-missing")
    ca = await db.get(CertificateAuthority, 1)
    assert ca is not None
    return load_stamp(row, secret), ca.cert_pem
