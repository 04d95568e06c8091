"""Where each table goes on a Citus (distributed PostgreSQL) cluster, and the check that the schema allows it.

Three placements (deploy/scale-out.md explains the choices):

- **distributed** by a column: rows are spread over the workers by the hash of that column. Tables of one
  colocation group keep the rows of one key on one worker: everything a push reads and writes about a
  person (the person row and its lock, records, sittings, allocations, day totals, entries, seminar rosters)
  is in the `person` group, so a push is a single-worker transaction. The two lookups that are not by
  person are distributed by what they look up: `person_keys` by the ID number's keyed hash, `external_ids` (which
  person a base's external id names) by the base. Both are read and written before the person's transaction, in
  statements of their own, so that the transaction touches one person's rows on one worker.
- **reference**: a full copy on every worker (the catalog, principals and tokens): small, read by every
  request, joined with distributed tables locally.
- **coordinator**: stays on the coordinator (Citus adds it to its metadata as a local table): the audit
  trail (staff actions), the verification service's tables (one proof per person and year, status lists
  that need one global counter), alembic's version tables.

Two functions are distributed too (DISTRIBUTED_FUNCTIONS): the intake's calls that read and write a worker's people
of a set, run by Citus on the worker that holds their first argument's shard.

`placement_problems` reads the database catalog and lists everything Citus would refuse; `citus_sql`
writes the statements that distribute a database that passes, and `apply_citus` runs them on a coordinator
(`xueshi db citus --apply`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

SCHEMAS = ("iam", "catalog", "hours_ledger", "verification")
_CITUS = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"


@dataclass(frozen=True)
class Placement:
    kind: Literal["distributed", "reference", "coordinator"]
    column: str | None = None
    group: str | None = None  # colocation group: tables of one group keep one key's rows on one worker


def _person(column: str = "person_id") -> Placement:
    return Placement("distributed", column, "person")


REFERENCE = Placement("reference")
COORDINATOR = Placement("coordinator")

PLACEMENTS: dict[str, Placement] = {
    # the ledger: per person
    "hours_ledger.people": _person("id"),
    "hours_ledger.records": _person(),
    "hours_ledger.sittings": _person(),
    "hours_ledger.allocations": _person(),
    "hours_ledger.person_days": _person(),
    "hours_ledger.entries": _person(),
    "hours_ledger.seminar_trainees": _person(),
    "hours_ledger.name_changes": _person(),
    # the statistics: the queue is written with each record (the person's); the counters are read per request
    "hours_ledger.statistics_queue": _person(),
    "hours_ledger.statistics_groups": COORDINATOR,
    "hours_ledger.statistics_cuts": COORDINATOR,
    "hours_ledger.statistics_units": COORDINATOR,
    "hours_ledger.statistics_state": COORDINATOR,
    # the ledger: lookups by something else than the person
    "hours_ledger.record_keys": _person(),
    "hours_ledger.person_keys": Placement("distributed", "id_hash", "id-hash"),
    "hours_ledger.external_ids": Placement("distributed", "base_id", "base"),
    # a base's roster uploads and their rows' answers: read and written by that base alone
    "hours_ledger.rosters": Placement("distributed", "base_id", "base"),
    "hours_ledger.roster_rows": Placement("distributed", "base_id", "base"),
    # a base's xAPI statements (its LRS): written and read by that base
    "hours_ledger.xapi_statements": Placement("distributed", "base_id", "base"),
    "hours_ledger.xapi_documents": Placement("distributed", "base_id", "base"),
    "hours_ledger.xapi_attachments": Placement("distributed", "base_id", "base"),
    "hours_ledger.xapi_registrations": Placement("distributed", "base_id", "base"),
    # the catalog: reference data of every request
    **{f"catalog.{t}": REFERENCE for t in (
        "plans", "topics", "authorities", "fields", "delegations", "bases", "base_decisions", "courses",
        "course_activities", "course_reviews",
        "seminar_plans", "seminars", "seminar_changes", "seminar_materials", "survey_responses")},
    "iam.principals": REFERENCE,
    "iam.tokens": REFERENCE,
    "iam.audit_events": COORDINATOR,
    **{f"verification.{t}": COORDINATOR for t in ("certificate_authority", "stamps", "status_lists", "proofs",
                                                            "holder_checks", "sweeps")},
    **{f"{s}.alembic_version": COORDINATOR for s in SCHEMAS},
}

_TABLES = """
SELECT n.nspname || '.' || c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p') AND NOT c.relispartition"""

# Constraints declared on the tables themselves (not the copies PostgreSQL makes for partitions), with
# their columns by name, in key order.
_CONSTRAINTS = """
SELECT n.nspname || '.' || c.relname AS tbl, k.conname::text, k.contype::text,
       ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(attnum, i)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.i) AS cols,
       fn.nspname || '.' || fc.relname AS ref,
       ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(attnum, i)
             JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum ORDER BY u.i) AS ref_cols
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class fc ON fc.oid = k.confrelid LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE n.nspname = ANY(:schemas) AND k.contype IN ('p', 'u', 'x', 'f') AND k.conparentid = 0
  AND NOT c.relispartition
ORDER BY 1, 2"""

