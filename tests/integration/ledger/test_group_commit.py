"""Single pushes written together (group commit), against the real database: the grouping happens, each
push still gets the answer it would get alone, and a group that cannot stand answers record by record."""

from __future__ import annotations

import asyncio
import functools
import re

import httpx
import pytest
import sqlalchemy as sa
from hours_ledger.app import create_app as create_ledger

from tests.support.db import on_citus
from tests.support.factories import (
    approved_base,
    approved_course,
    at,
    base_form,
    make_staff,
    online_sitting,
    record_body,
    ric,
    uscc,
)
from tests.support.http import assert_problem, running

DAY = "2026-07-06"
at = functools.partial(at, day=DAY)



@pytest.fixture
async def one_writer(settings):
    """A ledger writing one group at a time: every push that arrives meanwhile waits for the next group."""
    async with running(create_ledger(settings.model_copy(update={"push_writers": 1}))) as client:
        yield client


async def groups(client) -> tuple[int, int]:
    """(groups written, pushes written) from the ledger's metrics."""
    text = (await client.get("/metrics")).text
    count = re.search(r"^xueshi_ledger_push_group_records_count (\S+)$", text, re.M)
    total = re.search(r"^xueshi_ledger_push_group_records_sum (\S+)$", text, re.M)
    return int(float(count.group(1))), int(float(total.group(1)))


