"""`Client` (sync) and `AsyncClient` (asyncio): the same calls, on httpx.

    from xueshi_client import Client

    with Client("https://ledger.example.gov.cn", key="xs_…") as ledger:
        pushed = ledger.push(record)
        print(pushed.result.credited_hours, pushed.replayed)

Every call is retried on a lost connection, a timeout, 429, 502, 503 and 504 (`RetryPolicy`), which is safe:
a push carries its `external_id`, so a record the ledger wrote before its answer was lost answers its first
result again (`Pushed.replayed`). Other answers raise at once (`errors.py`).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from . import _core
from ._core import MAX_BATCH, RETRY_ERRORS, RetryPolicy
from .models import (
    BatchItem,
    PersonCheckIn,
    PersonCheckOut,
    Pushed,
    RecordIn,
    RecordResult,
    RecordView,
    RosterAccepted,
    RosterRowOut,
    RosterView,
)

__all__ = ["AsyncClient", "Client"]

Progress = Callable[[int, int], None]  # rows done, rows in all
Record = RecordIn | Mapping[str, Any]
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
ROSTER_TIMEOUT = httpx.Timeout(30.0, connect=10.0, write=600.0, read=600.0)


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "User-Agent": "xueshi-client/0.1"}


def _file(roster: str | os.PathLike[str] | bytes, filename: str | None) -> tuple[str, bytes]:
    if isinstance(roster, bytes):
        return filename or "roster.xlsx", roster
    path = Path(roster)
    return filename or path.name, path.read_bytes()


def _pushed(response: httpx.Response) -> Pushed:
    result = _core.model(response, RecordResult)
    return Pushed(result=result, replayed=response.status_code == 200)


class Client:
    """The hours ledger for a training base or an LMS, synchronously. `key`: the base's API key."""

    def __init__(self, url: str, key: str, *, retry: RetryPolicy | None = None, timeout: httpx.Timeout | float =
                 DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None) -> None:
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=_headers(key), timeout=timeout,
                                  transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            outcome: httpx.Response | Exception
            try:
                outcome = self._http.request(method, path, **kwargs)
            except RETRY_ERRORS as exc:
                outcome = exc
            wait = _core.wait_for(self.retry, attempt, method, path, outcome)
            if wait is None:
                assert isinstance(outcome, httpx.Response)
                return outcome
            time.sleep(wait)
            attempt += 1

    # ---- records ---------------------------------------------------------------------------------

    def push(self, record: Record) -> Pushed:
        """Push one record; its result (and whether the ledger already held it). Raises the ledger's refusal."""
        return _pushed(self._send("POST", "/v1/records", json=_core.record_json(record)))

    def push_many(self, records: Sequence[Record], *, batch_size: int = MAX_BATCH) -> list[BatchItem]:
        """Push records in batches of at most `batch_size` (the ledger's limit, 1,000), in order; each gets its
        own answer (`status`, `result` or `problem`), as if pushed one by one. Records the ledger was too busy
        for (503 within a batch) are sent again, with backoff."""
        steps = _core.push_many(records, batch_size, self.retry)
        reply: httpx.Response | None = None
        try:
            while True:
                step = steps.send(reply)
                if isinstance(step, float):
                    time.sleep(step)
                    reply = None
                else:
                    reply = self._send("POST", "/v1/records/batch", json=step)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def record(self, record_id: uuid.UUID | str) -> RecordView:
        """A record's result, and whether it was reversed (when, why)."""
        return _core.model(self._send("GET", f"/v1/records/{record_id}"), RecordView)

    def check_person(self, id_type: str, id_number: str, name: str) -> PersonCheckOut:
        """Would a record for this person pass the identity rules? (never tells the registry's name)"""
        body = PersonCheckIn(id_type=id_type, id_number=id_number, name=name)
        return _core.model(self._send("POST", "/v1/people/check", json=body.model_dump()), PersonCheckOut)

    # ---- rosters ---------------------------------------------------------------------------------

    def upload_roster(self, roster: str | os.PathLike[str] | bytes, *, filename: str | None = None,
                      dry_run: bool = False, wait: bool = True, on_progress: Progress | None = None,
                      poll: float = 0.5) -> RosterView:
        """Upload a roster (a path, or the file's bytes) and, with `wait`, follow it to its end: the view with
        every row's answer. `on_progress(rows_done, rows_total)` is called as it advances."""
        name, data = _file(roster, filename)
        accepted = _core.model(self._send("POST", "/v1/rosters", params={"dry_run": str(dry_run).lower()},
                                          files={"file": (name, data)}, timeout=ROSTER_TIMEOUT), RosterAccepted)
        if not wait:
            return self.roster(accepted.id, limit=0)
        while True:
            view = self.roster(accepted.id, limit=0)
            if on_progress is not None:
                on_progress(view.rows_done, view.rows_total)
            if view.status != "processing":
                break
            time.sleep(poll)
        return view.model_copy(update={"rows": list(self.roster_rows(accepted.id))})

    def roster(self, roster_id: uuid.UUID | str, *, after_row: int = 0, limit: int = 1000,
               status: str | None = None) -> RosterView:
        """One page of a roster's rows (after spreadsheet row `after_row`), with its progress and counts."""
        params: dict[str, Any] = {"after_row": after_row, "limit": limit}
        if status is not None:
            params["status"] = status
        return _core.model(self._send("GET", f"/v1/rosters/{roster_id}", params=params), RosterView)

    def roster_rows(self, roster_id: uuid.UUID | str, *, status: str | None = None) -> Iterator[RosterRowOut]:
        """Every answered row of a roster, in sheet order (page by page)."""
        after: int | None = 0
        while after is not None:
            page = self.roster(roster_id, after_row=after, limit=10_000, status=status)
            yield from page.rows
            after = page.next_after_row

    def roster_result(self, roster_id: uuid.UUID | str) -> bytes:
        """The answered sheet (result.xlsx): the upload with each row's outcome added, ID numbers masked."""
        response = self._send("GET", f"/v1/rosters/{roster_id}/result.xlsx")
        if not response.is_success:
            raise _core.error_of(response)
        return response.content


