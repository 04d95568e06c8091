"""A load generator that behaves like training bases: realistic study records pushed over HTTP.

People study on several days at several bases; sittings overlap now and then, some days hit the limit,
a few identity checks fail and a few exams are failed. Used by `xueshi loadgen` (against any deployment)
and by the benchmark.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from stdnum.cn import ric as std_ric
from stdnum.cn import uscc as std_uscc

__all__ = ["BaseKey", "LoadResult", "make_records", "push_records"]

TZ = dt.timezone(dt.timedelta(hours=8))


def ric(n: int) -> str:
    body = f"350102{1985 + n % 15}{1 + n % 12:02d}{1 + n % 28:02d}{1 + n % 998:03d}"
    return body + std_ric.calc_check_digit(body + "0")


def uscc(n: int) -> str:
    body = f"91350100M{n:08d}"
    return body + std_uscc.calc_check_digit(body)


@dataclass(frozen=True)
class BaseKey:
    key: str
    courses: tuple[str, ...]


def make_records(bases: list[BaseKey], n: int, people: int, rng: random.Random, tag: str,
                 first_day: dt.date = dt.date(2026, 6, 1), days: int = 20) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for i in range(n):
        base = rng.choice(bases)
        person = rng.randrange(people)
        day = dt.datetime.combine(first_day + dt.timedelta(days=rng.randrange(days)), dt.time(), TZ)
        start = day + dt.timedelta(minutes=rng.randrange(7 * 60, 21 * 60))
        minutes = rng.randrange(20, 240)
        end = start + dt.timedelta(minutes=minutes)
        out.append((base.key, {
            "external_id": f"{tag}-{i}", "course_id": rng.choice(base.courses), "id_type": "RIC",
            "id_number": ric(person), "name": f"学员{person}",
            "unit": {"name": "福州市第一医院", "uscc": uscc(person % 50), "region": "350102"},
            "sittings": [{"started_at": start.isoformat(), "ended_at": end.isoformat(),
                          "media_seconds": int(minutes * 60 * rng.choice((1, 1, 1, 0.8))),
                          "identity_checks": {"passed": 1 if rng.random() > 0.02 else 0, "failed": 0}}],
            "exam": {"questions": 10, "correct": 9, "passed": rng.random() > 0.03},
        }))
    return out


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, int(len(ordered) * p) - 1)] if ordered else 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else 0.0


async def push_records(base_url: str, records: list[tuple[str, dict[str, Any]]], concurrency: int = 32,
                       on_done: Callable[[int], None] | None = None) -> LoadResult:
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    for r in records:
        queue.put_nowait(r)
    result = LoadResult(0.0)

    url = base_url.rstrip("/") + "/v1/records"

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            key, body = queue.get_nowait()
            t = time.perf_counter()
            try:
                async with session.post(url, data=orjson.dumps(body), headers={
                        "Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as r:
                    await r.read()
                    result.statuses[r.status] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.statuses[type(exc).__name__] += 1
            result.latencies.append(time.perf_counter() - t)
            if on_done:
                on_done(1)

    # One connection per client (keep-alive), as 32 training-base platforms would hold.
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result
