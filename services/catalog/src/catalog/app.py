"""The catalog service (default port 8001); also hosts platform administration (staff, audit)."""

from __future__ import annotations

from fastapi import FastAPI
from xueshi_shared.app import build_service_app
from xueshi_shared.iam.api import router as platform_router
from xueshi_shared.migrations import IAM_HISTORY
from xueshi_shared.settings import Settings

from . import HISTORY
from .api import router as catalog_router


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_service_app(
        name="catalog",
        title="Xueshi catalog",
        description="Plans and topics, authorities and fields, training bases and courses; staff and audit trail.",
        settings=settings or Settings(),
        histories=(IAM_HISTORY, HISTORY),
        routers=[platform_router, catalog_router],
    )
