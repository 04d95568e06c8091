"""The process's person -> node map (hours_ledger.placement) agrees with PostgreSQL's hash and with Citus's own
catalog."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from hours_ledger.placement import Placements, hash_int8
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xueshi_shared.database import libpq_url

from tests.support.db import on_citus

BIGINTS = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(values=st.lists(BIGINTS, min_size=1, max_size=200))
def test_hash_int8_agrees_with_the_database(database_url, values):
    async def theirs() -> list[int]:
        conn = await asyncpg.connect(libpq_url(database_url))
        try:
            return [r[0] for r in await conn.fetch("SELECT hashint8(v) FROM unnest($1::bigint[]) AS u(v)", values)]
        finally:
            await conn.close()

    assert [hash_int8(v) for v in values] == asyncio.run(theirs())


async def test_the_map_names_the_node_citus_placed_each_person_on(engine):
    if not await on_citus(engine):
        pytest.skip("placements are Citus's")
    conn = await asyncpg.connect(libpq_url(engine.url.render_as_string(hide_password=False)))
    try:
        placed = await Placements.read(conn)
        ids = list(range(1, 2001)) + [2**40 + 7, 2**62, -5]
        catalog = dict(await conn.fetch("""
            SELECT u.pid, pl.groupid FROM unnest($1::bigint[]) AS u(pid)
            JOIN pg_dist_placement pl
              ON pl.shardid = get_shard_id_for_distribution_column('hours_ledger.people', u.pid)""", ids))
    finally:
        await conn.close()
    assert len(set(catalog.values())) == 2
    assert placed.groups_of(ids) == catalog
