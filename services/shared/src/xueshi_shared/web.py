"""Request-scoped dependencies: one transaction per request, the caller's identity, the audit trail.

The transaction is committed by the framework after the route returns and before the response is
sent (`scope="function"`), so a 2xx always means the write is durable; services never commit.
"""

from __future__ import annotations

import base64
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any, NoReturn

import orjson
from fastapi import Depends, Request, Response
from fastapi._compat import get_missing_field_error
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from .iam.principal import Principal
from .iam.service import authenticate_digest, record_audit
from .iam.tokens import digest
from .pii import mask_id_number, redact
from .problems import InvalidInput, Problem, TooManyRequests, Unauthenticated
from .ratelimit import RateLimiter

__all__ = ["CurrentPrincipal", "DbSession", "LeanRoute", "OrjsonRoute", "PublicClient", "audit_in_own_transaction",
           "authenticate", "client_key", "current_principal", "db_session", "limit_client", "loads_body",
           "public_client", "refuse_token"]


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                break
            seen.add(key)
        raise InvalidInput(f"the key {key!r} appears twice in one JSON object: parsers disagree on which one counts",
                           rule="duplicate-key", field=key)
    return value


def refuse_duplicate_keys(raw: bytes) -> None:
    """A key twice in one JSON object is `422 duplicate-key`: `{"creditsEarned": 90, "creditsEarned": 11}` reads as
    11 here and 90 in other parsers. orjson keeps no trace of duplicates, so the standard library's parser looks
    for them (measured 14 µs on a 600-byte record). A body that is not JSON is left to the parser's own error."""
    if b'"' not in raw:
        return
    try:
        json.loads(raw, object_pairs_hook=_pairs_without_duplicates)
    except ValueError:
        return


def loads_body(raw: bytes) -> Any:
    """A request body parsed strictly: orjson refuses NaN, Infinity and lone surrogates (PostgreSQL's JSON holds
    none of them; its JSONDecodeError is a json.JSONDecodeError, answered as malformed JSON), and duplicate keys
    are refused."""
    value = orjson.loads(raw)
    if isinstance(value, dict | list):
        refuse_duplicate_keys(raw)
    return value


class _OrjsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            # orjson.JSONDecodeError is a json.JSONDecodeError: FastAPI answers it as malformed JSON.
            self._json = orjson.loads(await self.body())
        return self._json


class OrjsonRoute(APIRoute):
    """Parses JSON bodies with orjson: several times faster than the standard library on large batches
    (measured 8% of the batch endpoint's time), and stricter: NaN, Infinity and lone surrogates, which
    PostgreSQL's JSON cannot hold, are malformed JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            request = _OrjsonRequest(request.scope, request.receive)
            if request.method in ("POST", "PUT", "PATCH"):
                refuse_duplicate_keys(await request.body())  # the body is kept for the handler
            return await handler(request)

        return route_handler


class LeanRoute(OrjsonRoute):
    """A route for the hottest path, the single push: the request is handled without FastAPI's general
    machinery, with the same answers (a differential test holds the two to identical responses).

    FastAPI's handler solves dependencies generically, parses the query string, makes a sub-response and
    more for every request: measured in process, 85 of the 97 µs a push spent outside its own work. This
    handler does only what such a route needs, in FastAPI's order: read the body (malformed JSON: 422),
    run the dependencies (401, 403, 429 …), validate the body with FastAPI's own field (422, the same
    errors), call the endpoint. It takes an endpoint whose parameters are one JSON body model, the
    `Request`, and dependencies that take only the `Request`, and that returns a `Response`; anything
    else is refused when the route is declared. The OpenAPI document is FastAPI's, from the same
    declaration.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # Called by APIRoute.__init__, once `dependant` is known.
        d, path = self.dependant, self.path
        if (d.path_params or d.query_params or d.header_params or d.cookie_params or len(d.body_params) != 1
                or d.response_param_name or d.background_tasks_param_name or d.websocket_param_name
                or d.http_connection_param_name or d.security_scopes_param_name):
            raise TypeError(f"{path}: a LeanRoute takes one body model, the request and request-only dependencies")
        for sub in d.dependencies:
            if (sub.dependencies or sub.path_params or sub.query_params or sub.header_params or sub.cookie_params
                    or sub.body_params or not sub.request_param_name or not inspect.iscoroutinefunction(sub.call)):
                raise TypeError(f"{path}: the dependency {sub.call} must be `async def f(request: Request)`")
        body_field, request_name, endpoint = d.body_params[0], d.request_param_name, self.endpoint
        dependencies: list[tuple[str, Callable[..., Awaitable[Any]], str]] = [
            (str(sub.name), sub.call, sub.request_param_name)  # type: ignore[misc]  # checked just above
            for sub in d.dependencies]
        request_key: str | None = request_name

        async def route_handler(request: Request) -> Response:
            raw = await request.body()
            value: Any = None
            if raw:
                try:
                    value = loads_body(raw)
                except orjson.JSONDecodeError as exc:
                    raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos),
                                                   "msg": "JSON decode error", "input": {},
                                                   "ctx": {"error": exc.msg}}], body=exc.doc) from exc
            arguments = {name: await call(**{param: request}) for name, call, param in dependencies}
            if not raw:
                errors = [get_missing_field_error(("body",))]
            else:
                value, errors = body_field.validate(value, {}, loc=("body",))
            if errors:
                raise RequestValidationError(errors, body=value)
            arguments[body_field.name] = value
            if request_key:
                arguments[request_key] = request
            response: Response = await endpoint(**arguments)
            return response

        return route_handler


