"""Health, readiness (with the database really cut off), metrics, request ids and logs."""

from __future__ import annotations

import logging

from catalog.app import create_app as create_catalog
from hours_ledger.app import create_app as create_ledger
from verification.app import create_app as create_verification

from tests.support.http import assert_problem, running
from tests.support.proxy import DatabaseProxy


async def test_every_service_is_healthy_and_ready(catalog, ledger, verification):
    for client in (catalog, ledger, verification):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text


async def test_readiness_turns_503_when_the_database_is_unreachable_and_200_when_it_returns(settings):
    proxy = DatabaseProxy(settings.database_url)
    await proxy.start()
    proxied = settings.model_copy(update={"database_url": proxy.url, "readiness_timeout_seconds": 1.0})
    for factory in (create_catalog, create_ledger, create_verification):
        async with running(factory(proxied)) as client:
            assert (await client.get("/readyz")).status_code == 200
            await proxy.cut()
            body = assert_problem(await client.get("/readyz"), 503, "service-unavailable")
            assert "unreachable" in body["detail"]
            assert (await client.get("/healthz")).status_code == 200  # the process itself is fine
            await proxy.start()
            assert (await client.get("/readyz")).status_code == 200


async def test_readiness_is_503_when_a_schema_is_behind_its_migration_head(settings):
    app = create_ledger(settings)
    app.state.expected_heads["hours_ledger"] = {"a_revision_not_yet_applied"}
    async with running(app) as client:
        body = assert_problem(await client.get("/readyz"), 503, "service-unavailable")
    assert "hours_ledger" in body["detail"]


async def test_metrics_count_requests_by_route_template(catalog, admin):
    await catalog.get("/v1/staff", headers=admin.headers)
    text = (await catalog.get("/metrics")).text
    assert 'xueshi_http_requests_total{method="GET",route="/v1/staff",service="catalog",status="200"} 1.0' in text
    assert "xueshi_http_request_duration_seconds_bucket" in text


async def test_a_request_id_is_returned_and_a_sane_supplied_one_is_kept(catalog):
    generated = await catalog.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    kept = await catalog.get("/healthz", headers={"X-Request-ID": "lms-42.abc"})
    assert kept.headers["x-request-id"] == "lms-42.abc"
    replaced = await catalog.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert replaced.headers["x-request-id"] != "bad id\nwith newline"


async def test_logs_carry_the_route_template_and_never_a_token_or_an_id_number(catalog, admin, caplog):
    id_number = "35010219900307123X"
    with caplog.at_level(logging.DEBUG):
        await catalog.get("/v1/staff", headers=admin.headers)
        await catalog.get(f"/v1/people/{id_number}/transcript", headers=admin.headers)
        await catalog.get("/v1/staff", headers={"Authorization": "Bearer xs_forged-token"})
    access = [r for r in caplog.records if r.name == "xueshi.access"]
    assert {getattr(r, "route", None) for r in access} >= {"/v1/staff", "unmatched"}
    # httpx logs the URL the *test client* requested; only the services' own records matter here.
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert ours, "the services logged nothing"
    everything = " ".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    assert admin.token not in everything
    assert "xs_forged-token" not in everything
    assert id_number not in everything
