"""The committed OpenAPI documents are rendered here, by the command and by the drift test alike."""

from __future__ import annotations

import json

from xueshi_shared.settings import Settings

from .services import SERVICES

__all__ = ["render_all"]


def render_all() -> dict[str, str]:
    # The documents do not depend on the database or the keys; dummies keep rendering offline.
    settings = Settings(database_url="postgresql://unused/unused", pii_key="A" * 43 + "=")
    return {
        name: json.dumps(spec.create_app(settings).openapi(), indent=2, ensure_ascii=False) + "\n"
        for name, spec in SERVICES.items()
    }
