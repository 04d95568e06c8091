"""The three services, where their apps are and which setting holds their port."""

from __future__ import annotations

from dataclasses import dataclass

from .settings import Settings

__all__ = ["SERVICES", "ServiceSpec"]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    factory: str  # "module:function" returning a FastAPI app
    port_setting: str

    def port(self, settings: Settings) -> int:
        return int(getattr(settings, self.port_setting))

    def create_app(self, settings: Settings):
        import importlib

        module, _, func = self.factory.partition(":")
        return getattr(importlib.import_module(module), func)(settings)


SERVICES: dict[str, ServiceSpec] = {
    "catalog": ServiceSpec("catalog", "catalog.app:create_app", "catalog_port"),
    "hours-ledger": ServiceSpec("hours-ledger", "hours_ledger.app:create_app", "ledger_port"),
    "verification": ServiceSpec("verification", "verification.app:create_app", "verification_port"),
}