_COLUMN_TYPES = """
SELECT n.nspname || '.' || c.relname AS tbl, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type,
       a.attidentity <> '' AS identity
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(:schemas) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped"""


@dataclass(frozen=True)
class _Catalog:
    tables: set[str]
    constraints: list[Any]
    types: dict[tuple[str, str], tuple[str, bool]]


async def _read(conn: AsyncConnection) -> _Catalog:
    params = {"schemas": list(SCHEMAS)}
    if await conn.scalar(sa.text(_CITUS)):  # the coordinator's own shards (of reference and local tables) left out
        await conn.execute(sa.text("SET LOCAL citus.override_table_visibility = on"))
    tables = set((await conn.execute(sa.text(_TABLES), params)).scalars())
    constraints = list((await conn.execute(sa.text(_CONSTRAINTS), params)).mappings())
    types = {(r.tbl, r.col): (r.type, r.identity) for r in (await conn.execute(sa.text(_COLUMN_TYPES), params))}
    return _Catalog(tables, constraints, types)


async def placement_problems(conn: AsyncConnection) -> list[str]:
    """Everything in the live schema that would stop `citus_sql` from distributing it; [] when ready."""
    return _problems(await _read(conn))


def _problems(catalog: _Catalog) -> list[str]:
    tables, constraints, types = catalog.tables, catalog.constraints, catalog.types
    problems = [f"{t}: no placement (add it to PLACEMENTS)" for t in sorted(tables - PLACEMENTS.keys())]
    problems += [f"{t}: placed but not in the database" for t in sorted(PLACEMENTS.keys() - tables)]

    group_types: dict[str, set[str]] = defaultdict(set)
    for table, place in PLACEMENTS.items():
        if table not in tables or place.kind != "distributed":
            continue
        column_type = types.get((table, place.column))
        if column_type is None:
            problems.append(f"{table}: no distribution column {place.column!r}")
            continue
        group_types[place.group or table].add(column_type[0])
        for (tbl, col), (type_, identity) in types.items():
            if tbl == table and identity and type_ != "bigint":
                problems.append(f"{table}.{col}: identity columns of distributed tables must be bigint")
    problems += [f"colocation group {g!r}: distribution columns of different types {sorted(t)}"
                 for g, t in group_types.items() if len(t) > 1]

    for k in constraints:
        place = PLACEMENTS.get(k.tbl)
        if place is None:
            continue
        if k.contype in ("p", "u", "x"):
            if place.kind == "distributed" and place.column not in k.cols:
                problems.append(f"{k.tbl}: {k.conname} ({', '.join(k.cols)}) does not include the distribution "
                                f"column {place.column}")
            continue
        target = PLACEMENTS.get(k.ref)
        if target is None:
            continue
        if target.kind == "reference":
            continue  # anything may refer to a reference table
        if place.kind != target.kind:
            problems.append(f"{k.tbl}: {k.conname} refers from a {place.kind} table to a {target.kind} "
                            f"table ({k.ref})")
            continue
        if place.kind == "coordinator":
            continue
        if place.group != target.group:
            problems.append(f"{k.tbl}: {k.conname} refers to {k.ref}, which is not in its colocation group")
        elif place.column not in k.cols or target.column not in k.ref_cols or \
                k.cols.index(place.column) != k.ref_cols.index(target.column):
            problems.append(f"{k.tbl}: {k.conname} does not pair the distribution columns "
                            f"({place.column} with {target.column})")
    return problems


def _dependency_order(catalog: _Catalog) -> list[str]:
    """Placed tables, each after the tables it refers to (Citus needs a referenced table placed first)."""
    refs: dict[str, set[str]] = {t: set() for t in PLACEMENTS}
    for k in catalog.constraints:
        if k.contype == "f" and k.tbl in refs and k.ref in refs and k.ref != k.tbl:
            refs[k.tbl].add(k.ref)
    order: list[str] = []
    while refs:
        ready = sorted(t for t, needs in refs.items() if not needs - set(order))
        if not ready:
            raise ValueError(f"foreign keys form a cycle among {sorted(refs)}")
        order += ready
        for t in ready:
            del refs[t]
    return order


# Citus refuses to distribute a table that has triggers unless told they are safe: a trigger on a distributed
# table runs on each shard, on the worker, and Citus cannot know whether it reaches other shards. The ledger's one
# trigger, `entries_append_only`, only raises (it reads and writes nothing), so it is safe on every shard: Citus
# copies it to each shard of `entries` (and to each shard a rebalance or split makes), where it refuses every UPDATE
# and DELETE, whether sent through the coordinator or straight to a worker.
UNSAFE_TRIGGERS = "SET LOCAL citus.enable_unsafe_triggers = on;"

_PLACED = "SELECT logicalrelid::regclass::text FROM pg_dist_partition"

