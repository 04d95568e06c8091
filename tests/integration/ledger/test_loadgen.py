"""`xueshi loadgen` pushes realistic records to a running ledger, like training bases would."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading

import httpx
import sqlalchemy as sa
import uvicorn
from hours_ledger.app import create_app as create_ledger

from tests.support.factories import approved_base, approved_course


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_loadgen_pushes_records_to_a_running_ledger(settings, catalog, fuzhou, engine, tmp_path):
    base = await approved_base(catalog, fuzhou)
    courses = [str(await approved_course(catalog, base, fuzhou, topic=t, hours=7)) for t in ("1", "5")]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_ledger(settings), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        proc = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "xueshi_shared.cli", "loadgen", "--url", f"http://127.0.0.1:{port}",
            "--base", f"{base.key}={','.join(courses)}", "--records", "60", "--concurrency", "8", "--people", "20"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("XUESHI_")})
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "records/s" in proc.stdout and "201: 60" in proc.stdout
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 60
