"""On Citus a worker's people of a set are read in one call and written in another (intake `_apply_on_worker`,
migration hours_ledger_0014). Between the two a concurrent push may change a person's ledger: the write leaves that
person out, and the person's records are decided again under the person's lock, on what the ledger then holds."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import orjson
import pytest
import sqlalchemy as sa
from hours_ledger import intake
from hours_ledger.placement import Placements
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xueshi_shared.database import libpq_url

from tests.support.db import on_citus
from tests.support.factories import approved_course, at, online_sitting, record_body, ric


@pytest.fixture
async def citus(engine):
    if not await on_citus(engine):
        pytest.skip("the worker calls are the Citus path (plain PostgreSQL writes a set in one statement)")


async def test_a_person_whose_ledger_changed_between_the_calls_is_decided_again(engine, ledger, catalog, base,
                                                                                 fuzhou, citus, monkeypatch):
    first = await approved_course(catalog, base, fuzhou, topic="1", hours=7, mode="online")
    second = await approved_course(catalog, base, fuzhou, topic="2", hours=7, mode="online")
    person = ric(811)
    # 315 minutes each (7 学时), one day: together past the day's 12 学时 (540 minutes).
    batch = [record_body(first, person, [online_sitting(at("08:00"), at("13:15"))])]
    concurrent = record_body(second, person, [online_sitting(at("13:30"), at("18:45"))])
    real = intake._write_on_worker
    left_out: list[set[int]] = []
    answers = []

    async def with_a_push_between(conn, staged, *args, **kwargs):
        if not left_out:  # the batch's write: the concurrent push lands after the batch's people were read
            left_out.append(set())
            answers.append(await ledger.post("/v1/records", json=concurrent, headers=base.headers))
            left_out[0] = await real(conn, staged, *args, **kwargs)
            return left_out[0]
        return await real(conn, staged, *args, **kwargs)

    monkeypatch.setattr(intake, "_write_on_worker", with_a_push_between)
    response = await ledger.post("/v1/records/batch", json={"records": batch}, headers=base.headers)
    assert response.status_code == 200, response.text
    assert answers and answers[0].status_code == 201, answers[0].text
    assert len(left_out[0]) == 1  # the batch's person: nothing of theirs written by that call
    item = response.json()["results"][0]
    assert item["status"] == 201, item
    pushed = answers[0].json()
    assert pushed["counted_minutes"] == 315
    # Decided again on a ledger that holds the concurrent record: the day's rest, not 315 minutes more.
    assert item["result"]["counted_minutes"] == 540 - 315
    async with engine.connect() as conn:
        days = (await conn.execute(sa.text("SELECT day, seconds FROM hours_ledger.person_days"))).all()
        heads = (await conn.execute(sa.text("SELECT entry_count FROM hours_ledger.people"))).scalars().all()
        entries = (await conn.execute(sa.text(
            "SELECT count(*) FROM hours_ledger.entries WHERE person_id = (SELECT min(id) FROM hours_ledger.people)"
        ))).scalar()
    assert [s for _, s in days] == [540 * 60]
    assert heads == [2] and entries == 2  # one chain: each record's entry once, the head after both


async def test_a_record_written_by_a_concurrent_push_between_the_calls_is_answered_as_a_replay(
        engine, ledger, catalog, base, fuzhou, citus, monkeypatch):
    """The worker's read does not read the replays again: the same record, written by a concurrent push after the
    set's first step, makes the write fail on record_keys' primary key, and the person is decided again under the
    lock, where the replay is found."""
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7, mode="online")
    body = record_body(course, ric(812), [online_sitting(at("09:00"), at("10:30"))])
    real = intake._write_on_worker
    answers: list = []
    calls: list[int] = []

    async def with_the_same_push_between(conn, staged, *args, **kwargs):
        calls.append(len(staged))
        if len(calls) == 1:  # the batch's write: the same record, pushed alone, lands first (its own write is the next)
            answers.append(await ledger.post("/v1/records", json=body, headers=base.headers))
        return await real(conn, staged, *args, **kwargs)

    monkeypatch.setattr(intake, "_write_on_worker", with_the_same_push_between)
    response = await ledger.post("/v1/records/batch", json={"records": [body]}, headers=base.headers)
    assert response.status_code == 200, response.text
    assert answers[0].status_code == 201, answers[0].text
    item = response.json()["results"][0]
    assert item["status"] == 200, item  # the replay of the concurrent push's record
    assert item["result"]["record_id"] == answers[0].json()["record_id"]
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 1
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.entries")) == 1


async def test_a_worker_call_writes_each_person_once_and_answers_as_one_statement_would(engine, ledger, catalog, base,
                                                                                        fuzhou, auditor, citus):
    """A batch of many people on both workers, several records each: every record written once, with its person's
    entries in one unbroken chain (the ledger's own integrity walk)."""
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7, mode="online")
    records = [record_body(course, ric(820 + p), [online_sitting(at(f"{8 + 2 * k:02d}:00"), at(f"{9 + 2 * k:02d}:00"))])
               for p in range(12) for k in range(3)]
    response = await ledger.post("/v1/records/batch", json={"records": records}, headers=base.headers)
    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == [201] * len(records)
    async with engine.connect() as conn:
        per_person = (await conn.execute(sa.text(
            "SELECT p.entry_count, (SELECT count(*) FROM hours_ledger.entries e WHERE e.person_id = p.id) "
            "FROM hours_ledger.people p"))).all()
        ports = (await conn.execute(sa.text(
            "SELECT DISTINCT s.nodeport FROM hours_ledger.people p JOIN citus_shards s "
            "ON s.shardid = get_shard_id_for_distribution_column('hours_ledger.people', p.id)"))).scalars().all()
    assert len(per_person) == 12 and all(count == 3 and held == 3 for count, held in per_person)
    assert len(ports) == 2  # both workers' calls
    integrity = (await ledger.get("/v1/ledger/integrity", headers=auditor.headers)).json()
    assert integrity == {"valid": True, "entries_checked": 36, "people_checked": 12, "problems": []}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=st.lists(st.tuples(st.uuids(), st.text(alphabet=st.characters(blacklist_characters="\x00",
                                                                           blacklist_categories=("Cs",))),
                               st.integers(-2**63, 2**63 - 1)), min_size=1, max_size=40))
