"""Many bases pushing for the same person at the same moment; unrelated people never wait for each other."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import sqlalchemy as sa
from hours_ledger.domain.rules import merge, total
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.factories import approved_base, approved_course, online_sitting, record_body, ric


async def five_bases(catalog, fuzhou):
    out = []
    for _ in range(5):
        base = await approved_base(catalog, fuzhou)
        courses = [await approved_course(catalog, base, fuzhou, topic=t, hours=h)
                   for t, h in (("1", 7), ("2", 7), ("4", 7), ("5", 7))]
        out.append((base, courses))
    return out


async def test_fifty_simultaneous_records_from_five_bases_never_exceed_the_day(ledger, catalog, fuzhou, engine):
    bases = await five_bases(catalog, fuzhou)
    person = ric(201)
    rng = random.Random(7)
    bodies = []
    for i in range(50):
        base, courses = bases[i % 5]
        start = dt.datetime(2026, 6, 1, 6, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(
            minutes=rng.randrange(0, 14 * 60))
        end = start + dt.timedelta(minutes=rng.randrange(20, 200))
        bodies.append((base, record_body(rng.choice(courses), person,
                                         [online_sitting(start.isoformat(), end.isoformat())])))

    responses = await asyncio.gather(*(ledger.post("/v1/records", json=b, headers=base.headers) for base, b in bodies))
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
    answered = sum(r.json()["counted_minutes"] for r in responses)

    async with engine.connect() as conn:
        spans = (await conn.execute(sa.text(
            "SELECT extract(epoch FROM a.started_at)::bigint, extract(epoch FROM a.ended_at)::bigint, a.day "
            "FROM hours_ledger.allocations a JOIN hours_ledger.records r "
            "ON r.person_id = a.person_id AND r.year = a.year AND r.id = a.record_id"))).all()
        stored = dict((await conn.execute(sa.text(
            "SELECT id::text, counted_seconds FROM hours_ledger.records"))).all())
    per_day: dict = {}
    for s, e, day in spans:
        per_day[day] = per_day.get(day, 0) + (e - s)
    assert len(stored) == 50
    # What the API answered is what the ledger holds.
    assert {r.json()["record_id"]: r.json()["counted_minutes"] for r in responses} == {
        k: v // 60 for k, v in stored.items()}
    assert sum(stored.values()) == sum(per_day.values())
    assert per_day and max(per_day.values()) <= 540 * 60
    intervals = [(s, e) for s, e, _ in spans]
    assert total(merge(intervals)) == total(intervals), "a minute was counted twice"
    assert answered <= 540 * len(per_day)


async def test_a_push_for_one_person_does_not_wait_for_another_persons_lock(ledger, catalog, fuzhou, engine):
    base = await approved_base(catalog, fuzhou)
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    alice, bob = ric(202), ric(203)
    sitting = [online_sitting("2026-06-02T09:00:00+08:00", "2026-06-02T10:00:00+08:00")]
    for person in (alice, bob):
        r = await ledger.post("/v1/records", json=record_body(course, person, sitting), headers=base.headers)
        assert r.status_code == 201

    async with engine.connect() as conn, conn.begin():
        # Hold Alice's lock, as a long push for Alice would.
        alice_id = await conn.scalar(sa.text("SELECT min(id) FROM hours_ledger.people"))
        await conn.execute(sa.text("SELECT id FROM hours_ledger.people WHERE id = :id FOR UPDATE"), {"id": alice_id})
        later = [online_sitting("2026-06-03T09:00:00+08:00", "2026-06-03T10:00:00+08:00")]
        for_bob = await asyncio.wait_for(ledger.post("/v1/records", json=record_body(course, bob, later),
                                                     headers=base.headers), timeout=10)
        assert for_bob.status_code == 201
        for_alice = asyncio.create_task(ledger.post("/v1/records", json=record_body(course, alice, later),
                                                    headers=base.headers))
        await asyncio.sleep(0.5)
        assert not for_alice.done(), "Alice's push should wait for her lock"
    assert (await for_alice).status_code == 201


# ---- rules 3 to 8 as invariants over random pushes, checked against the database ----------------------

sitting_strategy = st.tuples(
    st.integers(0, 2 * 24 * 60),      # start, minutes after 2026-07-01 00:00 Fujian
    st.integers(1, 16 * 60),          # length in minutes
    st.floats(0.0, 1.5),              # media played / wall
    st.integers(0, 2),                # identity checks passed
)
push_strategy = st.tuples(st.integers(0, 2), st.integers(0, 3), st.lists(sitting_strategy, min_size=1, max_size=3),
                          st.booleans())


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(pushes=st.lists(push_strategy, min_size=1, max_size=8), seed=st.integers(0, 10**6))
async def test_the_rules_hold_in_the_database_for_random_pushes(ledger, catalog, fuzhou, engine, pushes, seed):
    if not hasattr(test_the_rules_hold_in_the_database_for_random_pushes, "bases"):
        test_the_rules_hold_in_the_database_for_random_pushes.bases = await _three_bases(catalog, fuzhou)
    bases = test_the_rules_hold_in_the_database_for_random_pushes.bases
    person = ric(1 + seed % 998, birth=f"19{85 + seed % 14}0101")
    t0 = dt.datetime(2026, 7, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    for base_index, course_index, sittings, passed in pushes:
        base, courses = bases[base_index]
        chosen = []
        last_end = -1
        for start, length, media, checks in sorted(sittings):
            if start < last_end:
                continue  # a record's own sittings never overlap (that is refused, tested elsewhere)
            s = t0 + dt.timedelta(minutes=start)
            e = s + dt.timedelta(minutes=length)
            chosen.append(online_sitting(s.isoformat(), e.isoformat(), media_seconds=int(length * 60 * media),
                                         passed=checks))
            last_end = start + length
        body = record_body(courses[course_index], person, chosen,
                           exam={"questions": 10, "correct": 8 if passed else 2, "passed": passed})
        response = await ledger.post("/v1/records", json=body, headers=base.headers)
        assert response.status_code == 201, response.text

    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("""
            SELECT r.id, r.course_hours, r.credited_hours, r.counted_seconds, r.topic, (r.exam->>'passed')::bool,
                   coalesce((SELECT json_agg(json_build_array(extract(epoch FROM a.started_at)::bigint,
                                                              extract(epoch FROM a.ended_at)::bigint, a.day))
                             FROM hours_ledger.allocations a WHERE a.person_id = r.person_id AND a.record_id = r.id), '[]'),
                   (SELECT json_agg(json_build_array(extract(epoch FROM s.started_at)::bigint,
                                                     extract(epoch FROM s.ended_at)::bigint, s.media_seconds,
                                                     s.identity_passed))
                    FROM hours_ledger.sittings s WHERE s.person_id = r.person_id AND s.record_id = r.id)
            FROM hours_ledger.records r JOIN hours_ledger.people p ON p.id = r.person_id
            WHERE p.id_masked = :masked AND r.reversed_at IS NULL"""),
            {"masked": person[:6] + "********" + person[-4:]})).all()
        plan_minutes = 45
    per_day: dict[str, int] = {}
    per_topic: dict[str, int] = {}
    all_spans = []
    for _, hours, credited, counted, topic, exam_passed, allocations, sittings in rows:
        spans = [(s, e) for s, e, _ in allocations]
        all_spans += spans
        for s, e, day in allocations:
            per_day[day] = per_day.get(day, 0) + (e - s)
        # Rule 3: counted time lies in the record's sittings, within what was played, never without identity.
        for s, e, media, checks in sittings:
            inside = total((max(a, s), min(b, e)) for a, b in spans if min(b, e) > max(a, s))
            assert inside <= (media or 0)
            if not checks:
                assert inside == 0
        assert counted == total(spans)
        # Rule 7 / 8.
        assert counted <= hours * plan_minutes * 60
        assert credited <= min(hours, counted // (plan_minutes * 60))
        if not exam_passed:
            assert credited == 0 and counted == 0
        per_topic[topic] = per_topic.get(topic, 0) + credited
    # Rule 4: no second counted twice; rule 6: no day above 540 minutes; rule 8: allotments.
    assert total(merge(all_spans)) == total(all_spans)
    assert all(v <= 540 * 60 for v in per_day.values())
    allotments = {"1": 7, "2": 7, "4": 7, "5": 7}
    assert all(per_topic[t] <= allotments[t] for t in per_topic)


async def _three_bases(catalog, fuzhou):
    return (await five_bases(catalog, fuzhou))[:3]


async def test_batches_from_two_bases_for_one_person_at_once_keep_the_persons_lock(ledger, catalog, fuzhou,
                                                                                      auditor, engine):
    """Batch records are separate transactions; two bases' batches for the same person arriving together
    must still serialise on the person's lock (this failed with 500s when the lock was not held)."""
    bases = [await approved_base(catalog, fuzhou) for _ in range(2)]
    courses = [[await approved_course(catalog, b, fuzhou, topic=t, hours=7) for t in ("1", "2", "4", "5")]
               for b in bases]
    person = ric(204)
    batches: list[list[dict]] = [[], []]
    for i in range(24):
        start = dt.datetime(2026, 6, 10, 7, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(minutes=25 * i)
        batches[i % 2].append(record_body(courses[i % 2][i % 4], person, [online_sitting(
            start.isoformat(), (start + dt.timedelta(minutes=90)).isoformat())]))
    responses = await asyncio.gather(*(ledger.post("/v1/records/batch", json={"records": batch}, headers=b.headers)
                                       for b, batch in zip(bases, batches, strict=True)))
    for response in responses:
        assert response.status_code == 200
        assert [r["status"] for r in response.json()["results"]] == [201] * 12, response.text
    async with engine.connect() as conn:
        day = await conn.scalar(sa.text("SELECT max(seconds) FROM hours_ledger.person_days"))
        entries = await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.entries"))
    assert day <= 540 * 60 and entries == 24
    integrity = (await ledger.get("/v1/ledger/integrity", headers=auditor.headers)).json()
    assert integrity["valid"] is True, integrity


async def test_history_check_many_bases_many_people_overlapping_at_once(ledger, catalog, fuzhou, engine):
    """Issue 7's history check: many bases push overlapping records for a small set of people at once;
    afterwards every person-day is recomputed from the stored sittings and compared with the answers."""
    bases = await five_bases(catalog, fuzhou)
    people = [ric(210 + i) for i in range(4)]
    rng = random.Random(11)
    bodies = []
    for i in range(80):
        base, courses = bases[i % 5]
        start = dt.datetime(2026, 6, 15 + rng.randrange(2), 5, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))) + \
            dt.timedelta(minutes=rng.randrange(0, 16 * 60))
        end = start + dt.timedelta(minutes=rng.randrange(30, 300))
        bodies.append((base, record_body(rng.choice(courses), rng.choice(people),
                                         [online_sitting(start.isoformat(), end.isoformat())])))
    responses = await asyncio.gather(*(ledger.post("/v1/records", json=b, headers=base.headers) for base, b in bodies))
    assert all(r.status_code == 201 for r in responses)
    answered = {r.json()["record_id"]: r.json()["counted_minutes"] for r in responses}

    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text("""
            SELECT r.id::text, r.person_id, r.counted_seconds,
                   extract(epoch FROM a.started_at)::bigint, extract(epoch FROM a.ended_at)::bigint, a.day,
                   extract(epoch FROM s.started_at)::bigint, extract(epoch FROM s.ended_at)::bigint
            FROM hours_ledger.records r
            JOIN hours_ledger.sittings s ON s.person_id = r.person_id AND s.record_id = r.id
            LEFT JOIN hours_ledger.allocations a ON a.person_id = r.person_id AND a.record_id = r.id"""))).all()
        days = {(p, d): n for p, d, n in (await conn.execute(sa.text(
            "SELECT person_id, day, seconds FROM hours_ledger.person_days"))).all()}
    # No acknowledged record lost, and what the API answered is what is stored.
    stored = {rid: counted for rid, _, counted, *_ in rows}
    assert set(stored) == set(answered)
    assert all(answered[rid] == counted // 60 for rid, counted in stored.items())
    recomputed: dict = {}
    spans: dict = {}
    for _rid, person, _, a_start, a_end, day, s_start, s_end in rows:
        if a_start is None:
            continue
        assert s_start <= a_start and a_end <= s_end, "counted time lies inside its own sitting"
        recomputed[(person, day)] = recomputed.get((person, day), 0) + (a_end - a_start)
        spans.setdefault(person, set()).add((a_start, a_end))
    assert recomputed == {k: v for k, v in days.items() if v}, "the running day totals match the stored spans"
    assert all(v <= 540 * 60 for v in recomputed.values()), "no day above 540 minutes"
    for person_spans in spans.values():
        assert total(merge(person_spans)) == total(person_spans), "no minute counted twice"
