"""xueshi-client (clients/python) against the real ledger over HTTP: every call, its errors, its retries, and a
retry storm that leaves each record exactly once."""

from __future__ import annotations

import asyncio
import json
import random
import time
import typing
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import xueshi_client as xc
from pydantic import BaseModel
from xueshi_client import _core
from xueshi_client.models import COMPONENTS

from tests.support.factories import at, online_sitting, record_body, ric
from tests.support.rosters import rows_of, to_xlsx

OPENAPI = json.loads((Path(__file__).resolve().parents[3] / "openapi" / "hours-ledger.json").read_text())
FAST = xc.RetryPolicy(attempts=30, base=0.01, cap=0.5)


def records(course, n: int, tag: str, first: int = 0) -> list[dict]:
    return [record_body(course, ric(first + i), [online_sitting(at("09:00"), at("14:15"))], external_id=f"{tag}-{i}")
            for i in range(n)]


# ---- the models are the ledger's ---------------------------------------------------------------------

def _literal_values(annotation) -> set | None:
    for arg in (typing.get_args(annotation) or (annotation,)):
        if typing.get_origin(arg) is typing.Literal:
            return set(typing.get_args(arg))
    return None


def _enum(schema: dict) -> set | None:
    if "enum" in schema:
        return set(schema["enum"])
    if "const" in schema:
        return {schema["const"]}
    for option in schema.get("anyOf", []):
        if "enum" in option or "const" in option:
            return _enum(option)
    return None


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_each_model_matches_the_ledgers_openapi_component(name):
    model: type[BaseModel] = COMPONENTS[name]
    component = OPENAPI["components"]["schemas"][name]
    assert set(model.model_fields) == set(component["properties"]), name
    request = name.endswith("In") or name in ("Unit", "IdentityChecks")
    if request:  # the fields the ledger requires are required here, and no more
        required = {f for f, info in model.model_fields.items() if info.is_required()}
        assert required == set(component.get("required", [])), name
    for field, info in model.model_fields.items():
        values = _literal_values(info.annotation)
        if values is not None:
            assert values == _enum(component["properties"][field]), (name, field)


def test_the_batch_limit_is_the_ledgers():
    assert _core.MAX_BATCH == OPENAPI["components"]["schemas"]["BatchIn"]["properties"]["records"]["maxItems"]


# ---- calls ------------------------------------------------------------------------------------------

async def test_push_replay_refusal_and_conflict(ledger_url, base, course):
    def run():
        with xc.Client(ledger_url, base.key) as ledger:
            body = records(course, 1, "one")[0]
            first = ledger.push(body)
            again = ledger.push(xc.RecordIn.model_validate(body))  # a model or a mapping alike
            assert not first.replayed and again.replayed and first.result == again.result
            assert first.result.credited_hours == 7 and first.result.status == "credited"
            with pytest.raises(xc.InvalidRequest) as refused:
                ledger.push({**body, "external_id": "short", "exam": {"questions": 5, "correct": 5, "passed": True}})
            assert refused.value.rule == "exam-too-short" and refused.value.status == 422
            with pytest.raises(xc.ConflictError) as reused:
                ledger.push({**body, "unit": {**body["unit"], "name": "别的单位"}})
            assert reused.value.rule == "external-id-reused"
            view = ledger.record(first.result.record_id)
            assert view.reversed is False and view.credited_hours == 7
            return first
    await asyncio.to_thread(run)


async def test_wrong_key_and_person_check(ledger_url, base, course):
    async with xc.AsyncClient(ledger_url, "xs_not-a-key") as stranger:
        with pytest.raises(xc.Unauthorized):
            await stranger.push(records(course, 1, "x")[0])
    async with xc.AsyncClient(ledger_url, base.key) as ledger:
        check = await ledger.check_person("RIC", ric(5), "陈小明")
        assert check.valid and check.name_matches is None
        bad = await ledger.check_person("RIC", ric(5)[:-1] + "0" if not ric(5).endswith("0") else ric(5)[:-1] + "1",
                                        "陈小明")
        assert not bad.valid and bad.problems[0]["type"] == "/problems/id-number"


