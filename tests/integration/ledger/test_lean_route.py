"""The single push is handled by LeanRoute (xueshi_shared/web.py), not FastAPI's general request handler.
Differential test: the same requests, sent to the ledger as it runs and to the same ledger with the push
route handled by FastAPI itself, get identical answers (status, headers that matter, body), whatever is
wrong with them: no or a bad token, a staff token, malformed or empty bodies, wrong types, missing or
extra fields, rule violations; and valid records get the same result."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, Request
from hours_ledger import api, schemas
from hours_ledger.app import create_app as create_ledger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xueshi_shared.web import LeanRoute, OrjsonRoute

from tests.support.factories import at, make_staff, online_sitting, record_body, ric
from tests.support.http import running

DAY = "2026-08-03"
at = functools.partial(at, day=DAY)



@contextlib.asynccontextmanager
async def reference_ledger(settings_) -> AsyncIterator:
    """The ledger with `POST /v1/records` handled by FastAPI's own request handler, from the same declaration."""
    app = create_ledger(settings_)
    (index, lean), = [(i, r) for i, r in enumerate(app.router.routes) if isinstance(r, LeanRoute)]
    plain = APIRouter(tags=["ledger"], route_class=OrjsonRoute)
    plain.add_api_route(lean.path, lean.endpoint, methods=list(lean.methods), status_code=lean.status_code,
                        response_model=lean.response_model, responses=lean.responses, summary=lean.summary)
    (reference,) = plain.routes
    assert type(reference) is OrjsonRoute
    app.router.routes[index] = reference
    async with running(app) as client:
        yield client


@pytest.fixture
async def both(settings, ledger, base, course, engine):
    staff = await make_staff(engine, "province_admin")
    async with reference_ledger(settings) as reference:
        yield ledger, reference, base, course, staff


def comparable(response) -> tuple:
    headers = {k: response.headers.get(k) for k in ("content-type", "retry-after", "www-authenticate")}
    return response.status_code, headers, response.json()


async def same_answer(both, content: bytes, headers: dict[str, str]) -> int:
    lean, reference, *_ = both
    first = await lean.post("/v1/records", content=content, headers=headers)
    second = await reference.post("/v1/records", content=content, headers=headers)
    if first.status_code in (200, 201):
        # The reference sees the record the lean route wrote (or had written): the same result, as a repeat.
        assert second.status_code == 200, second.text
        assert first.json() == second.json()
    else:
        assert comparable(first) == comparable(second)
    return first.status_code


def _headers(token: str | None, content_type: str = "application/json") -> dict[str, str]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def test_the_push_route_is_the_lean_one_and_answers_as_fastapi_would(both):
    _, _, base, course, staff = both
    token, staff_token = base.headers["Authorization"].split()[1], staff.headers["Authorization"].split()[1]
    valid = record_body(course, ric(700), [online_sitting(at("09:00"), at("10:00"))])
    encoded = json.dumps(valid, ensure_ascii=False).encode()
    cases: list[tuple[bytes, dict[str, str], int]] = [
        (encoded, _headers(None), 401),
        (encoded, {**_headers(None), "Authorization": f"Basic {token}"}, 401),
        (encoded, _headers("xs_unknown"), 401),
        (encoded, _headers(staff_token), 403),
        (b'{"external_id": ', _headers(token), 422),           # malformed JSON: found before the token
        (b'{"external_id": ', _headers(None), 422),
        (b"", _headers(token), 422),                          # no body at all
        (b"", _headers(None), 401),
        (b"\xff\xfe{}", _headers(token), 422),                # not UTF-8
        (b"[" * 300 + b"]" * 300, _headers(token), 422),      # nested too deep
        (b'{"x": NaN}', _headers(token), 422),
        (b"null", _headers(token), 422),
        (b"[]", _headers(token), 422),
        (b'"record"', _headers(token), 422),
        (b"{}", _headers(token), 422),
        (json.dumps({**valid, "surplus": 1}).encode(), _headers(token), 422),
        (json.dumps({**valid, "id_number": "350102199001011234"}).encode(), _headers(token), 422),
        (json.dumps({**valid, "sittings": "soon"}).encode(), _headers(token), 422),
        (json.dumps({**valid, "exam": {"questions": 10**30, "correct": 1, "passed": True}}).encode(), _headers(token), 422),
        (json.dumps({**valid, "sittings": [online_sitting("9999-12-31T09:00:00+08:00",
                                                          "9999-12-31T10:00:00+08:00")]}).encode(), _headers(token),
         422),
        (json.dumps({**valid, "course_id": "not-a-uuid"}).encode(), _headers(token), 422),
        (encoded, _headers(token, "application/ld+json"), 201),
        (encoded, _headers(token), 200),                      # a repeat
        (json.dumps({**valid, "name": "陈大明"}).encode(), _headers(token), 409),  # the same id, another body
    ]
    lean, *_ = both
    for content, headers, expected in cases:
        status = await same_answer(both, content, headers)
        assert status == expected, (content[:80], headers, status)
    assert sum(isinstance(r, LeanRoute) for r in lean._transport.app.router.routes) == 1
    # Logs and metrics still name the route's template.
    metrics = (await lean.get("/metrics")).text
    assert 'route="/v1/records",service="hours-ledger",status="201"' in metrics
    assert 'route="/v1/records",service="hours-ledger",status="422"' in metrics


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(["external_id", "course_id", "id_type", "id_number", "name", "unit", "sittings", "exam",
                              "surplus"]),
       value=json_values, drop=st.booleans(), authenticated=st.booleans())
async def test_any_broken_record_gets_the_same_answer_from_both(both, field, value, drop, authenticated):
    _, _, base, course, _ = both
    body = record_body(course, ric(701), [online_sitting(at("11:00"), at("12:00"))])
    if drop:
        body.pop(field, None)
    else:
        body[field] = value
    token = base.headers["Authorization"].split()[1] if authenticated else None
    await same_answer(both, json.dumps(body, ensure_ascii=False).encode(), _headers(token))


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=json_values)
async def test_any_json_document_gets_the_same_answer_from_both(both, value):
    _, _, base, _, _ = both
    await same_answer(both, json.dumps(value).encode(), _headers(base.headers["Authorization"].split()[1]))


def not_async(request: Request) -> str:
    return "who"


def test_a_route_the_lean_handler_cannot_serve_is_refused_when_declared():
    router = APIRouter(route_class=LeanRoute)
    with pytest.raises(TypeError, match="one body model"):
        @router.post("/x/{item}")
        async def with_path(item: str, body: schemas.ReversalIn) -> None: ...

    with pytest.raises(TypeError, match="must be"):
        @router.post("/y")
        async def with_query_dependency(body: schemas.ReversalIn, who: Annotated[str, Depends(not_async)]) -> None: ...
    assert api.hot_router.routes and all(isinstance(r, LeanRoute) for r in api.hot_router.routes)


async def test_an_oversized_push_without_content_length_is_a_413_problem(settings, base, caplog):
    """The lean route reads the body itself: the body-size guard still answers 413 (not a 500) when the
    length is not declared and the limit is crossed while reading."""

    async def chunks():
        for _ in range(10):
            yield b"x" * 500

    small = settings.model_copy(update={"max_body_bytes": 1024})
    with caplog.at_level("ERROR"):
        async with running(create_ledger(small)) as ledger:
            response = await ledger.post("/v1/records", content=chunks(),
                                         headers={**base.headers, "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/payload-too-large"
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
