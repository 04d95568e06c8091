"""cmi5 registrations: the base enrols a learner (who the agent is, as a record names the person), statements come,
and when the registration is done (cmi5.pending_reason is None) it becomes one record, pushed through the ledger's
one intake (`intake.push_within`) in the same transaction that marks the registration recorded.

When: at the end (terminated, or abandoned from the LMS) of the session after which every AU meets its moveOn and
no session is open; or at a waived statement that completes the course. Not at each session's end: a record is
immutable and idempotent (its external id, `cmi5:<registration>`, with its body), the ledger credits a course
once per person, and an online course credits only with its exam: a record per session would be written before
the exam, credit nothing and conflict with the next. A session that ends after the record is stored, read, and
named (`xueshi-after-record`), not credited.

The statements stay in the LRS whatever this decides (xAPI: permission rules never change what is accepted). A
failure here (the database busy) leaves the registration pending; the next session end, or reading the outcome
(`GET /v1/records?registration=`), settles it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from xueshi_shared.database import pooled
from xueshi_shared.iam.principal import Principal
from xueshi_shared.pii import PiiKeys, mask_id_number, normalise_id_number
from xueshi_shared.problems import Conflict, InvalidInput, NotFound, Problem
from xueshi_shared.timekeeping import now as clock

from .. import intake, schemas
from ..grouping import Groups
from . import cmi5, store, validation

log = logging.getLogger("xueshi.cmi5")

# The verbs after which a registration may be done: a session ended, or an AU waived.
CLOSING = frozenset({cmi5.TERMINATED, cmi5.ABANDONED, cmi5.WAIVED})

_COURSE = """SELECT c.base_id, c.mode, array(SELECT a.activity_id FROM catalog.published_course_activities a
                                            WHERE a.course_id = c.id ORDER BY a.position) AS aus
             FROM catalog.published_courses c WHERE c.id = $1"""
_FIND = "SELECT * FROM hours_ledger.xapi_registrations WHERE base_id = $1 AND registration = $2"
_INSERT = """
    INSERT INTO hours_ledger.xapi_registrations (base_id, registration, course_id, actor, learner, id_type,
                                                 id_number_enc, name, unit, request_hash, created_at)
    VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9::jsonb, $10, $11)
    ON CONFLICT (base_id, registration) DO NOTHING"""
_DECIDED = """
    UPDATE hours_ledger.xapi_registrations SET state = $3, record_id = $4, outcome = $5::jsonb, decided_at = $6
    WHERE base_id = $1 AND registration = $2"""
_RECORD = """
    SELECT id, external_id, credited_hours, counted_seconds, status, adjustments, reversed_at, reversal_reason
    FROM hours_ledger.records WHERE id = $1"""


def _person(keys: PiiKeys, row: Any) -> dict[str, Any]:
    unit = row["unit"] if isinstance(row["unit"], dict) else orjson.loads(row["unit"])
    return {"id_type": row["id_type"], "id_number": keys.decrypt(row["id_type"], bytes(row["id_number_enc"])),
            "name": row["name"], "unit": unit}


def _request_hash(keys: PiiKeys, course_id: uuid.UUID, actor: dict[str, Any], body: schemas.RegistrationIn) -> bytes:
    canonical = orjson.dumps({**body.model_dump(mode="json"), "course_id": str(course_id), "actor": actor,
                              "id_number": normalise_id_number(body.id_number)}, option=orjson.OPT_SORT_KEYS)
    return hmac.new(keys.lookup, canonical, hashlib.sha256).digest()


def _out(keys: PiiKeys, row: Any) -> dict[str, Any]:
    person = _person(keys, row)
    actor = row["actor"] if isinstance(row["actor"], dict) else orjson.loads(row["actor"])
    return {"registration": row["registration"], "course_id": row["course_id"], "actor": actor,
            "id_type": person["id_type"], "id_number": mask_id_number(person["id_number"]), "name": person["name"],
            "unit": person["unit"], "created_at": row["created_at"]}


def check_actor(actor: dict[str, Any]) -> str:
    """The learner's identifier; refused unless the actor is an xAPI Agent with an account (cmi5 §9.2)."""
    try:
        validation.agent(actor, "actor")
    except validation.StatementError as error:
        raise InvalidInput(f"{error.path}: {error.detail}", rule=error.rule, field=error.path) from None
    if actor.get("objectType", "Agent") != "Agent" or "account" not in actor:
        raise InvalidInput("cmi5 §9.2: the learner is an Agent identified by an account", rule="cmi5-9.2-actor",
                           field="actor")
    key = store.ifi_key(actor)
    assert key is not None
    return key


