"""The hash chain of a person's ledger entries."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import orjson

__all__ = ["entry_hash"]


def entry_hash(prev: bytes, *, person_id: int, seq: int, record_id: uuid.UUID | None, kind: str, hours: int,
               seconds: int, actor_id: uuid.UUID, reason: str | None, recorded_at: dt.datetime,
               facts: dict[str, Any] | None = None) -> bytes:
    """The entry's link in the person's chain. `facts` (domain/facts.py) are covered when the entry has them; an
    entry written before they existed hashes as it always did."""
    content: dict[str, Any] = {
        "person": person_id, "seq": seq, "record": str(record_id), "kind": kind, "hours": hours,
        "seconds": seconds, "actor": str(actor_id), "reason": reason,
        "at": recorded_at.astimezone(dt.UTC).isoformat(),
    }
    if facts is not None:
        content["facts"] = facts
    return hashlib.sha256(prev + orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).digest()

