"""Ledger use cases: load, decide (domain/rules.py), persist. Never commits: the caller's scope does.

Concurrency: every write about a person first locks that person's row (`people`, SELECT ... FOR UPDATE).
Pushes for the same person from any number of bases serialise on it; pushes for different people never
wait for each other. The lock is taken after everything that needs no lock (validation, catalog reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import uuid
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from xueshi_shared.database import libpq_url, pooled
from xueshi_shared.iam.governance import Actor, governs_field, governs_public_scope
from xueshi_shared.iam.principal import Principal
from xueshi_shared.iam.service import LIVE_TOKENS
from xueshi_shared.pii import PiiKeys, id_number_error, mask_id_number, normalise_id_number
from xueshi_shared.problems import Conflict, FieldError, Forbidden, InvalidInput, NotFound, Problem, Unavailable
from xueshi_shared.regions import within

from . import schemas
from .domain import facts, names, rules
from .models import ZERO_HASH, Allocation, Entry, NameChange, Person, PersonDay, PersonKey, Record, Sitting

HR_AUTHORITY = "A12"
# 人社部令第25号《专业技术人员继续教育规定》第八条: at least 90 学时 a year, professional at least two thirds.
YEARLY_HOURS = 90
PROFESSIONAL_SHARE = (2, 3)


def _epoch(value: dt.datetime) -> int:
    return int(value.timestamp())


def _instant(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def request_hash(keys: PiiKeys, body: schemas.RecordIn) -> bytes:
    """Identifies a request body for idempotency; keyed, because the body holds an ID number."""
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hmac.new(keys.lookup, canonical, hashlib.sha256).digest()


# ---- the hash chain -----------------------------------------------------------------------------

def entry_hash(prev: bytes, *, person_id: int, seq: int, record_id: uuid.UUID | None, kind: str, hours: int,
               seconds: int, actor_id: uuid.UUID, reason: str | None, recorded_at: dt.datetime,
               facts: dict[str, Any] | None = None) -> bytes:
    """The entry's link in the person's chain. `facts` (domain/facts.py) are covered when the entry has them; an
    entry written before they existed hashes as it always did."""
    content: dict[str, Any] = {
        "person": person_id, "seq": seq, "record": str(record_id), "kind": kind, "hours": hours,
        "seconds": seconds, "actor": str(actor_id), "reason": reason,
        "at": recorded_at.astimezone(dt.UTC).isoformat(),
    }
    if facts is not None:
        content["facts"] = facts
    return hashlib.sha256(prev + orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).digest()


async def _append_entry(db: AsyncSession, person: dict[str, Any], *, record_id: uuid.UUID, kind: str, hours: int,
                        seconds: int, actor_id: uuid.UUID, reason: str | None, now: dt.datetime) -> None:
    seq = person["entry_count"] + 1
    digest = entry_hash(person["last_hash"], person_id=person["id"], seq=seq, record_id=record_id, kind=kind,
                        hours=hours, seconds=seconds, actor_id=actor_id, reason=reason, recorded_at=now)
    await db.execute(sa.insert(Entry).values(
        person_id=person["id"], seq=seq, record_id=record_id, kind=kind, hours=hours, seconds=seconds,
        actor_id=actor_id, reason=reason, recorded_at=now, prev_hash=person["last_hash"], hash=digest))
    await db.execute(sa.update(Person).where(Person.id == person["id"]).values(entry_count=seq, last_hash=digest))


# ---- catalog reads (through the catalog's published views) ----------------------------------------

# The standing of a base (a batch and a seminar upload check it here, a single push with its course, a group
# of single pushes in SCREEN).
STANDING = "SELECT status, suspended FROM catalog.published_bases WHERE id = $1"


async def require_base_in_standing(db: AsyncSession, principal: Principal) -> uuid.UUID:
    base_id = principal.require_base()
    base = await (await _driver(db)).fetchrow(STANDING, base_id)
    check_standing(base and base["status"], base and base["suspended"])
    return base_id


# A group of single pushes, screened in one statement: which of their tokens ($1) are still live, and the
# standing of their bases ($2).
SCREEN = f"""
    SELECT l.live, b.ids, b.statuses, b.suspended
    FROM (SELECT coalesce(array_agg(token_hash), '{{}}') AS live FROM ({LIVE_TOKENS}) t) l,
         (SELECT array_agg(id) AS ids, array_agg(status) AS statuses, array_agg(suspended) AS suspended
          FROM catalog.published_bases WHERE id = ANY($2::uuid[])) b"""


def check_standing(status: str | None, suspended: bool | None) -> None:
    """Refuse the records of a base that is not approved (None: unknown) or is suspended."""
    if status != "approved":
        raise Forbidden("the base is not approved", rule="base-not-approved")
    if suspended:
        raise Forbidden("the base is suspended; its records are refused", rule="base-suspended")


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on a pooled connection, driven by asyncpg itself: BEGIN and COMMIT are its only
    overhead (a session's transaction costs two more round trips, and more of this process's time)."""
    async with pooled(engine) as conn, conn.transaction():
        yield conn


# ---- pushing a record ---------------------------------------------------------------------------

def _result(record: dict[str, Any]) -> dict[str, Any]:
    return {"record_id": record["id"], "external_id": record["external_id"],
            "credited_hours": record["credited_hours"], "counted_minutes": record["counted_seconds"] // 60,
            "status": record["status"], "adjustments": record["adjustments"]}


