"""Every error leaves the services as RFC 9457 `application/problem+json`.

The exception hierarchy, shallow on purpose:

    Problem                   any error with a status, a stable `type` and a human `detail`
    ├── InvalidInput          422: a field breaks a rule (names the field and the rule)
    ├── Unauthenticated       401: no, unknown or revoked bearer token
    ├── Forbidden             403: the role or scope does not allow the action
    ├── NotFound              404
    ├── Gone                  410: it existed and is withdrawn
    └── Conflict              409: the request contradicts the current state

Domain code raises these (or subclasses with their own rule slug); `install_problem_handlers` maps
them, FastAPI's validation errors and Starlette's HTTP errors to problem documents. `type` is the
relative URI `/problems/<rule>`; the slug is the contract, never renamed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

__all__ = [
    "PROBLEM_JSON",
    "Conflict",
    "FieldError",
    "Forbidden",
    "Gone",
    "InvalidInput",
    "NotFound",
    "Problem",
    "TooManyRequests",
    "Unauthenticated",
    "field_errors",
    "install_problem_handlers",
    "problem_response",
    "problem_type",
]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("xueshi.problems")


def problem_type(rule: str) -> str:
    return f"/problems/{rule}"


class FieldError(dict[str, str]):
    """One offending field: `field` (dotted path), `rule` (slug) and `detail`."""

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(field=field, rule=rule, detail=detail)


class Problem(Exception):
    status: int = 400
    rule: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        rule: str | None = None,
        title: str | None = None,
        field: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if rule is not None:
            self.rule = rule
        if title is not None:
            self.title = title
        self.field = field
        self.errors = list(errors or [])
        if field is not None and not self.errors:
            self.errors = [FieldError(field, self.rule, detail)]
        self.headers = headers or {}
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": problem_type(self.rule),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        if self.field is not None:
            doc["field"] = self.field
        if self.errors:
            doc["errors"] = self.errors
        doc.update(self.extensions)
        return doc


class InvalidInput(Problem):
    status = 422
    rule = "validation"
    title = "Invalid input"

    @classmethod
    def check(cls, errors: Sequence[FieldError]) -> None:
        """Raise for a list of rule violations (the first names the type), or return when it is empty."""
        if errors:
            first = errors[0]
            detail = first["detail"] if len(errors) == 1 else f"{first['detail']} (and {len(errors) - 1} more)"
            raise cls(detail, rule=first["rule"], field=first["field"], errors=errors)


class Unauthenticated(Problem):
    status = 401
    rule = "unauthenticated"
    title = "Authentication required"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="xueshi"'})
        super().__init__(detail, **kwargs)


class Forbidden(Problem):
    status = 403
    rule = "forbidden"
    title = "Not allowed"


class NotFound(Problem):
    status = 404
    rule = "not-found"
    title = "Not found"


class Gone(Problem):
    status = 410
    rule = "gone"
    title = "Gone"


class TooManyRequests(Problem):
    status = 429
    rule = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": retry_after})
        super().__init__(detail, **kwargs)


class Conflict(Problem):
    status = 409
    rule = "conflict"
    title = "Conflict"


class Unavailable(Problem):
    """A passing condition: the same request will succeed when retried after `Retry-After` seconds."""

    status = 503
    rule = "service-unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: str = "1", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": retry_after})
        super().__init__(detail, **kwargs)


# Statuses Starlette raises by itself, with the slug each one gets.
_HTTP_RULES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation",
    429: "rate-limited",
    500: "internal",
    503: "service-unavailable",
}


def problem_response(
    status: int,
    rule: str,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    doc: dict[str, Any] = {
        "type": problem_type(rule),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    doc.update(extensions)
    return Response(orjson.dumps(doc), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: Sequence[Any]) -> str:
    # FastAPI locations look like ("body", "operations_lead", "phone") or ("query", "year").
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


_PYDANTIC_RULES = {
    "missing": "required",
    "extra_forbidden": "unknown-field",
    "json_invalid": "malformed-json",
}


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    return field_errors(exc.errors())


def field_errors(raw: Sequence[Any], prefix: Sequence[Any] = ()) -> list[FieldError]:
    """pydantic's error dicts as FieldErrors (dotted paths, rule slugs)."""
    errors = []
    for err in raw:
        err = {**err, "loc": (*prefix, *err.get("loc", ()))}
        kind = str(err.get("type", "invalid"))
        rule = _PYDANTIC_RULES.get(kind, kind.replace("_", "-"))
        msg = str(err.get("msg", "invalid value"))
        errors.append(FieldError(_field_path(err.get("loc", ())), rule, msg))
    return errors


