"""The three services: where their apps are, which setting holds their port, and their migration histories in
the order they are applied (a history may refer to the schemas before it)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import catalog
import hours_ledger
import verification
from xueshi_shared.migrations import IAM_HISTORY, History
from xueshi_shared.settings import Settings

__all__ = ["HISTORIES", "SERVICES", "ServiceSpec", "history"]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    factory: str  # "module:function" returning a FastAPI app
    port_setting: str

    def port(self, settings: Settings) -> int:
        return int(getattr(settings, self.port_setting))

    def create_app(self, settings: Settings) -> Any:
        module, _, func = self.factory.partition(":")
        return getattr(importlib.import_module(module), func)(settings)


SERVICES: dict[str, ServiceSpec] = {
    "catalog": ServiceSpec("catalog", "catalog.app:create_app", "catalog_port"),
    "hours-ledger": ServiceSpec("hours-ledger", "hours_ledger.app:create_app", "ledger_port"),
    "verification": ServiceSpec("verification", "verification.app:create_app", "verification_port"),
}

HISTORIES: tuple[History, ...] = (IAM_HISTORY, catalog.HISTORY, hours_ledger.HISTORY, verification.HISTORY)


def history(schema: str) -> History:
    return next(h for h in HISTORIES if h.schema == schema)
