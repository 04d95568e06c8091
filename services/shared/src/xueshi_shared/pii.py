"""Personal ID numbers: validated, encrypted at rest, found through a keyed hash, masked in every output.

One master key (settings `pii_key`, or the file `pii.key` in the data directory) yields two keys by
HKDF: an AES-256-GCM key that encrypts the number (the ID type is bound as associated data) and an
HMAC-SHA256 key for the lookup hash, so that equal numbers can be found without decrypting and the
hash alone reveals nothing to someone without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from stdnum.cn import ric
from stdnum.exceptions import ValidationError

__all__ = ["ID_TYPES", "PiiKeys", "derive_key", "ensure_key_file", "id_number_error", "load_keys", "load_master",
           "mask_id_number", "normalise_id_number"]

ID_TYPES = ("RIC", "passport", "hk_macau_permit", "taiwan_permit")
_PATTERNS = {
    # 港澳居民来往内地通行证: H or M and 8 (older: 10) digits.
    "hk_macau_permit": re.compile(r"^[HM][0-9]{8}([0-9]{2})?$"),
    # 台湾居民来往大陆通行证: 8 digits (older permits: 10 characters).
    "taiwan_permit": re.compile(r"^[0-9]{8}$|^[0-9A-Z]{10}$"),
    "passport": re.compile(r"^[0-9A-Z]{5,20}$"),
}


def mask_id_number(value: str) -> str:
    """Keep the first six (region) and last four characters: `350102********123X`."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def normalise_id_number(value: str) -> str:
    return value.strip().upper()


@lru_cache(maxsize=65_536)  # people push many records: their numbers are checked once per process
def id_number_error(id_type: str, value: str) -> str | None:
    """Why `value` is not a valid number of `id_type`, or None. Never echoes the number."""
    value = normalise_id_number(value)
    if not value.isascii():
        # Full-width digits would otherwise validate and name a second "person" for the same number.
        return "ID numbers are written with ASCII digits and letters (no full-width characters)"
    if id_type == "RIC":
        try:
            ric.validate(value)
        except ValidationError as exc:
            return f"not a valid 18-digit resident ID number: {exc}"
        if len(value) != 18:
            return "a resident ID number has 18 characters"
        return None
    pattern = _PATTERNS.get(id_type)
    if pattern is None:
        return f"id_type must be one of {', '.join(ID_TYPES)}"
    return None if pattern.match(value) else f"not a valid {id_type} number"


@dataclass(frozen=True)
class PiiKeys:
    encryption: bytes
    lookup: bytes

    @classmethod
    def from_master(cls, master: bytes) -> PiiKeys:
        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)
        return cls(derive(b"xueshi pii encryption v1"), derive(b"xueshi pii lookup v1"))

    def lookup_hash(self, id_number: str) -> bytes:
        return hmac.new(self.lookup, normalise_id_number(id_number).encode(), hashlib.sha256).digest()

    def encrypt(self, id_type: str, id_number: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.encryption).encrypt(nonce, normalise_id_number(id_number).encode(), id_type.encode())

    def decrypt(self, id_type: str, blob: bytes) -> str:
        return AESGCM(self.encryption).decrypt(blob[:12], blob[12:], id_type.encode()).decode()


def _decode(text: str) -> bytes:
    raw = base64.b64decode(text.strip(), validate=True)
    if len(raw) != 32:
        raise ValueError("the PII key must be 32 bytes, base64-encoded")
    return raw


def load_master(pii_key: str, key_file: Path) -> bytes:
    """The deployment's master secret (also the root of the stamp keys' encryption)."""
    if pii_key:
        return _decode(pii_key)
    if key_file.exists():
        return _decode(key_file.read_text())
    raise RuntimeError(f"no master key: set XUESHI_PII_KEY or create {key_file} (`xueshi run` does on the first start)")


def derive_key(master: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(master)


def load_keys(pii_key: str, key_file: Path) -> PiiKeys:
    return PiiKeys.from_master(load_master(pii_key, key_file))


def ensure_key_file(key_file: Path) -> bool:
    """Create a random master key file (mode 600) unless one exists; True when created."""
    if key_file.exists():
        return False
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    return True
