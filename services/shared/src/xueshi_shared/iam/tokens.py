"""Bearer tokens: random, shown once, stored only as a digest, revocable."""

from __future__ import annotations

import hashlib
import secrets
import time

from .principal import Principal

__all__ = ["TOKEN_PREFIX", "KnownTokens", "digest", "new_token"]

# The prefix lets secret scanners and people recognise a Xueshi token in a leaked file.
TOKEN_PREFIX = "xs_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class KnownTokens:
    """The principals of tokens found live lately, by digest: lets the single push skip one statement
    per request (profiled: its token lookup was 11% of the service's time per push, and a query of the
    database's own).

    Only for a route that checks every token again where it writes: the grouped single push asks, for
    all the tokens of a group in one statement, whether they are still live just before the group is
    written (hours_ledger/groupcommit.py), so a revoked or rotated key is refused as soon as it would
    have been without the cache. Entries expire after `ttl` seconds (a principal's name or role may
    change); at most `size` are kept, the oldest dropped first. Only live tokens are ever stored, so
    unknown tokens cannot fill it.
    """

    def __init__(self, ttl: float = 60.0, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._known: dict[bytes, tuple[float, Principal]] = {}

    def get(self, token_digest: bytes, now: float | None = None) -> Principal | None:
        entry = self._known.get(token_digest)
        if entry is None:
            return None
        if entry[0] <= (time.monotonic() if now is None else now):
            del self._known[token_digest]
            return None
        return entry[1]

    def put(self, token_digest: bytes, principal: Principal, now: float | None = None) -> None:
        self._known.pop(token_digest, None)
        self._known[token_digest] = ((time.monotonic() if now is None else now) + self.ttl, principal)
        while len(self._known) > self.size:
            del self._known[next(iter(self._known))]

    def forget(self, token_digest: bytes) -> None:
        self._known.pop(token_digest, None)

    def __len__(self) -> int:
        return len(self._known)
