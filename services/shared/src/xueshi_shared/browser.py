"""What browsers get: security headers on every answer, and the API documents served with no internet.

- Every response carries `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`
  and a `Content-Security-Policy` (`frame-ancestors 'none'` among it). JSON and every other answer get the
  strictest policy (`default-src 'none'`); an HTML page that needs more sets its own policy, which is kept; a
  PDF or an image gets none (the browser's viewer would not show it).
- `/docs` (Swagger UI) and `/redoc` load their scripts and styles from this service (the assets of the
  `fastapi-offline` package), never from a CDN: on a government network without internet a CDN page is blank.
  Their inline start-up script carries a fresh nonce per answer; the policy allows nothing else inline but
  styles (both tools inject them).
"""

from __future__ import annotations

import importlib.resources
import secrets

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import NotFound

__all__ = ["SecurityHeaders", "STRICT_POLICY", "docs_router", "page_policy"]

STRICT_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_ASSETS = importlib.resources.files("fastapi_offline") / "static"
_ASSET_TYPES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
                "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}
_FIXED = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]


def page_policy(*, script: str = "'none'", style: str = "'none'", form: str = "'none'", extra: str = "") -> str:
    """A policy for an HTML page of this service: its own images and what it names for scripts, styles and where
    its forms may post."""
    return (f"default-src 'none'; script-src {script}; style-src {style}; img-src 'self' data:; connect-src 'self'; "
            f"frame-ancestors 'none'; base-uri 'none'; form-action {form}{extra}")


class SecurityHeaders:
    """ASGI middleware adding the headers above to every response (a policy the app set is left as it is)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in _FIXED if h[0] not in names]
                media = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                # A PDF or an image is shown by the browser's own viewer, which a document policy would break.
                if b"content-security-policy" not in names and not media.startswith((b"application/pdf", b"image/")):
                    headers.append((b"content-security-policy", STRICT_POLICY.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _with_nonce(page: HTMLResponse, policy_for: str) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    body = bytes(page.body).replace(b"<script>", f'<script nonce="{nonce}">'.encode())
    policy = page_policy(script=f"'self' 'nonce-{nonce}'", style="'self' 'unsafe-inline'",
                         extra="; worker-src blob:" if policy_for == "redoc" else "")
    return HTMLResponse(body, headers={"Content-Security-Policy": policy})


def docs_router(app: FastAPI) -> APIRouter:
    """/docs, /redoc and their assets, served by the service itself (create the app with docs_url=None,
    redoc_url=None)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger() -> HTMLResponse:
        return _with_nonce(get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} · docs",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js", swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png"), "swagger")

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return _with_nonce(get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} · ReDoc",
            redoc_js_url="/docs-assets/redoc.standalone.js", redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False), "redoc")

    @router.get("/docs-assets/{name}")
    async def asset(name: str) -> Response:
        if name not in _ASSET_TYPES:
            raise NotFound("no such documentation asset", rule="not-found")
        return Response((_ASSETS / name).read_bytes(), media_type=_ASSET_TYPES[name],
                        headers={"Cache-Control": "max-age=86400"})

    return router
