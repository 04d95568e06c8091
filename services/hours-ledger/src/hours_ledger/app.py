"""The hours-ledger service (default port 8002)."""

from __future__ import annotations

from fastapi import FastAPI
from xueshi_shared.app import build_service_app
from xueshi_shared.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_service_app(
        name="hours-ledger",
        title="Xueshi hours ledger",
        description="Study records pushed by training bases, the province's rules across all bases, transcripts.",
        settings=settings or Settings(),
        schemas=("iam", "hours_ledger"),
        routers=[],
    )