def _required_body_fields(request: Request) -> list[str]:
    """The required fields of the route's body model, or [] when it has none."""
    route = request.scope.get("route")
    body_field = getattr(route, "body_field", None)
    model = getattr(getattr(body_field, "field_info", None), "annotation", None) or getattr(body_field, "type_", None)
    fields = getattr(model, "model_fields", None)
    return [name for name, info in fields.items() if info.is_required()] if fields else []


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Problem) -> Response:
        body = exc.body(instance=safe_path(request) if exc.status != 401 else None)
        return Response(orjson.dumps(body), status_code=exc.status, media_type=PROBLEM_JSON, headers=exc.headers)

    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        errors = _validation_errors(exc)
        first = errors[0] if errors else FieldError("body", "validation", "invalid request")
        detail = f"{first['field']}: {first['detail']}"
        if first["field"] == "body" and first["rule"] == "required":
            # No body at all: name what the body must hold, not only that it is missing.
            names = _required_body_fields(request)
            if names:
                detail = f"body: required, a JSON object with {', '.join(names)}"
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        return problem_response(422, "validation", detail, title="Invalid input", field=first["field"], errors=errors)

    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        rule = _HTTP_RULES.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(exc.status_code, rule, detail, headers=getattr(exc, "headers", None))

    async def on_database(request: Request, exc: Exception) -> Response:
        # PostgreSQL text cannot hold NUL (U+0000); such a string is the client's error, not ours.
        cause = getattr(exc, "orig", None) or exc
        if _is_untextual(cause) or _is_untextual(getattr(cause, "__cause__", None)):
            return problem_response(422, "nul-character", "text may not contain the NUL character (U+0000)",
                                    title="Invalid input")
        if isinstance(cause, asyncpg.exceptions.DatetimeFieldOverflowError | asyncpg.exceptions.NumericValueOutOfRangeError):
            return problem_response(422, "out-of-range", "a number or date is outside what can be stored",
                                    title="Invalid input")
        if getattr(exc, "connection_invalidated", False) or _is_connection_lost(cause):
            return await on_connection_lost(request, exc)
        return await on_unexpected(request, exc)

    async def on_connection_lost(request: Request, exc: Exception) -> Response:
        # The database restarted or went away under the request: nothing of its transaction was kept (a
        # transaction that lost its connection is rolled back), and a retry is safe.
        log.warning("database connection lost", extra={"path_template": _route_template(request)})
        return problem_response(503, "service-unavailable", "the database connection was lost; retry the request",
                                headers={"Retry-After": "1"})

    async def on_pool_timeout(request: Request, exc: Exception) -> Response:
        # Every pooled connection stayed busy for the pool's timeout: the service is overloaded, nothing of the
        # request was done (it never had a connection), and a retry a moment later is safe.
        log.warning("no database connection free in time", extra={"path_template": _route_template(request)})
        return problem_response(503, "database-busy", "every database connection of this process is busy; retry "
                                "the request", headers={"Retry-After": "1"})

    async def on_interface(request: Request, exc: Exception) -> Response:
        if _is_connection_lost(exc):  # "connection is closed"
            return await on_connection_lost(request, exc)
        return await on_unexpected(request, exc)

    async def on_overflow(request: Request, exc: OverflowError) -> Response:
        # A number too large for the database's integer types reached a query: the client's error.
        return problem_response(422, "out-of-range", "a number is outside the range this API accepts",
                                title="Invalid input")

    async def on_recursion(request: Request, exc: RecursionError) -> Response:
        return problem_response(400, "too-deep", "the request body is nested too deeply")

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not the client's fault: say so without leaking internals; the log has the trace.
        log.exception("unhandled error", extra={"path_template": _route_template(request)})
        return problem_response(500, "internal", "an internal error occurred; it has been logged")

    app.add_exception_handler(Problem, on_problem)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(RecursionError, on_recursion)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(OverflowError, on_overflow)  # type: ignore[arg-type]
    app.add_exception_handler(asyncpg.exceptions.CharacterNotInRepertoireError, on_database)
    for lost in _CONNECTION_LOST:
        app.add_exception_handler(lost, on_connection_lost)
    app.add_exception_handler(asyncpg.exceptions.InterfaceError, on_interface)
    app.add_exception_handler(PoolTimeout, on_pool_timeout)
    app.add_exception_handler(Exception, on_unexpected)


# What the driver raises when the server goes away (a restart, pg_terminate_backend, the network).
_CONNECTION_LOST = (asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.AdminShutdownError,
                    asyncpg.exceptions.CrashShutdownError, asyncpg.exceptions.CannotConnectNowError, ConnectionError)


def _is_connection_lost(error: BaseException | None) -> bool:
    return isinstance(error, _CONNECTION_LOST) or (
        isinstance(error, asyncpg.exceptions.InterfaceError) and "closed" in str(error))


def _is_untextual(error: BaseException | None) -> bool:
    return isinstance(error, asyncpg.exceptions.CharacterNotInRepertoireError
                      | asyncpg.exceptions.UntranslatableCharacterError)


def safe_path(request: Request) -> str:
    """The request's path for a problem's `instance`, with whatever personal data a path parameter holds masked
    (an ID number sent in the path of a deprecated route) and anything else shaped like an ID number or a token."""
    from .pii import mask_id_number, redact

    route = request.scope.get("route")
    if route is None or "id_number" not in request.path_params:
        return redact(request.url.path)
    path = str(route.path)
    for name, value in request.path_params.items():
        path = path.replace("{" + name + "}", mask_id_number(str(value)) if name == "id_number" else str(value))
    return redact(path)


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")