# Functions Citus runs on the worker that holds the shard of their first argument, a person id (colocated with
# `people`): the intake's two calls for a worker's people of a set (intake.py `_apply_on_worker`, migration
# hours_ledger_0014). Their statements then run on that worker, as one local transaction.
DISTRIBUTED_FUNCTIONS: dict[str, str] = {
    "hours_ledger.read_people": "p",
    "hours_ledger.write_people": "p",
}
FUNCTIONS_WITH = "hours_ledger.people"
_FUNCTIONS_PLACED = """
    SELECT o.objid::regproc::text FROM pg_dist_object o
    WHERE o.classid = 'pg_proc'::regclass AND o.distribution_argument_index IS NOT NULL"""
_FUNCTION_EXISTS = "SELECT to_regproc(:name) IS NOT NULL"


async def _placed(conn: AsyncConnection) -> set[str]:
    """Tables Citus already holds in its metadata (none without the extension)."""
    if not await conn.scalar(sa.text(_CITUS)):
        return set()
    return set((await conn.execute(sa.text(_PLACED))).scalars()) | set(
        (await conn.execute(sa.text(_FUNCTIONS_PLACED))).scalars())


async def citus_sql(conn: AsyncConnection) -> str:
    """The statements that place every table of a database that passes `placement_problems` (those Citus does not
    hold yet: run again after a migration added a table, it places only the new ones)."""
    catalog = await _read(conn)
    problems = _problems(catalog)
    for function in DISTRIBUTED_FUNCTIONS:
        if not await conn.scalar(sa.text(_FUNCTION_EXISTS), {"name": function}):
            problems.append(f"{function}: the function is missing (xueshi db upgrade creates it)")
    if problems:
        raise ValueError("the schema is not ready for Citus:\n" + "\n".join(problems))
    placed = await _placed(conn)
    lines = ["-- Run on the Citus coordinator after `xueshi db upgrade` (generated by `xueshi db citus`), e.g. with",
             "-- psql -v ON_ERROR_STOP=1; or let `xueshi db citus --apply` run it.",
             "BEGIN;", UNSAFE_TRIGGERS]
    first_of_group: dict[str, str] = {}
    for table in _dependency_order(catalog):
        place = PLACEMENTS[table]
        if place.kind == "distributed":
            assert place.group is not None
            colocate = first_of_group.setdefault(place.group, table)
        if table in placed:
            continue
        if place.kind == "reference":
            lines.append(f"SELECT create_reference_table('{table}');")
        elif place.kind == "coordinator":
            lines.append(f"SELECT citus_add_local_table_to_metadata('{table}');")
        else:
            with_ = "none" if colocate == table else colocate
            lines.append(f"SELECT create_distributed_table('{table}', '{place.column}', colocate_with => '{with_}');")
    for function, argument in DISTRIBUTED_FUNCTIONS.items():
        if function not in placed:
            lines.append(f"SELECT create_distributed_function('{function}'::regproc, '{argument}', "
                         f"colocate_with => '{FUNCTIONS_WITH}');")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


class NotACluster(ValueError):
    """The database is not a Citus coordinator ready to place tables (the message says what is missing)."""


_NODES = """
    SELECT groupid = 0 AS coordinator, nodename, nodeport, isactive FROM pg_dist_node WHERE noderole = 'primary'"""


async def check_cluster(conn: AsyncConnection) -> list[tuple[str, int]]:
    """The active workers of the Citus coordinator `conn` is connected to; NotACluster when it is not one: the citus
    extension missing from this database, the coordinator not in its own metadata (local tables need it), or no
    active worker."""
    if not await conn.scalar(sa.text(_CITUS)):
        raise NotACluster("the citus extension is not installed in this database: CREATE EXTENSION citus on the "
                          "coordinator and on every worker (shared_preload_libraries = 'citus' on each)")
    nodes = list((await conn.execute(sa.text(_NODES))).mappings())
    if not any(n["coordinator"] for n in nodes):
        raise NotACluster("the coordinator is not in Citus's metadata: SELECT citus_set_coordinator_host('<host>', "
                          "<port>) on it")
    workers = [(n["nodename"], n["nodeport"]) for n in nodes if not n["coordinator"] and n["isactive"]]
    if not workers:
        raise NotACluster("the cluster has no active worker: SELECT citus_add_node('<host>', <port>) for each")
    return workers


async def apply_citus(conn: AsyncConnection, shard_count: int | None = None) -> list[str]:
    """Place every table not yet placed, in one transaction on `conn` (a coordinator's, outside a transaction):
    all or nothing, and the first statement Citus refuses raises. Returns the tables (and DISTRIBUTED_FUNCTIONS) it
    placed. `shard_count`: the shards of each distributed table (Citus's `citus.shard_count`, 32 unless set)."""
    if conn.in_transaction():
        await conn.commit()
    async with conn.begin():
        await check_cluster(conn)
        statements = [line for line in (await citus_sql(conn)).splitlines() if line.startswith("SELECT")]
        await conn.execute(sa.text(UNSAFE_TRIGGERS.rstrip(";")))
        if shard_count is not None:
            await conn.execute(sa.text(f"SET LOCAL citus.shard_count = {int(shard_count)}"))
        for statement in statements:
            await conn.execute(sa.text(statement.rstrip(";")))
    return [line.split("'")[1] for line in statements]
