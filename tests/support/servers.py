"""Real HTTP servers for tests that drive services from outside (browsers, fuzzers, CLIs)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import AsyncIterator

import httpx
import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(app: FastAPI, *, port: int | None = None, tls: tuple[str, str, str] | None = None
                  ) -> AsyncIterator[str]:
    """Run `app` under uvicorn in a thread (its own event loop) and yield its base URL once it answers.
    `tls`: (certificate file, key file, CA file) to serve HTTPS."""
    port = port or free_port()
    tls_files = {"ssl_certfile": tls[0], "ssl_keyfile": tls[1]} if tls else {}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **tls_files))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=tls[2]) if tls else True) as client:
            for _ in range(100):
                try:
                    if (await client.get(f"{url}/healthz", timeout=1)).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
