"""The verification service (default port 8003)."""

from __future__ import annotations

from fastapi import FastAPI
from xueshi_shared.app import build_service_app
from xueshi_shared.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_service_app(
        name="verification",
        title="Xueshi verification",
        description="Stamps (验印), stamped electronic study proofs, and verification anyone can do.",
        settings=settings or Settings(),
        schemas=("iam", "verification"),
        routers=[],
    )