async def _driver(db: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside the request's transaction.

    The push path is the ledger's hot path: it talks to asyncpg directly, with statements asyncpg
    prepares once per connection, and does its writes in one statement (profiling showed the ORM layer
    costing more than the database on this path; see bench/ledger.py).
    """
    conn = await db.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    if not raw.is_in_transaction():
        # SQLAlchemy begins the database transaction lazily, on its first statement: make it begin now, or
        # the statements below would each commit on their own and the person's lock would not hold.
        await conn.execute(sa.text("SELECT 1"))
    assert raw.is_in_transaction()
    return raw  # type: ignore[return-value]


# What the push reads of a course and its plan (the single and the batch path alike).
COURSE_COLUMNS = """c.base_id, c.year, c.category, c.topic, c.field, c.hours, c.mode, c.status, c.accepting_records,
           c.live_from, c.seminar_id, c.base_scope_region,
           p.window_start, p.deadline, p.max_hours_per_day, p.minutes_per_hour, p.min_exam_questions,
           p.required_hours, p.identity_failed_share_max, t.hours AS topic_hours"""
COURSE_JOINS = """LEFT JOIN catalog.published_plans p ON p.year = c.year
    LEFT JOIN catalog.published_topics t ON t.year = c.year AND t.code = c.topic"""

# What the person was credited in a plan year, per public topic and per course (the rules' topic allotments, the
# other topics' prerequisite, a course credited once): four arrays, from one scan of the person's records of the year.
USED_BY_PERSON = """
    SELECT coalesce(array_agg(u.topic) FILTER (WHERE u.per_topic AND u.topic IS NOT NULL), '{{}}') AS topics,
           coalesce(array_agg(u.hours) FILTER (WHERE u.per_topic AND u.topic IS NOT NULL), '{{}}') AS topic_hours,
           coalesce(array_agg(u.course_id) FILTER (WHERE NOT u.per_topic), '{{}}') AS courses,
           coalesce(array_agg(u.hours) FILTER (WHERE NOT u.per_topic), '{{}}') AS course_hours
    FROM (SELECT r.topic, r.course_id, sum(r.credited_hours)::int AS hours, GROUPING(r.course_id) = 1 AS per_topic
          FROM hours_ledger.records r
          WHERE r.person_id = {person} AND r.year = {year} AND r.reversed_at IS NULL AND r.credited_hours > 0
          GROUP BY GROUPING SETS ((r.topic), (r.course_id))) u"""


def used_state(state: rules.PersonState, year: int, row: Any) -> None:
    """Fill `state` with a row of USED_BY_PERSON (the person's credited 学时 of plan year `year`)."""
    for topic, hours in zip(row["topics"], row["topic_hours"], strict=True):
        state.topic_used[(year, topic)] = hours
    for course, hours in zip(row["courses"], row["course_hours"], strict=True):
        state.course_used[course_key(course)] = hours


# The base's standing, the course with its plan, and whether the base already sent this external id: one
# round trip. (It reads record_keys, never records: a year's partitions may still have to be opened.)
_STANDING_AND_COURSE = f"""
    SELECT b.status AS base_status, b.suspended, {COURSE_COLUMNS},
           k.request_hash AS replay_hash, k.record_id AS replay_id, k.person_id AS replay_person,
           k.year AS replay_year
    FROM (SELECT $1::uuid AS base_id, $2::uuid AS course_id) x
    LEFT JOIN catalog.published_bases b ON b.id = x.base_id
    LEFT JOIN catalog.published_courses c ON c.id = x.course_id
    {COURSE_JOINS}
    LEFT JOIN hours_ledger.record_keys k ON k.base_id = x.base_id AND k.external_id = $3::text"""

_REPLAYED = """
    SELECT id, external_id, credited_hours, counted_seconds, status, adjustments FROM hours_ledger.records
    WHERE person_id = $1 AND year = $2 AND id = $3"""

# Finds people by the ID numbers' keyed hashes and takes their row locks, in person-id order (so that two
# transactions locking several people never wait on each other in a cycle).
FIND_PEOPLE = """
    SELECT k.id_hash, p.id, p.entry_count, p.last_hash, p.name
    FROM hours_ledger.person_keys k JOIN hours_ledger.people p ON p.id = k.person_id
    WHERE k.id_hash = ANY($1::bytea[])
    ORDER BY p.id
    FOR UPDATE OF p"""

# Creates people on first sight. Leaves out anyone a concurrent push created first (whose person_keys row
# is then committed, and FIND_PEOPLE sees it).
NEW_PEOPLE = """
    WITH u AS (
      SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::text[], $5::text[]) WITH ORDINALITY
        AS u(h, t, c, m, n, i)),
    k AS (
      INSERT INTO hours_ledger.person_keys (id_hash, person_id)
      SELECT h, nextval(pg_get_serial_sequence('hours_ledger.people', 'id')) FROM u ORDER BY i
      ON CONFLICT (id_hash) DO NOTHING
      RETURNING id_hash, person_id)
    INSERT INTO hours_ledger.people (id, id_hash, id_type, id_cipher, id_masked, name)
    SELECT k.person_id, k.id_hash, u.t, u.c, u.m, u.n FROM k JOIN u ON u.h = k.id_hash
    RETURNING id_hash, id, entry_count, last_hash, name"""

_YEAR_OPEN = """
    SELECT count(*) = 3 FROM pg_inherits
    WHERE inhrelid IN (to_regclass('hours_ledger.records_y' || $1::int), to_regclass('hours_ledger.sittings_y' || $1::int),
                       to_regclass('hours_ledger.allocations_y' || $1::int))"""
# Plan years whose partitions this process has seen (a partition is never dropped while the ledger runs;
# if an operator detaches one anyway, the write fails, the year is forgotten, and a retry reopens it).
_open_years: set[int] = set()
_opening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

# The person's state in one round trip, each table read once, and whether a retry of the same record landed
# while this push waited for the person's lock.
_STATE = """
    SELECT busy.starts AS busy_starts, busy.ends AS busy_ends, d.days, d.day_seconds,
      used.topics, used.topic_hours, used.courses, used.course_hours,
      rk.request_hash AS replay_hash, rk.record_id AS replay_id, rk.person_id AS replay_person,
      rk.year AS replay_year
    FROM (SELECT 1) one
    LEFT JOIN hours_ledger.record_keys rk ON rk.base_id = $7::uuid AND rk.external_id = $8::text
    CROSS JOIN
      (SELECT coalesce(array_agg(extract(epoch FROM s.started_at)::bigint ORDER BY s.started_at), '{}') AS starts,
              coalesce(array_agg(extract(epoch FROM s.ended_at)::bigint ORDER BY s.started_at), '{}') AS ends
       FROM hours_ledger.sittings s
       JOIN hours_ledger.records r ON r.person_id = s.person_id AND r.year = s.year AND r.id = s.record_id
       WHERE s.person_id = $1 AND r.reversed_at IS NULL
         AND s.started_at < $3::timestamptz AND s.started_at > $2::timestamptz - interval '1 day'
         AND s.ended_at > $2::timestamptz) AS busy
    CROSS JOIN
      (SELECT coalesce(array_agg(pd.day ORDER BY pd.day), '{}') AS days,
              coalesce(array_agg(pd.seconds ORDER BY pd.day), '{}') AS day_seconds
       FROM hours_ledger.person_days pd
       WHERE pd.person_id = $1 AND pd.day BETWEEN $4::date AND $5::date) AS d
    CROSS JOIN (""" + USED_BY_PERSON.format(person="$1", year="$6::smallint") + """) AS used"""

# Everything a push writes, in one statement (data-modifying CTEs share one snapshot; foreign keys are
# checked at its end, when the record row exists).
_WRITE = """
    WITH rec AS (
      INSERT INTO hours_ledger.records (id, base_id, external_id, person_id, course_id, year, category, topic, field,
        course_hours, mode, unit_name, unit_uscc, unit_region, exam, counted_seconds, credited_hours, status,
        adjustments, created_at)
      VALUES ($1, $2, $3, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb, $17, $18, $19, $20::jsonb,
              $21)),
    rkey AS (
      INSERT INTO hours_ledger.record_keys (base_id, external_id, request_hash, person_id, year, record_id)
      VALUES ($2, $3, $4, $5, $7, $1)),
    sit AS (
      INSERT INTO hours_ledger.sittings (person_id, year, record_id, started_at, ended_at, media_seconds,
        identity_passed, identity_failed, mode)
      SELECT $5, $7, $1, u.s, u.e, u.m, u.p, u.f, u.mode
      FROM unnest($22::timestamptz[], $23::timestamptz[], $24::int[], $25::int[], $26::int[], $37::text[])
        AS u(s, e, m, p, f, mode)),
    alloc AS (
      INSERT INTO hours_ledger.allocations (person_id, year, record_id, day, started_at, ended_at, seconds)
      SELECT $5, $7, $1, u.d, u.s, u.e, extract(epoch FROM u.e - u.s)::int
      FROM unnest($27::date[], $28::timestamptz[], $29::timestamptz[]) AS u(d, s, e)),
    days AS (
      INSERT INTO hours_ledger.person_days AS pd (person_id, day, seconds)
      SELECT $5, u.d, u.n FROM unnest($30::date[], $31::int[]) AS u(d, n)
      ON CONFLICT (person_id, day) DO UPDATE SET seconds = pd.seconds + EXCLUDED.seconds),
    ent AS (
      INSERT INTO hours_ledger.entries (person_id, seq, record_id, kind, hours, seconds, actor_id, reason,
        recorded_at, prev_hash, hash, facts)
      VALUES ($5, $32, $1, 'credit', $18, $17, $33, NULL, $21, $34, $35, $38::jsonb))
    UPDATE hours_ledger.people SET entry_count = $32, last_hash = $35,
      name = CASE WHEN entry_count = 0 THEN $36 ELSE name END  -- the first record written fixes the name
    WHERE id = $5"""


async def open_year(conn: asyncpg.Connection, url: sa.URL, year: int) -> None:
    """Make sure the plan year's partitions exist, before the transaction on `conn` touches a ledger table.

    The partitions are created on a connection of their own to the database at `url` (autocommit, outside
    the pool, so that a full pool cannot starve it), so that the DDL's brief lock never waits on this
    request's own transaction. It runs once per year, on the year's first record; one request per process
    does it, the others wait.
    """
    if year in _open_years:
        return
    async with _opening.setdefault(asyncio.get_running_loop(), asyncio.Lock()):
        if year in _open_years:
            return
        if not await conn.fetchval(_YEAR_OPEN, year):
            ddl = await asyncpg.connect(libpq_url(url.render_as_string(hide_password=False)))
            try:
                await ddl.execute("SET lock_timeout = '10s'")
                await ddl.execute("SELECT hours_ledger.open_year($1)", year)
            except (asyncpg.ObjectInUseError, asyncpg.LockNotAvailableError) as exc:
                raise Unavailable(f"the ledger cannot open plan year {year}: {exc}", rule="year-not-open",
                                  retry_after="30") from None
            finally:
                await ddl.close()
        _open_years.add(year)


async def lock_person(db: AsyncSession, keys: PiiKeys, id_type: str, id_number: str, name: str) -> Any:
    """Create the person on first sight and take the person's row lock: (id, entry_count, last_hash, name)."""
    number = normalise_id_number(id_number)
    conn = await _driver(db)
    digest = [keys.lookup_hash(number)]
    person = await conn.fetchrow(FIND_PEOPLE, digest)
    if person is None:
        person = await conn.fetchrow(NEW_PEOPLE, digest, [id_type], [keys.encrypt(id_type, number)],
                                     [mask_id_number(number)], [name])
    if person is None:
        person = await conn.fetchrow(FIND_PEOPLE, digest)
    return person


def external_id_reused(external_id: str, record_id: Any = None) -> Conflict:
    """The refusal of an external id this base already used for a different record."""
    extra = {} if record_id is None else {"record_id": str(record_id)}
    return Conflict(f"external_id {external_id!r} was already used by this base for a different record",
                    rule="external-id-reused", field="external_id", **extra)


def check_name(registered: str, established: bool, sent: str) -> None:
    """One person, one name: a record names the person as the registry does (its first record fixed the name;
    HR staff correct it: POST /v1/people/name-corrections). `established`: the person has ledger entries."""
    if established and not names.same_name(registered, sent):
        raise Conflict("the name differs from the registry's name for this ID number; HR staff correct a "
                       "registered name (POST /v1/people/name-corrections)", rule="name-mismatch", field="name",
                       registered_name=names.mask_name(registered), sent_name=names.mask_name(sent))


def _check_repeat(stored_hash: bytes, digest: bytes, external_id: str, record_id: Any) -> None:
    if not hmac.compare_digest(bytes(stored_hash), digest):
        raise external_id_reused(external_id, record_id)


async def _replay(conn: asyncpg.Connection, hit: Any, digest: bytes, external_id: str) -> tuple[int, dict[str, Any]]:
    """The answer to a repeat of an external id, from the record_keys columns of `hit` (a different body is
    refused before the record is read)."""
    _check_repeat(hit["replay_hash"], digest, external_id, hit["replay_id"])
    return 200, _stored_result(await conn.fetchrow(_REPLAYED, hit["replay_person"], hit["replay_year"],
                                                   hit["replay_id"]))


def _replay_result(row: Any, digest: bytes, external_id: str) -> dict[str, Any]:
    _check_repeat(row["request_hash"], digest, external_id, row["id"])
    return _stored_result(row)


def _stored_result(row: Any) -> dict[str, Any]:
    adjustments = row["adjustments"]
    return _result({**dict(row), "adjustments": orjson.loads(adjustments) if isinstance(adjustments, str)
                    else adjustments})


@dataclass(slots=True)
class Admitted:
    """A record that passed every refusal: what the decision needs besides the person's state."""

    body: schemas.RecordIn
    course: Any
    plan: rules.PlanRules
    facts: rules.CourseFacts
    sittings: list[rules.Sitting]
    exam: rules.Exam | None


def check_id_number(id_type: str, id_number: str) -> None:
    """Refuse an ID number that is not valid for its type (`id-number`, naming the part) or that is a resident ID
    number sent under another type (`id-type-mismatch`)."""
    problem = id_number_error(id_type, id_number)
    if problem:
        raise InvalidInput(problem.detail, rule=problem.rule, part=problem.part,
                           field="id_type" if problem.rule == "id-type-mismatch" else "id_number")


@functools.lru_cache(maxsize=256)
def plan_rules(window_start: dt.date, deadline: dt.date, max_hours_per_day: int, minutes_per_hour: int,
               min_exam_questions: int, required_hours: int, identity_failed_share_max: Any) -> rules.PlanRules:
    """A plan's numbers as the rules take them (built once per plan and process)."""
    return rules.PlanRules(
        window_start=rules.day_bounds(window_start)[0], window_end=rules.day_bounds(deadline)[1],
        max_hours_per_day=max_hours_per_day, minutes_per_hour=minutes_per_hour, min_exam_questions=min_exam_questions,
        required_hours=required_hours, identity_failed_share_max=Fraction(identity_failed_share_max))


def admit(course: Any, body: schemas.RecordIn, base_id: uuid.UUID, now: dt.datetime, *,
          seminar: bool = False) -> Admitted:
    """The checks that refuse a record as a whole (422), given its course row (None: unknown course).
    `seminar`: the record comes from a seminar's attendance upload, the only door to a seminar's course."""
    check_id_number(body.id_type, body.id_number)
    if course is None or course["base_id"] != base_id:
        raise InvalidInput("no course of this base has that id", rule="course-unknown", field="course_id")
    if not course["accepting_records"]:
        raise InvalidInput(f"the course is {course['status']}; only approved courses receive records",
                           rule="course-not-approved", field="course_id")
    if (course["seminar_id"] is not None) != seminar:
        if seminar:  # not reachable through the API: a seminar's course is created with the seminar
            raise InvalidInput("the course is not a seminar's attendance course", rule="seminar-course",
                               field="course_id")
        raise InvalidInput("a seminar's course takes records only through its attendance upload "
                           "(POST /v1/seminars/{id}/attendance)", rule="seminar-course", field="course_id")
    if not seminar and not within(body.unit.region, course["base_scope_region"]):
        raise InvalidInput(f"the unit's region lies outside the base's training scope ({course['base_scope_region']})",
                           rule="unit-outside-scope", field="unit.region")
    plan = plan_rules(course["window_start"], course["deadline"], course["max_hours_per_day"],
                      course["minutes_per_hour"], course["min_exam_questions"], course["required_hours"],
                      course["identity_failed_share_max"])
    public = course["category"] == "public"
    facts = rules.CourseFacts(
        mode=course["mode"], hours=course["hours"], year=course["year"], topic=course["topic"] if public else None,
        allotment=course["topic_hours"] if public else None, key=course_key(body.course_id),
        live_from=None if course["live_from"] is None else rules.day_bounds(course["live_from"])[0],
        seminar=seminar)
    sittings = [rules.Sitting(
        _epoch(s.started_at), _epoch(s.ended_at), s.media_seconds,
        None if s.identity_checks is None else s.identity_checks.passed,
        None if s.identity_checks is None else s.identity_checks.failed, s.mode) for s in body.sittings]
    exam = None if body.exam is None else rules.Exam(body.exam.questions, body.exam.correct, body.exam.passed)
    refused = rules.refusals(facts, plan, sittings, exam, _epoch(now))
    InvalidInput.check([FieldError(f, r, d) for f, r, d in refused])
    return Admitted(body, course, plan, facts, sittings, exam)


def course_key(course_id: Any) -> str:
    """A course as the person's state knows it (asyncpg's and Python's UUIDs alike)."""
    return str(course_id)


@dataclass(slots=True)
class Staged:
    """A decided record, ready to write: the rows it adds and the result it answers with."""

    record_id: uuid.UUID
    person_id: int
    admitted: Admitted
    digest: bytes
    decision: rules.Decision
    status: str
    adjustments: list[dict[str, Any]]
    seq: int
    prev: bytes
    entry: bytes
    facts: dict[str, Any]

    def result(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "external_id": self.admitted.body.external_id,
                "credited_hours": self.decision.credited_hours,
                "counted_minutes": self.decision.counted_seconds // 60, "status": self.status,
                "adjustments": self.adjustments}


def stage(admitted: Admitted, person_id: int, head: tuple[int, bytes], state: rules.PersonState, digest: bytes,
          actor_id: uuid.UUID, now: dt.datetime, name: str) -> Staged:
    """Decide a record against the person's state and chain head (entry_count, last_hash), and take the decision
    into `state` (what the ledger holds for the person once the record is written). `name`: the person's registered
    name once the record is written."""
    decision = rules.decide(admitted.facts, admitted.plan, admitted.sittings, admitted.exam, state)
    state.add(admitted.facts, admitted.sittings, decision)
    record_id = uuid.uuid4()
    adjustments = [{"rule": a.rule, "minutes": a.minutes, "hours": a.hours,
                    "day": a.day.isoformat() if a.day else None, "detail": a.detail} for a in decision.adjustments]
    seq, prev = head[0] + 1, head[1]
    course, body = admitted.course, admitted.body
    vouched = facts.record_facts(
        year=course["year"], course_id=body.course_id, base_id=course["base_id"], external_id=body.external_id,
        category=course["category"], topic=course["topic"], field=course["field"], unit_region=body.unit.region,
        credited_hours=decision.credited_hours, counted_seconds=decision.counted_seconds,
        sittings=((s.start, s.end) for s in admitted.sittings),
        allocations=((a.day, a.start, a.end) for a in decision.allocations), name=name)
    entry = entry_hash(prev, person_id=person_id, seq=seq, record_id=record_id, kind="credit",
                       hours=decision.credited_hours, seconds=decision.counted_seconds, actor_id=actor_id,
                       reason=None, recorded_at=now, facts=vouched)
    return Staged(record_id, person_id, admitted, digest, decision, decision.status(admitted.course["hours"]),
                  adjustments, seq, prev, entry, vouched)


def forget_year(year: int) -> None:
    """A write found the year's partitions gone: the next push of that year checks and reopens them."""
    _open_years.discard(year)


async def push_record(db: AsyncSession, principal: Principal, body: schemas.RecordIn, keys: PiiKeys,
                      now: dt.datetime, *, seminar: bool = False) -> tuple[int, dict[str, Any]]:
    """Apply the rules to one record and append it. Returns (201 or 200 for a replay, result). `seminar`: the
    record comes from a seminar's attendance upload (`admit`)."""
    base_id = principal.require_base()
    conn = await _driver(db)
    course = await conn.fetchrow(_STANDING_AND_COURSE, base_id, body.course_id, body.external_id)
    check_standing(course["base_status"], course["suspended"])
    admitted = admit(course if course["base_id"] is not None else None, body, base_id, now, seminar=seminar)
    digest = request_hash(keys, body)
    if course["replay_id"] is not None:
        return await _replay(conn, course, digest, body.external_id)

    await open_year(conn, db.bind.url, course["year"])
    person = await lock_person(db, keys, body.id_type, body.id_number, body.name)
    sittings = admitted.sittings
    lo, hi = min(s.start for s in sittings), max(s.end for s in sittings)
    state_row = await conn.fetchrow(_STATE, person["id"], _instant(lo), _instant(hi), rules.day_of(lo),
                                    rules.day_of(hi - 1), course["year"], base_id, body.external_id)
    if state_row["replay_id"] is not None:  # a retry of the same record landed while we waited for the lock
        return await _replay(conn, state_row, digest, body.external_id)
    check_name(person["name"], person["entry_count"] > 0, body.name)
    state = rules.PersonState(busy=list(zip(state_row["busy_starts"], state_row["busy_ends"], strict=True)),
                              day_used=dict(zip(state_row["days"], state_row["day_seconds"], strict=True)))
    used_state(state, course["year"], state_row)
    staged = stage(admitted, person["id"], (person["entry_count"], bytes(person["last_hash"])), state, digest,
                   principal.id, now, person["name"] if person["entry_count"] > 0 else body.name)
    decision = staged.decision
    per_day: dict[dt.date, int] = defaultdict(int)
    for a in decision.allocations:
        per_day[a.day] += a.seconds
    try:
        await conn.execute(
            _WRITE, staged.record_id, base_id, body.external_id, digest, person["id"], body.course_id, course["year"],
            course["category"], course["topic"], course["field"], course["hours"], course["mode"], body.unit.name,
            body.unit.uscc, body.unit.region,
            None if body.exam is None else orjson.dumps(body.exam.model_dump()).decode(),
            decision.counted_seconds, decision.credited_hours, staged.status, orjson.dumps(staged.adjustments).decode(),
            now, [_instant(s.start) for s in sittings], [_instant(s.end) for s in sittings],
            [s.media_seconds for s in sittings], [s.id_passed for s in sittings], [s.id_failed for s in sittings],
            [a.day for a in decision.allocations], [_instant(a.start) for a in decision.allocations],
            [_instant(a.end) for a in decision.allocations],
            list(per_day), list(per_day.values()), staged.seq, principal.id, staged.prev, staged.entry, body.name,
            [s.mode for s in sittings], orjson.dumps(staged.facts).decode())
    except asyncpg.CheckViolationError as exc:
        if "no partition" not in str(exc):
            raise
        forget_year(course["year"])
        raise Unavailable(f"the ledger's partitions for {course['year']} were removed while it ran; retry to "
                          "reopen the year", rule="year-not-open") from None
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "record_keys_pkey":
            raise
        # Same base and external_id pushed at the same moment for another person (same body means the same
        # person, whose pushes serialise on the lock): a different record under a used id.
        raise external_id_reused(body.external_id) from None
    return 201, staged.result()


async def get_record(db: AsyncSession, principal: Principal, record_id: uuid.UUID) -> dict[str, Any]:
    row = (await db.execute(sa.select(Record).where(Record.id == record_id))).scalar_one_or_none()
    if row is None or (principal.kind == "base" and row.base_id != principal.base_id):
        raise NotFound("no such record", rule="record-not-found")
    return {**_result({"id": row.id, "external_id": row.external_id, "credited_hours": row.credited_hours,
                       "counted_seconds": row.counted_seconds, "status": row.status, "adjustments": row.adjustments}),
            "reversed": row.reversed_at is not None, "reversed_at": row.reversed_at,
            "reversal_reason": row.reversal_reason}


# ---- who may see and correct what ----------------------------------------------------------------

async def _stamping(db: AsyncSession) -> dict[str, str]:
    return dict((await db.execute(sa.text("SELECT code, stamped_by FROM catalog.published_fields"))).all())


def _governs(actor: Actor, category: str, unit_region: str, field: str | None, stamps: dict[str, str]) -> bool:
    if category == "public":
        return governs_public_scope(actor, unit_region)
    return field is not None and governs_field(actor, stamps.get(field, ""), HR_AUTHORITY)


async def reverse_record(db: AsyncSession, principal: Principal, record_id: uuid.UUID, reason: str,
                         now: dt.datetime) -> dict[str, Any]:
    principal.require_staff("province_admin", "city_admin", "authority_reviewer")
    found = (await db.execute(sa.select(Record.person_id, Record.year).where(Record.id == record_id))).first()
    if found is None:
        raise NotFound("no such record", rule="record-not-found")
    person = dict((await db.execute(
        sa.select(Person.id, Person.entry_count, Person.last_hash, Person.id_masked)
        .where(Person.id == found.person_id).with_for_update())).mappings().one())
    record = (await db.execute(sa.select(Record).where(
        Record.person_id == found.person_id, Record.year == found.year, Record.id == record_id))).scalar_one()
    actor = Actor(principal.role, principal.region, principal.authority)
    if not _governs(actor, record.category, record.unit_region, record.field, await _stamping(db)):
        raise Forbidden("your role and scope do not govern this record", rule="out-of-scope")
    if record.reversed_at is not None:
        raise Conflict("the record has already been reversed", rule="already-reversed")
    record.reversed_at, record.reversed_by, record.reversal_reason = now, principal.id, reason
    per_day = (await db.execute(
        sa.select(Allocation.day, sa.func.sum(Allocation.seconds))
        .where(Allocation.person_id == found.person_id, Allocation.year == found.year,
               Allocation.record_id == record_id)
        .group_by(Allocation.day))).all()
    for day, seconds in per_day:
        await db.execute(sa.update(PersonDay).where(PersonDay.person_id == person["id"], PersonDay.day == day)
                         .values(seconds=PersonDay.seconds - int(seconds)))
    await _append_entry(db, person, record_id=record_id, kind="reversal", hours=record.credited_hours,
                        seconds=record.counted_seconds, actor_id=principal.id, reason=reason, now=now)
    await db.flush()
    return {"record_id": record_id, "reversed_hours": record.credited_hours, "reversed_at": now,
            "person_masked": person["id_masked"]}


BEIJING = dt.timezone(dt.timedelta(hours=8))


def _not_yours() -> Forbidden:
    return Forbidden("the person has no records in your scope", rule="out-of-scope")


def person_unknown(principal: Principal) -> Problem:
    """The answer for an ID number the ledger does not know. Staff with a scope get what they get for a person
    outside it (403), so that their answers never tell whether someone has studied anywhere; staff who see
    everyone (province_admin, auditor) learn that nobody has records (404)."""
    if principal.role in ("province_admin", "auditor"):
        return NotFound("no study records for this person", rule="person-not-found")
    return _not_yours()


# ---- transcripts --------------------------------------------------------------------------------

async def transcript(db: AsyncSession, principal: Principal, keys: PiiKeys, id_number: str,
                     year: int) -> dict[str, Any]:
    principal.require_staff()
    person = (await db.execute(
        sa.select(Person).join(PersonKey, PersonKey.person_id == Person.id)
        .where(PersonKey.id_hash == keys.lookup_hash(id_number)))).scalar_one_or_none()
    if person is None:
        raise person_unknown(principal)
    records = (await db.execute(
        sa.select(Record, sa.func.min(Sitting.started_at), sa.func.max(Sitting.ended_at))
        .join(Sitting, sa.and_(Sitting.person_id == Record.person_id, Sitting.year == Record.year,
                               Sitting.record_id == Record.id))
        .where(Record.person_id == person.id, Record.year == year)
        .group_by(Record.person_id, Record.year, Record.id).order_by(sa.func.min(Sitting.started_at)))).all()

    if principal.role not in ("province_admin", "auditor"):
        actor = Actor(principal.role, principal.region, principal.authority)
        stamps = await _stamping(db)
        all_records = (await db.execute(sa.select(Record.category, Record.unit_region, Record.field)
                                        .where(Record.person_id == person.id))).all()
        if not any(_governs(actor, c, r, f, stamps) for c, r, f in all_records):
            raise _not_yours()

    plan = (await db.execute(sa.text("SELECT required_hours FROM catalog.published_plans WHERE year = :y"),
                             {"y": year})).first()
    topics = (await db.execute(sa.text(
        "SELECT code, title, hours FROM catalog.published_topics WHERE year = :y ORDER BY code"), {"y": year})).all()
    public_by_topic: dict[str, int] = defaultdict(int)
    professional_by_field: dict[str, int] = defaultdict(int)
    # Names for people to read beside the ids: the bases' and the courses' (one query each for the whole year).
    base_names = dict((await db.execute(sa.text(
        "SELECT id, unit_name FROM catalog.published_bases WHERE id = ANY(:ids)"),
        {"ids": list({r.base_id for r, _, _ in records})})).all()) if records else {}
    course_titles = dict((await db.execute(sa.text(
        "SELECT id, title FROM catalog.published_courses WHERE id = ANY(:ids)"),
        {"ids": list({r.course_id for r, _, _ in records})})).all()) if records else {}
    lines = []
    for r, first, last in records:
        if r.reversed_at is None:
            if r.category == "public":
                public_by_topic[r.topic] += r.credited_hours
            else:
                professional_by_field[r.field] += r.credited_hours
        lines.append({
            "record_id": r.id, "base_id": r.base_id, "external_id": r.external_id, "course_id": r.course_id,
            "category": r.category, "topic": r.topic, "field": r.field, "course_hours": r.course_hours,
            "credited_hours": r.credited_hours, "counted_minutes": r.counted_seconds // 60, "status": r.status,
            "unit": {"name": r.unit_name, "uscc": r.unit_uscc, "region": r.unit_region},
            "first_sitting": first, "last_sitting": last, "adjustments": r.adjustments,
            "reversed": r.reversed_at is not None, "reversal_reason": r.reversal_reason,
            "base_name": base_names.get(r.base_id), "course_title": course_titles.get(r.course_id),
            "period_beijing": f"{first.astimezone(BEIJING):%Y-%m-%d %H:%M} – {last.astimezone(BEIJING):%Y-%m-%d %H:%M}",
            "reversed_at": r.reversed_at,
        })
    # Other topics are listed apart and never count toward the plan's requirement (they count toward the year's).
    other_hours = public_by_topic.pop(rules.OTHER_TOPIC, 0)
    public_hours = sum(public_by_topic.values())
    professional_hours = sum(professional_by_field.values())
    total_hours = public_hours + other_hours + professional_hours
    history = (await db.execute(sa.select(NameChange).where(NameChange.person_id == person.id)
                                .order_by(NameChange.id))).scalars().all()
    required = plan.required_hours if plan else 0
    share_num, share_den = PROFESSIONAL_SHARE
    return {
        "id_number": person.id_masked, "id_type": person.id_type, "name": person.name, "year": year,
        "name_history": [{"old_name": h.old_name, "new_name": h.new_name, "reason": h.reason,
                          "changed_at": h.changed_at} for h in history],
        "public": {"required_hours": required, "credited_hours": public_hours,
                   "topics": [{"code": c, "title": t, "allotment": h, "credited_hours": public_by_topic.get(c, 0)}
                              for c, t, h in topics],
                   "other_topics_hours": other_hours},
        "professional": {"credited_hours": professional_hours,
                         "fields": [{"code": f, "credited_hours": n} for f, n in sorted(professional_by_field.items())]},
        "total_hours": total_hours,
        "public_requirement_met": plan is not None and public_hours >= required,
        "yearly_requirement_met": total_hours >= YEARLY_HOURS and professional_hours * share_den >= total_hours * share_num,
        "records": lines,
    }


# ---- the person's name -------------------------------------------------------------------------

async def correct_name(db: AsyncSession, principal: Principal, keys: PiiKeys, id_number: str, name: str, reason: str,
                       now: dt.datetime) -> dict[str, Any]:
    """HR staff correct the name registered for an ID number (`province_admin`; a `city_admin` for people with
    records from units of its region). The old name stays in the person's history."""
    principal.require_staff("province_admin", "city_admin")
    conn = await _driver(db)
    person = await conn.fetchrow(FIND_PEOPLE, [keys.lookup_hash(id_number)])
    if person is None:
        raise person_unknown(principal)
    if principal.role == "city_admin":
        regions = await conn.fetchval(
            "SELECT array_agg(DISTINCT unit_region) FROM hours_ledger.records WHERE person_id = $1", person["id"])
        actor = Actor(principal.role, principal.region, principal.authority)
        if not any(governs_public_scope(actor, region) for region in regions or ()):
            raise _not_yours()
    if person["name"] == name:  # (a correction of spacing or letter case alone is a correction)
        raise InvalidInput("the registry already holds this name for the person", rule="name-unchanged", field="name")
    # The correction is an entry of the person's chain, vouching for the new name (domain/facts.py).
    seq, vouched = person["entry_count"] + 1, {"v": facts.FACTS_VERSION, "name": facts.name_digest(name)}
    digest = entry_hash(bytes(person["last_hash"]), person_id=person["id"], seq=seq, record_id=None, kind="rename",
                        hours=0, seconds=0, actor_id=principal.id, reason=reason, recorded_at=now, facts=vouched)
    await conn.execute("""
        WITH change AS (
          INSERT INTO hours_ledger.name_changes (person_id, old_name, new_name, reason, actor_id, changed_at)
          VALUES ($1, $2, $3, $4, $5, $6)),
        ent AS (
          INSERT INTO hours_ledger.entries (person_id, seq, record_id, kind, hours, seconds, actor_id, reason,
            recorded_at, prev_hash, hash, facts)
          VALUES ($1, $7, NULL, 'rename', 0, 0, $5, $4, $6, $8, $9, $10::jsonb))
        UPDATE hours_ledger.people SET name = $3, entry_count = $7, last_hash = $9 WHERE id = $1""",
                       person["id"], person["name"], name, reason, principal.id, now, seq, bytes(person["last_hash"]),
                       digest, orjson.dumps(vouched).decode())
    return {"id_number": mask_id_number(normalise_id_number(id_number)), "name": name, "previous_name": person["name"],
            "changed_at": now, "person": person["id"]}


# ---- integrity ----------------------------------------------------------------------------------

# Every record with what the integrity check compares with its credit entry's facts, by person.
_RECORDS_FOR_INTEGRITY = """
    SELECT r.person_id, r.id, r.year, r.course_id, r.base_id, r.external_id, r.category, r.topic, r.field,
           r.unit_region, r.credited_hours, r.counted_seconds, r.reversed_at IS NOT NULL AS reversed,
           (SELECT coalesce(array_agg(ARRAY[extract(epoch FROM s.started_at)::bigint::text,
                                            extract(epoch FROM s.ended_at)::bigint::text]), '{}')
            FROM hours_ledger.sittings s
            WHERE s.person_id = r.person_id AND s.year = r.year AND s.record_id = r.id) AS sittings,
           (SELECT coalesce(array_agg(ARRAY[a.day::text, extract(epoch FROM a.started_at)::bigint::text,
                                            extract(epoch FROM a.ended_at)::bigint::text]), '{}')
            FROM hours_ledger.allocations a
            WHERE a.person_id = r.person_id AND a.year = r.year AND a.record_id = r.id) AS allocations
    FROM hours_ledger.records r ORDER BY r.person_id, r.id"""

# A day's running total that is not what the counted allocations of its unreversed records add up to.
_DAYS_OFF = """
    SELECT coalesce(d.person_id, a.person_id) AS person_id, coalesce(d.day, a.day) AS day,
           coalesce(d.seconds, 0) AS stored, coalesce(a.seconds, 0) AS counted
    FROM hours_ledger.person_days d
    FULL JOIN (SELECT al.person_id, al.day, sum(al.seconds) AS seconds
               FROM hours_ledger.allocations al
               JOIN hours_ledger.records r ON r.person_id = al.person_id AND r.year = al.year AND r.id = al.record_id
               WHERE r.reversed_at IS NULL GROUP BY al.person_id, al.day) a
      ON a.person_id = d.person_id AND a.day = d.day
    WHERE coalesce(d.seconds, 0) <> coalesce(a.seconds, 0)
    ORDER BY 1, 2"""


class _PersonChain:
    """What one person's entries vouch for, gathered while their chain is walked."""

    def __init__(self, person: int) -> None:
        self.person = person
        self.credits: dict[Any, tuple[int, Any]] = {}   # record id -> (seq, entry row)
        self.reversed: set[Any] = set()                 # record ids with a reversal entry
        self.name: str | None = None                    # the name digest the latest entry vouches for


class _Records:
    """The records stream (ordered by person), taken one person at a time."""

    def __init__(self, cursor: Any) -> None:
        self._rows = cursor.__aiter__()
        self._next: Any = None
        self._done = False

    async def _peek(self) -> Any:
        if self._next is None and not self._done:
            try:
                self._next = await self._rows.__anext__()
            except StopAsyncIteration:
                self._done = True
        return self._next

    async def up_to(self, person: int | None) -> list[Any]:
        """The records of people up to `person` (all that are left for None), in order."""
        out = []
        while (row := await self._peek()) is not None and (person is None or row["person_id"] <= person):
            out.append(row)
            self._next = None
        return out


async def check_integrity(db: AsyncSession, principal: Principal, limit: int = 100) -> dict[str, Any]:
    """Re-walk every person's chain, and rebuild from the tables what each entry vouches for.

    Found: entries changed, deleted, inserted or reordered (the chain); a record changed behind its credit entry
    (year, course, base, external id, category, topic or field, the unit's region, credited 学时 or seconds, its
    sittings or allocations); a record without a credit entry, a credit entry without its record; a reversal
    undone or forged (reversed_at against the reversal entries); a person renamed other than by a rename entry;
    a day's total that is not what the day's counted allocations add up to. Entries written before their facts
    were recorded (hours_ledger_0007) are held to their hours and seconds. Entries and records are read as two
    streams ordered by person and compared one person at a time."""
    principal.require_staff("auditor", "province_admin")
    problems: list[dict[str, Any]] = []

    def report(person: int, seq: int | None, text: str) -> None:
        if len(problems) < limit:
            problems.append({"person": person, "seq": seq, "problem": text})

    heads = {p.id: p for p in (await db.execute(
        sa.select(Person.id, Person.entry_count, Person.last_hash, Person.name))).all()}
    conn = await _driver(db)
    records = _Records(conn.cursor(_RECORDS_FOR_INTEGRITY, prefetch=2000))
    with_entries: set[int] = set()

    def compare_record(chain: _PersonChain | None, r: Any) -> None:
        credit = chain.credits.pop(r["id"], None) if chain else None
        if credit is None:
            report(r["person_id"], None, f"record {r['id']} has no ledger entry (inserted behind the service's back)")
            return
        seq, entry = credit
        if entry.facts:
            now = facts.record_facts(
                year=r["year"], course_id=r["course_id"], base_id=r["base_id"], external_id=r["external_id"],
                category=r["category"], topic=r["topic"], field=r["field"], unit_region=r["unit_region"],
                credited_hours=r["credited_hours"], counted_seconds=r["counted_seconds"],
                sittings=[tuple(x) for x in r["sittings"]], allocations=(), name="")
            now["allocations"] = facts.spans_digest(tuple(x) for x in r["allocations"])
            changed = facts.differences(entry.facts, now)
            if changed:
                report(r["person_id"], seq, f"the record no longer says what its ledger entry says: {', '.join(changed)}")
        elif (r["credited_hours"], r["counted_seconds"]) != (entry.hours, entry.seconds):
            report(r["person_id"], seq, "the record no longer says what its ledger entry says: credited, counted")
        if r["reversed"] != (r["id"] in chain.reversed):  # type: ignore[union-attr]
            report(r["person_id"], seq, "the record is marked reversed without a reversal entry" if r["reversed"]
                   else "the record's reversal was undone (its reversal entry stands)")

    async def close(chain: _PersonChain | None, last_hash: bytes, last_seq: int) -> None:
        """The end of a person's entries: their chain's head, their name, their records."""
        if chain is None:
            return
        person = chain.person
        with_entries.add(person)
        head = heads.get(person)
        if head is None:
            report(person, None, "entries of a person the ledger does not know")
        else:
            if last_seq != head.entry_count or last_hash != head.last_hash:
                report(person, None, f"the chain ends at entry {last_seq} but the head says {head.entry_count}: "
                                     "entries were deleted, added or changed")
            if chain.name is not None and facts.name_digest(head.name) != chain.name:
                report(person, None, "the person's name is not the one their entries vouch for (renamed behind the "
                                     "service's back, not by a name correction)")
        for r in await records.up_to(person):
            compare_record(chain if r["person_id"] == person else None, r)
        for record_id, (seq, _) in chain.credits.items():
            report(person, seq, f"the record of this entry ({record_id}) is gone (deleted or moved to someone else)")

    checked = 0
    chain: _PersonChain | None = None
    prev, expected_seq = ZERO_HASH, 1
    stream = await db.stream(
        sa.select(Entry.person_id, Entry.seq, Entry.record_id, Entry.kind, Entry.hours, Entry.seconds,
                  Entry.actor_id, Entry.reason, Entry.recorded_at, Entry.prev_hash, Entry.hash, Entry.facts)
        .order_by(Entry.person_id, Entry.seq).execution_options(yield_per=5000))
    async for e in stream:
        checked += 1
        if chain is None or e.person_id != chain.person:
            await close(chain, prev, expected_seq - 1)
            chain, prev, expected_seq = _PersonChain(e.person_id), ZERO_HASH, 1
        if e.seq != expected_seq:
            report(e.person_id, e.seq, f"expected entry {expected_seq}: an entry is missing or out of order")
        if e.prev_hash != prev:
            report(e.person_id, e.seq, "does not link to the entry before it (reordered or inserted)")
        recomputed = entry_hash(e.prev_hash, person_id=e.person_id, seq=e.seq, record_id=e.record_id, kind=e.kind,
                                hours=e.hours, seconds=e.seconds, actor_id=e.actor_id, reason=e.reason,
                                recorded_at=e.recorded_at, facts=e.facts)
        if recomputed != e.hash:
            report(e.person_id, e.seq, "its content no longer matches its hash (changed behind the service's back)")
        if e.kind == "credit":
            chain.credits[e.record_id] = (e.seq, e)
            if e.facts and chain.name is None:
                chain.name = e.facts.get("name")
        elif e.kind == "reversal":
            chain.reversed.add(e.record_id)
        elif e.kind == "rename" and e.facts:
            chain.name = e.facts.get("name")
        prev, expected_seq = e.hash, e.seq + 1
    await close(chain, prev, expected_seq - 1)
    for r in await records.up_to(None):
        compare_record(None, r)
    for pid, head in heads.items():
        if head.entry_count and pid not in with_entries:
            report(pid, None, f"the head says {head.entry_count} entries but none exist")

    for d in await conn.fetch(_DAYS_OFF):
        report(d["person_id"], None, f"the total of {d['day'].isoformat()} says {d['stored']} seconds, its counted "
                                     f"allocations {d['counted']}")
    return {"valid": not problems, "entries_checked": checked, "people_checked": len(heads), "problems": problems}
