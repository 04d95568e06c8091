"""Work from concurrent requests, done together: the discipline of the single pushes' group commit
(groupcommit.py), for any kind of item. Whenever fewer than `flushes` groups are being handled, the items waiting
longest (up to `size`) go together; while a group is in hand another starts only for at least `floor` waiting
items. Nothing waits for a group to fill (under light load an item goes alone), and a request is answered only
once its group is done."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Handles a group: each item's result, or the exception its request raises.
Handle = Callable[[list[T]], Awaitable[list[R | BaseException]]]


class Groups(Generic[T, R]):
    def __init__(self, handle: Handle[T, R], *, size: int, flushes: int, floor: int) -> None:
        self.handle, self.size, self.flushes, self.floor = handle, size, flushes, min(floor, size)
        self._waiting: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._handling = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._start()
        # A request cancelled meanwhile leaves its group alone (the group is another task).
        return await future

    def _start(self) -> None:
        while self._handling < self.flushes and self._waiting:
            if self._handling and len(self._waiting) < self.floor:
                return  # the group in hand takes them when it is done
            group = [self._waiting.popleft() for _ in range(min(self.size, len(self._waiting)))]
            self._handling += 1
            task = asyncio.get_running_loop().create_task(self._run(group))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, group: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self.handle([item for item, _ in group])
            for (_, future), result in zip(group, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        except Exception as exc:  # every request of the group gets the failure (the database is unreachable …)
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:
            for _, future in group:
                future.cancel()
            raise
        finally:
            self._handling -= 1
            self._start()
