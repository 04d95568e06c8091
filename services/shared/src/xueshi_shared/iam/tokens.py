"""Bearer tokens: random, shown once, stored only as a digest, revocable."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["TOKEN_PREFIX", "digest", "new_token"]

# The prefix lets secret scanners and people recognise a Xueshi token in a leaked file.
TOKEN_PREFIX = "xs_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