async def test_concurrent_pushes_are_written_in_groups_and_each_gets_its_own_answer(one_writer, base, course,
                                                                                    engine):
    bodies = [record_body(course, ric(300 + i), [online_sitting(at("09:00"), at(f"{10 + i % 3}:30"))])
              for i in range(30)]
    # The same person twice: the second record overlaps the first and is counted for what is left.
    bodies.append(record_body(course, ric(300), [online_sitting(at("09:45"), at("11:15"))]))
    responses = await asyncio.gather(*(one_writer.post("/v1/records", json=b, headers=base.headers) for b in bodies))
    assert [r.status_code for r in responses] == [201] * 31, [r.text for r in responses if r.status_code != 201]

    written, pushes = await groups(one_writer)
    assert pushes == 31 and written < 31, f"{written} groups for 31 concurrent pushes: nothing was grouped"
    answers = [r.json() for r in responses]
    # 90, 150 or 210 minutes: the 学时 they make (2, 3, 4) of 45 minutes each.
    assert [a["counted_minutes"] for a in answers[1:30]] == [(90 + 60 * (i % 3)) // 45 * 45 for i in range(1, 30)]
    # Concurrent requests have no order: whichever of the same person's two records was written first counts
    # in full, the other for what is left.
    first, second = sorted((answers[0], answers[30]), key=lambda a: -a["counted_minutes"])
    assert (first["counted_minutes"], second["counted_minutes"]) == (90, 45)
    assert any(a["rule"] == "parallel-study" for a in second["adjustments"])
    async with engine.connect() as conn:
        stored = dict((await conn.execute(sa.text(
            "SELECT external_id, counted_seconds / 60 FROM hours_ledger.records"))).all())
        chains = (await conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT person_id) FROM hours_ledger.entries"))).one()
    assert stored == {b["external_id"]: a["counted_minutes"] for b, a in zip(bodies, answers, strict=True)}
    assert tuple(chains) == (31, 30)
    auditor = await make_staff(engine, "auditor")
    assert (await one_writer.get("/v1/ledger/integrity", headers=auditor.headers)).json()["valid"] is True


async def test_group_size_one_turns_grouping_off(settings, base, course):
    async with running(create_ledger(settings.model_copy(update={"push_writers": 1, "push_group_size": 1}))) as alone:
        bodies = [record_body(course, ric(320 + i), [online_sitting(at("09:00"), at("10:00"))]) for i in range(6)]
        responses = await asyncio.gather(*(alone.post("/v1/records", json=b, headers=base.headers) for b in bodies))
        assert [r.status_code for r in responses] == [201] * 6
        assert await groups(alone) == (6, 6)


async def test_one_record_sent_twice_at_once_is_written_once(one_writer, base, course, engine):
    body = record_body(course, ric(330), [online_sitting(at("09:00"), at("10:00"))])
    other = record_body(course, ric(331), [online_sitting(at("09:00"), at("10:00"))],
                        external_id=body["external_id"])  # the same id for a different record
    responses = await asyncio.gather(*(one_writer.post("/v1/records", json=b, headers=base.headers)
                                       for b in (body, body, body, other)))
    # Concurrent requests have no order: whichever reaches the ledger first takes the id.
    statuses = [r.status_code for r in responses]
    if statuses[3] == 201:
        assert statuses == [409, 409, 409, 201], [r.text for r in responses]
    else:
        assert sorted(statuses[:3]) == [200, 200, 201] and statuses[3] == 409, [r.text for r in responses]
        assert len({r.json()["record_id"] for r in responses[:3]}) == 1
    for refused in (r for r in responses if r.status_code == 409):
        assert_problem(refused, 409, "external-id-reused")
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 1


async def test_the_pushes_of_a_suspended_base_are_screened_out_of_their_groups(one_writer, catalog, fuzhou, base,
                                                                             course, engine):
    await catalog.post(f"/v1/bases/{base.id}/suspension", json={"reason": "核查"}, headers=fuzhou.headers)
    bodies = [record_body(course, ric(340 + i), [online_sitting(at("09:00"), at("10:00"))]) for i in range(12)]
    responses = await asyncio.gather(*(one_writer.post("/v1/records", json=b, headers=base.headers) for b in bodies))
    for response in responses:
        assert_problem(response, 403, "base-suspended")
    written, pushes = await groups(one_writer)
    assert pushes == 0, "refused by the screen, none reached a group's write"
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 0


async def test_a_group_mixes_bases_and_refuses_only_the_suspended_ones(one_writer, catalog, fuzhou, base, course,
                                                                      engine):
    other = await approved_base(catalog, fuzhou, base_form(uscc=uscc(4343), unit_name="另一基地"))
    other_course = await approved_course(catalog, other, fuzhou, topic="5", hours=7)
    await catalog.post(f"/v1/bases/{base.id}/suspension", json={"reason": "核查"}, headers=fuzhou.headers)
    # One person studies with both bases; the same external id is used by each base for its own record.
    person = ric(345)
    pushes = []
    for i in range(8):
        sender, course_id = (base, course) if i % 2 else (other, other_course)
        pushes.append((sender, record_body(course_id, person, [online_sitting(at(f"{8 + i:02d}:00"), at(f"{8 + i:02d}:50"))],
                                           external_id=f"SAME-{i // 2}")))
    responses = await asyncio.gather(*(one_writer.post("/v1/records", json=b, headers=sender.headers)
                                       for sender, b in pushes))
    for i, response in enumerate(responses):
        if i % 2:
            assert_problem(response, 403, "base-suspended")
        else:
            assert response.status_code == 201, response.text
    written, total = await groups(one_writer)
    assert total == 4 and written < 4, "the suspended base's pushes were screened out, the others grouped"
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.text(
            "SELECT base_id, external_id FROM hours_ledger.records ORDER BY external_id"))).all()
        actors = set((await conn.execute(sa.text("SELECT DISTINCT actor_id FROM hours_ledger.entries"))).scalars())
    assert [(str(b), e) for b, e in stored] == [(str(other.id), f"SAME-{n}") for n in range(4)]
    assert len(actors) == 1


