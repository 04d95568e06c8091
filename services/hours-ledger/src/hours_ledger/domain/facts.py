"""What a ledger entry vouches for: everything a transcript or a proof is computed from, as one canonical value.

A credit entry carries the `record_facts` of its record, chained into its hash: the plan year, the course and its
base, what the record counts toward (category, topic or field), the unit's region, the credited 学时 and seconds,
its sittings and allocations (the rules' state: parallel study, the day's total), and the person's registered name
at the time. A name correction appends a `rename` entry with the new name's digest. The integrity check rebuilds
the same values from the tables and compares: a change made in the database behind the service's back, anything
but what an entry says, no longer matches. Pure, stdlib only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

__all__ = ["FACTS_VERSION", "differences", "name_digest", "record_facts", "spans_digest"]

FACTS_VERSION = 1


def name_digest(name: str) -> str:
    return hashlib.sha256(("name " + name).encode()).hexdigest()[:32]


def spans_digest(spans: Iterable[tuple[Any, ...]]) -> str:
    """A digest of a set of time spans ((start, end) or (day, start, end), epoch seconds), in any order."""
    canonical = ";".join(sorted(",".join(map(str, span)) for span in spans))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def record_facts(*, year: int, course_id: Any, base_id: Any, external_id: str, category: str, topic: str | None,
                 field: str | None, unit_region: str, credited_hours: int, counted_seconds: int,
                 sittings: Iterable[tuple[int, int]], allocations: Iterable[tuple[dt.date, int, int]],
                 name: str) -> dict[str, Any]:
    return {
        "v": FACTS_VERSION, "year": year, "course": str(course_id), "base": str(base_id), "external_id": external_id,
        "category": category, "topic": topic, "field": field, "region": unit_region, "credited": credited_hours,
        "counted": counted_seconds, "sittings": spans_digest(sittings),
        "allocations": spans_digest((d.isoformat(), s, e) for d, s, e in allocations), "name": name_digest(name),
    }


def differences(vouched: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The facts an entry vouched for that the tables no longer say (the person's name is checked apart)."""
    return sorted(k for k in vouched if k not in ("v", "name") and vouched[k] != now.get(k))