async def test_push_many_batches_to_the_ledgers_limit_in_order(ledger_url, base, course, engine):
    sizes: list[int] = []

    async def count(request: httpx.Request) -> None:
        if request.url.path == "/v1/records/batch":
            sizes.append(len(json.loads(request.content)["records"]))

    bodies = records(course, 1001, "many")
    bodies[500]["unit"] = {**bodies[500]["unit"], "region": "110101"}  # refused, the others not
    async with xc.AsyncClient(ledger_url, base.key) as ledger:
        ledger._http.event_hooks["request"].append(count)
        items = await ledger.push_many(bodies)
    assert sizes == [1000, 1]
    assert [i.index for i in items] == list(range(1001))
    assert [i.status for i in items].count(201) == 1000 and items[500].status == 422
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 1000


async def test_upload_a_roster_follow_it_and_read_the_answers(ledger_url, base, course):
    rows = [r for rec in records(course, 3, "sheet") for r in rows_of(rec, "CL-5")]
    seen: list[tuple[int, int]] = []
    async with xc.AsyncClient(ledger_url, base.key) as ledger:
        dry = await ledger.upload_roster(to_xlsx(rows), filename="r.xlsx", dry_run=True, poll=0.05,
                                         on_progress=lambda done, total: seen.append((done, total)))
        assert dry.dry_run and dry.status == "done" and [r.status for r in dry.rows] == ["credited"] * 3
        assert seen[-1] == (3, 3)
        real = await ledger.upload_roster(to_xlsx(rows), filename="r.xlsx", poll=0.05)
        assert [r.result.credited_hours for r in real.rows] == [7, 7, 7]
        sheet = await ledger.roster_result(real.id)
        assert sheet[:2] == b"PK"
        with pytest.raises(xc.InvalidRequest) as refused:
            await ledger.upload_roster(b"who,when\n1,2\n", filename="bad.csv")
        assert refused.value.rule == "roster-headers" and refused.value.problem["row"] == 1
    def sync_rows():
        with xc.Client(ledger_url, base.key) as ledger:
            return [r.status for r in ledger.roster_rows(real.id)]
    assert await asyncio.to_thread(sync_rows) == ["credited"] * 3


# ---- retries -----------------------------------------------------------------------------------------

