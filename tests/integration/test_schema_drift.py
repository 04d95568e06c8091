"""The migrations and the models describe the same tables; the OpenAPI documents match the code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from xueshi.openapi import render_all
from xueshi.services import HISTORIES
from xueshi_shared.migrations import comparison_options

from tests.support.db import on_citus

ROOT = Path(__file__).resolve().parents[2]


def _metadata(schema: str):
    import importlib

    module = {"iam": "xueshi_shared.iam.models"}.get(schema, f"{schema}.models")
    return importlib.import_module(module).Base.metadata


@pytest.mark.parametrize("schema", [h.schema for h in HISTORIES])
async def test_migrations_produce_exactly_the_tables_the_models_describe(engine, schema):
    def diff(sync_conn):
        ctx = MigrationContext.configure(
            sync_conn,
            opts={
                "include_schemas": True,
                **comparison_options(schema),
                "version_table_schema": schema,
            },
        )
        return compare_metadata(ctx, _metadata(schema))

    async with engine.connect() as conn:
        if await on_citus(engine):  # the coordinator's own shards of reference and local tables are not the schema
            await conn.exec_driver_sql("SET LOCAL citus.override_table_visibility = on")
        differences = await conn.run_sync(diff)
    assert differences == []


@pytest.mark.parametrize("name", ["catalog", "hours-ledger", "verification"])
def test_the_committed_openapi_document_matches_the_code(name):
    committed = ROOT / "openapi" / f"{name}.json"
    assert committed.exists(), "run `make openapi`"
    rendered = render_all()[name]
    assert json.loads(committed.read_text(encoding="utf-8")) == json.loads(rendered), (
        f"openapi/{name}.json is out of date: run `make openapi` and commit the result"
    )
