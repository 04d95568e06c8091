"""What the sync and the async client share: the retry policy, and turning answers into models or errors."""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from .errors import ProblemError, TransportError, problem_error
from .models import BatchItem, RecordIn

M = TypeVar("M", bound=BaseModel)

# The most records POST /v1/records/batch takes (BatchIn.records' maxItems in the ledger's OpenAPI document).
MAX_BATCH = 1000
# Answers worth another try: the ledger (or a proxy before it) says so, with Retry-After when it knows when.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Failures of the exchange itself. Every call of this client may be repeated: a push is idempotent by its
# external_id (a record the ledger wrote before the answer was lost answers its first result again).
RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all. Between tries the client waits what `Retry-After` says (plus a little jitter,
    so that many clients told the same do not come back at the same instant), or else a full-jitter exponential
    backoff: a random time up to `base` × 2^try, at most `cap` seconds. A `Retry-After` longer than `cap` is not
    waited for: the error is raised with it (`RateLimited.retry_after`)."""

    attempts: int = 6
    base: float = 0.2
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before try `attempt + 1` (0-based `attempt` just failed), or None: give up."""
        if attempt + 1 >= self.attempts:
            return None
        if retry_after is not None:
            if retry_after > self.cap:
                return None
            return retry_after + self.rng.uniform(0, self.base)
        return self.rng.uniform(0, min(self.cap, self.base * 2 ** attempt))


NO_RETRIES = RetryPolicy(attempts=1)


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (a number, or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def error_of(response: httpx.Response) -> ProblemError:
    try:
        problem = response.json()
        if not isinstance(problem, dict):
            raise ValueError
    except ValueError:
        problem = {"type": "about:blank", "title": response.reason_phrase, "status": response.status_code,
                   "detail": response.text[:500]}
    return problem_error(response.status_code, problem, retry_after(response))


def model(response: httpx.Response, kind: type[M]) -> M:
    if response.is_success:
        return kind.model_validate_json(response.content)
    raise error_of(response)


def record_json(record: RecordIn | Mapping[str, Any]) -> dict[str, Any]:
    """A record as sent: a model is dumped as JSON; a mapping is sent as given (the ledger names what is wrong)."""
    if isinstance(record, RecordIn):
        return record.model_dump(mode="json", exclude_none=True)
    return dict(record)


def batch_items(response: httpx.Response) -> list[BatchItem]:
    if not response.is_success:
        raise error_of(response)
    return [BatchItem.model_validate(item) for item in response.json()["results"]]


def retry_item(item: BatchItem) -> bool:
    """A batch item worth sending again: the ledger was busy for it (nothing of it was written)."""
    return item.status in RETRY_STATUSES


def item_retry_after(item: BatchItem) -> float | None:
    value = (item.problem or {}).get("retry_after")
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def wait_for(policy: RetryPolicy, attempt: int, method: str, path: str, outcome: httpx.Response | Exception
             ) -> float | None:
    """How long to wait before trying a call again, or None: the answer stands (a response) or the error is
    raised (TransportError). `attempt` (0-based) just ended with `outcome`."""
    if isinstance(outcome, Exception):
        wait = policy.delay(attempt, None)
        if wait is None:
            raise TransportError(f"{method} {path}: {type(outcome).__name__}: {outcome}") from outcome
        return wait
    if outcome.status_code not in RETRY_STATUSES:
        return None
    return policy.delay(attempt, retry_after(outcome))


def push_many(records: Sequence[RecordIn | Mapping[str, Any]], batch_size: int, policy: RetryPolicy
              ) -> Generator[dict[str, Any] | float, httpx.Response | None, list[BatchItem]]:
    """What `push_many` does, for both clients: it yields a batch's body to POST (and is sent the response) or
    seconds to wait, and returns each record's answer, in order. Records the ledger was busy for (503 within a
    batch) go again in a batch of their own, after a backoff."""
    bodies = [record_json(r) for r in records]
    size = max(1, min(batch_size, MAX_BATCH))
    answers: list[BatchItem | None] = [None] * len(bodies)
    for start in range(0, len(bodies), size):
        pending, attempt = list(range(start, min(start + size, len(bodies)))), 0
        while pending:
            response = yield {"records": [bodies[i] for i in pending]}
            assert response is not None
            again: list[int] = []
            told: list[float] = []
            for i, item in zip(pending, batch_items(response), strict=True):
                answers[i] = item.model_copy(update={"index": i})
                if retry_item(item):
                    again.append(i)
                    after = item_retry_after(item)
                    if after is not None:
                        told.append(after)
            wait = policy.delay(attempt, max(told) if told else None) if again else None
            if wait is None:
                break
            yield wait
            pending, attempt = again, attempt + 1
    return answers  # type: ignore[return-value]
