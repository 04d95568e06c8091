"""What every benchmark needs: a scratch database at head (embedded, or BENCH_DATABASE_URL's server), and
a place to record results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from xueshi.cli import upgrade_database  # noqa: E402
from xueshi_shared.database import asyncpg_url, embedded_server  # noqa: E402

from tests.support.db import scratch_database as scratch  # noqa: E402

__all__ = ["ROOT", "record_results", "scratch_database"]


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str | None = None, *, distributed: bool = False) -> AsyncIterator[str]:
    """A migrated scratch database: on `admin_url`'s server, else BENCH_DATABASE_URL's, else the embedded one.
    `distributed`: `admin_url` is a Citus coordinator; the database is made on every node and its tables placed."""
    configured = admin_url or os.environ.get("BENCH_DATABASE_URL")
    server = None
    if configured:
        admin = asyncpg_url(configured)
    else:
        server = embedded_server(ROOT / ".data" / "bench")
        admin = asyncpg_url(server.get_uri("postgres"))

    def migrate(url: str) -> None:
        upgrade_database(url)
        if distributed:
            from tests.support.db import distribute

            asyncio.run(distribute(url, shard_count=None))

    try:
        async with scratch(admin, migrate) as url:
            yield url
    finally:
        del server


def record_results(results: dict) -> Path:
    out = ROOT / "bench" / "results.json"
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged.update(results)
    out.write_text(json.dumps(merged, indent=2) + "\n")
    return out
