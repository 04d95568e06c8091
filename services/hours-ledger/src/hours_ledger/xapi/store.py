"""xAPI statements kept per base: stored verbatim, with the LRS's `stored`, `authority` and defaults, and
queried as the statement resource's filters say (xAPI-Communication §2.1.3).

Statements are stored whatever the ledger's rules later decide of them (xAPI 1.0.3 §3.2); the rules decide
credit, never acceptance.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from . import validation

LRS_SET = ("id", "stored", "authority", "version", "timestamp")


def ifi_key(agent: Any) -> str | None:
    """An Agent's or identified Group's inverse functional identifier as one string (`mbox:mailto:a@b.cn`)."""
    if not isinstance(agent, dict):
        return None
    for key in ("mbox", "mbox_sha1sum", "openid"):
        if key in agent:
            return f"{key}:{agent[key]}"
    if isinstance(agent.get("account"), dict):
        account = agent["account"]
        return f"account:{account.get('homePage')}|{account.get('name')}"
    return None


def _actors(value: Any) -> Iterator[str]:
    """The identifiers an actor stands for: its own, and a Group's members'."""
    key = ifi_key(value)
    if key:
        yield key
    if isinstance(value, dict):
        for member in value.get("member") or ():
            member_key = ifi_key(member)
            if member_key:
                yield member_key


def _context_activities(context: Any) -> Iterator[str]:
    activities = (context or {}).get("contextActivities") or {}
    for items in activities.values():
        for item in items if isinstance(items, list) else [items]:
            if isinstance(item, dict) and "id" in item:
                yield item["id"]


@dataclass(frozen=True, slots=True)
class Facts:
    """What the filters read of a statement."""

    verb_id: str
    voids: uuid.UUID | None
    object_ref: uuid.UUID | None
    activity_id: str | None
    registration: uuid.UUID | None
    agents: list[str]
    related_agents: list[str]
    related_activities: list[str]


def facts(statement: dict[str, Any]) -> Facts:
    obj = statement["object"]
    kind = obj.get("objectType", "Activity")
    verb = statement["verb"]["id"]
    ref = uuid.UUID(obj["id"]) if kind == "StatementRef" else None
    agents = list(_actors(statement["actor"]))
    if kind in ("Agent", "Group"):
        agents += list(_actors(obj))
    related_agents = list(agents)
    related_activities = [obj["id"]] if kind == "Activity" else []
    for part in (statement, obj if kind == "SubStatement" else None):
        if part is None:
            continue
        context = part.get("context") or {}
        for key in ("instructor", "team"):
            related_agents += list(_actors(context.get(key)))
        for item in context.get("contextAgents") or []:  # xAPI 2.0
            related_agents += list(_actors(item.get("agent")))
        for item in context.get("contextGroups") or []:
            related_agents += list(_actors(item.get("group")))
        related_activities += list(_context_activities(context))
    if kind == "SubStatement":
        related_agents += list(_actors(obj["actor"]))
        inner = obj["object"]
        inner_kind = inner.get("objectType", "Activity")
        if inner_kind in ("Agent", "Group"):
            related_agents += list(_actors(inner))
        elif inner_kind == "Activity":
            related_activities.append(inner["id"])
    related_agents += list(_actors(statement.get("authority")))
    registration = (statement.get("context") or {}).get("registration")
    return Facts(verb, ref if verb == validation.VOIDED else None, ref,
                 obj["id"] if kind == "Activity" else None, uuid.UUID(registration) if registration else None,
                 sorted(set(agents)), sorted(set(related_agents)), sorted(set(related_activities)))


def _arrays(statement: dict[str, Any]) -> None:
    """contextActivities' values are kept as arrays (xAPI-Data §2.4.6.2), in the statement and its SubStatement."""
    for part in (statement, statement.get("object")):
        activities = ((part or {}).get("context") or {}).get("contextActivities") if isinstance(part, dict) else None
        if isinstance(activities, dict):
            for key, value in activities.items():
                if not isinstance(value, list):
                    activities[key] = [value]


