"""HR statistics (GET /v1/statistics/{year}): counters kept as records are written, read per request.

Every record credited and every reversal queues a row in `statistics_queue` in the transaction that makes the
change (intake.py, service.py). The fold consumes the queue a person's year at a time: in one REPEATABLE READ
snapshot it takes the queued changes of some people, reads those people's records of the year (the records queued
as credited did not stand before, those queued as reversed did), works out what the changes move (domain/statistics.py,
Fold) and adds it to the counters. One fold runs at a time (a PostgreSQL advisory lock): a process of its own
(`xueshi serve statistics-fold`, which `xueshi run` starts) folds every `statistics_fold_seconds` unless intake
is busy (Folder, should_fold), and each statistics request folds up to REQUEST_ROUNDS transactions before it
answers; its `as_of` is the moment up to which the counters hold every change committed.

A request never reads the ledger: it reads the counters of one scope (the staff member's, narrowed by the
filter) and one dimension: at most a few thousand rows, whatever the ledger's size (bench/hr_statistics.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from xueshi_shared.iam.principal import Principal
from xueshi_shared.problems import Forbidden, InvalidInput
from xueshi_shared.regions import CODES, PROVINCE, REGIONS, governing_region, within

from .domain.statistics import DIMENSIONS, MEASURES, QUALITY_RULES, Fold, Line, median

log = logging.getLogger("xueshi.statistics")

FOLD_LOCK = 0x58535354  # "XSST": one fold at a time, across processes
BATCH = 2000  # queued changes per fold transaction
# A statistics request folds at most this many transactions of what is queued before it answers: in quiet times
# everything (its `as_of` is the request's own moment); behind a burst of intake it answers from the counters as
# they are, and `as_of` says up to when they hold everything, rather than making the request wait for the burst.
REQUEST_ROUNDS = 2

GROUP_BY = ("region", "unit", "authority", "field", "base", "topic", "week")
FILTERS = ("region", "authority", "field", "topic", "base")

_TAKE = """
    WITH picked AS (
      SELECT DISTINCT person_id, year FROM (
        SELECT person_id, year FROM hours_ledger.statistics_queue ORDER BY id LIMIT $1) q)
    DELETE FROM hours_ledger.statistics_queue q USING picked p
    WHERE q.person_id = p.person_id AND q.year = p.year
    RETURNING q.person_id, q.year, q.record_id, q.change"""

# The ISO week (Monday first) an instant falls in, in Beijing time, as domain.statistics.week_of says it: computed
# by the database, where it costs nothing beside the row (tests/integration/ledger/test_statistics.py holds them
# equal on the weeks' edges). An interval zone is a fixed offset east of UTC.
WEEK = """to_char(({}) AT TIME ZONE INTERVAL '08:00', 'IYYY-"W"IW')"""

_LINES = f"""
    SELECT r.person_id, r.year, r.id, r.category, coalesce(r.topic, r.field, '') AS code, f.authority,
           r.base_id::text AS base,
           r.unit_uscc, r.unit_name, r.unit_region, r.credited_hours, r.counted_seconds, r.adjustments::text AS adj,
           r.reversed_at IS NOT NULL AS reversed, r.created_at, s.wall,
           {WEEK.format("coalesce(s.last_end, r.created_at)")} AS week
    FROM unnest($1::bigint[], $2::smallint[]) AS a(pid, year)
    JOIN hours_ledger.records r ON r.person_id = a.pid AND r.year = a.year
    LEFT JOIN catalog.published_fields f ON f.code = r.field
    CROSS JOIN LATERAL (
      SELECT max(x.ended_at) AS last_end, coalesce(sum(extract(epoch FROM x.ended_at - x.started_at)), 0)::bigint AS wall
      FROM hours_ledger.sittings x WHERE x.person_id = r.person_id AND x.year = r.year AND x.record_id = r.id) s"""

_UPSERT_GROUPS = f"""
    INSERT INTO hours_ledger.statistics_groups AS g (year, scope, dim, value, {", ".join(MEASURES)})
    SELECT * FROM unnest($1::smallint[], $2::text[], $3::text[], $4::text[],
                         {", ".join(f"${i}::bigint[]" for i in range(5, 5 + len(MEASURES)))})
    ON CONFLICT (year, scope, dim, value) DO UPDATE SET
      {", ".join(f"{m} = g.{m} + EXCLUDED.{m}" for m in MEASURES)}"""

_UPSERT_CUTS = """
    INSERT INTO hours_ledger.statistics_cuts AS c (year, scope, dim, value, rule, records, minutes)
    SELECT * FROM unnest($1::smallint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
    ON CONFLICT (year, scope, dim, value, rule) DO UPDATE SET
      records = c.records + EXCLUDED.records, minutes = c.minutes + EXCLUDED.minutes"""

_UPSERT_UNITS = """
    INSERT INTO hours_ledger.statistics_units AS u (uscc, name)
    SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (uscc) DO UPDATE SET name = EXCLUDED.name"""


async def raw(c: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy connection (its transactions are this module's own)."""
    conn: asyncpg.Connection | None = (await c.get_raw_connection()).driver_connection
    assert conn is not None
    return conn


def _pairs(rows: Sequence[Any]) -> dict[Any, Any]:
    return {r[0]: r[1] for r in rows}


# ---- folding ----------------------------------------------------------------------------------------

def _line(row: Any, changed: bool) -> Line:
    """A record as the statistics see it; its cuts are read only when `changed` (the fold needs the sums of the
    records whose standing changes, and only the keys of the others)."""
    region = row["unit_region"]
    cuts: dict[str, int] = defaultdict(int)
    for adjustment in (orjson.loads(row["adj"]) or ()) if changed else ():
        cuts[adjustment["rule"]] += int(adjustment.get("minutes") or 0)
    return Line(row["category"], row["code"], row["authority"] if row["category"] != "public" else None, row["base"],
                row["unit_uscc"], region, governing_region(region) or region, row["week"], row["credited_hours"],
                int(row["wall"]) // 60, row["counted_seconds"] // 60, tuple(cuts.items()))


def changes(taken: Sequence[Any], rows: Sequence[Any], required: dict[int, int]) -> dict[int, Fold]:
    """What the taken queue rows change, per year. `rows`: the records of the taken people's years, as they stand
    now."""
    credited = {r["record_id"] for r in taken if r["change"] == "credit"}
    reversed_now = {r["record_id"] for r in taken if r["change"] == "reversal"}
    people: dict[tuple[int, int], list[Any]] = defaultdict(list)
    for row in rows:
        people[(row["person_id"], row["year"])].append(row)
    folds: dict[int, Fold] = defaultdict(Fold)
    for (_, year), records in people.items():
        # Each record with whether it stood before the taken changes and whether it stands now.
        standing = []
        for r in records:
            before = r["id"] not in credited and (not r["reversed"] or r["id"] in reversed_now)
            after = not r["reversed"]
            standing.append((_line(r, before != after), before, after))
        folds[year].add(standing, required.get(year))
    return folds


def deltas(folds: dict[int, Fold]) -> tuple[dict[tuple[Any, ...], list[int]], dict[tuple[Any, ...], list[int]]]:
    """Per (year, scope, dim, value) the measures, per (year, scope, dim, value, rule) the cuts: what the folds
    add to the counters."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    cuts: dict[tuple[Any, ...], list[int]] = {}
    for year, fold in folds.items():
        g, c = fold.result()
        groups.update(((year, *key), v) for key, v in g.items())
        cuts.update(((year, *key, rule), v) for (key, rule), v in c.items())
    return groups, cuts


async def _fold_once(conn: asyncpg.Connection, batch: int) -> int:
    async with conn.transaction(isolation="repeatable_read"):
        # Where the planner takes a fold's statement for expensive, JIT compilation costs more than the statement
        # runs (measured on one of them: 1,042 against 345 ms for 2,000 changes).
        await conn.execute("SET LOCAL jit = off")
        started = await conn.fetchval("SELECT now()")
        taken = await conn.fetch(_TAKE, batch)
        if taken:
            pairs = sorted({(r["person_id"], r["year"]) for r in taken})
            rows = await conn.fetch(_LINES, [p for p, _ in pairs], [y for _, y in pairs])
            required = _pairs(await conn.fetch("SELECT year, required_hours FROM catalog.published_plans"))
            groups, cuts = deltas(changes(taken, rows, required))
            # One fold at a time (FOLD_LOCK): no other transaction writes the counters, in whatever order.
            if groups:
                await conn.execute(_UPSERT_GROUPS, *zip(*groups, strict=True), *zip(*groups.values(), strict=True))
            if cuts:
                await conn.execute(_UPSERT_CUTS, *zip(*cuts, strict=True), *zip(*cuts.values(), strict=True))
            # A unit's name: as the newest record credited reports it.
            credited = {r["record_id"] for r in taken if r["change"] == "credit"}
            latest: dict[str, tuple[dt.datetime, str]] = {}
            for r in rows:
                if r["id"] in credited and (r["unit_uscc"] not in latest or latest[r["unit_uscc"]][0] < r["created_at"]):
                    latest[r["unit_uscc"]] = (r["created_at"], r["unit_name"])
            if latest:
                names = sorted(latest.items())
                await conn.execute(_UPSERT_UNITS, [u for u, _ in names], [n for _, (_, n) in names])
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM hours_ledger.statistics_queue)"):
            # Everything committed before this snapshot is in the counters now.
            await conn.execute("UPDATE hours_ledger.statistics_state SET folded_through = $1 WHERE id = 1", started)
    return len(taken)


async def fold(engine: AsyncEngine, batch: int = BATCH, most: int | None = None) -> int:
    """Fold the queue into the counters until it is empty (or `most` transactions); the queued changes folded."""
    done = 0
    async with engine.connect() as c:
        conn = await raw(c)
        await conn.execute("SELECT pg_advisory_lock($1)", FOLD_LOCK)
        try:
            rounds = 0
            while True:
                n = await _fold_once(conn, batch)
                done += n
                rounds += 1
                if n == 0 or (most is not None and rounds >= most):
                    break
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", FOLD_LOCK)
    return done


async def catch_up(engine: AsyncEngine) -> int:
    """What a statistics request folds before it reads (REQUEST_ROUNDS)."""
    return await fold(engine, batch=BATCH, most=REQUEST_ROUNDS)


QUIET_LOOKS = 2  # looks in a row below the busy rate before the background fold folds


def should_fold(quiet_looks: int, since_fold: float, most_lag: float, quiet_needed: int = QUIET_LOOKS) -> bool:
    """Whether the background fold folds now: once intake has been quiet (no more changes queued a second than the
    busy rate) for `quiet_needed` looks in a row, and in any case once `most_lag` seconds have passed since it last
    folded. One quiet look is not enough: a client between two bursts (building its next requests, a base's
    nightly job between files) leaves the queue quiet for a moment, and a fold that starts then takes its CPU from
    the next burst. Intake comes first: behind a burst the counters fall behind by at most `most_lag`, and each
    statistics request folds what it can before it answers (REQUEST_ROUNDS)."""
    return quiet_looks >= quiet_needed or since_fold >= most_lag


def is_busy(queued_per_second: float, busy_per_second: float) -> bool:
    """Intake is busy while more changes are queued a second than `busy_per_second`."""
    return queued_per_second > busy_per_second


_QUEUED = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM hours_ledger.statistics_queue_id_seq"


class Folder:
    """The background fold: every `every` seconds, what is queued goes into the counters (when `should_fold`). It
    runs in a process of its own (xueshi.cli): in a serving process its CPU would delay requests (measured: single
    pushes 1,815 -> 1,151 a second, the batch 3,798 -> 1,999 records a second, bench/ledger.py on 2 CPUs)."""

    def __init__(self, engine: AsyncEngine, every: float, busy_per_second: float = float("inf"),
                 most_lag: float = 60.0) -> None:
        self.engine, self.every, self.busy_per_second, self.most_lag = engine, every, busy_per_second, most_lag
        self.task: asyncio.Task[None] | None = None
        self.deferred = 0  # rounds left for later because intake was busy
        self._seen: int | None = None
        self._looked = self._folded = 0.0
        self._quiet = 0

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="statistics-fold")

    def look(self, queued: int, now: float) -> bool:
        """One look at the queue's sequence (`queued` changes queued ever, at monotonic time `now`): whether to fold
        now. Keeps the intake rate since the last look and how many looks in a row found intake quiet."""
        rate = 0.0 if self._seen is None else (queued - self._seen) / max(now - self._looked, 1e-3)
        self._seen, self._looked = queued, now
        self._quiet = 0 if is_busy(rate, self.busy_per_second) else self._quiet + 1
        return should_fold(self._quiet, now - self._folded, self.most_lag)

    async def _queued(self) -> int:
        async with self.engine.connect() as c:
            return int(await (await raw(c)).fetchval(_QUEUED))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._folded = loop.time()
        while True:
            await asyncio.sleep(self.every)
            try:
                if not self.look(await self._queued(), loop.time()):
                    self.deferred += 1
                    continue
                await fold(self.engine)
                self._folded = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next round tries again; the queue keeps what was not folded
                log.exception("statistics fold failed")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


# ---- who sees what ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Scope:
    key: str          # the counters' scope: "", c:<city>, n:<county>, a:<authority>, f:<field>, t:<topic>, b:<base>
    kind: str         # province, city, county, authority, field, topic, base
    code: str | None  # the region, authority, field, topic or base


def _combination() -> InvalidInput:
    return InvalidInput("statistics take one filter at a time, and a city's or an authority's staff filter only "
                        "within their own scope (a county of the city; a field of the authority)",
                        rule="statistics-filter-combination", field="filter")


def scope_of(principal: Principal, filters: dict[str, str | None], owners: dict[str, str], topics: set[str]) -> Scope:
    """The one counters' scope a staff member's request reads: their own scope, narrowed by at most one filter.
    `owners`: field -> its owning authority; `topics`: the year's topic codes (and `other`)."""
    principal.require_staff()
    given = {k: v for k, v in filters.items() if v is not None and v != ""}
    if len(given) > 1:
        raise _combination()
    name, value = next(iter(given.items())) if given else (None, None)
    if name == "region" and value not in CODES:
        raise InvalidInput(f"{value} is not a GB/T 2260 code of Fujian", rule="region-unknown", field="region")
    if name == "field" and value not in owners:
        raise InvalidInput(f"no field {value}", rule="field-unknown", field="field")
    if name == "authority" and value not in set(owners.values()):
        raise InvalidInput(f"no authority {value} owning a field", rule="authority-unknown", field="authority")
    if name == "topic" and value not in topics:
        raise InvalidInput(f"no topic {value} in the year's plan", rule="topic-unknown", field="topic")
    if name == "base":
        try:
            value = str(uuid.UUID(value))
        except ValueError:
            raise InvalidInput("base must be a base's id (a UUID)", rule="validation", field="base") from None
    role = principal.role
    if role in ("province_admin", "auditor"):
        if name is None:
            return Scope("", "province", None)
        if name == "region":
            assert value is not None
            if value == PROVINCE:
                return Scope("", "province", None)
            return Scope(f"c:{value}", "city", value) if value in REGIONS else Scope(f"n:{value}", "county", value)
        prefix = {"authority": "a", "field": "f", "topic": "t", "base": "b"}[name]
        return Scope(f"{prefix}:{value}", name, value)
    if role == "city_admin" and principal.region:
        mine = principal.region
        if name is None or (name == "region" and value == mine):
            return Scope(f"c:{mine}", "city", mine)
        if name == "region":
            assert value is not None
            if not within(value, mine):
                raise Forbidden(f"{value} is not in your region {mine}", rule="out-of-scope")
            return Scope(f"n:{value}", "county", value)
        raise _combination()
    if role == "authority_reviewer" and principal.authority:
        mine = principal.authority
        if name is None or (name == "authority" and value == mine):
            return Scope(f"a:{mine}", "authority", mine)
        if name == "field":
            assert value is not None
            if owners.get(value) != mine:
                raise Forbidden(f"field {value} is not one of your authority's", rule="out-of-scope")
            return Scope(f"f:{value}", "field", value)
        if name == "authority":
            raise Forbidden(f"authority {value} is not yours", rule="out-of-scope")
        raise _combination()
    raise Forbidden("your role has no statistics scope", rule="role-not-allowed")


def dimension(group_by: str, level: str | None, scope: Scope) -> str:
    if group_by != "region":
        return group_by
    if level is None:  # the next level down from the scope
        level = "county" if scope.kind in ("city", "county") else "city"
    return level


# ---- reading ----------------------------------------------------------------------------------------

@dataclass(slots=True)
class Names:
    """What people read beside the codes."""

    bases: dict[str, str]
    fields: dict[str, str]
    authorities: dict[str, str]
    topics: dict[str, str]
    owners: dict[str, str]
    required_hours: int | None

    def of(self, dim: str, value: str) -> str | None:
        match dim:
            case "city" | "county":
                return CODES.get(value)
            case "base":
                return self.bases.get(value)
            case "field":
                return self.fields.get(value)
            case "authority":
                return self.authorities.get(value)
            case "topic":
                return self.topics.get(value, "其它主题" if value == "other" else None)
            case "week":
                year, week = value.split("-W")
                return dt.date.fromisocalendar(int(year), int(week), 1).isoformat()
        return None


async def names(conn: asyncpg.Connection, year: int) -> Names:
    fields = await conn.fetch("SELECT code, name, authority FROM catalog.published_fields")
    plan = await conn.fetchrow("SELECT required_hours FROM catalog.published_plans WHERE year = $1", year)
    return Names(
        bases={str(r["id"]): r["unit_name"] for r in await conn.fetch("SELECT id, unit_name FROM catalog.published_bases")},
        fields={r["code"]: r["name"] for r in fields},
        authorities=_pairs(await conn.fetch("SELECT code, name FROM catalog.published_authorities")),
        topics=_pairs(await conn.fetch("SELECT code, title FROM catalog.published_topics WHERE year = $1", year)),
        owners={r["code"]: r["authority"] for r in fields},
        required_hours=plan["required_hours"] if plan else None)


def _measures(row: Any) -> dict[str, int]:
    return {m: int(row[m]) for m in MEASURES}


async def read(conn: asyncpg.Connection, year: int, scope: Scope, dim: str, labels: Names) -> dict[str, Any]:
    """The groups of one dimension in one scope, and the scope's total, from the counters."""
    rows = await conn.fetch(
        f"SELECT dim, value, {', '.join(MEASURES)} FROM hours_ledger.statistics_groups "
        "WHERE year = $1 AND scope = $2 AND (dim = $3 OR dim = '') AND (people > 0 OR records > 0)",
        year, scope.key, dim)
    cut_rows = await conn.fetch(
        "SELECT dim, value, rule, records, minutes FROM hours_ledger.statistics_cuts "
        "WHERE year = $1 AND scope = $2 AND (dim = $3 OR dim = '') AND records > 0", year, scope.key, dim)
    cuts: dict[tuple[str, str], dict[str, dict[str, int]]] = defaultdict(dict)
    for c in cut_rows:
        cuts[(c["dim"], c["value"])][c["rule"]] = {"records": int(c["records"]), "minutes": int(c["minutes"])}
    empty = dict.fromkeys(MEASURES, 0)
    total: dict[str, Any] = {**empty, "cuts": cuts.get(("", ""), {})}
    groups = []
    units: dict[str, str] = {}
    if dim == "unit":
        units = _pairs(await conn.fetch("SELECT uscc, name FROM hours_ledger.statistics_units WHERE uscc = ANY($1)",
                                      [r["value"] for r in rows if r["dim"] == "unit"]))
    for r in rows:
        if r["dim"] == "":
            total = {**_measures(r), "cuts": cuts.get(("", ""), {})}
            continue
        name = units.get(r["value"]) if dim == "unit" else labels.of(dim, r["value"])
        groups.append({"key": r["value"], "name": name, **_measures(r), "cuts": cuts.get((dim, r["value"]), {})})
    if dim in ("week", "city", "county"):
        groups.sort(key=lambda g: g["key"])
    else:
        groups.sort(key=lambda g: (-g["people"], -g["credited_hours"], g["key"]))
    return {"total": total, "groups": groups}


async def folded_through(conn: asyncpg.Connection) -> dt.datetime | None:
    value: dt.datetime | None = await conn.fetchval(
        "SELECT folded_through FROM hours_ledger.statistics_state WHERE id = 1")
    return value


def quality(groups: Sequence[dict[str, Any]], province_groups: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each base's share of its reported minutes cut by each quality rule, beside the province's median share."""

    def shares(g: dict[str, Any]) -> dict[str, float]:
        reported = g["reported_minutes"]
        return {rule: (g["cuts"].get(rule, {}).get("minutes", 0) / reported if reported else 0.0)
                for rule in QUALITY_RULES}

    every = [shares(g) for g in province_groups if g["reported_minutes"] > 0]
    medians: dict[str, float | None] = {rule: median([s[rule] for s in every]) for rule in QUALITY_RULES}
    bases = []
    for g in groups:
        s = shares(g)
        bases.append({"base_id": g["key"], "name": g["name"], "records": g["records"],
                      "reported_minutes": g["reported_minutes"], "counted_minutes": g["counted_minutes"],
                      "rules": {rule: {"minutes": g["cuts"].get(rule, {}).get("minutes", 0),
                                       "records": g["cuts"].get(rule, {}).get("records", 0),
                                       "share": round(s[rule], 6),
                                       "province_median": _rounded(medians[rule])}
                                for rule in QUALITY_RULES}})
    return {"rules": list(QUALITY_RULES), "province_bases": len(every), "bases": bases}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


__all__ = ["DIMENSIONS", "FILTERS", "GROUP_BY", "REQUEST_ROUNDS", "Folder", "Names", "Scope", "catch_up", "changes",
           "dimension", "fold", "folded_through", "names", "quality", "raw", "read", "is_busy", "scope_of", "should_fold"]
