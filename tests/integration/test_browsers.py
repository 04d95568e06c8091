"""What browsers get: security headers on every answer, and /docs and /redoc working with no internet (their
assets served by the service itself), checked in headless Chromium (Debian's package)."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest
from catalog.app import create_app as create_catalog
from hours_ledger.app import create_app as create_ledger
from verification.app import create_app as create_verification

from tests.support.servers import serving
from tests.support.tools import debian_tool

HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


@pytest.mark.parametrize("path", ["/v1/regions", "/v1/plans/2026", "/healthz", "/docs", "/redoc", "/v1/nothing",
                                  "/openapi.json"])
async def test_every_answer_carries_the_security_headers(catalog, path):
    response = await catalog.get(path)
    assert {k: response.headers.get(k) for k in HEADERS} == HEADERS
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy


async def test_the_pages_name_no_outside_host_and_allow_only_their_own_nonce(catalog, verification):
    for path in ("/docs", "/redoc"):
        page = await catalog.get(path)
        assert "cdn" not in page.text and "fonts.googleapis" not in page.text and "https://" not in page.text
        nonce = page.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
        assert "<script>" not in page.text  # an inline script runs only with this answer's nonce
        if path == "/docs":
            assert f'<script nonce="{nonce}">' in page.text
    asset = await catalog.get("/docs-assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
    assert (await catalog.get("/docs-assets/secrets.py")).status_code == 404
    page = await verification.get("/verify/00000000-0000-0000-0000-000000000000")
    assert "script-src 'none'" in page.headers["content-security-policy"]


def _dom(chromium: str, url: str, home) -> str:
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={home}", "--virtual-time-budget=15000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, HOME=str(home)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("create", [create_catalog, create_ledger, create_verification])
async def test_the_api_documents_render_offline_in_chromium(settings, create, tmp_path):
    chromium = debian_tool("chromium", "chromium")
    async with serving(create(settings)) as url:
        swagger = await asyncio.to_thread(_dom, chromium, f"{url}/docs", tmp_path / "a")
        redoc = await asyncio.to_thread(_dom, chromium, f"{url}/redoc", tmp_path / "b")
    assert "opblock" in swagger and "/v1/" in swagger  # Swagger UI drew the operations
    assert "api-content" in redoc and "/v1/" in redoc   # ReDoc drew the document
