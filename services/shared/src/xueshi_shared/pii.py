"""Personal ID numbers: validated, encrypted at rest, found through a keyed hash, masked in every output.

One master key (settings `pii_key`, or the file `pii.key` in the data directory) yields two keys by
HKDF: an AES-256-GCM key that encrypts the number (the ID type is bound as associated data) and an
HMAC-SHA256 key for the lookup hash, so that equal numbers can be found without decrypting and the
hash alone reveals nothing to someone without the key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from stdnum.cn import ric

from .timekeeping import today as shanghai_today

__all__ = ["ID_TYPES", "IdNumberProblem", "PiiKeys", "derive_key", "ensure_key_file", "id_number_error", "load_keys",
           "load_master", "mask_id_number", "normalise_id_number", "redact", "ric_problem", "ric_regions"]

ID_TYPES = ("RIC", "passport", "hk_macau_permit", "taiwan_permit")

# What each id_type looks like (README, "ID numbers"). A resident ID number is also checked in its parts.
_RIC_LAYOUT = re.compile(r"^[0-9]{17}[0-9X]$")
_PATTERNS = {
    # 港澳居民来往内地通行证: H or M and 8 (older: 10) digits.
    "hk_macau_permit": re.compile(r"^[HM][0-9]{8}([0-9]{2})?$"),
    # 台湾居民来往大陆通行证: 8 digits (older permits: 10 characters).
    "taiwan_permit": re.compile(r"^[0-9]{8}$|^[0-9A-Z]{10}$"),
    # Passports of any country: 5 to 20 letters and digits.
    "passport": re.compile(r"^[0-9A-Z]{5,20}$"),
}
# Nobody alive was born before this day: an earlier "birth date" is a typing error, not a person.
EARLIEST_BIRTH = dt.date(1900, 1, 1)
# 港澳台居民居住证 (residence permits, since 2018) carry resident-ID-style numbers whose region is 810000 (Hong Kong),
# 820000 (Macao) or 830000 (Taiwan). GB/T 2260, and so the library's region data, lists the first two only.
RESIDENCE_PERMIT_REGIONS = frozenset({"810000", "820000", "830000"})


@dataclass(frozen=True, slots=True)
class IdNumberProblem:
    """Why a number is refused: `rule` (`id-number`, `id-type-mismatch`), the `part` at fault and a `detail`
    that never repeats the number."""

    rule: str
    part: str
    detail: str


@cache
def ric_regions() -> frozenset[str]:
    """Every region code the library's GB/T 2260 data lists at any date (abolished codes included: their holders
    keep their numbers for life), and the residence permits' codes."""
    from stdnum import numdb

    codes: set[str] = set(RESIDENCE_PERMIT_REGIONS)
    for _, low, high, _, children in numdb.get("cn/loc").prefixes:
        for province in range(int(low), int(high) + 1):
            for length, c_low, c_high, props, _ in children:
                if length == 4 and props.get("county"):
                    codes.update(f"{province:02d}{n:04d}" for n in range(int(c_low), int(c_high) + 1))
    return frozenset(codes)


def ric_problem(value: str, today: dt.date) -> IdNumberProblem | None:
    """A resident ID number (GB 11643) in its parts: 18 characters, a check digit that holds, a birth date that is a
    real day neither in the future nor before 1900, and a region code that has ever existed.

    The region is not tied to the birth date (python-stdnum's `ric.validate` does tie them): numbers were first
    issued in the 1980s by the place of registration and re-issued after boundary changes, so a person born in
    1980 may hold a code created in 1995, and the holder of an abolished code keeps the number.
    """
    if len(value) != 18:
        return IdNumberProblem("id-number", "length", "a resident ID number has 18 characters")
    if not _RIC_LAYOUT.match(value):
        return IdNumberProblem("id-number", "layout", "a resident ID number is 17 digits and a check digit (0-9 or X)")
    if ric.calc_check_digit(value) != value[-1]:
        return IdNumberProblem("id-number", "check-digit", "the check digit (the 18th character) does not match")
    try:
        birth = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return IdNumberProblem("id-number", "birth-date", "characters 7 to 14 are not a real birth date")
    if birth > today:
        return IdNumberProblem("id-number", "birth-date", "the birth date (characters 7 to 14) lies in the future")
    if birth < EARLIEST_BIRTH:
        return IdNumberProblem("id-number", "birth-date", "the birth date (characters 7 to 14) lies before 1900")
    if value[:6] not in ric_regions():
        return IdNumberProblem("id-number", "region",
                               "the region code (the first six digits) is not one GB/T 2260 has ever listed")
    return None


# What redact() hides wherever text may carry it: a resident-ID-shaped number (17 digits and a digit or X, not
# inside a longer run of digits) and a bearer token.
_RIC_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_TOKEN_IN_TEXT = re.compile(r"xs_[A-Za-z0-9_-]{16,}")


def redact(text: str) -> str:
    """`text` with every resident ID number masked and every bearer token cut to its prefix (log lines, problem
    instances, audit targets: anything that might echo what a client sent)."""
    if len(text) < 18:
        return text
    text = _RIC_IN_TEXT.sub(lambda m: mask_id_number(m.group(0)), text)
    return _TOKEN_IN_TEXT.sub("xs_…", text)


def mask_id_number(value: str) -> str:
    """Keep the first six (region) and last four characters: `350102********123X`."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def normalise_id_number(value: str) -> str:
    return value.strip().upper()


def id_number_error(id_type: str, value: str, today: dt.date | None = None) -> IdNumberProblem | None:
    """Why `value` is not a valid number of `id_type` (on `today` in Fujian, by default now), or None."""
    return _id_number_error(id_type, normalise_id_number(value), today or shanghai_today())


@lru_cache(maxsize=65_536)  # people push many records: their numbers are checked once per process and day
def _id_number_error(id_type: str, value: str, today: dt.date) -> IdNumberProblem | None:
    if not value.isascii():
        # Full-width digits would otherwise validate and name a second "person" for the same number.
        return IdNumberProblem("id-number", "characters",
                               "ID numbers are written with ASCII digits and letters (no full-width characters)")
    if id_type == "RIC":
        return ric_problem(value, today)
    pattern = _PATTERNS.get(id_type)
    if pattern is None:
        return IdNumberProblem("id-number", "id-type", f"id_type must be one of {', '.join(ID_TYPES)}")
    if _RIC_LAYOUT.match(value):
        # A resident ID number sent under another type would be a second "person" for the same number.
        return IdNumberProblem("id-type-mismatch", "id-type",
                               f"the number is laid out like a resident ID number (18 characters); send it as RIC, "
                               f"not {id_type}")
    return None if pattern.match(value) else IdNumberProblem("id-number", "layout", f"not a valid {id_type} number")


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