def utc_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def prepare(statement: dict[str, Any], authority: dict[str, Any], stored: dt.datetime) -> dict[str, Any]:
    """The statement as the LRS keeps it: an id, `stored` and `authority` set by the LRS, `timestamp` (stored when
    absent) and `version` (1.0.0 when absent) filled in."""
    kept = dict(statement)
    kept.setdefault("id", str(uuid.uuid4()))
    kept["id"] = kept["id"].lower()
    kept["stored"] = utc_text(stored)
    kept["authority"] = authority
    kept.setdefault("timestamp", kept["stored"])
    kept.setdefault("version", "1.0.0")
    _arrays(kept)
    return kept


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


_HUNDREDTHS = re.compile(r"(\d+)(\.\d{1,2})?\d*S$")


def same_statement(stored: dict[str, Any], sent: dict[str, Any]) -> bool:
    """Whether `sent` is the statement already stored (the properties the LRS sets aside; timestamps as instants)."""
    def core(statement: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in statement.items() if k not in LRS_SET}
        _arrays(body)
        result = body.get("result")
        if isinstance(result, dict) and isinstance(result.get("duration"), str):  # compared to 0.01 s (xAPI 2.0)
            body["result"] = {**result, "duration": _HUNDREDTHS.sub(r"\1\2S", result["duration"])}
        return _comparable(body)  # type: ignore[no-any-return]

    same_time = True
    if "timestamp" in sent and "timestamp" in stored:
        same_time = validation.parse_timestamp(sent["timestamp"]) == validation.parse_timestamp(stored["timestamp"])
    return same_time and core(stored) == core(sent)


# ---- reading back --------------------------------------------------------------------------------

def _ids_actor(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    kept = {k: value[k] for k in ("objectType", "mbox", "mbox_sha1sum", "openid", "account") if k in value}
    if value.get("objectType") == "Group" and not ifi_key(value):
        kept["member"] = [_ids_actor(m) for m in value.get("member", [])]
    return kept


def _ids_object(value: Any) -> Any:
    kind = value.get("objectType", "Activity")
    if kind == "Activity":
        return {"id": value["id"]}
    if kind in ("Agent", "Group"):
        return _ids_actor(value)
    if kind == "SubStatement":
        return ids_format(value)
    return value


def ids_format(statement: dict[str, Any]) -> dict[str, Any]:
    """`format=ids`: agents by their identifiers, activities and verbs by their ids."""
    out = dict(statement)
    out["actor"] = _ids_actor(statement["actor"])
    out["verb"] = {"id": statement["verb"]["id"]}
    out["object"] = _ids_object(statement["object"])
    if "authority" in out:
        out["authority"] = _ids_actor(out["authority"])
    context = out.get("context")
    if isinstance(context, dict):
        context = dict(context)
        for key in ("instructor", "team"):
            if key in context:
                context[key] = _ids_actor(context[key])
        if isinstance(context.get("contextActivities"), dict):
            context["contextActivities"] = {k: [{"id": a["id"]} for a in v]
                                            for k, v in context["contextActivities"].items()}
        out["context"] = context
    return out


def _pick(languages: Sequence[str], value: dict[str, str]) -> dict[str, str]:
    for wanted in languages:
        for key in value:
            if key.lower() == wanted.lower() or key.lower().split("-")[0] == wanted.lower():
                return {key: value[key]}
    for fallback in ("en-US", "en"):
        if fallback in value:
            return {fallback: value[fallback]}
    first = next(iter(value), None)
    return {first: value[first]} if first is not None else {}


_LANGUAGE_MAPS = {"display", "name", "description"}


def canonical_format(statement: Any, languages: Sequence[str]) -> Any:
    """`format=canonical`: every language map cut to the one language the client prefers (Accept-Language)."""
    if isinstance(statement, list):
        return [canonical_format(v, languages) for v in statement]
    if not isinstance(statement, dict):
        return statement
    out = {}
    for key, value in statement.items():
        if key in _LANGUAGE_MAPS and isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            out[key] = _pick(languages, value)
        elif key == "extensions":
            out[key] = value
        else:
            out[key] = canonical_format(value, languages)
    return out


def accept_languages(header: str) -> list[str]:
    """Accept-Language's tags, most wanted first (RFC 9110 q-values)."""
    ranked = []
    for n, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, n, tag))
    return [tag for _, _, tag in sorted(ranked)]


