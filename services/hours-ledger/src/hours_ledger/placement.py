"""On Citus: which node holds a person's rows, computed in the process instead of asked of the coordinator.

Citus places a row of a table distributed by a bigint column by that value's PostgreSQL hash (`hashint8`, 32 bits)
into the shard whose hash range holds it. `hash_int8` is that function (PostgreSQL's src/common/hashfn.c: the final
mix of Bob Jenkins' lookup3 over one 32-bit word, the two halves of the value folded first), and `Placements` the
people's shard ranges and the node group of each, read from the coordinator's metadata and kept for `TTL` seconds.

Measured on the cluster: the catalog query this replaces (`get_shard_id_for_distribution_column` and
`pg_dist_placement`, once a set) took 21-78 ms of the coordinator's time a set under load. A map that is out of date
(a shard moved within the last `TTL` seconds) costs hops, not correctness: the worker calls then read and lock that
person through the distributed tables, which Citus sends to wherever the shard is now (test_worker_calls.py).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable

import asyncpg

MASK = 0xFFFFFFFF
TTL = 30.0


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & MASK


def hash_uint32(k: int) -> int:
    """PostgreSQL's `hash_bytes_uint32`: lookup3's final mix of one word, unsigned."""
    a = b = c = (0x9E3779B9 + 4 + 3923095) & MASK
    a = (a + k) & MASK
    c ^= b
    c = (c - _rot(b, 14)) & MASK
    a ^= c
    a = (a - _rot(c, 11)) & MASK
    b ^= a
    b = (b - _rot(a, 25)) & MASK
    c ^= b
    c = (c - _rot(b, 16)) & MASK
    a ^= c
    a = (a - _rot(c, 4)) & MASK
    b ^= a
    b = (b - _rot(a, 14)) & MASK
    c ^= b
    c = (c - _rot(b, 24)) & MASK
    return c


def hash_int8(value: int) -> int:
    """PostgreSQL's `hashint8(value)`, as the signed 32-bit integer Citus compares with its shards' ranges."""
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{value} is not a bigint")
    lo, hi = value & MASK, (value >> 32) & MASK
    lo ^= hi if value >= 0 else (~hi & MASK)
    h = hash_uint32(lo)
    return h - 2**32 if h >= 2**31 else h


_PLACEMENTS = """
    SELECT s.shardminvalue::int AS lo, pl.groupid FROM pg_dist_shard s
    JOIN pg_dist_placement pl ON pl.shardid = s.shardid
    WHERE s.logicalrelid = 'hours_ledger.people'::regclass
    ORDER BY 1"""


class Placements:
    """The people's shards' hash ranges (each range's lower bound, ascending) and the node group holding each."""

    def __init__(self, lows: list[int], groups: list[int], loaded: float) -> None:
        self.lows, self.groups, self.loaded = lows, groups, loaded

    @classmethod
    async def read(cls, conn: asyncpg.Connection) -> Placements:
        rows = await conn.fetch(_PLACEMENTS)
        return cls([r["lo"] for r in rows], [r["groupid"] for r in rows], time.monotonic())

    def group_of(self, person_id: int) -> int:
        """The node group that holds `person_id`'s rows (-1 when no shard's range holds its hash)."""
        i = bisect.bisect_right(self.lows, hash_int8(person_id)) - 1
        return self.groups[i] if i >= 0 else -1

    def groups_of(self, person_ids: Iterable[int]) -> dict[int, int]:
        return {p: self.group_of(p) for p in person_ids}


_cache: dict[str, Placements] = {}


async def placements(conn: asyncpg.Connection, name: str) -> Placements:
    """The placements of the database `name` (its URL without password), read again after `TTL` seconds."""
    held = _cache.get(name)
    if held is None or time.monotonic() - held.loaded > TTL:
        held = _cache[name] = await Placements.read(conn)
    return held