async def test_two_bases_may_use_the_same_external_ids_in_one_group(one_writer, catalog, fuzhou, base, course,
                                                                     engine):
    other = await approved_base(catalog, fuzhou, base_form(uscc=uscc(4344), unit_name="第三基地"))
    other_course = await approved_course(catalog, other, fuzhou, topic="5", hours=7)
    pushes = [(sender, record_body(course_id, ric(346 + i), [online_sitting(at("09:00"), at("10:00"))],
                                   external_id=f"SHARED-{i // 2}"))
              for i, (sender, course_id) in enumerate([(base, course), (other, other_course)] * 5)]
    responses = await asyncio.gather(*(one_writer.post("/v1/records", json=b, headers=sender.headers)
                                       for sender, b in pushes))
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    async with engine.connect() as conn:
        by_base = (await conn.execute(sa.text(
            "SELECT r.base_id, e.actor_id, count(*) FROM hours_ledger.records r "
            "JOIN hours_ledger.entries e ON e.person_id = r.person_id AND e.record_id = r.id "
            "GROUP BY r.base_id, e.actor_id"))).all()
    # Each base's five records, each credited by that base's own key.
    assert sorted((str(b), n) for b, _, n in by_base) == sorted([(str(base.id), 5), (str(other.id), 5)])
    assert len({actor for _, actor, _ in by_base}) == 2
    assert (await groups(one_writer))[0] < 10


async def test_refusals_inside_a_group_are_each_records_own(one_writer, base, course, engine):
    good = [record_body(course, ric(350 + i), [online_sitting(at("09:00"), at("10:00"))]) for i in range(6)]
    no_exam = record_body(course, ric(360), [online_sitting(at("09:00"), at("10:00"))], exam=None)
    no_exam["exam"] = None
    unknown = record_body("00000000-0000-4000-8000-000000000000", ric(361), [online_sitting(at("09:00"),
                                                                                            at("10:00"))])
    number = ric(362)
    bad_check_digit = record_body(course, number[:-1] + ("1" if number[-1] != "1" else "2"),
                                  [online_sitting(at("09:00"), at("10:00"))])
    bodies = [*good[:3], no_exam, unknown, bad_check_digit, *good[3:]]
    responses = await asyncio.gather(*(one_writer.post("/v1/records", json=b, headers=base.headers) for b in bodies))
    assert [r.status_code for r in responses] == [201, 201, 201, 422, 422, 422, 201, 201, 201]
    assert_problem(responses[3], 422)["errors"][0]["field"].startswith("exam")
    assert_problem(responses[4], 422, "course-unknown")
    assert_problem(responses[5], 422, "id-number")
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 6


async def test_staff_pushing_is_refused_and_audited(one_writer, catalog, admin, auditor, course):
    body = record_body(course, ric(370), [online_sitting(at("09:00"), at("10:00"))])
    assert_problem(await one_writer.post("/v1/records", json=body, headers=admin.headers), 403, "base-only")
    events = (await catalog.get("/v1/audit-events", params={"actor_id": str(admin.id)},
                                headers=auditor.headers)).json()["events"]
    assert [(e["action"], e["outcome"], e["status"]) for e in events] == [("POST /v1/records", "refused", 403)]


async def test_connections_the_server_closed_are_not_handed_out(ledger, base, course, engine):
    """The pool checks each connection without a round trip (no pre-ping); an administrator's
    pg_terminate_backend, like a database restart, must not fail the requests that follow."""
    first = [record_body(course, ric(380 + i), [online_sitting(at("09:00"), at("10:00"))]) for i in range(8)]
    assert {r.status_code for r in await asyncio.gather(
        *(ledger.post("/v1/records", json=b, headers=base.headers) for b in first))} == {201}
    async with engine.connect() as conn:
        killed = await conn.scalar(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'xueshi' AND datname = current_database() AND pid <> pg_backend_pid()"))
        await conn.commit()
    assert killed >= 2
    await asyncio.sleep(0.2)  # the event loop sees the sockets close
    after = [record_body(course, ric(390 + i), [online_sitting(at("11:00"), at("12:00"))]) for i in range(8)]
    responses = await asyncio.gather(*(ledger.post("/v1/records", json=b, headers=base.headers) for b in after))
    assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]