def test_values_rows_reach_the_database_exactly(database_url, rows):
    """Step 1's rows on Citus go as a multi-row VALUES list of parameters (`intake.values_rows`): every row comes
    back as it was sent, in order."""
    text, args = intake.values_rows(("uuid", "text", "bigint"), rows)

    async def roundtrip() -> list[tuple]:
        conn = await asyncpg.connect(libpq_url(database_url))
        try:
            return [tuple(r) for r in await conn.fetch(f"SELECT * FROM (VALUES {text}) AS v", *args)]
        finally:
            await conn.close()

    assert asyncio.run(roundtrip()) == rows


async def test_a_worker_reads_its_people_from_its_shards_as_the_distributed_tables_would(engine, ledger, catalog, base,
                                                                                        fuzhou, citus):
    """read_people (migration hours_ledger_0015), run by Citus on the worker that holds its people, reads each
    person's head and state from that node's shards by a prepared plan; run anywhere else (here: in a transaction on
    the coordinator, where Citus does not send the call on) it reads the distributed tables. Both read the same."""
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7, mode="online")
    other = await approved_course(catalog, base, fuzhou, topic="2", hours=7, mode="online")
    records = [record_body(course if k % 2 else other, ric(840 + p),
                           [online_sitting(at(f"{8 + 2 * k:02d}:00"), at(f"{9 + 2 * k:02d}:00"))])
               for p in range(10) for k in range(3)]
    response = await ledger.post("/v1/records/batch", json={"records": records}, headers=base.headers)
    assert [r["status"] for r in response.json()["results"]] == [201] * len(records)
    conn = await asyncpg.connect(libpq_url(engine.url.render_as_string(hide_password=False)))
    try:
        pids = [r[0] for r in await conn.fetch("SELECT id FROM hours_ledger.people ORDER BY id")]
        nodes = (await Placements.read(conn)).groups_of(pids)
        assert len(set(nodes.values())) == 2
        day, end = dt.datetime.fromisoformat(at("07:00")), dt.datetime.fromisoformat(at("20:00"))
        for node in set(nodes.values()):
            mine = [p for p in pids if nodes[p] == node]
            args = [mine, [2026] * len(mine), [day] * len(mine), [end] * len(mine),
                    [day.date()] * len(mine), [day.date()] * len(mine)]
            for _ in range(2):  # the second call executes the plans the first prepared
                there = orjson.loads(await conn.fetchval(intake._READ_PEOPLE, mine[0], mine, *args))
                assert there["from_shards"] == len(mine)
            async with conn.transaction():
                here = orjson.loads(await conn.fetchval(intake._READ_PEOPLE, mine[0], mine, *args))
            assert here["from_shards"] == 0
            assert there["people"] == here["people"] and there["states"] == here["states"]
            assert [p["id"] for p in there["people"]] == mine
            assert all(len(s["starts"]) == 3 and s["days"] == ["2026-05-04"] for s in there["states"])
            assert all(sorted(s["topics"]) == ["2", "5"] for s in there["states"])
        # planned once (hours_ledger_0016): over tables partitioned by year the plan cache would otherwise plan the
        # prepared reads and the foreign key checks again on nearly every execution
        configs = await conn.fetch("SELECT proname, proconfig FROM pg_proc WHERE proname IN ('read_people', "
                                   "'write_people') AND pronamespace = 'hours_ledger'::regnamespace")
        assert {r["proname"]: r["proconfig"] for r in configs} == {
            "read_people": ["plan_cache_mode=force_generic_plan"],
            "write_people": ["plan_cache_mode=force_generic_plan"]}
    finally:
        await conn.close()


