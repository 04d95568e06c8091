"""The ledger's one intake: `push(records)`, set-based. Every door is a thin adapter that turns what it receives
into `schemas.RecordIn` and calls it: the single push (a batch of one, or a group of concurrent single pushes:
groupcommit.py), the JSON batch, a seminar's attendance upload (`push_within`, inside the upload's own
transaction), spreadsheets and, later, xAPI statements. There is no other way into the ledger.

Each record gets its own outcome, decided by the rules (domain/rules.py) in the order the records came, as if
pushed one by one:
1. admit every record (refusals are per record and write nothing);
2. read every course in one query, and the replays (external ids already in the ledger) in another;
3. create the people seen for the first time (a statement of its own), then lock every person of the set in one
   statement, in person-id order (so two sets never wait on each other in a cycle);
4. read every person's state (busy sittings, day totals, topic and course use) in one query;
5. decide each record in order against its person's state, applying each decision to that state before the
   person's next record (exactly what the database would hold after writing it);
6. write everything in one statement, and commit once.

If the transaction cannot stand (a deadlock with a concurrent push, an external id another push took at that
moment, a plan year's partitions removed under the running ledger), nothing of it stays, and the set is applied
again one record at a time: each record as a set of one, through exactly the same code. A set of one that still
cannot stand is retried a few times (its retry reads the replay that beat it) and then answered 503.

On Citus steps 3-6 run per worker instead, in two calls run on the worker (`_apply_on_worker`): one reads its people's
state without a lock, the rules decide, and the other locks them and writes every person whose ledger did not
change in between; the others are decided again in a transaction of their own, under their lock.

Concurrency: every write about a person holds that person's row lock (`people`, FOR UPDATE) until it commits.
Pushes for the same person from any number of bases serialise on it; pushes for different people never wait
for each other. The lock is taken after everything that needs no lock (validation, catalog reads).
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
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from xueshi_shared.database import libpq_url, pooled
from xueshi_shared.iam.principal import Principal
from xueshi_shared.iam.service import LIVE_TOKENS
from xueshi_shared.pii import PiiKeys, id_number_error, mask_id_number, normalise_id_number
from xueshi_shared.problems import Conflict, FieldError, Forbidden, InvalidInput, Problem, Unavailable
from xueshi_shared.regions import within
from xueshi_shared.timekeeping import now as clock

from . import schemas
from .chain import entry_hash
from .domain import facts, names, rules
from .placement import placements

# ---- outcomes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    """What a written (or replayed) record's answer says: `schemas.RecordResult`."""

    record_id: uuid.UUID
    external_id: str
    credited_hours: int
    counted_minutes: int
    status: str
    adjustments: list[dict[str, Any]]

    def json(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "external_id": self.external_id, "credited_hours": self.credited_hours,
                "counted_minutes": self.counted_minutes, "status": self.status, "adjustments": self.adjustments}


@dataclass(frozen=True, slots=True)
class Credited:
    """The record was written (whatever it credits: `result.status` says credited, partial or not_credited)."""

    result: Result
    status: ClassVar[int] = 201


@dataclass(frozen=True, slots=True)
class Replayed:
    """The same record (same base, external id and body) is already in the ledger: its stored result."""

    result: Result
    status: ClassVar[int] = 200


@dataclass(frozen=True, slots=True)
class Refused:
    """Nothing was written for the record: the problem says why (4xx, or 503 to retry)."""

    problem: Problem

    @property
    def status(self) -> int:
        return self.problem.status


@dataclass(frozen=True, slots=True)
class Failed:
    """An unexpected error of this record alone (concurrent single pushes, each its own request, which raises it)."""

    error: BaseException
    status: ClassVar[int] = 500


Outcome = Credited | Replayed | Refused | Failed


def batch_item(index: int, outcome: Outcome) -> dict[str, Any]:
    """A record's outcome as an item of a batch answer (`schemas.BatchItem`)."""
    if isinstance(outcome, Failed):  # not reachable for a batch (only concurrent single pushes isolate errors)
        raise outcome.error
    return {"index": index, "status": outcome.status,
            "result": outcome.result.json() if isinstance(outcome, Credited | Replayed) else None,
            "problem": outcome.problem.body() if isinstance(outcome, Refused) else None}


# ---- the catalog's side: bases, courses, plans ---------------------------------------------------

# The standing of a base (the batch and the seminar doors check it once; the group commit screens its pushes).
STANDING = "SELECT status, suspended FROM catalog.published_bases WHERE id = $1"

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


async def require_base_in_standing(conn: asyncpg.Connection, principal: Principal) -> uuid.UUID:
    base_id = principal.require_base()
    base = await conn.fetchrow(STANDING, base_id)
    check_standing(None if base is None else base["status"], None if base is None else base["suspended"])
    return base_id


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on a pooled connection, driven by asyncpg itself: BEGIN and COMMIT are its only
    overhead (a session's transaction costs two more round trips, and more of this process's time)."""
    async with pooled(engine) as conn, conn.transaction():
        yield conn


# What a push reads of a course and its plan.
_COURSES = """
    SELECT c.id, c.base_id, c.year, c.category, c.topic, c.field, c.hours, c.mode, c.status, c.accepting_records,
           c.live_from, c.seminar_id, c.base_scope_region,
           p.window_start, p.deadline, p.max_hours_per_day, p.minutes_per_hour, p.min_exam_questions,
           p.required_hours, p.identity_failed_share_max, t.hours AS topic_hours
    FROM catalog.published_courses c
    LEFT JOIN catalog.published_plans p ON p.year = c.year
    LEFT JOIN catalog.published_topics t ON t.year = c.year AND t.code = c.topic
    WHERE c.id = ANY($1::uuid[])"""


@functools.lru_cache(maxsize=256)
def plan_rules(window_start: dt.date, deadline: dt.date, max_hours_per_day: int, minutes_per_hour: int,
               min_exam_questions: int, required_hours: int, identity_failed_share_max: Any) -> rules.PlanRules:
    """A plan's numbers as the rules take them (built once per plan and process)."""
    return rules.PlanRules(
        window_start=rules.day_bounds(window_start)[0], window_end=rules.day_bounds(deadline)[1],
        max_hours_per_day=max_hours_per_day, minutes_per_hour=minutes_per_hour, min_exam_questions=min_exam_questions,
        required_hours=required_hours, identity_failed_share_max=Fraction(identity_failed_share_max))


def course_key(course_id: Any) -> str:
    """A course as the person's state knows it (asyncpg's and Python's UUIDs alike)."""
    return str(course_id)


# ---- admitting a record (the refusals that need no person) ---------------------------------------

def check_id_number(id_type: str, id_number: str) -> None:
    """Refuse an ID number that is not valid for its type (`id-number`, naming the part) or that is a resident ID
    number sent under another type (`id-type-mismatch`)."""
    problem = id_number_error(id_type, id_number)
    if problem:
        raise InvalidInput(problem.detail, rule=problem.rule, part=problem.part,
                           field="id_type" if problem.rule == "id-type-mismatch" else "id_number")


def _epoch(value: dt.datetime) -> int:
    return int(value.timestamp())


