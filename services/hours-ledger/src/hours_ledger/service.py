"""Ledger use cases: load, decide (domain/rules.py), persist. Never commits: the caller's scope does.

Concurrency: every write about a person first locks that person's row (`people`, SELECT ... FOR UPDATE).
Pushes for the same person from any number of bases serialise on it; pushes for different people never
wait for each other. The lock is taken after everything that needs no lock (validation, catalog reads).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from collections import defaultdict
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from xueshi_shared.iam.governance import Actor, governs_field, governs_public_scope
from xueshi_shared.iam.principal import Principal
from xueshi_shared.pii import PiiKeys, id_number_error, mask_id_number, normalise_id_number
from xueshi_shared.problems import Conflict, FieldError, Forbidden, InvalidInput, NotFound

from . import schemas
from .domain import rules
from .models import ZERO_HASH, Allocation, Entry, Person, PersonDay, Record, Sitting

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

def entry_hash(prev: bytes, *, person_id: int, seq: int, record_id: uuid.UUID, kind: str, hours: int, seconds: int,
               actor_id: uuid.UUID, reason: str | None, recorded_at: dt.datetime) -> bytes:
    payload = orjson.dumps({
        "person": person_id, "seq": seq, "record": str(record_id), "kind": kind, "hours": hours,
        "seconds": seconds, "actor": str(actor_id), "reason": reason,
        "at": recorded_at.astimezone(dt.UTC).isoformat(),
    }, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev + payload).digest()


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

_COURSE = sa.text("""
    SELECT c.base_id, c.year, c.category, c.topic, c.field, c.hours, c.mode, c.status, c.accepting_records,
           p.window_start, p.deadline, p.max_hours_per_day, p.minutes_per_hour, p.min_exam_questions,
           t.hours AS topic_hours
    FROM catalog.published_courses c
    JOIN catalog.published_plans p ON p.year = c.year
    LEFT JOIN catalog.published_topics t ON t.year = c.year AND t.code = c.topic
    WHERE c.id = :id""")
_BASE = sa.text("SELECT status, suspended FROM catalog.published_bases WHERE id = :id")


def _plan_rules(course: Any) -> rules.PlanRules:
    return rules.PlanRules(
        window_start=rules.day_bounds(course.window_start)[0],
        window_end=rules.day_bounds(course.deadline)[1],
        max_hours_per_day=course.max_hours_per_day, minutes_per_hour=course.minutes_per_hour,
        min_exam_questions=course.min_exam_questions)


async def require_base_in_standing(db: AsyncSession, principal: Principal) -> uuid.UUID:
    base_id = principal.require_base()
    base = (await db.execute(_BASE, {"id": base_id})).first()
    if base is None or base.status != "approved":
        raise Forbidden("the base is not approved", rule="base-not-approved")
    if base.suspended:
        raise Forbidden("the base is suspended; its records are refused", rule="base-suspended")
    return base_id


# ---- pushing a record ---------------------------------------------------------------------------

def _result(record: dict[str, Any]) -> dict[str, Any]:
    return {"record_id": record["id"], "external_id": record["external_id"],
            "credited_hours": record["credited_hours"], "counted_minutes": record["counted_seconds"] // 60,
            "status": record["status"], "adjustments": record["adjustments"]}


async def _replay(db: AsyncSession, base_id: uuid.UUID, external_id: str, digest: bytes) -> dict[str, Any] | None:
    row = (await db.execute(
        sa.select(Record.id, Record.external_id, Record.request_hash, Record.credited_hours, Record.counted_seconds,
                  Record.status, Record.adjustments)
        .where(Record.base_id == base_id, Record.external_id == external_id))).mappings().first()
    if row is None:
        return None
    if not hmac.compare_digest(row["request_hash"], digest):
        raise Conflict(f"external_id {external_id!r} was already used by this base for a different record",
                       rule="external-id-reused", field="external_id", record_id=str(row["id"]))
    return _result(dict(row))


async def _lock_person(db: AsyncSession, keys: PiiKeys, body: schemas.RecordIn) -> dict[str, Any]:
    lookup = keys.lookup_hash(body.id_number)
    await db.execute(pg_insert(Person).values(
        id_hash=lookup, id_type=body.id_type, id_cipher=keys.encrypt(body.id_type, body.id_number),
        id_masked=mask_id_number(normalise_id_number(body.id_number)), name=body.name,
    ).on_conflict_do_nothing(index_elements=["id_hash"]))
    row = (await db.execute(
        sa.select(Person.id, Person.entry_count, Person.last_hash).where(Person.id_hash == lookup).with_for_update()
    )).mappings().one()
    return dict(row)


async def _person_state(db: AsyncSession, person_id: int, sittings: list[rules.Sitting]) -> rules.PersonState:
    lo = min(s.start for s in sittings)
    hi = max(s.end for s in sittings)
    busy = (await db.execute(
        sa.select(Sitting.started_at, Sitting.ended_at)
        .join(Record, Record.id == Sitting.record_id)
        .where(Sitting.person_id == person_id, Record.reversed_at.is_(None),
               Sitting.started_at < _instant(hi), Sitting.started_at > _instant(lo - rules.MAX_SITTING),
               Sitting.ended_at > _instant(lo)))).all()
    days = (await db.execute(
        sa.select(PersonDay.day, PersonDay.seconds)
        .where(PersonDay.person_id == person_id,
               PersonDay.day.between(rules.day_of(lo), rules.day_of(hi - 1))))).all()
    return rules.PersonState(busy=[(_epoch(s), _epoch(e)) for s, e in busy], day_used={d: n for d, n in days})


async def push_record(db: AsyncSession, principal: Principal, body: schemas.RecordIn, keys: PiiKeys,
                      now: dt.datetime) -> tuple[int, dict[str, Any]]:
    """Apply the rules to one record and append it. Returns (201 or 200 for a replay, result)."""
    base_id = await require_base_in_standing(db, principal)
    problem = id_number_error(body.id_type, body.id_number)
    if problem:
        raise InvalidInput(problem, rule="id-number", field="id_number")

    course = (await db.execute(_COURSE, {"id": body.course_id})).first()
    if course is None or course.base_id != base_id:
        raise InvalidInput("no course of this base has that id", rule="course-unknown", field="course_id")
    if not course.accepting_records:
        raise InvalidInput(f"the course is {course.status}; only approved courses receive records",
                           rule="course-not-approved", field="course_id")
    plan = _plan_rules(course)
    sittings = [rules.Sitting(
        _epoch(s.started_at), _epoch(s.ended_at), s.media_seconds,
        None if s.identity_checks is None else s.identity_checks.passed,
        None if s.identity_checks is None else s.identity_checks.failed) for s in body.sittings]
    exam = None if body.exam is None else rules.Exam(body.exam.questions, body.exam.correct, body.exam.passed)
    refused = rules.refusals(course.mode, plan, sittings, exam, _epoch(now))
    InvalidInput.check([FieldError(f, r, d) for f, r, d in refused])

    digest = request_hash(keys, body)
    replay = await _replay(db, base_id, body.external_id, digest)
    if replay is not None:
        return 200, replay

    person = await _lock_person(db, keys, body)
    # A retry of the same record may have landed while we waited for the person's lock.
    replay = await _replay(db, base_id, body.external_id, digest)
    if replay is not None:
        return 200, replay

    topic_remaining = None
    if course.category == "public":
        used = await db.scalar(sa.select(sa.func.coalesce(sa.func.sum(Record.credited_hours), 0)).where(
            Record.person_id == person["id"], Record.year == course.year, Record.category == "public",
            Record.topic == course.topic, Record.reversed_at.is_(None)))
        topic_remaining = max(0, course.topic_hours - int(used or 0))
    facts = rules.CourseFacts(course.mode, course.hours, topic_remaining)
    decision = rules.decide(facts, plan, sittings, exam, await _person_state(db, person["id"], sittings))

    record_id = uuid.uuid4()
    adjustments = [{"rule": a.rule, "minutes": a.minutes, "hours": a.hours,
                    "day": a.day.isoformat() if a.day else None, "detail": a.detail} for a in decision.adjustments]
    record = {
        "id": record_id, "base_id": base_id, "external_id": body.external_id, "request_hash": digest,
        "person_id": person["id"], "course_id": body.course_id, "year": course.year, "category": course.category,
        "topic": course.topic, "field": course.field, "course_hours": course.hours, "mode": course.mode,
        "unit_name": body.unit.name, "unit_uscc": body.unit.uscc, "unit_region": body.unit.region,
        "exam": None if body.exam is None else body.exam.model_dump(),
        "counted_seconds": decision.counted_seconds, "credited_hours": decision.credited_hours,
        "status": decision.status(course.hours), "adjustments": adjustments, "created_at": now,
    }
    try:
        async with db.begin_nested():
            await db.execute(sa.insert(Record).values(record))
    except IntegrityError:
        # Another person's push used the same external_id at the same moment.
        replay = await _replay(db, base_id, body.external_id, digest)
        if replay is not None:
            return 200, replay
        raise
    await db.execute(sa.insert(Sitting), [
        {"record_id": record_id, "person_id": person["id"], "started_at": _instant(s.start),
         "ended_at": _instant(s.end), "media_seconds": s.media_seconds, "identity_passed": s.id_passed,
         "identity_failed": s.id_failed} for s in sittings])
    if decision.allocations:
        await db.execute(sa.insert(Allocation), [
            {"record_id": record_id, "person_id": person["id"], "day": a.day, "started_at": _instant(a.start),
             "ended_at": _instant(a.end), "seconds": a.seconds} for a in decision.allocations])
        per_day: dict[dt.date, int] = defaultdict(int)
        for a in decision.allocations:
            per_day[a.day] += a.seconds
        stmt = pg_insert(PersonDay).values([{"person_id": person["id"], "day": d, "seconds": n}
                                            for d, n in sorted(per_day.items())])
        await db.execute(stmt.on_conflict_do_update(
            index_elements=["person_id", "day"], set_={"seconds": PersonDay.seconds + stmt.excluded.seconds}))
    await _append_entry(db, person, record_id=record_id, kind="credit", hours=decision.credited_hours,
                        seconds=decision.counted_seconds, actor_id=principal.id, reason=None, now=now)
    return 201, _result(record)


async def get_record(db: AsyncSession, principal: Principal, record_id: uuid.UUID) -> dict[str, Any]:
    row = (await db.execute(sa.select(Record).where(Record.id == record_id))).scalar_one_or_none()
    if row is None or (principal.kind == "base" and row.base_id != principal.base_id):
        raise NotFound("no such record", rule="record-not-found")
    return _result({"id": row.id, "external_id": row.external_id, "credited_hours": row.credited_hours,
                    "counted_seconds": row.counted_seconds, "status": row.status, "adjustments": row.adjustments})


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
    found = (await db.execute(sa.select(Record.person_id).where(Record.id == record_id))).first()
    if found is None:
        raise NotFound("no such record", rule="record-not-found")
    person = dict((await db.execute(
        sa.select(Person.id, Person.entry_count, Person.last_hash).where(Person.id == found.person_id)
        .with_for_update())).mappings().one())
    record = (await db.execute(sa.select(Record).where(Record.id == record_id))).scalar_one()
    actor = Actor(principal.role, principal.region, principal.authority)
    if not _governs(actor, record.category, record.unit_region, record.field, await _stamping(db)):
        raise Forbidden("your role and scope do not govern this record", rule="out-of-scope")
    if record.reversed_at is not None:
        raise Conflict("the record has already been reversed", rule="already-reversed")
    record.reversed_at, record.reversed_by, record.reversal_reason = now, principal.id, reason
    per_day = (await db.execute(
        sa.select(Allocation.day, sa.func.sum(Allocation.seconds)).where(Allocation.record_id == record_id)
        .group_by(Allocation.day))).all()
    for day, seconds in per_day:
        await db.execute(sa.update(PersonDay).where(PersonDay.person_id == person["id"], PersonDay.day == day)
                         .values(seconds=PersonDay.seconds - int(seconds)))
    await _append_entry(db, person, record_id=record_id, kind="reversal", hours=record.credited_hours,
                        seconds=record.counted_seconds, actor_id=principal.id, reason=reason, now=now)
    await db.flush()
    return {"record_id": record_id, "reversed_hours": record.credited_hours, "reversed_at": now}


# ---- transcripts --------------------------------------------------------------------------------

async def transcript(db: AsyncSession, principal: Principal, keys: PiiKeys, id_number: str,
                     year: int) -> dict[str, Any]:
    principal.require_staff()
    person = (await db.execute(sa.select(Person).where(Person.id_hash == keys.lookup_hash(id_number)))).scalar_one_or_none()
    if person is None:
        raise NotFound("no study records for this person", rule="person-not-found")
    records = (await db.execute(
        sa.select(Record, sa.func.min(Sitting.started_at), sa.func.max(Sitting.ended_at))
        .join(Sitting, Sitting.record_id == Record.id)
        .where(Record.person_id == person.id, Record.year == year)
        .group_by(Record.id).order_by(sa.func.min(Sitting.started_at)))).all()

    if principal.role not in ("province_admin", "auditor"):
        actor = Actor(principal.role, principal.region, principal.authority)
        stamps = await _stamping(db)
        all_records = (await db.execute(sa.select(Record.category, Record.unit_region, Record.field)
                                        .where(Record.person_id == person.id))).all()
        if not any(_governs(actor, c, r, f, stamps) for c, r, f in all_records):
            raise Forbidden("the person has no records in your scope", rule="out-of-scope")

    plan = (await db.execute(sa.text("SELECT required_hours FROM catalog.published_plans WHERE year = :y"),
                             {"y": year})).first()
    topics = (await db.execute(sa.text(
        "SELECT code, title, hours FROM catalog.published_topics WHERE year = :y ORDER BY code"), {"y": year})).all()
    public_by_topic: dict[str, int] = defaultdict(int)
    professional_by_field: dict[str, int] = defaultdict(int)
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
        })
    public_hours = sum(public_by_topic.values())
    professional_hours = sum(professional_by_field.values())
    total_hours = public_hours + professional_hours
    required = plan.required_hours if plan else 0
    share_num, share_den = PROFESSIONAL_SHARE
    return {
        "id_number": person.id_masked, "id_type": person.id_type, "name": person.name, "year": year,
        "public": {"required_hours": required, "credited_hours": public_hours,
                   "topics": [{"code": c, "title": t, "allotment": h, "credited_hours": public_by_topic.get(c, 0)}
                              for c, t, h in topics]},
        "professional": {"credited_hours": professional_hours,
                         "fields": [{"code": f, "credited_hours": n} for f, n in sorted(professional_by_field.items())]},
        "total_hours": total_hours,
        "public_requirement_met": plan is not None and public_hours >= required,
        "yearly_requirement_met": total_hours >= YEARLY_HOURS and professional_hours * share_den >= total_hours * share_num,
        "records": lines,
    }


# ---- integrity ----------------------------------------------------------------------------------

async def check_integrity(db: AsyncSession, principal: Principal, limit: int = 100) -> dict[str, Any]:
    """Re-walk every person's chain: any entry changed, deleted, inserted or reordered breaks it."""
    principal.require_staff("auditor", "province_admin")
    problems: list[dict[str, Any]] = []

    def report(person: int, seq: int | None, text: str) -> None:
        if len(problems) < limit:
            problems.append({"person": person, "seq": seq, "problem": text})

    heads = {pid: (count, last) for pid, count, last in
             (await db.execute(sa.select(Person.id, Person.entry_count, Person.last_hash))).all()}
    checked = 0
    current: int | None = None
    prev, expected_seq = ZERO_HASH, 1
    seen: set[int] = set()

    def close(person: int | None) -> None:
        if person is None:
            return
        count, last = heads.get(person, (None, None))
        if count is None:
            report(person, None, "entries of a person the ledger does not know")
        elif expected_seq - 1 != count or prev != last:
            report(person, None, f"the chain ends at entry {expected_seq - 1} but the head says {count}: "
                                 "entries were deleted, added or changed")

    stream = await db.stream(
        sa.select(Entry.person_id, Entry.seq, Entry.record_id, Entry.kind, Entry.hours, Entry.seconds,
                  Entry.actor_id, Entry.reason, Entry.recorded_at, Entry.prev_hash, Entry.hash,
                  Record.credited_hours, Record.counted_seconds, Record.reversed_at)
        .outerjoin(Record, Record.id == Entry.record_id)
        .order_by(Entry.person_id, Entry.seq).execution_options(yield_per=5000))
    async for e in stream:
        checked += 1
        if e.person_id != current:
            close(current)
            current, prev, expected_seq = e.person_id, ZERO_HASH, 1
            seen.add(e.person_id)
        if e.seq != expected_seq:
            report(e.person_id, e.seq, f"expected entry {expected_seq}: an entry is missing or out of order")
        if e.prev_hash != prev:
            report(e.person_id, e.seq, "does not link to the entry before it (reordered or inserted)")
        recomputed = entry_hash(e.prev_hash, person_id=e.person_id, seq=e.seq, record_id=e.record_id, kind=e.kind,
                                hours=e.hours, seconds=e.seconds, actor_id=e.actor_id, reason=e.reason,
                                recorded_at=e.recorded_at)
        if recomputed != e.hash:
            report(e.person_id, e.seq, "its content no longer matches its hash (changed behind the service's back)")
        if e.kind == "credit" and (e.credited_hours, e.counted_seconds) != (e.hours, e.seconds):
            report(e.person_id, e.seq, "the record no longer says what its ledger entry says")
        prev, expected_seq = e.hash, e.seq + 1
    close(current)
    for pid, (count, _) in heads.items():
        if count and pid not in seen:
            report(pid, None, f"the head says {count} entries but none exist")
    return {"valid": not problems, "entries_checked": checked, "people_checked": len(heads), "problems": problems}