# Path parameters holding personal data are masked before they reach the audit trail.
_PII_PARAMS = {"id_number"}


def _action(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


def _target(request: Request) -> dict[str, Any]:
    """What a request acted on: its path parameters (personal data masked), and what the route named in
    `request.state.audit_target` (e.g. the internal id of a person found by an ID number sent in the body)."""
    target = {k: (mask_id_number(v) if k in _PII_PARAMS else redact(str(v))) for k, v in request.path_params.items()}
    return {**target, **getattr(request.state, "audit_target", {})}


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def client_key(request: Request) -> bytes:
    """Whom a per-client limit counts: the peer's address, or the client a trusted proxy names (uvicorn rewrites
    the peer from X-Forwarded-For only for the proxies in FORWARDED_ALLOW_IPS; anyone else's header is ignored)."""
    return ("client " + (_client(request) or "unknown")).encode()


def limit_client(request: Request, limiter: RateLimiter, what: str) -> None:
    """429 with Retry-After when this client has used up `limiter`'s allowance."""
    wait = limiter.check(client_key(request))
    if wait:
        raise TooManyRequests(f"too many {what} from this address; slow down", retry_after=RateLimiter.retry_after(wait))


async def public_client(request: Request) -> None:
    """The per-client limit of public routes (they take no token, so the token's limit cannot hold them)."""
    limit_client(request, request.app.state.public_limiter, "requests")


PublicClient = Depends(public_client)


async def _audit(request: Request, session: AsyncSession, principal: Principal | None, outcome: str,
                 status: int | None) -> None:
    await record_audit(
        session,
        service=request.app.state.service_name,
        action=_action(request),
        outcome=outcome,
        status=status,
        principal=principal,
        target=_target(request),
        client_address=_client(request),
        request_id=getattr(request.state, "request_id", None),
    )


async def audit_in_own_transaction(request: Request, principal: Principal | None, outcome: str,
                                   status: int | None) -> None:
    async with request.app.state.sessions() as session, session.begin():
        await _audit(request, session, principal, outcome, status)


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's transaction; staff requests are audited inside it (or, when refused, beside it)."""
    async with request.app.state.sessions() as session:
        await session.begin()
        try:
            yield session
        except BaseException as exc:
            await session.rollback()
            principal = getattr(request.state, "principal", None)
            if principal is not None and principal.is_staff:
                status = exc.status if isinstance(exc, Problem) else getattr(exc, "status_code", 500)
                await audit_in_own_transaction(request, principal, "refused", status)
            raise
        principal = getattr(request.state, "principal", None)
        if principal is not None and principal.is_staff:
            await _audit(request, session, principal, "succeeded", None)
        await session.commit()


DbSession = Annotated[AsyncSession, Depends(db_session, scope="function")]


def _basic(token: str) -> tuple[str, str] | None:
    """`Basic base64(user:password)` as (user, password), or None when it is not that."""
    try:
        user, colon, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if colon and password else None


async def authenticate(request: Request, lookup: Callable[[bytes], Awaitable[Principal | None]], *,
                       basic: bool = False) -> Principal:
    """The principal behind `Authorization: Bearer <token>` (found by `lookup`, from the token's digest), within
    its rate limit; 401 and an audit event otherwise. `basic`: `Basic` is accepted too, the token as the password
    and the principal's base id (or its own id) as the user (the xAPI door: LRS clients speak Basic)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    user: str | None = None
    if basic and scheme.lower() == "basic":
        pair = _basic(token)
        user, token = pair if pair else (None, "")
    if not header:
        reason = "missing bearer token"
    elif scheme.lower() not in (("bearer", "basic") if basic else ("bearer",)) or not token:
        reason = ("the Authorization header must be 'Bearer <token>' or 'Basic <base id:key>'" if basic
                  else "the Authorization header must be 'Bearer <token>'")
    else:
        token_digest = digest(token)
        principal = await lookup(token_digest)
        if principal is not None and user is not None and user not in (str(principal.base_id), str(principal.id)):
            principal, reason = None, "the Basic user is not the key's base"
        else:
            reason = "unknown or revoked token"
        if principal is not None:
            wait = request.app.state.rate_limiter.check(token_digest)
            if wait:
                raise TooManyRequests("this key has made too many requests; slow down",
                                      retry_after=RateLimiter.retry_after(wait))
            request.state.principal = principal
            request.state.token_digest = token_digest
            return principal
    await refuse_token(request, reason)


async def refuse_token(request: Request, reason: str) -> NoReturn:
    """401 for a request whose token does not authenticate it, audited; a client failing more often than
    `failed_auth_per_minute` gets 429 instead, and no audit event for each further failure."""
    limit_client(request, request.app.state.auth_failure_limiter, "failed authentications")
    await audit_in_own_transaction(request, None, f"authentication-failed: {reason}", 401)
    raise Unauthenticated(reason)


async def current_principal(request: Request, session: DbSession) -> Principal:
    """The principal behind the bearer token, found in the request's transaction."""
    return await authenticate(request, lambda token_digest: authenticate_digest(session, token_digest))


CurrentPrincipal = Annotated[Principal, Depends(current_principal, scope="function")]
