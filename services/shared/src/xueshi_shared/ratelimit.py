"""Per-key rate limits: a token bucket per bearer token, in each service process.

Each key may make `per_minute` requests a minute on average, with bursts up to the same number. The
buckets live in the process (one per worker); that bounds what a leaked or misbehaving key can do to one
machine without a shared store. Behind several machines, put the same limit in the reverse proxy.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, per_minute: int, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.max_keys = max_keys
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()

    def check(self, key: bytes, now: float | None = None) -> float:
        """0 if the request may proceed, else the seconds to wait before retrying."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1 - tokens) / self.rate
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))
