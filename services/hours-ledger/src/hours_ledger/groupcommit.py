"""Group commit for single pushes: concurrent pushes share the batch path's transactions.

At a deadline's peak, training bases push one record per request from many sessions at once. Taken one
by one, each record costs about eight round trips and a transaction of its own; most of a request's time
was spent there, not in the rules (profiled: see deploy/scale-out.md). So a push does not get a
transaction of its own. It joins one queue, and whenever fewer than `flushes` groups are being written,
the records waiting longest (up to `size`, from any bases) go to the database together, through the
set-based batch path, which answers each record exactly as if it had been pushed alone in that order (a
differential test holds the two paths to the same answers and the same stored ledger).

- Nothing waits for a group to fill: under light load a push is written at once, alone (on the
  single-record path); groups form only while earlier groups are being written, which is exactly when
  requests would otherwise queue for the database.
- While a group is being written, another writer starts only for at least `floor` waiting records;
  fewer wait for the next free writer. Without this, under load the second writer kept taking records
  one at a time as they arrived (measured: 511 of 738 groups held one record), each costing a whole
  transaction of the single-record path. Measured, interleaved: without a floor 893 and 958 records/s,
  floor 8: 907, floor 16: 1,028 and 1,025, floor 32: 809 (records wait too long).
- A request is answered only after its group has committed: a 2xx still means the record is durable.
- Concurrent requests have no order among themselves; a group keeps the order in which they arrived, and
  the queue is first come, first served across all bases.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from xueshi_shared.iam.principal import Principal

from . import schemas

Outcome = dict[str, Any]  # {"status": ..., "result": ...} or {"status": ..., "problem": ..., "error": Problem}
Apply = Callable[[list[Principal], list[schemas.RecordIn]], Awaitable[list[Outcome]]]


class GroupCommit:
    """One queue of pushes, written `size` records at a time by at most `flushes` writers at once."""

    def __init__(self, apply: Apply, *, size: int, flushes: int, floor: int = 16,
                 registry: CollectorRegistry | None = None) -> None:
        self.apply, self.size, self.flushes, self.floor = apply, size, flushes, min(floor, size)
        self._waiting: deque[tuple[Principal, schemas.RecordIn, asyncio.Future]] = deque()
        self._writing = 0
        self._tasks: set[asyncio.Task] = set()
        self.group_sizes = Histogram("xueshi_ledger_push_group_records", "Single pushes written together",
                                     buckets=(1, 2, 4, 8, 16, 32, 64), registry=registry)

    async def push(self, principal: Principal, record: schemas.RecordIn) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((principal, record, future))
        self._start()
        # A request cancelled while its group is being written leaves the group alone (it is another task).
        return await future

    def _start(self) -> None:
        while self._writing < self.flushes and self._waiting:
            if self._writing and len(self._waiting) < self.floor:
                return  # the writer in flight takes them when it is done
            group = [self._waiting.popleft() for _ in range(min(self.size, len(self._waiting)))]
            self._writing += 1
            task = asyncio.get_running_loop().create_task(self._write(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write(self, group: list[tuple[Principal, schemas.RecordIn, asyncio.Future]]) -> None:
        try:
            self.group_sizes.observe(len(group))
            outcomes = await self.apply([sender for sender, _, _ in group], [record for _, record, _ in group])
            for (_, _, future), outcome in zip(group, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
        except Exception as exc:  # every request of the group gets the failure (the database is unreachable …)
            for _, _, future in group:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:
            for _, _, future in group:
                future.cancel()
            raise
        finally:
            self._writing -= 1
            self._start()
