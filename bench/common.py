"""What every benchmark needs: a scratch database at head (embedded, or BENCH_DATABASE_URL's server), and
a place to record results."""

from __future__ import annotations

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
async def scratch_database() -> AsyncIterator[str]:
    configured = os.environ.get("BENCH_DATABASE_URL")
    server = None
    if configured:
        admin_url = asyncpg_url(configured)
    else:
        server = embedded_server(ROOT / ".data" / "bench")
        admin_url = asyncpg_url(server.get_uri("postgres"))
    try:
        async with scratch(admin_url, upgrade_database) as url:
            yield url
    finally:
        del server


def record_results(results: dict) -> Path:
    out = ROOT / "bench" / "results.json"
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged.update(results)
    out.write_text(json.dumps(merged, indent=2) + "\n")
    return out
