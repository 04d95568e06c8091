"""The committed OpenAPI documents are rendered here, by the command and by the drift test alike."""

from __future__ import annotations

import json

from .services import SERVICES
from .settings import Settings

__all__ = ["render_all"]


def render_all() -> dict[str, str]:
    settings = Settings(database_url="postgresql://unused/unused")
    return {
        name: json.dumps(spec.create_app(settings).openapi(), indent=2, ensure_ascii=False) + "\n"
        for name, spec in SERVICES.items()
    }
