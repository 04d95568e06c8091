"""The hours-ledger service (default port 8002)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from xueshi_shared.app import build_service_app
from xueshi_shared.migrations import IAM_HISTORY
from xueshi_shared.pii import derive_key, load_keys, load_master
from xueshi_shared.ratelimit import RateLimiter
from xueshi_shared.settings import Settings

from . import HISTORY, intake
from .api import hot_router
from .api import router as ledger_router
from .console import router as console_router
from .groupcommit import GroupCommit
from .pushing import KnownTokens
from .statistics_api import router as statistics_router
from .xapi import (
    cmi5,
    documents,  # noqa: F401  (its routes join the xAPI router)
    grouped,
    registrations,
)
from .xapi.api import XapiHeaders
from .xapi.api import home as xapi_home
from .xapi.api import router as xapi_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = build_service_app(
        name="hours-ledger",
        title="Xueshi hours ledger",
        description="Study records pushed by training bases, the province's rules across all bases, transcripts.",
        settings=settings,
        histories=(IAM_HISTORY, HISTORY),
        routers=[ledger_router, statistics_router, console_router, xapi_router],
        hot_routers=[hot_router],
        other_bodies={"/v1/rosters": ("multipart/form-data",),
                      # the console's two forms, as browsers send them
                      **{f"/console/{p}": ("application/x-www-form-urlencoded",) for p in ("sign-in", "sign-out")},
                      # xAPI documents are whatever the activity keeps (JSON, text, bytes)
                      # the statement resource answers other media types itself (400, as xAPI says)
                      **{f"/xapi/{p}": ("*",) for p in ("activities/state", "activities/profile", "agents/profile",
                                                        "statements")}},
        body_limits={"/v1/rosters": settings.roster_max_bytes},
        on_stop=_stop,
    )
    # Read once at start: without the key the ledger cannot store or find anyone.
    app.state.pii_keys = load_keys(settings.pii_key, settings.data_dir / "pii.key")
    # The console's session cookies are sealed with a key of their own (console.py).
    app.state.console_key = derive_key(load_master(settings.pii_key, settings.data_dir / "pii.key"), "console-session")
    app.state.cmi5_extensions = cmi5.Extensions.under(xapi_home(settings))  # Xueshi's extension IRIs
    # Statements of concurrent requests, written together (xapi/grouped.py).
    app.state.statement_groups = grouped.StatementGroups(lambda: app.state.engine)
    # Registrations that statements completed, settled together (xapi/registrations.py).
    app.state.cmi5_settler = registrations.Settler(lambda items: registrations.settle_many(
        app.state.engine, app.state.pii_keys, app.state.cmi5_extensions, items))
    app.state.people_check_limiter = RateLimiter(settings.people_checks_per_minute)
    # Outermost: its headers reach every answer under /xapi/, the middlewares' own too.
    app.add_middleware(XapiHeaders, default=settings.xapi_default_version)
    app.state.roster_tasks = set()  # uploads being answered in the background (rosters.py)
    app.state.roster_slots = asyncio.Semaphore(intake.CONCURRENCY)  # parts of all uploads at once
    app.state.known_tokens = KnownTokens()  # the push route's; checked again by the group commit

    app.state.pushes = GroupCommit(
        lambda senders, records: intake.push(app.state.engine, senders, records, app.state.pii_keys, singles=True),
        lambda pushes: intake.screen(app.state.engine, pushes),
        size=settings.push_group_size, flushes=settings.push_writers, registry=app.state.metrics.registry)
    return app


async def _stop(app: FastAPI) -> None:
    """Uploads still being answered stop (each is marked interrupted; its answered rows stay)."""
    tasks = list(app.state.roster_tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