async def enrol(engine: AsyncEngine, keys: PiiKeys, ext: cmi5.Extensions, principal: Principal,
                registration: uuid.UUID, body: schemas.RegistrationIn) -> tuple[int, dict[str, Any]]:
    """Enrol (201), or the same enrolment again (200); another enrolment under the same id is 409."""
    learner = check_actor(body.actor)
    intake.check_id_number(body.id_type, body.id_number)
    async with pooled(engine) as conn:
        base_id = await intake.require_base_in_standing(conn, principal)
        course = await conn.fetchrow(_COURSE, body.course_id)
        if course is None or course["base_id"] != base_id:
            raise InvalidInput("not a course of this base", rule="course-unknown", field="course_id")
        if not course["aus"]:
            raise InvalidInput("the course has no xapi_activity_ids (PUT /v1/courses/{id}/xapi-activity-ids)",
                               rule="xapi-no-activities", field="course_id")
        actor = body.actor
        digest = _request_hash(keys, body.course_id, actor, body)
        inserted = await conn.execute(
            _INSERT, base_id, registration, body.course_id, orjson.dumps(actor).decode(), learner, body.id_type,
            keys.encrypt(body.id_type, body.id_number), body.name, orjson.dumps(body.unit.model_dump()).decode(),
            digest, clock())
        row = await conn.fetchrow(_FIND, base_id, registration)
    if inserted.endswith(" 0"):
        if not hmac.compare_digest(bytes(row["request_hash"]), digest):
            raise Conflict("this registration is already enrolled with another course, learner or person",
                           rule="registration-mismatch", field="registration")
        return 200, _out(keys, row)
    # Statements sent before the enrolment are read now.
    await settle(engine, keys, ext, principal, base_id, registration)
    return 201, _out(keys, row)


async def settle(engine: AsyncEngine, keys: PiiKeys, ext: cmi5.Extensions, principal: Principal,
                 base_id: uuid.UUID, registration: uuid.UUID) -> None:
    """Write the registration's record if it is done and not yet written (`_settle_many`, a set of one). Never
    raises for the statements' sake: a failure is logged and the registration stays pending."""
    for _ in range(intake.ATTEMPTS):
        try:
            async with intake.transaction(engine) as conn:
                await _settle_many(conn, engine, keys, ext, [(principal, base_id, registration)])
            return
        except intake.FALLBACK:
            continue
        except Exception:
            log.exception("a cmi5 registration could not be settled; it stays pending")
            return


def _decided(answer: dict[str, Any], statements: list[str]) -> str:
    """What the decision stores: the ledger's answer, and the statements it was decided on."""
    return orjson.dumps({"answer": answer, "statements": statements}, default=str).decode()


async def after_statements(settler: Settler, principal: Principal, statements: Sequence[dict[str, Any]]) -> None:
    """Settle the enrolled registrations the statements may have completed (one of CLOSING, in a registration),
    together with those other requests are settling at the same moment (`Settler`)."""
    wanted = set()
    for statement in statements:
        registration = (statement.get("context") or {}).get("registration")
        if registration and (statement.get("verb") or {}).get("id") in CLOSING:
            wanted.add(uuid.UUID(registration))
    if wanted:
        base_id = principal.require_base()
        await asyncio.gather(*(settler.settle(principal, base_id, r) for r in sorted(wanted)))


_LOCK_MANY = """SELECT * FROM hours_ledger.xapi_registrations
                WHERE base_id = $1 AND registration = ANY($2::uuid[]) AND state <> 'recorded'
                ORDER BY registration FOR UPDATE"""
_COURSES = """SELECT c.id, c.mode, array(SELECT a.activity_id FROM catalog.published_course_activities a
                                          WHERE a.course_id = c.id ORDER BY a.position) AS aus
              FROM catalog.published_courses c WHERE c.id = ANY($1::uuid[])"""
_STATEMENTS_MANY = """
    SELECT registration, activity_id, statement FROM hours_ledger.xapi_statements
    WHERE base_id = $1 AND registration = ANY($2::uuid[]) AND NOT voided ORDER BY seq"""
