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

# The group's statements of live keys (the keys are screened just before, `_LIVE`), each voided when a statement
# stored before voids it. Arrays arrive as array literals (`_text_array`) and the voiding is read by a statement of
# its own: Citus refuses subqueries in an INSERT into a distributed table (xapi_statements is one, by the base).
_WRITE = """
    INSERT INTO hours_ledger.xapi_statements (base_id, id, stored, statement, verb_id, voids, object_ref, activity_id,
                                              registration, agents, related_agents, related_activities, voided)
    SELECT u.base_id, u.id, u.stored, u.statement::jsonb, u.verb_id, u.voids, u.object_ref, u.activity_id,
           u.registration, u.agents::text[], u.related_agents::text[], u.related_activities::text[], u.voided
    FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::uuid[], $7::uuid[],
                $8::text[], $9::uuid[], $10::text[], $11::text[], $12::text[], $13::bool[])
         AS u(base_id, id, stored, statement, verb_id, voids, object_ref, activity_id, registration, agents,
              related_agents, related_activities, voided)
    ON CONFLICT (base_id, id) DO NOTHING
    RETURNING base_id, id"""
_VOIDERS = """SELECT base_id, voids FROM hours_ledger.xapi_statements
              WHERE base_id = ANY($1::uuid[]) AND voids = ANY($2::uuid[])"""


def _text_array(items: list[str]) -> str:
    """A text[] literal of `items` (each element quoted, its quotes and backslashes escaped)."""
    return "{" + ",".join('"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"' for x in items) + "}"


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
        digests = sorted({p.token_digest for p in group})
        async with pooled(self.engine()) as conn:
            live = {bytes(r["token_hash"]) for r in await conn.fetch(_LIVE, digests)}
            rows = [(p, store.facts(p.kept)) for p in firsts.values() if p.token_digest in live]
            ids = [uuid.UUID(p.kept["id"]) for p, _ in rows]
            voiders = {(r["base_id"], r["voids"]) for r in await conn.fetch(
                _VOIDERS, list({p.base_id for p, _ in rows}), ids)} if rows else set()
            columns = [
                [p.base_id for p, _ in rows], ids, [p.stored for p, _ in rows],
                [orjson.dumps(p.kept).decode() for p, _ in rows], [f.verb_id for _, f in rows],
                [f.voids for _, f in rows], [f.object_ref for _, f in rows], [f.activity_id for _, f in rows],
                [f.registration for _, f in rows], [_text_array(f.agents) for _, f in rows],
                [_text_array(f.related_agents) for _, f in rows], [_text_array(f.related_activities) for _, f in rows],
                [f.verb_id != validation.VOIDED and (p.base_id, i) in voiders for (p, f), i in zip(rows, ids,
                                                                                                     strict=True)]]
            written = {(r["base_id"], r["id"]) for r in await conn.fetch(_WRITE, *columns)} if rows else set()
            rest = [p for p in group if (key := (p.base_id, uuid.UUID(p.kept["id"]))) not in written
                    or firsts[key] is not p]
            found: dict[tuple[uuid.UUID, uuid.UUID], Any] = {}
            if rest:  # revoked keys, and ids stored already (by an earlier request, or twice in this group)
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