async def test_a_push_whose_connection_is_killed_gets_a_503_and_its_retry_lands_once(ledger, base, course, engine):
    person = ric(395)
    first = record_body(course, person, [online_sitting(at("08:00"), at("09:00"))])
    assert (await ledger.post("/v1/records", json=first, headers=base.headers)).status_code == 201
    body = record_body(course, person, [online_sitting(at("10:00"), at("11:00"))])
    # Waiting for the lock: on Citus the coordinator's backend waits for the worker's (its wait is not a 'Lock'), in
    # the call that locks and writes the person's rows there (intake `_apply_on_worker`).
    waits = ("state = 'active' AND query LIKE '%write_people%'" if await on_citus(engine)
             else "wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'")
    async with engine.connect() as holder:
        # Hold the person's lock, as a long push would, so that the push waits inside its transaction.
        for pid in (await holder.execute(sa.text("SELECT id FROM hours_ledger.people ORDER BY id"))).scalars().all():
            await holder.execute(sa.text("SELECT 1 FROM hours_ledger.people WHERE id = :id FOR UPDATE"), {"id": pid})
        push = asyncio.create_task(ledger.post("/v1/records", json=body, headers=base.headers))
        async with engine.connect() as admin:
            for _ in range(1000):  # up to 20 s: on a loaded machine the push takes a while to get there
                waiting = await admin.scalar(sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    f"AND {waits} AND query NOT LIKE '%pg_stat_activity%' AND pid <> :me"),
                    {"me": await admin.scalar(sa.text("SELECT pg_backend_pid()"))})
                if waiting:
                    break
                await asyncio.sleep(0.02)
            assert waiting, "the push never waited for the lock"
            await admin.execute(sa.text("SELECT pg_terminate_backend(CAST(:pid AS integer))"), {"pid": waiting})
        response = await push
        await holder.rollback()
    assert_problem(response, 503, "service-unavailable")
    assert response.headers["retry-after"] == "1"
    retry = await ledger.post("/v1/records", json=body, headers=base.headers)
    assert retry.status_code == 201, retry.text
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 2


async def test_a_record_the_database_refuses_fails_alone_not_its_group(settings, base, course, engine):
    """Fault injection: the database refuses one record of a group (a trigger raising a data exception, as
    an unforeseen constraint would). That push alone fails (500, problem+json); its group's other records
    are written."""
    async with engine.begin() as conn:
        await conn.execute(sa.text("""
            CREATE FUNCTION hours_ledger.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.external_id = 'POISON' THEN RAISE EXCEPTION 'refused' USING ERRCODE = 'data_exception'; END IF;
              RETURN NEW;
            END $$"""))
        # On a Citus cluster a trigger on a distributed table needs this (a placeholder elsewhere).
        await conn.execute(sa.text("SET LOCAL citus.enable_unsafe_triggers = on"))
        await conn.execute(sa.text("CREATE TRIGGER refuse_poison BEFORE INSERT ON hours_ledger.records "
                                   "FOR EACH ROW EXECUTE FUNCTION hours_ledger.refuse_poison()"))
    try:
        bodies = [record_body(course, ric(400 + i), [online_sitting(at("09:00"), at("10:00"))]) for i in range(10)]
        bodies[5]["external_id"] = "POISON"
        app = create_ledger(settings.model_copy(update={"push_writers": 1}))
        async with app.router.lifespan_context(app):
            # As a real server does, answer 500 rather than hand the error to the test's client.
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as one_writer:
                responses = await asyncio.gather(*(one_writer.post("/v1/records", json=b, headers=base.headers)
                                                   for b in bodies))
                written, total = await groups(one_writer)
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text("SET LOCAL citus.enable_unsafe_triggers = on"))
            await conn.execute(sa.text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))  # (Citus)
            await conn.execute(sa.text("DROP TRIGGER refuse_poison ON hours_ledger.records"))
            await conn.execute(sa.text("DROP FUNCTION hours_ledger.refuse_poison()"))
    assert_problem(responses[5], 500, "internal")
    assert [r.status_code for i, r in enumerate(responses) if i != 5] == [201] * 9
    assert total == 10 and written < 10
    async with engine.connect() as conn:
        stored = set((await conn.execute(sa.text("SELECT external_id FROM hours_ledger.records"))).scalars())
    assert stored == {b["external_id"] for i, b in enumerate(bodies) if i != 5}