_LAUNCH_MANY = """
    SELECT registration, activity_id, agent, content FROM hours_ledger.xapi_documents
    WHERE base_id = $1 AND kind = 'state' AND activity_id = ANY($4::text[]) AND agent = ANY($5::text[])
      AND registration = ANY($2::text[]) AND doc_id = $3"""


async def _readings(conn: asyncpg.Connection, base_id: uuid.UUID, rows: Sequence[Any], ext: cmi5.Extensions,
                    courses: dict[Any, Any]) -> list[tuple[cmi5.Reading, Any, list[str]]]:
    """Each registration row of the base as cmi5 reads it, with its course (None: unknown) and the ids of the
    statements read: three statements for all of them (`courses` caches the courses across calls)."""
    if not rows:
        return []
    unknown = list({r["course_id"] for r in rows} - courses.keys())
    if unknown:
        courses.update({c["id"]: c for c in await conn.fetch(_COURSES, unknown)})
    regs = [r["registration"] for r in rows]
    statements: dict[Any, list[tuple[str, Any]]] = {}
    for r in await conn.fetch(_STATEMENTS_MANY, base_id, regs):
        statements.setdefault(r["registration"], []).append((r["activity_id"], r["statement"]))
    # By the documents' key (activity, agent, registration), as the State API stores them.
    aus = sorted({au for r in rows if r["course_id"] in courses for au in courses[r["course_id"]]["aus"]})
    launch: dict[str, list[Any]] = {}
    for r in await conn.fetch(_LAUNCH_MANY, base_id, [str(x) for x in regs], cmi5.LAUNCH_DATA, aus,
                              sorted({r["learner"] for r in rows})):
        launch.setdefault(r["registration"], []).append(r)
    out = []
    for row in rows:
        course = courses.get(row["course_id"])
        units = list(course["aus"]) if course else []
        kept = [_json(s) for a, s in statements.get(row["registration"], []) if a in units]
        data: dict[str, Any] = {}
        for doc in launch.get(str(row["registration"]), []):
            if doc["agent"] == row["learner"] and doc["activity_id"] in units:
                with contextlib.suppress(orjson.JSONDecodeError):
                    data[doc["activity_id"]] = orjson.loads(doc["content"])
        out.append((cmi5.read(kept, units, row["learner"], data, ext), course, [s["id"] for s in kept]))
    return out


async def settle_many(engine: AsyncEngine, keys: PiiKeys, ext: cmi5.Extensions,
                      items: Sequence[tuple[Principal, uuid.UUID, uuid.UUID]]) -> None:
    """`settle` for several registrations in one transaction: each base's registrations locked and read in three
    statements, every record pushed as one set of the intake (answered as if pushed one by one), the decisions
    written in one more. A transaction that cannot stand is settled again registration by registration."""
    try:
        async with intake.transaction(engine) as conn:
            await _settle_many(conn, engine, keys, ext, items)
        return
    except intake.FALLBACK:
        pass
    except Exception:
        log.exception("cmi5 registrations could not be settled together; settling them one by one")
    for principal, base_id, registration in items:
        await settle(engine, keys, ext, principal, base_id, registration)


async def _settle_many(conn: asyncpg.Connection, engine: AsyncEngine, keys: PiiKeys, ext: cmi5.Extensions,
                       items: Sequence[tuple[Principal, uuid.UUID, uuid.UUID]]) -> None:
    senders = {(base_id, registration): principal for principal, base_id, registration in items}
    by_base: dict[uuid.UUID, list[uuid.UUID]] = {}
    for base_id, registration in senders:
        by_base.setdefault(base_id, []).append(registration)
    rows: list[Any] = []
    readings: list[tuple[cmi5.Reading, Any, list[str]]] = []
    courses: dict[Any, Any] = {}
    for base_id in sorted(by_base):
        found = await conn.fetch(_LOCK_MANY, base_id, sorted(set(by_base[base_id])))
        rows += found
        readings += await _readings(conn, base_id, found, ext, courses)
    if not rows:
        return
    now = clock()
    decided: list[tuple[Any, ...]] = []
    pushing: list[tuple[Any, list[str], schemas.RecordIn]] = []
    for row, (reading, course, ids) in zip(rows, readings, strict=True):
        key = (row["base_id"], row["registration"])
        if course is None or cmi5.pending_reason(reading) is not None:
            continue
        try:
            body = cmi5.record(reading, row["registration"], row["course_id"], course["mode"], _person(keys, row))
        except ValidationError as exc:
            problem = InvalidInput(f"the registration's record is not valid: {exc.errors()[0]['msg']}",
                                   rule="cmi5-record-invalid", field="sittings")
            decided.append((*key, "refused", None, _decided(problem.body(), ids), now))
            continue
        pushing.append((row, ids, body))
    if pushing:
        try:
            outcomes = await intake.push_within(
                conn, engine.url, [senders[(r["base_id"], r["registration"])] for r, _, _ in pushing],
                [body for _, _, body in pushing], keys, now)
        except intake.FALLBACK:
            raise
        except Problem as exc:
            outcomes = [intake.Refused(exc)] * len(pushing)
        for (row, ids, _), outcome in zip(pushing, outcomes, strict=True):
            key = (row["base_id"], row["registration"])
            if isinstance(outcome, intake.Credited | intake.Replayed):
                decided.append((*key, "recorded", outcome.result.record_id, _decided(outcome.result.json(), ids), now))
            elif isinstance(outcome, intake.Refused):
                decided.append((*key, "refused", None, _decided(outcome.problem.body(), ids), now))
    if decided:
        await conn.executemany(_DECIDED, decided)