# ---- the database ----------------------------------------------------------------------------------

_FIND = "SELECT id, statement FROM hours_ledger.xapi_statements WHERE base_id = $1 AND id = ANY($2::uuid[])"
_INSERT = """
    INSERT INTO hours_ledger.xapi_statements (base_id, id, stored, statement, verb_id, voids, object_ref, activity_id,
                                              registration, agents, related_agents, related_activities, voided)
    VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, $13)"""
# Which of these statements a statement stored before voids (read apart: Citus refuses a subquery in an INSERT).
_VOIDERS = "SELECT voids FROM hours_ledger.xapi_statements WHERE base_id = $1 AND voids = ANY($2::uuid[])"
# A voiding statement voids its target unless the target voids another (a voiding statement cannot be voided).
_VOID = """UPDATE hours_ledger.xapi_statements SET voided = true
           WHERE base_id = $1 AND id = ANY($2::uuid[]) AND verb_id <> $3"""


def _loaded(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value


class Conflict(Exception):
    """A statement id already stored with another statement (409)."""


def _row(base_id: uuid.UUID, stored: dt.datetime, statement: dict[str, Any], voided: set[uuid.UUID]
         ) -> tuple[Any, ...]:
    """The statement's row; it is stored voided when a voiding statement (stored or sent with it) voids it and it
    voids nothing itself (a voiding statement cannot be voided)."""
    f = facts(statement)
    statement_id = uuid.UUID(statement["id"])
    return (base_id, statement_id, stored, orjson.dumps(statement).decode(), f.verb_id, f.voids,
            f.object_ref, f.activity_id, f.registration, f.agents, f.related_agents, f.related_activities,
            f.verb_id != validation.VOIDED and statement_id in voided)


async def store(conn: asyncpg.Connection, base_id: uuid.UUID, statements: list[dict[str, Any]],
                authority: dict[str, Any], stored: dt.datetime) -> list[str]:
    """Store the statements (all or none: the caller's transaction); ids already stored with the same statement
    are kept as they are, with another statement raise Conflict. Returns the ids in order."""
    stored = stored.replace(microsecond=stored.microsecond // 1000 * 1000)  # as `stored` says it: milliseconds
    prepared = [prepare(s, authority, stored) for s in statements]
    ids = [s["id"] for s in prepared]
    if len(set(ids)) != len(ids):
        raise validation.StatementError("id", "xapi-duplicate-id", "two statements of the request have one id")
    existing = {str(r["id"]): _loaded(r["statement"]) for r in await conn.fetch(_FIND, base_id, [uuid.UUID(i) for i in ids])}
    new = []
    for sent, kept in zip(statements, prepared, strict=True):
        if kept["id"] in existing:
            if not same_statement(existing[kept["id"]], sent):
                raise Conflict(kept["id"])
            continue
        new.append(kept)
    if new:
        new_ids = [uuid.UUID(s["id"]) for s in new]
        voided = {r["voids"] for r in await conn.fetch(_VOIDERS, base_id, new_ids)}
        voided |= {uuid.UUID(s["object"]["id"]) for s in new if s["verb"]["id"] == validation.VOIDED}
        await conn.executemany(_INSERT, [_row(base_id, stored, s, voided) for s in new])
        targets = [uuid.UUID(s["object"]["id"]) for s in new if s["verb"]["id"] == validation.VOIDED]
        if targets:
            await conn.execute(_VOID, base_id, targets, validation.VOIDED)
    return ids


_ONE = """SELECT statement, voided, stored FROM hours_ledger.xapi_statements
          WHERE ($1::uuid[] IS NULL OR base_id = ANY($1::uuid[])) AND id = $2 AND voided = $3 ORDER BY seq LIMIT 1"""


async def one(conn: asyncpg.Connection, bases: list[uuid.UUID] | None, statement_id: uuid.UUID, *, voided: bool
              ) -> tuple[dict[str, Any], dt.datetime] | None:
    """The statement with that id among the bases' (None: every base's); `voided`: only if it is voided, otherwise
    only if it is not."""
    row = await conn.fetchrow(_ONE, bases, statement_id, voided)
    if row is None:
        return None
    statement = row["statement"]
    return (orjson.loads(statement) if isinstance(statement, str) else statement), row["stored"]


@dataclass(slots=True)
class Query:
    agent: str | None = None
    verb: str | None = None
    activity: str | None = None
    registration: uuid.UUID | None = None
    related_activities: bool = False
    related_agents: bool = False
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 0
    ascending: bool = False
    after: int | None = None  # the cursor: the last seq returned


MAX_LIMIT = 500


def _matches(alias: str, q: Query, args: list[Any]) -> str:
    """The non-time filters, on the statement `alias`."""
    clauses = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if q.agent is not None:
        column = "related_agents" if q.related_agents else "agents"
        clauses.append(f"{arg(q.agent)} = ANY({alias}.{column})")
    if q.verb is not None:
        clauses.append(f"{alias}.verb_id = {arg(q.verb)}")
    if q.activity is not None:
        clauses.append(f"{arg(q.activity)} = ANY({alias}.related_activities)" if q.related_activities
                       else f"{alias}.activity_id = {arg(q.activity)}")
    if q.registration is not None:
        clauses.append(f"{alias}.registration = {arg(q.registration)}")
    return " AND ".join(clauses) or "true"


async def query(conn: asyncpg.Connection, bases: list[uuid.UUID] | None, q: Query
                ) -> tuple[list[dict[str, Any]], int | None]:
    """The statements matching `q` (never voided ones), a statement referring to another matching by its target's
    properties too (xAPI-Communication §2.1.3, "filter conditions for StatementRefs"); the last seq if more
    remain."""
    args: list[Any] = [bases]
    own = _matches("s", q, args)
    target = _matches("t", q, args)
    where = ["($1::uuid[] IS NULL OR s.base_id = ANY($1::uuid[]))", "NOT s.voided",
             f"(({own}) OR (s.object_ref IS NOT NULL AND EXISTS (SELECT 1 FROM hours_ledger.xapi_statements t "
             f"WHERE t.base_id = s.base_id AND t.id = s.object_ref AND {target})))" if own != "true" else "true"]
    if q.since is not None:
        args.append(q.since)
        where.append(f"s.stored > ${len(args)}")
    if q.until is not None:
        args.append(q.until)
        where.append(f"s.stored <= ${len(args)}")
    if q.after is not None:
        args.append(q.after)
        where.append(f"s.seq {'>' if q.ascending else '<'} ${len(args)}")
    limit = min(q.limit or MAX_LIMIT, MAX_LIMIT)
    args.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT s.seq, s.statement FROM hours_ledger.xapi_statements s WHERE {' AND '.join(where)} "
        f"ORDER BY s.seq {'ASC' if q.ascending else 'DESC'} LIMIT ${len(args)}", *args)
    more = rows[limit - 1]["seq"] if len(rows) > limit else None
    return [orjson.loads(r["statement"]) if isinstance(r["statement"], str) else r["statement"]
            for r in rows[:limit]], more


def cursor(params: dict[str, str], after: int) -> str:
    """The `more` cursor: the query's parameters and where it stopped, as one opaque token."""
    return base64.urlsafe_b64encode(orjson.dumps({**params, "after": after})).decode().rstrip("=")


def read_cursor(token: str) -> dict[str, Any]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise validation.StatementError("more", "xapi-cursor", "not a cursor this LRS gave") from None
    if not isinstance(value, dict) or not isinstance(value.get("after"), int):
        raise validation.StatementError("more", "xapi-cursor", "not a cursor this LRS gave")
    return value
