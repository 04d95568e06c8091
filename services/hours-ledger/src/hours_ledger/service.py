"""Ledger use cases besides the intake (intake.py): reading records and transcripts, reversals, name
corrections, the integrity check. Load, decide, persist; never commits: the caller's scope does.

Every write about a person first locks that person's row (`people`, SELECT ... FOR UPDATE), as the intake does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from xueshi_shared.iam.governance import Actor, governs_field, governs_public_scope
from xueshi_shared.iam.principal import Principal
from xueshi_shared.pii import PiiKeys, mask_id_number, normalise_id_number
from xueshi_shared.problems import Conflict, Forbidden, InvalidInput, NotFound, Problem

from .chain import entry_hash
from .domain import facts, rules
from .domain.statistics import requirements
from .intake import LOCK_PEOPLE, PERSON_IDS
from .models import ZERO_HASH, Allocation, Entry, NameChange, Person, PersonDay, PersonKey, Record, Sitting, StatisticsQueue

HR_AUTHORITY = "A12"


# ---- the hash chain -----------------------------------------------------------------------------

async def _append_entry(db: AsyncSession, person: dict[str, Any], *, record_id: uuid.UUID, kind: str, hours: int,
                        seconds: int, actor_id: uuid.UUID, reason: str | None, now: dt.datetime) -> None:
    seq = person["entry_count"] + 1
    digest = entry_hash(person["last_hash"], person_id=person["id"], seq=seq, record_id=record_id, kind=kind,
                        hours=hours, seconds=seconds, actor_id=actor_id, reason=reason, recorded_at=now)
    await db.execute(sa.insert(Entry).values(
        person_id=person["id"], seq=seq, record_id=record_id, kind=kind, hours=hours, seconds=seconds,
        actor_id=actor_id, reason=reason, recorded_at=now, prev_hash=person["last_hash"], hash=digest))
    await db.execute(sa.update(Person).where(Person.id == person["id"]).values(entry_count=seq, last_hash=digest))


# ---- the push path's connection --------------------------------------------------------------------

async def driver(db: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside the request's transaction.

    The push path is the ledger's hot path: it talks to asyncpg directly, with statements asyncpg
    prepares once per connection, and does its writes in one statement (profiling showed the ORM layer
    costing more than the database on this path; see bench/ledger.py).
    """
    conn = await db.connection()
    raw: asyncpg.Connection | None = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    if not raw.is_in_transaction():
        # SQLAlchemy begins the database transaction lazily, on its first statement: make it begin now, or
        # the statements below would each commit on their own and the person's lock would not hold.
        await conn.execute(sa.text("SELECT 1"))
    assert raw.is_in_transaction()
    return raw


# ---- records ------------------------------------------------------------------------------------

async def get_record(db: AsyncSession, principal: Principal, record_id: uuid.UUID) -> dict[str, Any]:
    row = (await db.execute(sa.select(Record).where(Record.id == record_id))).scalar_one_or_none()
    if row is None or (principal.kind == "base" and row.base_id != principal.base_id):
        raise NotFound("no such record", rule="record-not-found")
    return {"record_id": row.id, "external_id": row.external_id, "credited_hours": row.credited_hours,
            "counted_minutes": row.counted_seconds // 60, "status": row.status, "adjustments": row.adjustments,
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
    await db.execute(sa.insert(StatisticsQueue).values(person_id=found.person_id, year=found.year,
                                                       record_id=record_id, change="reversal"))
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
    # The person's id first, then the person (on Citus each by its own distribution key: one shard each).
    person_id = (await db.execute(sa.select(PersonKey.person_id)
                                  .where(PersonKey.id_hash == keys.lookup_hash(id_number)))).scalar_one_or_none()
    person = None if person_id is None else await db.get(Person, person_id)
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
    base_names: dict[Any, str] = dict((await db.execute(sa.text(
        "SELECT id, unit_name FROM catalog.published_bases WHERE id = ANY(:ids)"),
        {"ids": list({r.base_id for r, _, _ in records})})).all()) if records else {}
    course_titles: dict[Any, str] = dict((await db.execute(sa.text(
        "SELECT id, title FROM catalog.published_courses WHERE id = ANY(:ids)"),
        {"ids": list({r.course_id for r, _, _ in records})})).all()) if records else {}
    lines = []
    for r, first, last in records:
        if r.reversed_at is None:
            if r.category == "public":
                public_by_topic[r.topic or ""] += r.credited_hours
            else:
                professional_by_field[r.field or ""] += r.credited_hours
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
    public_met, yearly_met = requirements(public_hours, other_hours, professional_hours,
                                          plan.required_hours if plan else None)
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
        "public_requirement_met": public_met,
        "yearly_requirement_met": yearly_met,
        "records": lines,
    }


# ---- the person's name -------------------------------------------------------------------------

async def correct_name(db: AsyncSession, principal: Principal, keys: PiiKeys, id_number: str, name: str, reason: str,
                       now: dt.datetime) -> dict[str, Any]:
    """HR staff correct the name registered for an ID number (`province_admin`; a `city_admin` for people with
    records from units of its region). The old name stays in the person's history."""
    principal.require_staff("province_admin", "city_admin")
    conn = await driver(db)
    found = await conn.fetchrow(PERSON_IDS, [keys.lookup_hash(id_number)])
    person = None if found is None else await conn.fetchrow(LOCK_PEOPLE, [found["person_id"]])
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
    conn = await driver(db)
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
