"""The verification service (default port 8003)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI
from xueshi_shared.app import build_service_app
from xueshi_shared.migrations import IAM_HISTORY
from xueshi_shared.pii import PiiKeys, derive_key, load_master
from xueshi_shared.ratelimit import RateLimiter
from xueshi_shared.settings import Settings

from . import HISTORY, checking
from .api import router as verification_router
from .service import Urls, sweep_forever

STAMP_KEY_PURPOSE = "xueshi stamp keys v1"


def stamp_secret(settings: Settings) -> bytes:
    """The key that encrypts the stamps' private keys, derived from the deployment's master secret."""
    return derive_key(load_master(settings.pii_key, settings.data_dir / "pii.key"), STAMP_KEY_PURPOSE)


async def _start(app: FastAPI) -> None:
    await checking.warm()  # the signature-checking worker process, started before the first request
    seconds = app.state.settings.supersede_seconds
    if seconds > 0:  # proofs whose records were reversed are superseded, their status bits set, within `seconds`
        app.state.sweeper = asyncio.create_task(sweep_forever(app.state.sessions, seconds))


async def _stop(app: FastAPI) -> None:
    sweeper = getattr(app.state, "sweeper", None)
    if sweeper is not None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = build_service_app(
        name="verification",
        title="Xueshi verification",
        description="Stamps (验印), stamped electronic study proofs, and verification anyone can do.",
        settings=settings,
        histories=(IAM_HISTORY, HISTORY),
        routers=[verification_router],
        other_bodies={"/v1/verifications/pdf": ("application/pdf", "application/octet-stream")},
        on_start=_start,
        on_stop=_stop,
    )
    master = load_master(settings.pii_key, settings.data_dir / "pii.key")
    app.state.pii_keys = PiiKeys.from_master(master)
    app.state.stamp_secret = derive_key(master, STAMP_KEY_PURPOSE)
    app.state.urls = Urls(settings.verification_url())
    app.state.holder_limiter = RateLimiter(settings.holder_checks_per_minute)
    return app
