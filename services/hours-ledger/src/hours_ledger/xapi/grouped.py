"""One statement a request, written together: the statements of concurrent requests go to the database as one
INSERT, as the single pushes' group commit does for records (groupcommit.py).

An AU sends its statements one request each; 32 of them at once made 32 INSERTs, each with its own borrowed
connection and its own round trip, and each request looked its key up in a statement of its own. Here a request
takes its key from the app's cache of keys found live lately (`KnownTokens`), and its statement waits, with
those of other requests, for the next free writer (at most `flushes` at once; nothing waits for a group to
fill). The writer's one statement checks every key of the group again (a key revoked since is refused, 401, and
its statement not stored: the cache never lets a revoked key write), and inserts the statements whose key is
live; a statement id already stored is then read and compared (the same statement: kept as it is; another:
409). A request is answered after the INSERT committed.

Only a request of one statement that voids nothing and carries no attachment comes here; every other write is
one transaction of its own (store.store).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from xueshi_shared.database import pooled
from xueshi_shared.iam.service import LIVE_TOKENS

from ..grouping import Groups
from . import store, validation

_WRITE = f"""
    WITH live AS ({LIVE_TOKENS})
    INSERT INTO hours_ledger.xapi_statements (base_id, id, stored, statement, verb_id, voids, object_ref, activity_id,
                                              registration, agents, related_agents, related_activities, voided)
    SELECT u.base_id, u.id, u.stored, u.statement::jsonb, u.verb_id, u.voids, u.object_ref, u.activity_id,
           u.registration, ARRAY(SELECT jsonb_array_elements_text(u.agents::jsonb)),
           ARRAY(SELECT jsonb_array_elements_text(u.related_agents::jsonb)),
           ARRAY(SELECT jsonb_array_elements_text(u.related_activities::jsonb)),
           u.verb_id <> $14 AND EXISTS (SELECT 1 FROM hours_ledger.xapi_statements v
                                        WHERE v.base_id = u.base_id AND v.voids = u.id)
    FROM unnest($2::bytea[], $3::uuid[], $4::uuid[], $5::timestamptz[], $6::text[], $7::text[], $8::uuid[],
                $9::uuid[], $10::text[], $11::uuid[], $12::text[], $13::text[], $15::text[])
         AS u(token, base_id, id, stored, statement, verb_id, voids, object_ref, activity_id, registration, agents,
              related_agents, related_activities)
    WHERE u.token IN (SELECT token_hash FROM live)
    ON CONFLICT (base_id, id) DO NOTHING
    RETURNING base_id, id"""
_LIVE = f"SELECT token_hash FROM ({LIVE_TOKENS}) t"
_FIND = """SELECT base_id, id, statement FROM hours_ledger.xapi_statements
           WHERE base_id = ANY($1::uuid[]) AND id = ANY($2::uuid[])"""


class Revoked:
    """The request's key was revoked (or its principal disabled) since the cache found it live."""


REVOKED = Revoked()


@dataclasses.dataclass(slots=True)
class _Pending:
    token_digest: bytes
    base_id: uuid.UUID
    kept: dict[str, Any]
    sent: dict[str, Any]
    stored: dt.datetime


class StatementGroups:
    def __init__(self, engine: Callable[[], AsyncEngine], *, size: int = 64, flushes: int = 2, floor: int = 8) -> None:
        self.engine = engine
        self.groups: Groups[_Pending, str | Revoked] = Groups(self._write, size=size, flushes=flushes, floor=floor)

    async def store(self, token_digest: bytes, base_id: uuid.UUID, statement: dict[str, Any],
                    authority: dict[str, Any], stored: dt.datetime) -> str | Revoked:
        """The statement's id once it is stored (or was, the same), REVOKED, or store.Conflict raised."""
        stored = stored.replace(microsecond=stored.microsecond // 1000 * 1000)
        kept = store.prepare(statement, authority, stored)
        return await self.groups.submit(_Pending(token_digest, base_id, kept, statement, stored))

    async def _write(self, group: list[_Pending]) -> list[str | Revoked | BaseException]:
        firsts: dict[tuple[uuid.UUID, uuid.UUID], _Pending] = {}
        for p in group:  # an id twice in the group: the first is written, the next compared with what is stored
            firsts.setdefault((p.base_id, uuid.UUID(p.kept["id"])), p)
        rows = [(p, store.facts(p.kept)) for p in firsts.values()]
        columns = [
            [p.token_digest for p, _ in rows], [p.base_id for p, _ in rows],
            [uuid.UUID(p.kept["id"]) for p, _ in rows], [p.stored for p, _ in rows],
            [orjson.dumps(p.kept).decode() for p, _ in rows], [f.verb_id for _, f in rows],
            [f.voids for _, f in rows], [f.object_ref for _, f in rows], [f.activity_id for _, f in rows],
            [f.registration for _, f in rows], [orjson.dumps(f.agents).decode() for _, f in rows],
            [orjson.dumps(f.related_agents).decode() for _, f in rows]]
        activities = [orjson.dumps(f.related_activities).decode() for _, f in rows]
        digests = sorted({p.token_digest for p in group})
        async with pooled(self.engine()) as conn:
            written = {(r["base_id"], r["id"]) for r in await conn.fetch(
                _WRITE, digests, *columns, validation.VOIDED, activities)}
            rest = [p for p in group if (key := (p.base_id, uuid.UUID(p.kept["id"]))) not in written
                    or firsts[key] is not p]
            live: set[bytes] = set()
            found: dict[tuple[uuid.UUID, uuid.UUID], Any] = {}
            if rest:  # revoked keys, and ids stored already (by an earlier request, or twice in this group)
                live = {bytes(r["token_hash"]) for r in await conn.fetch(_LIVE, digests)}
                found = {(r["base_id"], r["id"]): r["statement"] for r in await conn.fetch(
                    _FIND, list({p.base_id for p in rest}), [uuid.UUID(p.kept["id"]) for p in rest])}
        results: list[str | Revoked | BaseException] = []
        for p in group:
            key = (p.base_id, uuid.UUID(p.kept["id"]))
            if key in written and firsts[key] is p:
                results.append(p.kept["id"])
            elif p.token_digest not in live:
                results.append(REVOKED)
            elif key in found and store.same_statement(store._loaded(found[key]), p.sent):
                results.append(p.kept["id"])
            else:
                results.append(store.Conflict(p.kept["id"]))
        return results
