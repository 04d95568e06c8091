"""JSON logs with a request id, Prometheus metrics, and the body-size guard, as one ASGI middleware.

Access lines name the route template (`/v1/people/{id_number}/transcript`), never the raw path or
query, and never headers: tokens and personal ID numbers cannot reach the log by this road.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from pythonjsonlogger.json import JsonFormatter
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .pii import redact
from .problems import problem_response

__all__ = ["ObservabilityMiddleware", "RedactingJsonFormatter", "configure_logging", "new_metrics"]

access_log = logging.getLogger("xueshi.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DIGITS = re.compile(r"[0-9]{17}")  # a request id that could be an ID number is not taken


class RedactingJsonFormatter(JsonFormatter):
    """JSON lines with ID numbers and bearer tokens masked wherever they appear: in the message, its arguments,
    extra fields and tracebacks (an exception's text may quote what a client sent). Access lines are left as they
    are: they are made of route templates and the middleware's own fields only (a client's X-Request-ID shaped like
    an ID number is replaced), and they are the most frequent line by far."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return line if record.name == "xueshi.access" else redact(line)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        RedactingJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's own access log prints raw paths (which may hold ID numbers): ours replaces it.
    logging.getLogger("uvicorn.access").disabled = True


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "xueshi_http_requests", "HTTP requests answered", ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "xueshi_http_request_duration_seconds", "Time to answer a request", ["service", "method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.service = service


def new_metrics(service: str) -> Metrics:
    return Metrics(service)


class _BodyTooLarge(Exception):
    pass


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int,
                 body_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.body_limits = dict(body_limits or {})  # exact paths whose bodies may be larger (a roster upload)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        supplied = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = supplied if _REQUEST_ID.match(supplied) and not _DIGITS.search(supplied) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status_holder: dict[str, Any] = {"status": 500, "sent": False}

        limit = self.body_limits.get(scope.get("path", ""), self.max_body_bytes) if self.body_limits \
            else self.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._send_local(self._refusal(limit), scope, receive, send, request_id, status_holder)
            self._observe(scope, status_holder["status"], started, request_id)
            return

        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # The framework turns a failing body read into its own 400; remember why, so the
                    # answer sent is our 413 whatever the app makes of it.
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            if too_large:
                if message["type"] == "http.response.start" and not status_holder["sent"]:
                    await self._send_local(self._refusal(limit), scope, receive, send, request_id, status_holder)
                return
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["sent"] = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not status_holder["sent"]:
                await self._send_local(self._refusal(limit), scope, receive, send, request_id, status_holder)
        finally:
            self._observe(scope, status_holder["status"], started, request_id)

    def _refusal(self, limit: int) -> Response:  # built only when needed: most requests never are too large
        return problem_response(413, "payload-too-large", f"request bodies are limited to {limit} bytes here")

    async def _send_local(self, response: Response, scope: Scope, receive: Receive, send: Send, request_id: str,
                          status_holder: dict[str, int]) -> None:
        response.headers["x-request-id"] = request_id
        status_holder["status"] = response.status_code
        status_holder["sent"] = True
        await response(scope, receive, send)

    def _observe(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        elapsed = time.perf_counter() - started
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope.get("method", "")
        self.metrics.requests.labels(self.metrics.service, method, route, str(status)).inc()
        self.metrics.latency.labels(self.metrics.service, method, route).observe(elapsed)
        access_log.info(
            "request",
            extra={
                "service": self.metrics.service,
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