Item = tuple[Principal, uuid.UUID, uuid.UUID]  # the sender, the base, the registration


class Settler:
    """Registrations to settle, from concurrent statement requests, settled together (`settle_many`, in groups:
    grouping.py). A request is answered after its group is done, so a 200 for a terminated statement means its
    registration is settled (or, when that failed, logged and left pending: never the statements' failure)."""

    def __init__(self, run: Callable[[list[Item]], Awaitable[None]], *, size: int = 64, flushes: int = 2,
                 floor: int = 4) -> None:
        async def handle(items: list[Item]) -> list[None | BaseException]:
            try:
                await run(items)
            except Exception:
                log.exception("cmi5 registrations could not be settled; they stay pending")
            return [None] * len(items)

        self.groups: Groups[Item, None] = Groups(handle, size=size, flushes=flushes, floor=floor)

    async def settle(self, principal: Principal, base_id: uuid.UUID, registration: uuid.UUID) -> None:
        await self.groups.submit((principal, base_id, registration))


async def outcome(engine: AsyncEngine, keys: PiiKeys, ext: cmi5.Extensions, principal: Principal,
                  registration: uuid.UUID) -> dict[str, Any]:
    """What became of the registration (`schemas.RegistrationOutcome`); a done registration still pending (its
    settling failed) is settled first."""
    base_id = principal.require_base()
    async with pooled(engine) as conn:
        row = await conn.fetchrow(_FIND, base_id, registration)
    if row is None:
        raise NotFound("no such registration of this base (PUT /v1/registrations/{registration})",
                       rule="registration-not-found")
    if row["state"] != "recorded":
        await settle(engine, keys, ext, principal, base_id, registration)
    async with pooled(engine) as conn:
        row = await conn.fetchrow(_FIND, base_id, registration)
        [(reading, _, ids)] = await _readings(conn, base_id, [row], ext, {})
        record = await conn.fetchrow(_RECORD, row["record_id"]) if row["record_id"] else None
    violations = [v.json() for v in reading.violations]
    decided = _json(row["outcome"]) or {}
    if row["state"] == "recorded":
        named = {v["statement_id"] for v in violations}
        violations += [{"statement_id": i, "rule": "xueshi-after-record", "detail": cmi5.RULES["xueshi-after-record"]}
                       for i in ids if i not in set(decided.get("statements", ())) and i not in named]
    return {
        "registration": row["registration"], "course_id": row["course_id"],
        "external_id": cmi5.external_id(registration), "state": row["state"],
        "pending_reason": cmi5.pending_reason(reading) if row["state"] == "pending" else None,
        "record": None if record is None else {
            "record_id": record["id"], "external_id": record["external_id"],
            "credited_hours": record["credited_hours"], "counted_minutes": record["counted_seconds"] // 60,
            "status": record["status"], "adjustments": _json(record["adjustments"]),
            "reversed": record["reversed_at"] is not None, "reversed_at": record["reversed_at"],
            "reversal_reason": record["reversal_reason"]},
        "problem": decided.get("answer") if row["state"] == "refused" else None,
        "units": [u.json() for u in reading.units], "sessions": [s.json() for s in reading.sessions],
        "exam": None if (exam := reading.exam()) is None else exam.model_dump(),
        "violations": violations, "statements": ids}


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value