async def test_a_base_beyond_its_rate_gets_429_on_pushes_and_nothing_is_written(settings, base, course, engine):
    """The push authenticates on its own path (outside a request transaction): the per-key limit holds there."""
    async with running(create_ledger(settings.model_copy(update={"rate_limit_per_minute": 3}))) as limited:
        bodies = [record_body(course, ric(410 + i), [online_sitting(at("09:00"), at("10:00"))]) for i in range(4)]
        statuses = [(await limited.post("/v1/records", json=b, headers=base.headers)).status_code for b in bodies[:3]]
        assert statuses == [201] * 3
        refused = await limited.post("/v1/records", json=bodies[3], headers=base.headers)
        assert_problem(refused, 429, "rate-limited")
        assert int(refused.headers["retry-after"]) >= 1
    async with engine.connect() as conn:
        stored = set((await conn.execute(sa.text("SELECT external_id FROM hours_ledger.records"))).scalars())
    assert stored == {b["external_id"] for b in bodies[:3]}


async def test_a_rotated_or_revoked_key_stops_pushing_at_once(settings, catalog, fuzhou, base, course, engine):
    """The push route keeps tokens it found live (no statement per request); the group commit checks them
    again just before writing, so a key rotated or revoked a moment ago is refused all the same."""
    failures = sa.text("SELECT count(*) FROM iam.audit_events WHERE outcome LIKE 'authentication-failed%' "
                       "AND status = 401 AND action = 'POST /v1/records'")
    async with engine.connect() as conn:
        failed_before = await conn.scalar(failures)
    async with running(create_ledger(settings.model_copy(update={"push_writers": 1}))) as ledger:
        known = ledger._transport.app.state.known_tokens
        first = record_body(course, ric(419), [online_sitting(at("08:00"), at("09:00"))])
        assert (await ledger.post("/v1/records", json=first, headers=base.headers)).status_code == 201
        assert len(known) == 1, "the key was kept"
        body = record_body(course, ric(420), [online_sitting(at("09:00"), at("10:00"))])
        rotated = (await catalog.post(f"/v1/bases/{base.id}/api-key", headers=base.headers)).json()["api_key"]
        assert_problem(await ledger.post("/v1/records", json=body, headers=base.headers), 401)
        assert len(known) == 0, "a key found revoked is forgotten"
        assert_problem(await ledger.post("/v1/records", json=body, headers=base.headers), 401)
        rotated_headers = {"Authorization": f"Bearer {rotated}"}
        assert (await ledger.post("/v1/records", json=body, headers=rotated_headers)).status_code == 201
        revoked = await catalog.request("DELETE", f"/v1/bases/{base.id}/api-key", json={"reason": "密钥泄露"},
                                        headers=fuzhou.headers)
        assert revoked.status_code == 204
        again = record_body(course, ric(421), [online_sitting(at("09:00"), at("10:00"))])
        assert_problem(await ledger.post("/v1/records", json=again, headers=rotated_headers), 401)
    async with engine.connect() as conn:
        stored = set((await conn.execute(sa.text("SELECT external_id FROM hours_ledger.records"))).scalars())
        failed_after = await conn.scalar(failures)
    assert stored == {first["external_id"], body["external_id"]}
    assert failed_after - failed_before == 3, "each refused push is audited"
