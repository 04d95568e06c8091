"""`xueshi loadgen` pushes realistic records to a running ledger, like training bases would."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import sqlalchemy as sa
from hours_ledger.app import create_app as create_ledger

from tests.support.factories import approved_base, approved_course
from tests.support.servers import serving


async def test_loadgen_pushes_records_to_a_running_ledger(settings, catalog, fuzhou, engine, tmp_path):
    base = await approved_base(catalog, fuzhou)
    courses = [str(await approved_course(catalog, base, fuzhou, topic=t, hours=7)) for t in ("1", "5")]
    async with serving(create_ledger(settings)) as url:
        proc = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "xueshi.cli", "loadgen", "--url", url,
            "--base", f"{base.key}={','.join(courses)}", "--records", "60", "--concurrency", "8", "--people", "20"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("XUESHI_")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "records/s" in proc.stdout and "201: 60" in proc.stdout
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 60
