"""How the single push authenticates: a training base's key, found without a statement when it was found live lately.

Ledger-only (the single push is the one route that checks its tokens again where it writes: the group commit's
screen, groupcommit.py).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from xueshi_shared.database import pooled
from xueshi_shared.iam.principal import Principal
from xueshi_shared.iam.service import authenticate_digest
from xueshi_shared.problems import Problem
from xueshi_shared.web import audit_in_own_transaction, authenticate

__all__ = ["KnownTokens", "PushingBase", "pushing_base"]


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


async def pushing_base(request: Request) -> Principal:
    """A training base's key, for a route that writes in transactions of its own (the single push, whose
    records are written in groups). Anyone else's token is refused with 403 (audited, staff).

    A token found live lately is taken from the app's `known_tokens` without a statement; the route must
    check it again where it writes (the group commit does, for a whole group at once) and `forget` it when
    it is no longer live. Otherwise it is looked up in one statement on a pooled connection, which goes
    back to the pool before the route runs."""
    known: KnownTokens = request.app.state.known_tokens

    async def lookup(token_digest: bytes) -> Principal | None:
        principal = known.get(token_digest)
        if principal is None:
            async with pooled(request.app.state.engine) as conn:
                principal = await authenticate_digest(conn, token_digest)
            if principal is not None:
                known.put(token_digest, principal)
        return principal

    principal = await authenticate(request, lookup)
    try:
        principal.require_base()
    except Problem as exc:
        if principal.is_staff:
            await audit_in_own_transaction(request, principal, "refused", exc.status)
        raise
    return principal


PushingBase = Annotated[Principal, Depends(pushing_base)]
