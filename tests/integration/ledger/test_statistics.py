"""HR statistics: counters folded from the queue equal what the transcripts say, scoped as staff are, exported."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import openpyxl
import pytest
import sqlalchemy as sa
from hours_ledger import statistics
from hours_ledger.domain.statistics import QUALITY_RULES, week_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.factories import (
    ApprovedBase,
    approved_base,
    approved_course,
    at,
    base_form,
    make_staff,
    online_sitting,
    professional_form,
    record_body,
    ric,
    uscc,
)
from tests.support.http import assert_problem

BEIJING = dt.timezone(dt.timedelta(hours=8))
UNITS = [("福州市第一医院", uscc(4242), "350102"), ("福州市鼓楼区实验小学", uscc(4243), "350102"),
         ("闽侯县医院", uscc(4244), "350121"), ("平潭综合实验区医院", uscc(4245), "350128"),
         ("福建省疾控中心", uscc(4246), "350000")]


async def push(ledger, base, course, person, sittings, unit=UNITS[0], **kw):
    name, code, region = unit
    body = record_body(course, person, sittings, unit={"name": name, "uscc": code, "region": region}, **kw)
    response = await ledger.post("/v1/records", json=body, headers=base.headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def world(catalog, engine, fuzhou, admin):
    """A provincial public-subject base with the five topics' courses, a provincial health base (field A20.1 of
    省卫健委) with two professional courses, and the staff who govern them."""
    base = await approved_base(catalog, admin, base_form(level="provincial", region="350000", scope_region="350000"))
    public = {t: await approved_course(catalog, base, admin, topic=t, hours=h)
              for t, h in [("1", 7), ("2", 7), ("3", 2), ("4", 7), ("5", 7)]}
    reviewer = await make_staff(engine, "authority_reviewer", authority="A20")
    created = (await catalog.post("/v1/bases", json=professional_form(["A20.1"]), headers=reviewer.headers)).json()
    key = (await catalog.post(f"/v1/bases/{created['id']}/approval", headers=reviewer.headers)).json()["api_key"]
    health = ApprovedBase(created["id"], key)
    professional = [await approved_course(catalog, health, reviewer, category="professional", topic=None,
                                          field="A20.1", hours=h) for h in (30, 40)]
    return {"base": base, "public": public, "health": health, "professional": professional, "reviewer": reviewer}


async def stats(ledger, who, query="", status=200):
    response = await ledger.get(f"/v1/statistics/2026{query}", headers=who.headers)
    assert response.status_code == status, response.text
    return response.json()


async def test_a_person_counts_once_per_group_and_a_reversal_takes_their_records_out(ledger, world, admin, fuzhou):
    base, public = world["base"], world["public"]
    person = ric(501)
    first = await push(ledger, base, public["1"], person, [online_sitting(at("08:00"), at("14:00"))])
    await push(ledger, base, public["2"], person, [online_sitting(at("08:00", "2026-05-05"), at("14:00", "2026-05-05"))])
    await push(ledger, base, public["3"], ric(502), [online_sitting(at("08:00"), at("10:00"))], unit=UNITS[2])

    answer = await stats(ledger, admin, "?group_by=region")
    assert answer["dimension"] == "city" and answer["scope"] == {"kind": "province", "code": None}
    assert answer["as_of"] is not None
    fuzhou_row = {g["key"]: g for g in answer["groups"]}["350100"]
    assert fuzhou_row["name"] == "福州市"
    assert (fuzhou_row["people"], fuzhou_row["records"], fuzhou_row["credited_hours"]) == (2, 3, 16)
    assert answer["total"]["people"] == 2 and answer["total"]["public_hours"] == 16

    by_county = await stats(ledger, fuzhou, "?group_by=region")
    assert by_county["dimension"] == "county" and by_county["scope"] == {"kind": "city", "code": "350100"}
    assert {g["key"]: g["people"] for g in by_county["groups"]} == {"350102": 1, "350121": 1}

    reversed_ = await ledger.post(f"/v1/records/{first['record_id']}/reversal", json={"reason": "代学"},
                                  headers=fuzhou.headers)
    assert reversed_.status_code == 200, reversed_.text
    after = await stats(ledger, admin, "?group_by=topic")
    topics = {g["key"]: g for g in after["groups"]}
    assert "1" not in topics and topics["2"]["people"] == 1 and topics["2"]["credited_hours"] == 7
    assert after["total"]["people"] == 2 and after["total"]["records"] == 2


async def test_cuts_are_counted_per_rule_and_bases_are_compared_with_the_median(ledger, world, admin):
    base, public = world["base"], world["public"]
    person = ric(511)
    await push(ledger, base, public["1"], person, [online_sitting(at("08:00"), at("14:00"))])
    # The same hours again on another course: parallel study counts once.
    await push(ledger, base, public["2"], person, [online_sitting(at("08:00"), at("14:00"))])
    # Proxy study: no identity check passed.
    await push(ledger, base, public["4"], ric(512), [online_sitting(at("08:00"), at("10:00"), passed=0, failed=0)])
    answer = await stats(ledger, admin, "?group_by=base")
    row = {g["key"]: g for g in answer["groups"]}[str(base.id)]
    assert row["cuts"]["parallel-study"] == {"records": 1, "minutes": 360}
    assert row["cuts"]["identity-unverified"]["records"] == 1
    assert row["reported_minutes"] == 360 + 360 + 120
    quality = (await ledger.get("/v1/statistics/2026/base-quality", headers=admin.headers)).json()
    mine = {b["base_id"]: b for b in quality["bases"]}[str(base.id)]
    assert mine["rules"]["parallel-study"]["share"] == pytest.approx(360 / 840, abs=1e-6)
    assert mine["rules"]["parallel-study"]["province_median"] is not None
    assert quality["rules"] == list(QUALITY_RULES)


async def test_staff_see_their_scope_and_filters_stay_inside_it(ledger, world, engine, admin, fuzhou, auditor):
    base, public, health = world["base"], world["public"], world["health"]
    await push(ledger, base, public["1"], ric(521), [online_sitting(at("08:00"), at("14:00"))])
    await push(ledger, base, public["1"], ric(522), [online_sitting(at("08:00"), at("14:00"))], unit=UNITS[3])
    await push(ledger, health, world["professional"][0], ric(521),
               [online_sitting(at("08:00", "2026-06-01"), at("20:00", "2026-06-01"))])
    pingtan = await make_staff(engine, "city_admin", region="350128")
    xiamen = await make_staff(engine, "city_admin", region="350200")
    assert (await stats(ledger, pingtan))["total"]["people"] == 1
    assert (await stats(ledger, xiamen))["total"]["people"] == 0
    assert (await stats(ledger, fuzhou))["total"]["people"] == 1   # Pingtan's unit is not Fuzhou's
    assert (await stats(ledger, auditor))["total"]["people"] == 2
    reviewer = world["reviewer"]
    mine = await stats(ledger, reviewer, "?group_by=field")
    assert mine["scope"] == {"kind": "authority", "code": "A20"}
    assert [(g["key"], g["people"], g["professional_hours"]) for g in mine["groups"]] == [("A20.1", 1, 12)]
    assert mine["total"]["public_hours"] == 0
    other = await make_staff(engine, "authority_reviewer", authority="A05")
    assert (await stats(ledger, other))["total"]["people"] == 0
    assert_problem(await ledger.get("/v1/statistics/2026?field=A20.1", headers=other.headers), 403, "out-of-scope")
    assert_problem(await ledger.get("/v1/statistics/2026?region=350200", headers=fuzhou.headers), 403, "out-of-scope")
    assert_problem(await ledger.get("/v1/statistics/2026?topic=1", headers=fuzhou.headers), 422,
                   "statistics-filter-combination")
    assert_problem(await ledger.get("/v1/statistics/2026?topic=1&region=350100", headers=admin.headers), 422,
                   "statistics-filter-combination")
    assert_problem(await ledger.get("/v1/statistics/2026?region=110000", headers=admin.headers), 422, "region-unknown")
    assert_problem(await ledger.get("/v1/statistics/2026", headers=base.headers), 403, "staff-only")
    assert_problem(await ledger.get("/v1/statistics/2026?group_by=person", headers=admin.headers), 422)
    county = await stats(ledger, fuzhou, "?region=350102&group_by=topic")
    assert county["scope"] == {"kind": "county", "code": "350102"} and county["groups"][0]["people"] == 1
    assert (await stats(ledger, admin, "?topic=1"))["total"]["people"] == 2


async def test_exports_hold_the_same_numbers(ledger, world, admin):
    await push(ledger, world["base"], world["public"]["5"], ric(531), [online_sitting(at("08:00"), at("14:00"))])
    answer = await stats(ledger, admin, "?group_by=topic")
    csv_ = await ledger.get("/v1/statistics/2026?group_by=topic&format=csv", headers=admin.headers)
    assert csv_.status_code == 200 and csv_.headers["content-type"].startswith("text/csv")
    lines = csv_.content.decode("utf-8-sig").splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert rows[0]["key"] == "total" and int(rows[0]["people"]) == answer["total"]["people"]
    assert {r["key"]: int(r["credited_hours"]) for r in rows[1:]} == {
        g["key"]: g["credited_hours"] for g in answer["groups"]}
    xlsx = await ledger.get("/v1/statistics/2026?group_by=topic&format=xlsx", headers=admin.headers)
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    values = list(sheet.values)
    assert values[0][0] == "代码" and values[1][0] == "key" and values[2][0] == "total"
    assert values[2][list(values[1]).index("people")] == answer["total"]["people"]
    quality = await ledger.get("/v1/statistics/2026/base-quality?format=csv", headers=admin.headers)
    assert quality.status_code == 200 and "parallel-study:share" in quality.text


async def test_the_fold_is_exact_while_pushes_and_reversals_run_in_parallel(ledger, world, engine, admin, fuzhou):
    """Folds running while pushes commit (each fold in one snapshot) miss nothing and count nothing twice."""
    base, public = world["base"], world["public"]
    people = [ric(600 + i) for i in range(12)]

    async def one(person):
        for n, topic in enumerate(("1", "2", "4")):
            day = f"2026-05-{n + 4:02d}"
            await push(ledger, base, public[topic], person, [online_sitting(at("08:00", day), at("14:00", day))])

    async def folding(stop):
        while not stop.is_set():
            await statistics.fold(engine, batch=3)
            await asyncio.sleep(0)

    stop = asyncio.Event()
    folder = asyncio.create_task(folding(stop))
    await asyncio.gather(*(one(p) for p in people))
    stop.set()
    await folder
    answer = await stats(ledger, admin, "?group_by=topic")
    assert answer["total"]["people"] == 12 and answer["total"]["records"] == 36
    assert {g["key"]: (g["people"], g["credited_hours"]) for g in answer["groups"]} == {
        "1": (12, 84), "2": (12, 84), "4": (12, 84)}


# ---- the numbers equal the transcripts' ------------------------------------------------------------------

_serial = itertools.count(700)


def _expected(transcripts, reported):
    """The statistics as the README defines them, computed from the transcripts alone."""
    from xueshi_shared.regions import governing_region

    groups = defaultdict(lambda: defaultdict(lambda: {"people": set(), "credited": set(), "public_met": set(),
                                                      "yearly_met": set(), "records": 0, "hours": 0, "minutes": 0,
                                                      "reported": 0}))
    for person, t in transcripts.items():
        for line in t["records"]:
            if line["reversed"]:
                continue
            last = dt.datetime.fromisoformat(line["last_sitting"]).astimezone(BEIJING).isocalendar()
            values = {"city": governing_region(line["unit"]["region"]), "county": line["unit"]["region"],
                      "unit": line["unit"]["uscc"], "base": line["base_id"], "week": f"{last[0]}-W{last[1]:02d}",
                      "total": ""}
            if line["category"] == "public":
                values["topic"] = line["topic"]
            else:
                values["field"], values["authority"] = line["field"], line["field"].split(".")[0]
            for dim, value in values.items():
                g = groups[dim][value]
                g["people"].add(person)
                if line["credited_hours"] > 0:
                    g["credited"].add(person)
                if t["public_requirement_met"]:
                    g["public_met"].add(person)
                if t["yearly_requirement_met"]:
                    g["yearly_met"].add(person)
                g["records"] += 1
                g["hours"] += line["credited_hours"]
                g["minutes"] += line["counted_minutes"]
                g["reported"] += reported[line["external_id"]]
    return {dim: {v: (len(g["people"]), len(g["credited"]), len(g["public_met"]), len(g["yearly_met"]), g["records"],
                      g["hours"], g["minutes"], g["reported"]) for v, g in values.items()}
            for dim, values in groups.items()}


def _got(group):
    return (group["people"], group["people_credited"], group["people_public_met"], group["people_yearly_met"],
            group["records"], group["credited_hours"], group["counted_minutes"], group["reported_minutes"])


@pytest.fixture
async def population(world):
    return {"people": [], "reported": {}, "records": []}


plans = st.lists(st.tuples(
    st.integers(0, 6),                       # the course: public topics 1-5, or a professional course
    st.integers(0, len(UNITS) - 1),          # the unit
    st.integers(0, 40),                      # the day after 2026-05-04
    st.integers(30, 900),                    # minutes
    st.booleans(),                           # identity checks passed
), min_size=1, max_size=5)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(people=st.lists(plans, min_size=1, max_size=4), reverse=st.lists(st.integers(0, 50), max_size=2))
async def test_the_statistics_equal_what_the_transcripts_say(ledger, world, admin, population, people, reverse):
    courses = [*(world["public"][t] for t in "12345"), *world["professional"]]
    for plan in people:
        person = ric(next(_serial), birth="19850101")
        population["people"].append(person)
        for course_index, unit, day, minutes, passed in plan:
            start = dt.datetime(2026, 5, 4, 8, tzinfo=BEIJING) + dt.timedelta(days=day)
            end = start + dt.timedelta(minutes=minutes)
            base = world["base"] if course_index < 5 else world["health"]
            result = await push(ledger, base, courses[course_index], person,
                                [online_sitting(start.isoformat(), end.isoformat(), passed=int(passed))],
                                unit=UNITS[unit])
            population["reported"][result["external_id"]] = minutes
            population["records"].append(result["record_id"])
    for index in reverse:
        if index < len(population["records"]):
            record = population["records"].pop(index)
            response = await ledger.post(f"/v1/records/{record}/reversal", json={"reason": "核查"}, headers=admin.headers)
            assert response.status_code in (200, 403), response.text  # province_admin governs public records only
    transcripts = {}
    for person in population["people"]:
        response = await ledger.post("/v1/people/transcript", json={"id_number": person, "year": 2026},
                                     headers=admin.headers)
        assert response.status_code == 200, response.text
        transcripts[person] = response.json()
    expected = _expected(transcripts, population["reported"])
    for dim in ("topic", "field", "authority", "base", "unit", "week"):
        answer = await stats(ledger, admin, f"?group_by={dim}")
        assert {g["key"]: _got(g) for g in answer["groups"]} == expected.get(dim, {}), dim
        assert _got(answer["total"]) == expected["total"][""]
    for level in ("city", "county"):
        answer = await stats(ledger, admin, f"?group_by=region&level={level}")
        assert {g["key"]: _got(g) for g in answer["groups"]} == expected[level], level


async def test_the_migration_queues_the_records_already_in_the_ledger(ledger, world, engine, admin):
    """The first fold after the upgrade builds the counters from the ledger as it stands."""
    await push(ledger, world["base"], world["public"]["1"], ric(541), [online_sitting(at("08:00"), at("14:00"))])
    before = await stats(ledger, admin)
    async with engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE hours_ledger.statistics_groups, hours_ledger.statistics_cuts"))
        await conn.execute(sa.text("""
            INSERT INTO hours_ledger.statistics_queue (person_id, year, record_id, change)
            SELECT person_id, year, id, 'credit' FROM hours_ledger.records
            UNION ALL
            SELECT person_id, year, id, 'reversal' FROM hours_ledger.records WHERE reversed_at IS NOT NULL"""))
    after = await stats(ledger, admin)
    assert after["total"] == before["total"]


async def test_the_database_counts_weeks_as_the_definition_does(engine):
    """The fold reads each record's week from the database (statistics.WEEK): the same ISO week in Beijing time as
    week_of, on the edges of a Beijing week and of the ISO year."""
    instants = [dt.datetime(2026, 11, 29, 15, 59, 59, tzinfo=dt.UTC), dt.datetime(2026, 11, 29, 16, 0, tzinfo=dt.UTC),
                dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.UTC), dt.datetime(2027, 1, 3, 15, 59, tzinfo=dt.UTC),
                dt.datetime(2027, 1, 3, 16, 0, tzinfo=dt.UTC), dt.datetime(2025, 12, 28, 16, 0, tzinfo=dt.UTC),
                dt.datetime(2026, 5, 4, 0, 0, tzinfo=BEIJING)]
    async with engine.connect() as c:
        conn = await statistics.raw(c)
        got = [await conn.fetchval(f"SELECT {statistics.WEEK.format('$1::timestamptz')}", i) for i in instants]
    assert got == [week_of(i) for i in instants]
    assert got[:2] == ["2026-W48", "2026-W49"] and got[3:5] == ["2026-W53", "2027-W01"]


async def test_a_request_behind_a_burst_folds_what_it_may_and_says_up_to_when_all_is_in(ledger, world, engine,
                                                                                    admin, monkeypatch):
    """A statistics request folds at most REQUEST_ROUNDS transactions before it answers: behind more than that it
    answers from the counters as they are, with the `as_of` of the last time everything was in, never later."""
    base, public = world["base"], world["public"]
    await push(ledger, base, public["1"], ric(561), [online_sitting(at("08:00"), at("14:00"))])
    first = await stats(ledger, admin)
    assert first["total"]["people"] == 1
    monkeypatch.setattr(statistics, "BATCH", 1)  # a person's year per transaction
    for n in range(statistics.REQUEST_ROUNDS + 2):
        await push(ledger, base, public["2"], ric(562 + n), [online_sitting(at("08:00"), at("14:00"))])
    behind = await stats(ledger, admin)
    assert behind["total"]["people"] == 1 + statistics.REQUEST_ROUNDS
    assert behind["as_of"] == first["as_of"]
    caught_up = await stats(ledger, admin)  # the rest, within this request's rounds
    assert caught_up["total"]["people"] == 3 + statistics.REQUEST_ROUNDS and caught_up["as_of"] > first["as_of"]


async def test_the_background_fold_waits_out_a_burst_and_then_catches_up(ledger, world, engine):
    """While changes are queued faster than the busy rate the background fold leaves them (intake first); once the
    burst is over it folds them all."""
    base, public = world["base"], world["public"]
    folder = statistics.Folder(engine, every=0.1, busy_per_second=5, most_lag=3600)
    folder.start()
    try:
        await asyncio.sleep(0.3)  # a first look at the queue
        for n in range(12):  # about 20 a second, for longer than a few looks
            await push(ledger, base, public["1"], ric(580 + n), [online_sitting(at("08:00"), at("14:00"))])
            await asyncio.sleep(0.05)
        assert folder.deferred > 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            async with engine.connect() as c:
                if not await c.scalar(sa.text("SELECT count(*) FROM hours_ledger.statistics_queue")):
                    break
            await asyncio.sleep(0.1)
        async with engine.connect() as c:
            assert await c.scalar(sa.text("SELECT count(*) FROM hours_ledger.statistics_queue")) == 0
            assert await c.scalar(sa.text(
                "SELECT people FROM hours_ledger.statistics_groups WHERE year = 2026 AND scope = '' AND dim = ''")) == 12
    finally:
        await folder.stop()


async def test_the_statistics_fold_runs_as_a_process_of_its_own(tmp_path, database_url, engine, ledger, catalog,
                                                               fuzhou):
    """`xueshi serve statistics-fold` (which `xueshi run` starts) folds pushed records into the counters without a
    statistics request, and stops cleanly on SIGTERM."""
    base = await approved_base(catalog, fuzhou)
    course = await approved_course(catalog, base, fuzhou, topic="5", hours=7)
    body = record_body(course, ric(950), [online_sitting("2026-05-04T08:00:00+08:00", "2026-05-04T14:00:00+08:00")])
    assert (await ledger.post("/v1/records", json=body, headers=base.headers)).status_code == 201
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUESHI_")}
    env.update(XUESHI_DATABASE_URL=database_url, XUESHI_STATISTICS_FOLD_SECONDS="0.2")
    proc = subprocess.Popen([sys.executable, "-m", "xueshi.cli", "serve", "statistics-fold"], env=env, cwd=tmp_path)
    try:
        deadline, people = time.monotonic() + 30, 0
        while time.monotonic() < deadline and not people:
            async with engine.connect() as conn:
                people = await conn.scalar(sa.text(
                    "SELECT people FROM hours_ledger.statistics_groups WHERE year = 2026 AND scope = '' AND dim = ''"))
            await asyncio.sleep(0.2)
        assert people == 1
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.statistics_queue")) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