NASTY = ["O'Brien", "back\\slash \\x00", '"quoted" \'both\'', "福州 😀 ㈱", "$fn$ $$ ; -- /* */", "\t\n\r",
         "%L %s %I %%", "E'\\\\'", ""]


async def test_write_people_writes_every_value_as_it_was_given(engine, ledger, catalog, base, fuzhou):
    """write_people (migration hours_ledger_0016) writes each table's rows as one multi-row VALUES insert made from
    its arrays in the database: text with quotes, backslashes, dollar signs and format directives, bytes of every
    value, timestamps to the microsecond in another zone and JSON come back exactly as given. A person whose entry
    count moved gets nothing written. On plain PostgreSQL and, run by Citus on the person's worker, on the cluster."""
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7, mode="online")
    response = await ledger.post("/v1/records", json=record_body(course, ric(870), [
        online_sitting(at("08:00"), at("09:00"))]), headers=base.headers)
    assert response.status_code == 201, response.text
    conn = await asyncpg.connect(libpq_url(engine.url.render_as_string(hide_password=False)))
    try:
        person, count, name = await conn.fetchrow("SELECT id, entry_count, name FROM hours_ledger.people")
        template = await conn.fetchrow("SELECT * FROM hours_ledger.records")
        sitting = await conn.fetchrow("SELECT * FROM hours_ledger.sittings")
        actor = await conn.fetchval("SELECT actor_id FROM hours_ledger.entries")
        zone = dt.timezone(dt.timedelta(hours=5, minutes=45))
        n = len(NASTY)
        ids = [uuid.uuid4() for _ in range(n)]
        starts = [dt.datetime(2026, 6, 1, 7, k, 0, 123457 + k, tzinfo=zone) for k in range(n)]
        ends = [s + dt.timedelta(minutes=50, microseconds=1) for s in starts]
        blobs = [bytes(range(k * 28 % 256, k * 28 % 256 + 32)) if k % 2 else bytes(reversed(range(256)))[:32]
                 for k in range(n)]
        exams = [orjson.dumps({"questions": 10, "note": text}).decode() for text in NASTY]
        facts = [orjson.dumps({"k": text, "n": [1, 2.5, None]}).decode() for text in NASTY]
        now = dt.datetime(2026, 6, 1, 12, 0, 0, 654321, tzinfo=dt.UTC)
        day, seconds = await conn.fetchrow("SELECT day, seconds FROM hours_ledger.person_days")
        days = [day]
        rows = dict(
            r_base=[template["base_id"]] * n, now_=now, r_id=ids, r_ext=[f"X{text}{k}" for k, text in enumerate(NASTY)],
            r_pid=[person] * n, r_course=[template["course_id"]] * n, r_year=[template["year"]] * n,
            r_category=[template["category"]] * n, r_topic=[template["topic"]] * n, r_field=[template["field"]] * n,
            r_hours=[template["course_hours"]] * n, r_mode=[template["mode"]] * n, r_unit_name=NASTY,
            r_uscc=[template["unit_uscc"]] * n, r_region=[template["unit_region"]] * n, r_exam=exams,
            r_counted=list(range(n)), r_credited=[0] * n, r_status=[template["status"]] * n,
            r_adjustments=[orjson.dumps([text]).decode() for text in NASTY], r_digest=blobs,
            s_pid=[person] * n, s_year=[template["year"]] * n, s_rid=ids, s_start=starts, s_end=ends,
            s_media=list(range(n)), s_passed=[1] * n, s_failed=[0] * n,
            a_pid=[person] * n, a_year=[template["year"]] * n, a_rid=ids, a_day=days * n, a_start=starts, a_end=ends,
            d_pid=[person], d_day=days, d_seconds=[777],
            n_actor=[actor] * n, n_pid=[person] * n, n_seq=[count + 1 + k for k in range(n)], n_rid=ids,
            n_hours=[0] * n, n_seconds=list(range(n)), n_prev=blobs, n_hash=list(reversed(blobs)),
            h_pid=[person], h_seq=[count + n], h_hash=[blobs[0]], s_mode=[sitting["mode"]] * n,
            h_name=[name + "'"], n_facts=facts)
        call = intake._WRITE_PEOPLE
        assert await conn.fetchval(call, person, [person], [count + 5], *rows.values()) == [person]  # moved: nothing
        assert await conn.fetchval("SELECT count(*) FROM hours_ledger.records") == 1
        assert await conn.fetchval(call, person, [person], [count], *rows.values()) == []
        got = {r["id"]: r for r in await conn.fetch("SELECT * FROM hours_ledger.records WHERE id = ANY ($1)", ids)}
        assert [(got[i]["external_id"], got[i]["unit_name"], orjson.loads(got[i]["exam"]),
                 orjson.loads(got[i]["adjustments"]), got[i]["counted_seconds"], got[i]["created_at"]) for i in ids] == [
            (rows["r_ext"][k], NASTY[k], orjson.loads(exams[k]), [NASTY[k]], k, now) for k in range(n)]
        keys = {r["record_id"]: r["request_hash"] for r in await conn.fetch(
            "SELECT record_id, request_hash FROM hours_ledger.record_keys WHERE record_id = ANY ($1)", ids)}
        assert [keys[i] for i in ids] == blobs
        sat = {r["record_id"]: (r["started_at"], r["ended_at"], r["media_seconds"]) for r in await conn.fetch(
            "SELECT * FROM hours_ledger.sittings WHERE record_id = ANY ($1)", ids)}
        assert [sat[i] for i in ids] == [(starts[k], ends[k], k) for k in range(n)]
        alloc = {r["record_id"]: (r["day"], r["started_at"], r["ended_at"], r["seconds"]) for r in await conn.fetch(
            "SELECT * FROM hours_ledger.allocations WHERE record_id = ANY ($1)", ids)}
        assert [alloc[i] for i in ids] == [(days[0], starts[k], ends[k], 3000) for k in range(n)]
        entries = {r["record_id"]: (r["seq"], r["prev_hash"], r["hash"], orjson.loads(r["facts"]), r["recorded_at"])
                   for r in await conn.fetch("SELECT * FROM hours_ledger.entries WHERE record_id = ANY ($1)", ids)}
        assert [entries[i] for i in ids] == [(count + 1 + k, blobs[k], blobs[n - 1 - k], orjson.loads(facts[k]), now)
                                             for k in range(n)]
        assert await conn.fetchval("SELECT count(*) FROM hours_ledger.statistics_queue WHERE record_id = ANY ($1)",
                                   ids) == n
        assert await conn.fetchval("SELECT seconds FROM hours_ledger.person_days WHERE person_id = $1 AND day = $2",
                                   person, day) == seconds + 777  # added to the day's total
        assert tuple(await conn.fetchrow("SELECT entry_count, last_hash, name FROM hours_ledger.people")) == (
            count + n, blobs[0], name)  # the name is fixed by the first record, not changed
    finally:
        await conn.close()