def instant(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@dataclass(slots=True)
class Admitted:
    """A record that passed every refusal: what the decision needs besides the person's state."""

    body: schemas.RecordIn
    course: Any
    plan: rules.PlanRules
    facts: rules.CourseFacts
    sittings: list[rules.Sitting]
    exam: rules.Exam | None


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
    course_facts = rules.CourseFacts(
        mode=course["mode"], hours=course["hours"], year=course["year"], topic=course["topic"] if public else None,
        allotment=course["topic_hours"] if public else None, key=course_key(body.course_id),
        live_from=None if course["live_from"] is None else rules.day_bounds(course["live_from"])[0],
        seminar=seminar)
    sittings = [rules.Sitting(
        _epoch(s.started_at), _epoch(s.ended_at), s.media_seconds,
        None if s.identity_checks is None else s.identity_checks.passed,
        None if s.identity_checks is None else s.identity_checks.failed, s.mode) for s in body.sittings]
    exam = None if body.exam is None else rules.Exam(body.exam.questions, body.exam.correct, body.exam.passed)
    refused = rules.refusals(course_facts, plan, sittings, exam, _epoch(now))
    InvalidInput.check([FieldError(f, r, d) for f, r, d in refused])
    return Admitted(body, course, plan, course_facts, sittings, exam)


def request_hash(keys: PiiKeys, body: schemas.RecordIn) -> bytes:
    """Identifies a request body for idempotency; keyed, because the body holds an ID number."""
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hmac.new(keys.lookup, canonical, hashlib.sha256).digest()


def external_id_reused(external_id: str, record_id: Any = None) -> Conflict:
    """The refusal of an external id this base already used for a different record."""
    extra: dict[str, Any] = {} if record_id is None else {"record_id": str(record_id)}
    return Conflict(f"external_id {external_id!r} was already used by this base for a different record",
                    rule="external-id-reused", field="external_id", **extra)


def check_name(registered: str, established: bool, sent: str) -> None:
    """One person, one name: a record names the person as the registry does (its first record fixed the name;
    HR staff correct it: POST /v1/people/name-corrections). `established`: the person has ledger entries."""
    if established and not names.same_name(registered, sent):
        raise Conflict("the name differs from the registry's name for this ID number; HR staff correct a "
                       "registered name (POST /v1/people/name-corrections)", rule="name-mismatch", field="name",
                       registered_name=names.mask_name(registered), sent_name=names.mask_name(sent))


# By the person's id, found by the key first (on Citus the key and the person are on shards of their own).
_REGISTERED_NAME = "SELECT name, entry_count > 0 AS established FROM hours_ledger.people WHERE id = $1"
_PERSON_ID = "SELECT person_id FROM hours_ledger.person_keys WHERE id_hash = $1"


async def check_person(conn: asyncpg.Connection, keys: PiiKeys, id_type: str, id_number: str,
                       name: str) -> dict[str, Any]:
    """The identity pre-check (`schemas.PersonCheckOut`): what a record for this person would get from the identity
    rules, by the same functions the intake applies (`check_id_number`, `check_name`), and whether the name is the
    registry's. Never the registry's name or the number."""
    try:
        check_id_number(id_type, id_number)
    except Problem as exc:
        return {"valid": False, "problems": [exc.body()], "name_matches": None}
    person_id = await conn.fetchval(_PERSON_ID, keys.lookup_hash(normalise_id_number(id_number)))
    row = None if person_id is None else await conn.fetchrow(_REGISTERED_NAME, person_id)
    if row is None or not row["established"]:
        return {"valid": True, "problems": [], "name_matches": None}
    try:
        check_name(row["name"], True, name)
    except Problem as exc:
        body = exc.body()
        for told in ("registered_name", "sent_name"):  # not even masked: the check answers yes or no
            body.pop(told, None)
        return {"valid": False, "problems": [body], "name_matches": False}
    return {"valid": True, "problems": [], "name_matches": True}


# ---- plan years: the ledger's partitions -----------------------------------------------------------

_YEAR_OPEN = """
    SELECT count(*) = 3 FROM pg_inherits
    WHERE inhrelid IN (to_regclass('hours_ledger.records_y' || $1::int), to_regclass('hours_ledger.sittings_y' || $1::int),
                       to_regclass('hours_ledger.allocations_y' || $1::int))"""
# Plan years whose partitions this process has seen (a partition is never dropped while the ledger runs;
# if an operator detaches one anyway, the write fails, the year is forgotten, and a retry reopens it).
_open_years: set[int] = set()
_opening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def open_year(conn: asyncpg.Connection, url: sa.URL, year: int) -> None:
    """Make sure the plan year's partitions exist, before a transaction touches a ledger table of the year.

    The partitions are created on a connection of their own to the database at `url` (autocommit, outside
    the pool, so that a full pool cannot starve it), so that the DDL's brief lock never waits on a request's
    own transaction. It runs once per year, on the year's first record; one request per process does it, the
    others wait.
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


def forget_year(year: int) -> None:
    """A write found the year's partitions gone: the next push of that year checks and reopens them."""
    _open_years.discard(year)


# ---- people ---------------------------------------------------------------------------------------

# The people the ID numbers' keyed hashes name (no lock: LOCK_PEOPLE locks them by id, in the transaction).
PERSON_IDS = "SELECT id_hash, person_id FROM hours_ledger.person_keys WHERE id_hash = ANY($1::bytea[])"

# Takes the people's row locks, in person-id order (so that two transactions locking several people never wait on
# each other in a cycle). On Citus each person is locked by a statement of its own (`lock_people`): a lock is taken
# on one shard at a time.
LOCK_PEOPLE = """
    SELECT id, entry_count, last_hash, name FROM hours_ledger.people
    WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE"""

# People seen for the first time: their rows first, then their keys. A key a concurrent push made first wins, and
# this push's row for that person goes again (_UNKEYED). A person row without a key (left by a crash between the two)
# is never found and holds nothing. Three statements, each on the rows' own shards on Citus (the key by the hash,
# the person by the id), where one statement writing both would be planned across the cluster.
_NEW_PEOPLE = """
    INSERT INTO hours_ledger.people (id, id_hash, id_type, id_cipher, id_masked, name)
    SELECT nextval(pg_get_serial_sequence('hours_ledger.people', 'id')), h, t, c, m, n
    FROM unnest($1::bytea[], $2::text[], $3::bytea[], $4::text[], $5::text[]) WITH ORDINALITY AS u(h, t, c, m, n, i)
    ORDER BY i
    RETURNING id_hash, id"""
_NEW_KEYS = """
    INSERT INTO hours_ledger.person_keys (id_hash, person_id) SELECT * FROM unnest($1::bytea[], $2::bigint[])
    ON CONFLICT (id_hash) DO NOTHING
    RETURNING id_hash"""
_UNKEYED = "DELETE FROM hours_ledger.people WHERE id = ANY($1::bigint[])"

# On Citus the rows of step 1 go as a multi-row VALUES (each row to its shard directly), where plain PostgreSQL takes
# the arrays (`unnest`): Citus runs an INSERT ... SELECT from arrays by pulling the rows to the coordinator and copying
# them on (measured on the cluster, ten rows alone: new people and their keys 182 -> 9.4 ms, claims 34 -> 2.6 ms).
# A new person's id then comes from the sequence first.
_NEXT_IDS = "SELECT nextval(pg_get_serial_sequence('hours_ledger.people', 'id')) FROM generate_series(1, $1)"
_NEW_PEOPLE_ROWS = "INSERT INTO hours_ledger.people (id, id_hash, id_type, id_cipher, id_masked, name) VALUES {rows}"
_NEW_KEYS_ROWS = """
    INSERT INTO hours_ledger.person_keys (id_hash, person_id) VALUES {rows}
    ON CONFLICT (id_hash) DO NOTHING
    RETURNING id_hash"""


def values_rows(casts: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
    """A multi-row VALUES list of `rows` (each with one value per type of `casts`), as parameters: its text and its
    arguments."""
    width = len(casts)
    text = ", ".join("(" + ", ".join(f"${r * width + c + 1}::{cast}" for c, cast in enumerate(casts)) + ")"
                     for r in range(len(rows)))
    return text, [value for row in rows for value in row]


async def person_ids(conn: asyncpg.Connection, keys: PiiKeys, wanted: dict[bytes, schemas.RecordIn], *,
                     rows: bool = False) -> dict[bytes, int]:
    """The person id of each ID hash of `wanted` (ID hash -> a record of theirs, whose name a new person gets),
    creating the people the ledger has not seen yet (a concurrent push may create some first). Known people are
    found before anything is encrypted. `rows`: new people go as VALUES rows (Citus)."""
    if not wanted:
        return {}
    found = {bytes(r["id_hash"]): r["person_id"] for r in await conn.fetch(PERSON_IDS, list(wanted))}
    new = sorted(h for h in wanted if h not in found)
    if new:
        numbers = [normalise_id_number(wanted[h].id_number) for h in new]
        ciphers = [keys.encrypt(wanted[h].id_type, n) for h, n in zip(new, numbers, strict=True)]
        if rows:
            ids = [r[0] for r in await conn.fetch(_NEXT_IDS, len(new))]
            made = dict(zip(new, ids, strict=True))
            text, args = values_rows(("bigint", "bytea", "text", "bytea", "text", "text"), [
                (made[h], h, wanted[h].id_type, c, mask_id_number(n), wanted[h].name)
                for h, n, c in zip(new, numbers, ciphers, strict=True)])
            await conn.execute(_NEW_PEOPLE_ROWS.format(rows=text), *args)
            text, args = values_rows(("bytea", "bigint"), list(made.items()))
            kept = {bytes(r["id_hash"]) for r in await conn.fetch(_NEW_KEYS_ROWS.format(rows=text), *args)}
        else:
            made = {bytes(r["id_hash"]): r["id"] for r in await conn.fetch(
                _NEW_PEOPLE, new, [wanted[h].id_type for h in new], ciphers, [mask_id_number(n) for n in numbers],
                [wanted[h].name for h in new])}
            kept = {bytes(r["id_hash"]) for r in await conn.fetch(_NEW_KEYS, list(made), list(made.values()))}
        found.update((h, made[h]) for h in kept)
        lost = [h for h in made if h not in kept]
        if lost:  # a concurrent push created them first: theirs stands
            await conn.execute(_UNKEYED, [made[h] for h in lost])
            found.update((bytes(r["id_hash"]), r["person_id"]) for r in await conn.fetch(PERSON_IDS, lost))
    return found


async def lock_people(conn: asyncpg.Connection, ids: Sequence[int], per_person: bool) -> list[Any]:
    """Take the row locks of the people `ids`, in person-id order, in the transaction on `conn`: one statement, or
    (`per_person`, on Citus) one a person."""
    ordered = sorted(set(ids))
    if not per_person:
        return list(await conn.fetch(LOCK_PEOPLE, ordered))
    return [row for pid in ordered for row in await conn.fetch(LOCK_PEOPLE, [pid])]


# ---- reading what the ledger holds --------------------------------------------------------------

# A base's external ids, claimed for a person before the person's transaction (the first record of a key in a set
# claims it): a key claimed now names this push's person; a key claimed before names its person for good (their record,
# or that of an earlier push of theirs that wrote nothing). A claim is on the base's shard on Citus: the person's
# transaction then touches the person's rows alone.
_CLAIM = """
    INSERT INTO hours_ledger.external_ids (base_id, external_id, person_id)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[])
    ON CONFLICT (base_id, external_id) DO NOTHING
    RETURNING base_id, external_id"""
_CLAIM_ROWS = """
    INSERT INTO hours_ledger.external_ids (base_id, external_id, person_id) VALUES {rows}
    ON CONFLICT (base_id, external_id) DO NOTHING
    RETURNING base_id, external_id"""
_OWNERS = """
    SELECT base_id, external_id, person_id FROM hours_ledger.external_ids
    WHERE base_id = ANY($1::uuid[]) AND external_id = ANY($2::text[])"""

# The records already in the ledger under these keys, with the person's rows (the keys are filtered exactly by the
# caller: the three arrays select a superset).
_REPLAYS = """
    SELECT k.base_id, r.id, r.external_id, k.request_hash, r.credited_hours, r.counted_seconds, r.status,
           r.adjustments
    FROM hours_ledger.record_keys k
    JOIN hours_ledger.records r ON r.person_id = k.person_id AND r.year = k.year AND r.id = k.record_id
    WHERE k.person_id = ANY($1::bigint[]) AND k.base_id = ANY($2::uuid[]) AND k.external_id = ANY($3::text[])"""

# What a person was credited in a plan year, per public topic and per course (the rules' topic allotments, the
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

# Per person and plan year of the set: the busy sittings and day totals over the span of all the person's
# records in the set, and what the person was credited in that year. One row per (person, year): the busy
# sittings and days are the person's, alike in each of its rows.
_STATES_OF = """
    SELECT x.pid, x.year, busy.starts, busy.ends, d.days, d.day_seconds, used.*
    FROM unnest($1::bigint[], $2::smallint[], $3::timestamptz[], $4::timestamptz[], $5::date[], $6::date[])
      AS x(pid, year, lo, hi, dlo, dhi)
    CROSS JOIN LATERAL (
      SELECT coalesce(array_agg(extract(epoch FROM s.started_at)::bigint ORDER BY s.started_at), '{{}}') AS starts,
             coalesce(array_agg(extract(epoch FROM s.ended_at)::bigint ORDER BY s.started_at), '{{}}') AS ends
      FROM hours_ledger.sittings s
      JOIN hours_ledger.records r ON r.person_id = s.person_id AND r.year = s.year AND r.id = s.record_id
      WHERE s.person_id = {person} AND r.person_id = {person} AND r.reversed_at IS NULL
        AND s.started_at < x.hi AND s.started_at > x.lo - interval '1 day' AND s.ended_at > x.lo) AS busy
    CROSS JOIN LATERAL (
      SELECT coalesce(array_agg(pd.day ORDER BY pd.day), '{{}}') AS days,
             coalesce(array_agg(pd.seconds ORDER BY pd.day), '{{}}') AS day_seconds
      FROM hours_ledger.person_days pd WHERE pd.person_id = {person} AND pd.day BETWEEN x.dlo AND x.dhi) AS d
    CROSS JOIN LATERAL ({used}) AS used"""
_STATES = _STATES_OF.format(person="x.pid", used=USED_BY_PERSON.format(person="x.pid", year="x.year"))
# One person's (on Citus): the person ($7) a constant of the statement, so that Citus sends it to the person's shard.
_STATES_ONE = _STATES_OF.format(person="$7::bigint", used=USED_BY_PERSON.format(person="$7::bigint", year="x.year"))


def _stored_result(row: Any) -> Result:
    adjustments = row["adjustments"]
    return Result(row["id"], row["external_id"], row["credited_hours"], row["counted_seconds"] // 60, row["status"],
                  orjson.loads(adjustments) if isinstance(adjustments, str) else adjustments)


def _replay(row: Any, digest: bytes, external_id: str) -> Replayed:
    """The answer to a repeat of an external id: its stored result, or `external-id-reused` for another body."""
    if not hmac.compare_digest(bytes(row["request_hash"]), digest):
        raise external_id_reused(external_id, row["id"])
    return Replayed(_stored_result(row))


async def claim(conn: asyncpg.Connection, wanted: dict[tuple[uuid.UUID, str], int], *,
                rows: bool = False) -> tuple[set[tuple[uuid.UUID, str]], dict[tuple[uuid.UUID, str], int]]:
    """Claim each key of `wanted` (key -> the person its first record is for): the keys claimed now, and every
    key's person (who claimed it, now or before). `rows`: the claims go as VALUES rows (Citus)."""
    if not wanted:
        return set(), {}
    keys_ = list(wanted)
    if rows:
        text, args = values_rows(("uuid", "text", "bigint"), [(b, e, wanted[(b, e)]) for b, e in keys_])
        made = await conn.fetch(_CLAIM_ROWS.format(rows=text), *args)
    else:
        made = await conn.fetch(_CLAIM, [b for b, _ in keys_], [e for _, e in keys_], [wanted[k] for k in keys_])
    claimed = {(r["base_id"], r["external_id"]) for r in made}
    owners = {k: wanted[k] for k in claimed}
    earlier = [k for k in keys_ if k not in claimed]
    if earlier:
        held = await conn.fetch(_OWNERS, list({b for b, _ in earlier}), list({e for _, e in earlier}))
        found = {(r["base_id"], r["external_id"]): r["person_id"] for r in held}
        owners.update((k, found[k]) for k in earlier if k in found)
    return claimed, owners


async def _replays(conn: asyncpg.Connection, wanted: list[tuple[int, tuple[uuid.UUID, str]]],
                   per_person: bool = False) -> dict[tuple[uuid.UUID, str], Any]:
    """The records already written under these (person, key) pairs, by key: one statement, or one a person."""
    wanted = list(set(wanted))
    if not wanted:
        return {}
    groups: dict[int, list[tuple[uuid.UUID, str]]] = defaultdict(list)
    for pid, key in wanted:
        groups[pid].append(key)
    batches = [(list(groups), [k for ks in groups.values() for k in ks])] if not per_person else \
        [([pid], ks) for pid, ks in groups.items()]
    exact = {key for _, key in wanted}
    out: dict[tuple[uuid.UUID, str], Any] = {}
    for pids, ks in batches:
        for row in await conn.fetch(_REPLAYS, pids, list({b for b, _ in ks}), list({e for _, e in ks})):
            key = (row["base_id"], row["external_id"])
            if key in exact:
                out[key] = row
    return out


def _state_args(work: list[tuple[int, Admitted]]) -> list[list[Any]]:
    """The (person, plan year) rows whose state a set's records `work` ((person id, record) pairs) are decided on,
    as the state reads take them: six arrays, in (person, year) order, each person's span over all their records."""
    spans: dict[int, tuple[int, int]] = {}
    years: set[tuple[int, int]] = set()
    for pid, a in work:
        lo, hi = spans.get(pid, (a.sittings[0].start, a.sittings[0].end))
        for s in a.sittings:
            lo, hi = min(lo, s.start), max(hi, s.end)
        spans[pid] = (lo, hi)
        years.add((pid, a.course["year"]))
    rows = sorted(years)
    return [[p for p, _ in rows], [y for _, y in rows], [instant(spans[p][0]) for p, _ in rows],
            [instant(spans[p][1]) for p, _ in rows], [rules.day_of(spans[p][0]) for p, _ in rows],
            [rules.day_of(spans[p][1] - 1) for p, _ in rows]]


def _person_states(rows: Sequence[Any]) -> dict[int, rules.PersonState]:
    """The people's states from the state reads' rows (one a person and plan year)."""
    states: dict[int, rules.PersonState] = {}
    for r in rows:
        state = states.get(r["pid"])
        if state is None:
            state = states[r["pid"]] = rules.PersonState(
                busy=list(zip(r["starts"], r["ends"], strict=True)),
                day_used=dict(zip(r["days"], r["day_seconds"], strict=True)))
        for topic, hours in zip(r["topics"], r["topic_hours"], strict=True):
            state.topic_used[(r["year"], topic)] = hours
        for course, hours in zip(r["courses"], r["course_hours"], strict=True):
            state.course_used[course_key(course)] = hours
    return states


async def _states(conn: asyncpg.Connection, work: list[tuple[int, Admitted]],
                  per_person: bool = False) -> dict[int, rules.PersonState]:
    args = _state_args(work)
    if not args[0]:
        return {}
    if per_person:
        rows = []
        for pid in sorted(set(args[0])):
            mine = [i for i, p in enumerate(args[0]) if p == pid]
            rows += await conn.fetch(_STATES_ONE, *([column[i] for i in mine] for column in args), pid)
    else:
        rows = await conn.fetch(_STATES, *args)
    return _person_states(rows)


# ---- deciding ----------------------------------------------------------------------------------------

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
    sender: Principal

    def result(self) -> Result:
        return Result(self.record_id, self.admitted.body.external_id, self.decision.credited_hours,
                      self.decision.counted_seconds // 60, self.status, self.adjustments)


def stage(admitted: Admitted, person_id: int, head: tuple[int, bytes], state: rules.PersonState, digest: bytes,
          sender: Principal, now: dt.datetime, name: str) -> Staged:
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
                       hours=decision.credited_hours, seconds=decision.counted_seconds, actor_id=sender.id,
                       reason=None, recorded_at=now, facts=vouched)
    return Staged(record_id, person_id, admitted, digest, decision, decision.status(admitted.course["hours"]),
                  adjustments, seq, prev, entry, vouched, sender)


# ---- writing -----------------------------------------------------------------------------------------

# Everything a set writes, in one statement (data-modifying CTEs share one snapshot; foreign keys are checked
# at its end, when the record rows exist).
_WRITE = """
    WITH rec AS (
      INSERT INTO hours_ledger.records (id, base_id, external_id, person_id, course_id, year, category, topic, field,
        course_hours, mode, unit_name, unit_uscc, unit_region, exam, counted_seconds, credited_hours, status,
        adjustments, created_at)
      SELECT u.id, u.base, u.ext, u.pid, u.course, u.year, u.category, u.topic, u.field, u.hours, u.mode,
             u.unit_name, u.uscc, u.region, u.exam::jsonb, u.counted, u.credited, u.status, u.adjustments::jsonb, $2
      FROM unnest($1::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::uuid[], $7::smallint[], $8::text[],
                  $9::text[], $10::text[], $11::smallint[], $12::text[], $13::text[], $14::text[], $15::text[],
                  $16::text[], $17::int[], $18::smallint[], $19::text[], $20::text[])
        AS u(base, id, ext, pid, course, year, category, topic, field, hours, mode, unit_name, uscc, region, exam,
             counted, credited, status, adjustments)),
    rkey AS (
      INSERT INTO hours_ledger.record_keys (base_id, external_id, request_hash, person_id, year, record_id)
      SELECT u.base, u.ext, u.digest, u.pid, u.year, u.id
      FROM unnest($1::uuid[], $3::uuid[], $4::text[], $5::bigint[], $7::smallint[], $21::bytea[])
        AS u(base, id, ext, pid, year, digest)),
    stq AS (  -- for the statistics (statistics.py), which fold it a person's year at a time
      INSERT INTO hours_ledger.statistics_queue (person_id, year, record_id, change)
      SELECT u.pid, u.year, u.id, 'credit' FROM unnest($5::bigint[], $7::smallint[], $3::uuid[]) AS u(pid, year, id)),
    sit AS (
      INSERT INTO hours_ledger.sittings (person_id, year, record_id, started_at, ended_at, media_seconds,
        identity_passed, identity_failed, mode)
      SELECT * FROM unnest($22::bigint[], $23::smallint[], $24::uuid[], $25::timestamptz[], $26::timestamptz[],
                           $27::int[], $28::int[], $29::int[], $50::text[])),
    alloc AS (
      INSERT INTO hours_ledger.allocations (person_id, year, record_id, day, started_at, ended_at, seconds)
      SELECT u.pid, u.year, u.rid, u.d, u.s, u.e, extract(epoch FROM u.e - u.s)::int
      FROM unnest($30::bigint[], $31::smallint[], $32::uuid[], $33::date[], $34::timestamptz[], $35::timestamptz[])
        AS u(pid, year, rid, d, s, e)),
    days AS (
      INSERT INTO hours_ledger.person_days AS pd (person_id, day, seconds)
      SELECT * FROM unnest($36::bigint[], $37::date[], $38::int[])
      ON CONFLICT (person_id, day) DO UPDATE SET seconds = pd.seconds + EXCLUDED.seconds),
    ent AS (
      INSERT INTO hours_ledger.entries (person_id, seq, record_id, kind, hours, seconds, actor_id, reason,
        recorded_at, prev_hash, hash, facts)
      SELECT u.pid, u.seq, u.rid, 'credit', u.hours, u.seconds, u.actor, NULL, $2, u.prev, u.hash, u.facts::jsonb
      FROM unnest($39::uuid[], $40::bigint[], $41::int[], $42::uuid[], $43::smallint[], $44::int[], $45::bytea[],
                  $46::bytea[], $52::text[])
        AS u(actor, pid, seq, rid, hours, seconds, prev, hash, facts))
    UPDATE hours_ledger.people p SET entry_count = u.seq, last_hash = u.hash,
      name = CASE WHEN p.entry_count = 0 THEN u.name ELSE p.name END  -- the first record written fixes the name
    FROM unnest($47::bigint[], $48::int[], $49::bytea[], $51::text[]) AS u(pid, seq, hash, name)
    WHERE p.id = u.pid AND p.id = ANY($47::bigint[])  -- the second: Citus sends one person's update to their shard"""


class Retry(Exception):
    """The set's transaction cannot stand (nothing of it was kept): apply it again, one record at a time."""


def _write_args(staged: list[Staged], heads: dict[int, tuple[int, bytes]], names_now: dict[int, str],
                now: dt.datetime) -> list[Any]:
    """`_WRITE`'s arguments (and `write_people`'s after its first three): the rows of the staged records, and the new
    chain head and name of each person written (`heads`, `names_now`)."""
    sit: list[list[Any]] = [[] for _ in range(8)]
    sitting_modes: list[str | None] = []
    alloc: list[list[Any]] = [[] for _ in range(6)]
    per_day: dict[tuple[int, dt.date], int] = defaultdict(int)
    for one in staged:
        year = one.admitted.course["year"]
        for s in one.admitted.sittings:
            for column, value in zip(sit, (one.person_id, year, one.record_id, instant(s.start), instant(s.end),
                                           s.media_seconds, s.id_passed, s.id_failed), strict=True):
                column.append(value)
            sitting_modes.append(s.mode)
        for a in one.decision.allocations:
            for column, value in zip(alloc, (one.person_id, year, one.record_id, a.day, instant(a.start),
                                             instant(a.end)), strict=True):
                column.append(value)
            per_day[(one.person_id, a.day)] += a.seconds
    bodies = [one.admitted.body for one in staged]
    courses = [one.admitted.course for one in staged]
    touched = sorted({one.person_id for one in staged})
    return [[c["base_id"] for c in courses], now,
            [one.record_id for one in staged], [b.external_id for b in bodies], [one.person_id for one in staged],
            [b.course_id for b in bodies], [c["year"] for c in courses], [c["category"] for c in courses],
            [c["topic"] for c in courses], [c["field"] for c in courses], [c["hours"] for c in courses],
            [c["mode"] for c in courses], [b.unit.name for b in bodies], [b.unit.uscc for b in bodies],
            [b.unit.region for b in bodies],
            [None if b.exam is None else orjson.dumps(b.exam.model_dump()).decode() for b in bodies],
            [one.decision.counted_seconds for one in staged], [one.decision.credited_hours for one in staged],
            [one.status for one in staged], [orjson.dumps(one.adjustments).decode() for one in staged],
            [one.digest for one in staged],
            *sit, *alloc,
            [k[0] for k in per_day], [k[1] for k in per_day], list(per_day.values()),
            [one.sender.id for one in staged],
            [one.person_id for one in staged], [one.seq for one in staged], [one.record_id for one in staged],
            [one.decision.credited_hours for one in staged], [one.decision.counted_seconds for one in staged],
            [one.prev for one in staged], [one.entry for one in staged],
            touched, [heads[p][0] for p in touched], [heads[p][1] for p in touched], sitting_modes,
            [names_now[p] for p in touched], [orjson.dumps(one.facts).decode() for one in staged]]


@contextlib.contextmanager
def _writing(years: set[int]) -> Iterator[None]:
    """A set's write, its errors as the set's fallback takes them (Retry): a unique violation (a concurrent push wrote
    the key first) or a plan year's partitions removed under the running ledger (`years`: the set's)."""
    try:
        yield
    except (asyncpg.CheckViolationError, asyncpg.InternalServerError) as exc:  # (Citus passes a worker's on as XX000)
        if isinstance(exc, asyncpg.InternalServerError) and "duplicate key value" in str(exc):
            raise Retry(str(exc)) from None  # a worker's unique violation, as Citus passes it on
        if "no partition" not in str(exc):
            raise
        for year in years:
            forget_year(year)  # the retry reopens it, or answers 503 year-not-open
        raise Retry("a year's partitions were removed") from None
    except asyncpg.UniqueViolationError as exc:
        raise Retry(str(exc)) from None


async def _write(conn: asyncpg.Connection, staged: list[Staged], heads: dict[int, tuple[int, bytes]],
                 names_now: dict[int, str], now: dt.datetime) -> None:
    with _writing({one.admitted.course["year"] for one in staged}):
        await conn.execute(_WRITE, *_write_args(staged, heads, names_now, now))


# What makes a set's transaction fall back to one record at a time (nothing of it was kept).
FALLBACK = (Retry, asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


# ---- the use case ------------------------------------------------------------------------------------

def _key(admitted: Admitted) -> tuple[uuid.UUID, str]:
    """What a repeat is recognised by: the base (whose course it is) and its external id."""
    return admitted.course["base_id"], admitted.body.external_id


@dataclass(slots=True)
class _Set:
    """A set of records between its two steps: what needs no lock is done."""

    senders: Sequence[Principal]
    outcomes: list[Outcome | None]
    admitted: dict[int, Admitted] = field(default_factory=dict)
    replays: dict[tuple[uuid.UUID, str], Any] = field(default_factory=dict)
    person: dict[int, int] = field(default_factory=dict)  # each admitted record's person id
    claimed: set[tuple[uuid.UUID, str]] = field(default_factory=set)  # keys this set claimed (none in the ledger before)


async def _prepare(conn: asyncpg.Connection, url: sa.URL, senders: Sequence[Principal],
                   records: Sequence[schemas.RecordIn], keys: PiiKeys, now: dt.datetime, seminar: bool,
                   citus: bool) -> _Set:
    """Admit the records, open their plan years, find (or create) their people, claim their external ids and read
    the replays of keys claimed before. `citus`: the database is distributed (`distributed`)."""
    work = _Set(senders, [None] * len(records))
    courses = {row["id"]: row for row in await conn.fetch(_COURSES, list({r.course_id for r in records}))}
    for i, body in enumerate(records):
        try:
            work.admitted[i] = admit(courses.get(body.course_id), body, senders[i].require_base(), now,
                                     seminar=seminar)
        except Problem as exc:
            work.outcomes[i] = Refused(exc)
    if not work.admitted:
        return work
    for year in sorted({a.course["year"] for a in work.admitted.values()}):
        await open_year(conn, url, year)
    hashes = {i: keys.lookup_hash(normalise_id_number(a.body.id_number)) for i, a in work.admitted.items()}
    first: dict[bytes, schemas.RecordIn] = {}
    for i, h in hashes.items():  # a new person is created with the name of their first record
        first.setdefault(h, work.admitted[i].body)
    ids = await person_ids(conn, keys, first, rows=citus)
    work.person = {i: ids[h] for i, h in hashes.items()}
    wanted: dict[tuple[uuid.UUID, str], int] = {}
    for i, a in work.admitted.items():
        wanted.setdefault(_key(a), work.person[i])
    work.claimed, owners = await claim(conn, wanted, rows=citus)
    # A key another person holds: refused, naming that person's record when there is one.
    theirs = {i for i, a in work.admitted.items() if owners.get(_key(a), work.person[i]) != work.person[i]}
    if theirs:
        held = await _replays(conn, [(owners[_key(work.admitted[i])], _key(work.admitted[i])) for i in theirs],
                              per_person=True)
        for i in sorted(theirs):
            a = work.admitted.pop(i)
            row = held.get(_key(a))
            work.outcomes[i] = Refused(external_id_reused(a.body.external_id, None if row is None else row["id"]))
            del work.person[i]
    work.replays = await _replays(conn, [(work.person[i], _key(a)) for i, a in work.admitted.items()
                                         if _key(a) not in work.claimed], per_person=True)
    return work


async def _apply(conn: asyncpg.Connection, work: _Set, keys: PiiKeys, now: dt.datetime, indexes: Sequence[int],
                 per_person: bool) -> None:
    """Lock, read, decide and write the admitted records `indexes` of `work` (in order), in the transaction on
    `conn`; their outcomes go into `work.outcomes`. `per_person`: each person's rows are read by statements of their
    own (Citus: each statement on one shard)."""
    person = work.person
    admitted = {i: work.admitted[i] for i in indexes}
    pending = [i for i, a in admitted.items() if _key(a) not in work.replays]
    people = {r["id"]: r for r in await lock_people(conn, [person[i] for i in pending], per_person)}
    if len(people) != len({person[i] for i in pending}):
        raise Retry("a person created before the transaction is missing")
    # Retries that landed while we waited for the locks (a key this push claimed too: a concurrent push of the same
    # key, which found the claim made, may have written it first).
    work.replays.update(await _replays(conn, [(person[i], _key(admitted[i])) for i in pending], per_person))
    states = await _states(conn, [(person[i], admitted[i]) for i in pending if _key(admitted[i]) not in work.replays],
                           per_person)
    heads = {r["id"]: (r["entry_count"], bytes(r["last_hash"])) for r in people.values()}
    staged, names_now = _decide(work, keys, now, admitted, states, heads, {r["id"]: r["name"] for r in people.values()})
    if staged:
        await _write(conn, staged, heads, names_now, now)


def _decide(work: _Set, keys: PiiKeys, now: dt.datetime, admitted: dict[int, Admitted],
            states: dict[int, rules.PersonState], heads: dict[int, tuple[int, bytes]],
            names_read: dict[int, str]) -> tuple[list[Staged], dict[int, str]]:
    """Decide the records `admitted` (in order) against their people's states and chain heads (`heads`: each person's
    (entry_count, last_hash), moved on to the head after their last staged record) and registered names; outcomes go
    into `work.outcomes`. Returns the staged records and each written person's name once they are written."""
    outcomes, replays, person = work.outcomes, work.replays, work.person
    # Each person's registered name, and whether it is fixed (the person has entries, or a record of this set).
    registered = {pid: (name, heads[pid][0] > 0) for pid, name in names_read.items()}
    written: dict[tuple[uuid.UUID, str], Staged] = {}
    staged: list[Staged] = []
    for i, a in admitted.items():
        key = _key(a)
        external_id = a.body.external_id
        digest = request_hash(keys, a.body)
        try:
            if key in replays:
                outcomes[i] = _replay(replays[key], digest, external_id)
                continue
            if key in written:  # sent twice in this set
                earlier = written[key]
                if earlier.digest != digest:
                    raise external_id_reused(external_id, earlier.record_id)
                outcomes[i] = Replayed(earlier.result())
                continue
            pid = person[i]
            check_name(*registered[pid], a.body.name)
        except Problem as exc:
            outcomes[i] = Refused(exc)
            continue
        if not registered[pid][1]:
            registered[pid] = (a.body.name, True)
        one = stage(a, pid, heads[pid], states[pid], digest, work.senders[i], now, registered[pid][0])
        heads[pid] = (one.seq, one.entry)
        written[key] = one
        staged.append(one)
        outcomes[i] = Credited(one.result())
    return staged, {one.person_id: registered[one.person_id][0] for one in staged}


# On Citus: a worker's people of a set, read and written in one call each (migration hours_ledger_0014), each call
# run by Citus on the worker that holds its first argument's shard, its statements on that worker's shards.
_READ_PEOPLE = "SELECT hours_ledger.read_people($1, $2, $3, $4, $5, $6, $7, $8)"
_WRITE_PEOPLE = "SELECT hours_ledger.write_people(" + ", ".join(f"${n}" for n in range(1, 56)) + ")"


def _json_state(row: dict[str, Any]) -> dict[str, Any]:
    """A person's state as `read_people` returns it, with the types `_STATES`'s rows have."""
    return {**row, "days": [dt.date.fromisoformat(d) for d in row["days"]]}


async def _apply_on_worker(conn: asyncpg.Connection, work: _Set, keys: PiiKeys, now: dt.datetime,
                           indexes: Sequence[int]) -> list[int]:
    """Read, decide and write the admitted records `indexes` of `work`, whose people are on one worker: one call reads
    them (no lock), one call locks them in person-id order and writes the records of every person whose chain head
    is still the one read, each call a transaction of its own on that worker. The replays are not read again (as
    `_apply` reads them under the locks): a record of the same key written since step 1 makes the write fail on
    record_keys' primary key (Retry), and the people are then decided under their locks. Returns the indexes of the other
    people's records (nothing was written for them: decide them again under their locks, `_apply`); the outcomes of
    the rest go into `work.outcomes`."""
    person = work.person
    admitted = {i: work.admitted[i] for i in indexes}
    pending = [i for i, a in admitted.items() if _key(a) not in work.replays]
    pids = sorted({person[i] for i in pending})
    if not pids:
        _decide(work, keys, now, admitted, {}, {}, {})
        return []
    read = await conn.fetchval(_READ_PEOPLE, pids[0], pids, *_state_args([(person[i], admitted[i]) for i in pending]))
    got = orjson.loads(read) if isinstance(read, str | bytes) else read
    if len(got["people"]) != len(pids):
        raise Retry("a person created before the call is missing")
    read_heads = {r["id"]: (r["entry_count"], bytes.fromhex(r["last_hash"])) for r in got["people"]}
    heads = dict(read_heads)
    states = _person_states([_json_state(r) for r in got["states"]])
    staged, names_now = _decide(work, keys, now, admitted, states, heads, {r["id"]: r["name"] for r in got["people"]})
    if not staged:
        return []
    stale = await _write_on_worker(conn, staged, heads, names_now, now, {p: c for p, (c, _) in read_heads.items()})
    return [i for i in indexes if person[i] in stale]


async def _write_on_worker(conn: asyncpg.Connection, staged: list[Staged], heads: dict[int, tuple[int, bytes]],
                           names_now: dict[int, str], now: dt.datetime, counts: dict[int, int]) -> set[int]:
    """`write_people`: the staged records of every person whose entry count is still `counts`'s (read before they
    were decided); returns the others, of whom nothing was written."""
    touched = sorted(names_now)
    with _writing({one.admitted.course["year"] for one in staged}):
        return set(await conn.fetchval(_WRITE_PEOPLE, touched[0], touched, [counts[p] for p in touched],
                                       *_write_args(staged, heads, names_now, now)))


# Whether the database is distributed by Citus (its people placed), per database URL: decided once a process. After
# `xueshi db citus --apply` the services are restarted (deploy/scale-out.md).
_distributed: dict[str, bool] = {}


async def distributed(conn: asyncpg.Connection, url: sa.URL) -> bool:
    """Whether the ledger's people are distributed by Citus: then every statement about a person is one person's."""
    name = url.render_as_string(hide_password=True)
    if name not in _distributed:
        placed = False
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"):
            placed = bool(await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'hours_ledger.people'::regclass)"))
        _distributed[name] = placed
    return _distributed[name]


# On Citus, the per-person transactions of every set in the process share half the pool (concurrent batches would
# otherwise each open several at once and leave other requests no connection: measured, 503 database-busy).
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _person_slots(engine: AsyncEngine) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        size = engine.pool.size() if isinstance(engine.pool, sa.pool.QueuePool) else CONCURRENCY
        slots = _slots[loop] = asyncio.Semaphore(max(1, size // 2))
    return slots


async def _push_set(engine: AsyncEngine, senders: Sequence[Principal], records: Sequence[schemas.RecordIn],
                    keys: PiiKeys, now: dt.datetime, isolate: bool = False) -> list[Outcome]:
    """One set in two steps. The first admits the records, finds or creates their people and claims their external
    ids, in statements that each commit on their own (no transaction: its reads need no common snapshot, the
    replays are read again under the locks, and a person row or a claim without records is harmless; the second
    step then holds no lock it did not take in person-id order; measured: two round trips fewer per group: single
    pushes 2,859/2,907 -> 2,940/3,003 records/s). The second, one transaction, locks every person in person-id
    order, decides and writes: locks taken in one global order cannot form a cycle with another set. Raises one of
    FALLBACK when the transaction cannot stand.

    On Citus the second step is two calls for each worker's people (`_apply_on_worker`), the workers' side by side:
    the people whose chain heads moved between the calls, and those of a call that cannot stand, go again one
    person at a time, each in one transaction under the person's lock (`_apply`); a person's transaction that cannot
    stand falls back to that person's records one at a time, alone (the others' stand). `isolate` as for `_alone`."""
    async with pooled(engine) as conn:
        per_person = await distributed(conn, engine.url)
        work = await _prepare(conn, engine.url, senders, records, keys, now, seminar=False, citus=per_person)
        if per_person and work.admitted:
            # the worker (node group) that holds each person's rows, from the people's shard ranges cached in the
            # process (placement.py); one out of date only costs the calls hops
            worker = (await placements(conn, engine.url.render_as_string(hide_password=True))).groups_of(
                set(work.person.values()))
    if not work.admitted:
        return work.outcomes  # type: ignore[return-value]
    if not per_person:
        async with transaction(engine) as conn:
            await _apply(conn, work, keys, now, list(work.admitted), per_person)
        return work.outcomes  # type: ignore[return-value]
    limit = _person_slots(engine)

    async def alone(indexes: list[int]) -> None:
        for i in indexes:
            work.outcomes[i] = await _alone(engine, senders[i], work.admitted[i].body, keys, isolate=isolate)

    async def one(indexes: list[int]) -> None:  # one person's records, under the person's lock
        async with limit:
            try:
                async with transaction(engine) as conn:
                    await _apply(conn, work, keys, now, indexes, per_person)
                return
            except FALLBACK:
                if len(records) == 1:
                    raise  # a record alone already: `_alone` tries it again
            except Problem:
                raise
            except Exception:
                if not isolate or len(records) == 1:
                    raise  # a record alone already: `_alone` answers its error
        await alone(indexes)

    async def on_worker(indexes: list[int]) -> None:  # one worker's people
        async with limit:
            try:
                async with pooled(engine) as conn:
                    again = await _apply_on_worker(conn, work, keys, now, indexes)
                failed = False
            except FALLBACK:
                again, failed = indexes, False
            except Problem:
                raise
            except Exception:
                if not isolate or len(records) == 1:
                    raise  # a record alone already: `_alone` answers its error
                again, failed = indexes, True
        if failed:  # an unexpected error: each record alone, so that it is that record's
            await alone(again)
            return
        by_person: dict[int, list[int]] = defaultdict(list)
        for i in again:
            by_person[work.person[i]].append(i)
        await asyncio.gather(*(one(ix) for ix in by_person.values()))

    by_worker: dict[int, list[int]] = defaultdict(list)
    for i in work.admitted:
        by_worker[worker.get(work.person[i], -1)].append(i)
    await asyncio.gather(*(on_worker(ix) for ix in by_worker.values()))
    return work.outcomes  # type: ignore[return-value]


async def push_within(conn: asyncpg.Connection, url: sa.URL, senders: Sequence[Principal],
                      records: Sequence[schemas.RecordIn], keys: PiiKeys, now: dt.datetime, *,
                      seminar: bool = False) -> list[Outcome]:
    """`push`, inside the caller's transaction on `conn` (a seminar's attendance upload, which keeps nothing when
    its roster breaks a rule): everything happens in that transaction, and nothing is retried here (one of
    FALLBACK means the caller's transaction cannot stand). On Citus that transaction spans the people's shards."""
    citus = await distributed(conn, url)
    work = await _prepare(conn, url, senders, records, keys, now, seminar=seminar, citus=citus)
    if work.admitted:
        await _apply(conn, work, keys, now, list(work.admitted), citus)
    return work.outcomes  # type: ignore[return-value]


# Transactions one push runs at once when it falls back to one record at a time.
CONCURRENCY = 8
# How often a record alone is tried before it is answered 503: each try fails only when a concurrent push
# changed what it read (its retry then reads the replay, the person or the partitions that changed).
ATTEMPTS = 4


async def push(engine: AsyncEngine, senders: Sequence[Principal], records: Sequence[schemas.RecordIn],
               keys: PiiKeys, *, singles: bool = False) -> list[Outcome]:
    """The outcomes of `records` (`senders[i]`, a training base's key, pushed `records[i]`), in order, as if
    pushed one by one in this order. The senders' standing is checked before (a batch checks its base once;
    the group commit screens its pushes: `screen`).

    `singles`: the records are concurrent single pushes (the group commit), each its own request: an
    unexpected error while they are written together is retried record by record, and an error there is that
    record's alone (`Failed`: its request raises it).
    """
    if len(records) == 1:
        return [await _alone(engine, senders[0], records[0], keys, isolate=singles)]
    try:
        return await _push_set(engine, senders, records, keys, clock(), singles)
    except FALLBACK:
        return await one_by_one(engine, senders, records, keys, isolate=singles)
    except Problem as exc:  # the whole set is refused (a plan year that cannot open now): so is each record
        return [Refused(exc)] * len(records)
    except Exception:
        if not singles:
            raise
        return await one_by_one(engine, senders, records, keys, isolate=True)


async def rehearse(engine: AsyncEngine, senders: Sequence[Principal], records: Sequence[schemas.RecordIn],
                   keys: PiiKeys) -> list[Outcome]:
    """What `push` would answer for these records now, writing nothing: the same code (`push_within`) in one
    transaction that is rolled back (a roster's dry run). Its people are locked while it decides, as a push
    locks them. Only a plan year's partitions, opened for the year's first record, stay (structure, not data)."""
    for _ in range(ATTEMPTS):
        async with pooled(engine) as conn:
            rehearsal = conn.transaction()
            await rehearsal.start()
            try:
                return await push_within(conn, engine.url, senders, records, keys, clock())
            except FALLBACK:
                continue
            except Problem as exc:
                return [Refused(exc)] * len(records)
            finally:
                await rehearsal.rollback()
    return [_busy()] * len(records)


def _busy() -> Refused:
    return Refused(Unavailable("concurrent pushes of the same person kept changing what this record was decided "
                               "on; nothing was written: send it again", rule="ledger-busy", retry_after="1"))


async def one_by_one(engine: AsyncEngine, senders: Sequence[Principal], records: Sequence[schemas.RecordIn],
                     keys: PiiKeys, *, isolate: bool = False) -> list[Outcome]:
    """Record by record, each a set of its own: one person's records one after another, in order, so "first come,
    first served" (the daily limit, replays) follows the order sent; different people several at a time so the
    database's latency overlaps."""
    outcomes: list[Outcome | None] = [None] * len(records)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        groups[normalise_id_number(record.id_number)].append(index)
    limit = asyncio.Semaphore(CONCURRENCY)

    async def run(group: list[int]) -> None:
        async with limit:
            for index in group:
                outcomes[index] = await _alone(engine, senders[index], records[index], keys, isolate=isolate)

    await asyncio.gather(*(run(g) for g in groups.values()))
    return outcomes  # type: ignore[return-value]


async def _alone(engine: AsyncEngine, sender: Principal, record: schemas.RecordIn, keys: PiiKeys, *,
                 isolate: bool) -> Outcome:
    """One record, a set of one. `isolate`: an unexpected error is returned as the record's outcome (its request
    raises it) instead of failing the records it was grouped with."""
    for _ in range(ATTEMPTS):
        try:
            return (await _push_set(engine, [sender], [record], keys, clock(), isolate))[0]
        except FALLBACK:
            continue
        except Problem as exc:
            return Refused(exc)
        except Exception as exc:
            if not isolate:
                raise
            return Failed(exc)
    return _busy()


# ---- the group commit's screen ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Revoked:
    """A single push whose token was revoked after the route found it live: answered 401."""

    status: ClassVar[int] = 401


async def screen(engine: AsyncEngine, pushes: Sequence[Any]) -> list[Refused | Revoked | None]:
    """The group commit's screen (groupcommit.py): for each push (`principal`, `token_digest`), None when it
    may be written, `Revoked` when its token is no longer live, or its base's refusal (403) when the base is not
    approved or is suspended, as a single push alone would be answered. One statement."""
    async with pooled(engine) as conn:
        row = await conn.fetchrow(SCREEN, list({p.token_digest for p in pushes}),
                                  list({p.principal.base_id for p in pushes}))
    live = set(row["live"])
    standings = dict(zip(row["ids"] or (), zip(row["statuses"] or (), row["suspended"] or (), strict=True),
                         strict=True))
    out: list[Refused | Revoked | None] = []
    for one in pushes:
        if one.token_digest not in live:
            out.append(Revoked())
            continue
        try:
            check_standing(*standings.get(one.principal.require_base(), (None, None)))
            out.append(None)
        except Problem as exc:
            out.append(Refused(exc))
    return out


# ---- splitting a large batch -----------------------------------------------------------------------

def parts(keys: Sequence[tuple[str, str]], size: int) -> list[list[int]]:
    """`chunks` for items known by their (person, external id) keys: the indexes of each part, in order."""
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, (person, external) in enumerate(keys):
        for key in (("person", person), ("external", external)):
            j = first.setdefault(key, i)
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(keys)):
        groups[root(i)].append(i)
    out: list[list[int]] = [[]]
    for grp in groups.values():
        if out[-1] and len(out[-1]) + len(grp) > size:
            out.append([])
        out[-1].extend(grp)
    return [sorted(part) for part in out]


def chunks(records: list[tuple[int, schemas.RecordIn]], size: int) -> list[list[tuple[int, schemas.RecordIn]]]:
    """Split a batch into independent parts of about `size` records, each pushed as a set of its own.

    Records of one person, and records that share an external id, stay in one part, in batch order: the
    parts touch disjoint people and keys, so running them side by side answers what running the whole
    batch in order would.
    """
    keys = [(normalise_id_number(record.id_number), record.external_id) for _, record in records]
    return [[records[i] for i in part] for part in parts(keys, size)]