class AsyncClient:
    """The hours ledger for a training base or an LMS, on asyncio: the calls of `Client`, awaited."""

    def __init__(self, url: str, key: str, *, retry: RetryPolicy | None = None, timeout: httpx.Timeout | float =
                 DEFAULT_TIMEOUT, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), headers=_headers(key), timeout=timeout,
                                       transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            outcome: httpx.Response | Exception
            try:
                outcome = await self._http.request(method, path, **kwargs)
            except RETRY_ERRORS as exc:
                outcome = exc
            wait = _core.wait_for(self.retry, attempt, method, path, outcome)
            if wait is None:
                assert isinstance(outcome, httpx.Response)
                return outcome
            await asyncio.sleep(wait)
            attempt += 1

    async def push(self, record: Record) -> Pushed:
        return _pushed(await self._send("POST", "/v1/records", json=_core.record_json(record)))

    async def push_many(self, records: Sequence[Record], *, batch_size: int = MAX_BATCH) -> list[BatchItem]:
        steps = _core.push_many(records, batch_size, self.retry)
        reply: httpx.Response | None = None
        try:
            while True:
                step = steps.send(reply)
                if isinstance(step, float):
                    await asyncio.sleep(step)
                    reply = None
                else:
                    reply = await self._send("POST", "/v1/records/batch", json=step)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def record(self, record_id: uuid.UUID | str) -> RecordView:
        return _core.model(await self._send("GET", f"/v1/records/{record_id}"), RecordView)

    async def check_person(self, id_type: str, id_number: str, name: str) -> PersonCheckOut:
        body = PersonCheckIn(id_type=id_type, id_number=id_number, name=name)
        return _core.model(await self._send("POST", "/v1/people/check", json=body.model_dump()), PersonCheckOut)

    async def upload_roster(self, roster: str | os.PathLike[str] | bytes, *, filename: str | None = None,
                            dry_run: bool = False, wait: bool = True, on_progress: Progress | None = None,
                            poll: float = 0.5) -> RosterView:
        name, data = _file(roster, filename)
        accepted = _core.model(await self._send("POST", "/v1/rosters", params={"dry_run": str(dry_run).lower()},
                                                files={"file": (name, data)}, timeout=ROSTER_TIMEOUT),
                               RosterAccepted)
        if not wait:
            return await self.roster(accepted.id, limit=0)
        while True:
            view = await self.roster(accepted.id, limit=0)
            if on_progress is not None:
                on_progress(view.rows_done, view.rows_total)
            if view.status != "processing":
                break
            await asyncio.sleep(poll)
        return view.model_copy(update={"rows": [row async for row in self.roster_rows(accepted.id)]})

    async def roster(self, roster_id: uuid.UUID | str, *, after_row: int = 0, limit: int = 1000,
                     status: str | None = None) -> RosterView:
        params: dict[str, Any] = {"after_row": after_row, "limit": limit}
        if status is not None:
            params["status"] = status
        return _core.model(await self._send("GET", f"/v1/rosters/{roster_id}", params=params), RosterView)

    async def roster_rows(self, roster_id: uuid.UUID | str, *, status: str | None = None,
                          ) -> AsyncIterator[RosterRowOut]:
        after: int | None = 0
        while after is not None:
            page = await self.roster(roster_id, after_row=after, limit=10_000, status=status)
            for row in page.rows:
                yield row
            after = page.next_after_row

    async def roster_result(self, roster_id: uuid.UUID | str) -> bytes:
        response = await self._send("GET", f"/v1/rosters/{roster_id}/result.xlsx")
        if not response.is_success:
            raise _core.error_of(response)
        return response.content
