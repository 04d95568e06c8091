"""Several alembic histories in one database, one per schema, each with its version table in its schema.

Each service declares its own `History`; the composition (the `xueshi` package) lists them all in dependency
order, and `upgrade_all` applies them in that order; `current_heads` tells readiness whether a schema is at head.
Every service's `migrations/env.py` is the two lines that call `run_env`.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.resources
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from .database import asyncpg_url

__all__ = ["IAM_HISTORY", "History", "alembic_config", "comparison_options", "expected_heads",
           "load_reference_data", "run_env", "upgrade_all"]

# A fixed key for pg_advisory_lock so that two `xueshi db upgrade` never interleave.
_MIGRATION_LOCK = 7_320_626


@dataclass(frozen=True)
class History:
    schema: str
    package: str  # the package that holds `migrations/`
    # "module:function" of an `async def load(conn)` run after the upgrade: the schema's reference data.
    reference_loader: str | None = None

    def script_location(self) -> Path:
        return Path(str(importlib.resources.files(self.package) / "migrations"))


# The staff accounts' schema, which every service needs.
IAM_HISTORY = History("iam", "xueshi_shared.iam")


def alembic_config(item: History, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(item.script_location()))
    cfg.attributes["database_url"] = asyncpg_url(url)
    return cfg


def expected_heads(item: History) -> set[str]:
    return set(ScriptDirectory(str(item.script_location())).get_heads())


def upgrade_all(url: str, histories: Sequence[History]) -> None:
    """Apply `histories` to head, in order (synchronous; call it in a thread from async code)."""
    for item in histories:
        command.upgrade(alembic_config(item, url), "head")
    asyncio.run(load_reference_data(url, histories))


async def load_reference_data(url: str, histories: Sequence[History]) -> None:
    """Run every history's reference-data loader in one transaction (idempotent upserts)."""
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            for item in histories:
                if item.reference_loader:
                    module, _, function = item.reference_loader.partition(":")
                    await getattr(importlib.import_module(module), function)(conn)
    finally:
        await engine.dispose()


async def current_heads(conn: AsyncConnection, schema: str) -> set[str]:
    exists = await conn.scalar(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"{schema}.alembic_version"})
    if not exists:
        return set()
    rows = await conn.execute(sa.text(f'SELECT version_num FROM "{schema}".alembic_version'))
    return {r[0] for r in rows}


# Partitions of a year-partitioned table (`records_y2026`): created by `hours_ledger.open_year`, not by
# the models, so autogenerate and the drift test leave them alone.
_YEAR_PARTITION = re.compile(r"_y\d{4}$")


def comparison_options(schema: str) -> dict[str, Callable[..., bool]]:
    """Alembic's filters: the one schema, without year partitions nor the constraints PostgreSQL clones
    onto them (a foreign key to a partitioned table is also recorded once per partition)."""

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "schema":
            return name == schema
        if type_ == "table":
            return not (name and _YEAR_PARTITION.search(name))
        return True

    def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        if type_ == "foreign_key_constraint" and reflected:
            return not _YEAR_PARTITION.search(obj.referred_table.name)  # type: ignore[attr-defined]
        return True

    return {"include_name": include_name, "include_object": include_object}


def run_env(schema: str, metadata: sa.MetaData) -> None:
    """Body of a history's env.py: online migrations only, filtered to its schema."""
    url = context.config.attributes["database_url"]

    def do_run(sync_conn: sa.Connection) -> None:
        sync_conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        filters = comparison_options(schema)
        context.configure(
            connection=sync_conn,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=filters["include_name"],
            include_object=filters["include_object"],
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
                await conn.commit()
                try:
                    await conn.run_sync(do_run)
                    await conn.commit()
                except BaseException:
                    await conn.rollback()
                    raise
                finally:
                    await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                    await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(main())