class Scripted(httpx.AsyncBaseTransport):
    """Answers from a script first (status, headers), then the real ledger."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script, self.inner, self.times = list(script), httpx.AsyncHTTPTransport(), []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(time.monotonic())
        if self.script:
            status, headers = self.script.pop(0)
            return httpx.Response(status, headers={"content-type": "application/problem+json", **headers},
                                  json={"type": "/problems/busy", "status": status, "detail": "scripted"})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_retry_after_is_honoured_and_a_long_one_is_raised(ledger_url, base, course):
    transport = Scripted([(503, {"Retry-After": "0.3"}), (429, {"Retry-After": "0.2"})])
    async with xc.AsyncClient(ledger_url, base.key, transport=transport, retry=FAST) as ledger:
        pushed = await ledger.push(records(course, 1, "after")[0])
    assert not pushed.replayed
    assert transport.times[1] - transport.times[0] >= 0.3 and transport.times[2] - transport.times[1] >= 0.2
    transport = Scripted([(429, {"Retry-After": "3600"})])
    async with xc.AsyncClient(ledger_url, base.key, transport=transport, retry=FAST) as ledger:
        with pytest.raises(xc.RateLimited) as limited:
            await ledger.push(records(course, 1, "later")[0])
    assert limited.value.retry_after == 3600 and len(transport.times) == 1
    transport = Scripted([(503, {})] * 3)
    async with xc.AsyncClient(ledger_url, base.key, transport=transport,
                              retry=xc.RetryPolicy(attempts=3, base=0.01)) as ledger:
        with pytest.raises(xc.Unavailable):
            await ledger.push(records(course, 1, "never")[0])


def test_backoff_is_jittered_and_capped():
    policy = xc.RetryPolicy(attempts=10, base=0.5, cap=4.0, rng=random.Random(7))
    waits = [policy.delay(attempt, None) for attempt in range(9)]
    assert all(0 <= w <= min(4.0, 0.5 * 2 ** i) for i, w in enumerate(waits))
    assert len(set(waits)) == len(waits)  # jittered: no two the same
    assert policy.delay(9, None) is None  # the last try failed: give up
    assert 2.0 <= policy.delay(0, 2.0) <= 2.5 and policy.delay(0, 5.0) is None  # Retry-After beyond the cap


class Flaky(httpx.AsyncBaseTransport):
    """Loses requests before they reach the ledger, and answers after the ledger has handled them."""

    def __init__(self, rng: random.Random, before: float = 0.2, after: float = 0.25) -> None:
        self.rng, self.before, self.after = rng, before, after
        self.inner = httpx.AsyncHTTPTransport()
        self.lost_answers = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        roll = self.rng.random()
        if roll < self.before:
            raise httpx.ConnectTimeout("injected: never sent", request=request)
        response = await self.inner.handle_async_request(request)
        if roll < self.before + self.after:
            await response.aread()
            await response.aclose()
            self.lost_answers += 1
            raise httpx.ReadTimeout("injected: the ledger answered, the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_retry_storm_leaves_each_record_exactly_once(ledger_url, base, course, engine):
    """16 clients push the same 40 records (half one by one, half in batches), while a quarter of the answers
    are lost after the ledger wrote them and a fifth of the requests never arrive."""
    bodies = records(course, 40, "storm")
    transports = [Flaky(random.Random(seed)) for seed in range(16)]

    async def client(n: int) -> dict[str, str]:
        async with xc.AsyncClient(ledger_url, base.key, transport=transports[n], retry=FAST) as ledger:
            mine = bodies[n % 2::2] if n % 4 else bodies  # different subsets and orders, overlapping
            mine = mine[::-1] if n % 3 == 0 else mine
            answers = {}
            singles, batched = mine[: len(mine) // 2], mine[len(mine) // 2:]
            for body in singles:
                answers[body["external_id"]] = str((await ledger.push(body)).result.record_id)
            for body, item in zip(batched, await ledger.push_many(batched, batch_size=7), strict=True):
                assert item.status in (200, 201), item
                answers[body["external_id"]] = str(item.result.record_id)
            return answers

    results = await asyncio.gather(*(client(n) for n in range(16)))
    assert sum(t.lost_answers for t in transports) > 20  # the storm happened
    by_external: dict[str, set[str]] = {}
    for answers in results:
        for external_id, record_id in answers.items():
            by_external.setdefault(external_id, set()).add(record_id)
    assert len(by_external) == 40 and all(len(ids) == 1 for ids in by_external.values())
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT external_id, count(*) FROM hours_ledger.records WHERE external_id LIKE 'storm-%' "
            "GROUP BY external_id"))).all()
    assert len(rows) == 40 and all(n == 1 for _, n in rows)
    assert {e: str(i) for e, i in (await _ids(engine)).items()} == {e: next(iter(ids)) for e, ids in by_external.items()}


async def _ids(engine) -> dict[str, str]:
    async with engine.connect() as conn:
        return dict((await conn.execute(sa.text(
            "SELECT external_id, id FROM hours_ledger.records WHERE external_id LIKE 'storm-%'"))).all())


def test_the_sync_client_retries_timeouts_too(tmp_path):
    calls = []

    class Lost(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            calls.append(request)
            if len(calls) < 3:
                raise httpx.ReadTimeout("injected", request=request)
            return httpx.Response(404, json={"type": "/problems/not-found", "status": 404, "detail": "no such"},
                                  headers={"content-type": "application/problem+json"})

    with xc.Client("http://ledger.invalid", "k", transport=Lost(), retry=FAST) as ledger, \
            pytest.raises(xc.NotFound):
        ledger.record("00000000-0000-0000-0000-000000000000")
    assert len(calls) == 3
    with xc.Client("http://ledger.invalid", "k", transport=Lost(), retry=xc.RetryPolicy(attempts=2, base=0.01)) as l2:
        calls.clear()
        with pytest.raises(xc.TransportError):
            l2.record("00000000-0000-0000-0000-000000000000")
