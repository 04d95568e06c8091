"""The ledger's Learning Record Store (`/xapi/`): xAPI 1.0.3's statement and about resources, per base.

A base authenticates with HTTP Basic (its id as the user, its API key as the password: LRS clients and ADL's
conformance suite speak Basic) or with its Bearer key. Every request but `about` names its xAPI version
(`X-Experience-API-Version: 1.0.x`); every answer carries `X-Experience-API-Version: 1.0.3`, and the statement
resource's `X-Experience-API-Consistent-Through`.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
import uuid
from email.utils import format_datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from xueshi_shared.database import pooled
from xueshi_shared.iam.principal import Principal
from xueshi_shared.iam.service import LIVE_TOKENS, authenticate_digest
from xueshi_shared.problems import Conflict, NotFound, Problem, problem_response
from xueshi_shared.regions import within
from xueshi_shared.timekeeping import now
from xueshi_shared.web import audit_in_own_transaction, authenticate, refuse_token

from .. import intake
from . import cmi5, grouped, multipart, registrations, store, validation

VERSION = "1.0.3"
VERSIONS = ("1.0.3", "2.0.0")  # what the LRS speaks: a request's 1.0.x is answered as 1.0.3, its 2.0.x as 2.0.0
_VERSIONS = re.compile(r"^(1\.0|2\.0)(\.\d+)?$")


def answered_version(requested: str) -> str:
    return "2.0.0" if requested.startswith("2.0") else VERSION
PREFIX = "/xapi"

router = APIRouter(prefix=PREFIX, tags=["xapi"])


class XapiProblem(Problem):
    status = 400
    rule = "xapi-invalid"
    title = "Invalid xAPI request"


def _invalid(error: validation.StatementError) -> XapiProblem:
    return XapiProblem(f"{error.path or 'statement'}: {error.detail}", rule=error.rule, field=error.path or None)


class XapiHeaders:
    """Every answer under /xapi/ carries the LRS's version; the statement resource's its consistency instant.
    A request without a 1.0.x version (but to `about`) is refused 400 before anything else (xAPI-Communication
    §3.3)."""

    def __init__(self, app: ASGIApp, default: str = VERSION) -> None:
        self.app = app
        self.default = default  # answered when a request names no version (the about resource, or a refusal)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        statements = path.startswith(f"{PREFIX}/statements")
        requested = dict(scope.get("headers") or []).get(b"x-experience-api-version", b"").decode("latin-1").strip()
        speaks = answered_version(requested) if _VERSIONS.match(requested) else self.default
        scope.setdefault("state", {})["xapi_version"] = speaks

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-experience-api-version", speaks.encode())]
                if statements:
                    extra.append((b"x-experience-api-consistent-through", store.utc_text(now()).encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        alternate = scope.get("method") == "POST" and b"method=" in scope.get("query_string", b"")
        described = path == f"{PREFIX}/about" or path.startswith(f"{PREFIX}/extensions/")
        if not described and not alternate:  # the alternate syntax may name it in its form
            headers = dict(scope.get("headers") or [])
            version = headers.get(b"x-experience-api-version", b"").decode("latin-1").strip()
            if not _VERSIONS.match(version):
                response = problem_response(400, "xapi-version", "requests name their xAPI version: "
                                            "X-Experience-API-Version: 1.0.3 (1.0.x) or 2.0.0 (2.0.x)",
                                            title="Invalid xAPI request")
                await response(scope, receive, with_headers)
                return
        await self.app(scope, receive, with_headers)


async def _principal(request: Request, *, staff_reads: bool = False, cached: bool = False) -> Principal:
    """The base behind the request (or, `staff_reads`, staff who may read statements too). `cached`: a key found
    live lately is taken from the app's cache, for a route that checks it again where it writes (statements:
    grouped.py, and `_store`)."""
    known = request.app.state.known_tokens

    async def lookup(token_digest: bytes) -> Principal | None:
        principal = known.get(token_digest) if cached else None
        if principal is None:
            # One statement on a pooled connection (an ORM session cost more than the statement itself).
            async with pooled(request.app.state.engine) as conn:
                principal = await authenticate_digest(conn, token_digest)
            if principal is not None and cached:
                known.put(token_digest, principal)
        return principal

    principal = await authenticate(request, lookup, basic=True)
    if not (staff_reads and principal.is_staff):
        principal.require_base()
    return principal


# Staff who read statements: the whole province's, or (a city's admin) those of the bases training in its region.
READERS = ("province_admin", "auditor", "city_admin")
_SCOPES = "SELECT id, scope_region FROM catalog.published_bases"


async def _readable(request: Request, principal: Principal) -> list[uuid.UUID] | None:
    """The bases whose statements the principal reads (None: every base). A staff read is audited."""
    if not principal.is_staff:
        return [principal.require_base()]
    principal.require_staff(*READERS)
    bases = None
    if principal.role == "city_admin":
        async with pooled(request.app.state.engine) as conn:
            bases = [r["id"] for r in await conn.fetch(_SCOPES)
                     if principal.region and within(r["scope_region"], principal.region)]
    request.state.audit_target = {"resource": "xapi/statements"}
    await audit_in_own_transaction(request, principal, "succeeded", 200)
    return bases


def home(settings: Any) -> str:
    """The registry's public base URL, as the LRS names itself (authority, extension IRIs)."""
    return (settings.public_base_url or f"http://{settings.host}:{settings.ledger_port}").rstrip("/")


def _authority(request: Request, principal: Principal) -> dict[str, Any]:
    """The LRS's authority for what the base sent: the base, as an account of this registry."""
    home_page = home(request.app.state.settings)
    return {"objectType": "Agent", "name": principal.name,
            "account": {"homePage": home_page, "name": str(principal.base_id)}}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


async def _body(request: Request) -> tuple[Any, dict[str, tuple[str, bytes]]]:
    """The statements a PUT or POST sends (JSON, or multipart/mixed with attachments' data), and that data."""
    raw = await request.body()
    media = request.headers.get("content-type", "")
    kind = media.split(";")[0].strip().lower()
    try:
        if kind == "multipart/mixed":
            return multipart.read(media, raw)
        if kind != "application/json":
            raise XapiProblem("statements are sent as application/json, or multipart/mixed with attachments",
                              rule="xapi-content-type", field="Content-Type")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise XapiProblem("the body is not JSON", rule="xapi-json", field="body") from None
        multipart.check_json_request(body if isinstance(body, list) else [body])
        return body, {}
    except validation.StatementError as error:
        raise _invalid(error) from None


_LIVE = f"SELECT count(*) > 0 FROM ({LIVE_TOKENS}) t"
_ATTACH = """INSERT INTO hours_ledger.xapi_attachments (base_id, sha2, content_type, content) VALUES ($1, $2, $3, $4)
             ON CONFLICT (base_id, sha2) DO NOTHING"""


async def _store(request: Request, principal: Principal, statements: list[Any],
                 data: dict[str, tuple[str, bytes]]) -> list[str]:
    v2 = request.state.xapi_version == "2.0.0"
    for i, statement in enumerate(statements):
        try:
            validation.statement(statement, v2=v2)
        except validation.StatementError as error:
            if len(statements) > 1:
                error.path = f"{i}.{error.path}" if error.path else str(i)
            raise _invalid(error) from None
    # One statement that voids nothing, without attachments, is written with those of concurrent requests.
    alone = len(statements) == 1 and not data and statements[0]["verb"]["id"] != validation.VOIDED
    engine, digest = request.app.state.engine, request.state.token_digest
    try:
        if alone:
            written = await request.app.state.statement_groups.store(
                digest, principal.require_base(), statements[0], _authority(request, principal), now())
            if isinstance(written, grouped.Revoked):
                request.app.state.known_tokens.forget(digest)
                await refuse_token(request, "unknown or revoked token")
            ids = [str(written)]
        else:
            async with intake.transaction(engine) as conn:
                if not await conn.fetchval(_LIVE, [digest]):  # the key may come from the cache (`_principal`)
                    request.app.state.known_tokens.forget(digest)
                    await refuse_token(request, "unknown or revoked token")
                ids = await store.store(conn, principal.require_base(), statements, _authority(request, principal),
                                        now())
                if data:
                    await conn.executemany(_ATTACH, [(principal.require_base(), sha2, content_type, content)
                                                     for sha2, (content_type, content) in data.items()])
        # Stored: now the cmi5 registrations they may have completed become records (never refusing them).
        await registrations.after_statements(request.app.state.cmi5_settler, principal, statements)
        return ids
    except validation.StatementError as error:
        raise _invalid(error) from None
    except store.Conflict as conflict:
        raise Conflict(f"statement {conflict} is already stored with other content", rule="xapi-conflict",
                       field="id") from None


def _only(request: Request, allowed: set[str]) -> dict[str, str]:
    params = dict(request.query_params)
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise XapiProblem(f"{unknown[0]!r} is not a parameter of this resource (names are case-sensitive)",
                          rule="xapi-parameter", field=unknown[0])
    return params


@router.put("/statements", status_code=204, summary="Store one statement under the id given (xAPI 1.0.3)")
async def put_statement(request: Request) -> Response:
    params = _only(request, {"statementId"})
    principal = await _principal(request, cached=True)
    if "statementId" not in params or not validation.is_uuid(params["statementId"]):
        raise XapiProblem("statementId (a UUID) names the statement", rule="xapi-parameter", field="statementId")
    body, data = await _body(request)
    if not isinstance(body, dict):
        raise XapiProblem("PUT stores one statement (a JSON object)", rule="xapi-type", field="body")
    if "id" in body and str(body["id"]).lower() != params["statementId"].lower():
        raise XapiProblem("the statement's id is not statementId", rule="xapi-id-mismatch", field="id")
    await _store(request, principal, [{**body, "id": body.get("id", params["statementId"])}], data)
    return Response(status_code=204)


@router.post("/statements", summary=(
    "Store statements (one, or an array, all or none); their ids in order. With ?method=PUT|GET|POST and a form "
    "body: the alternate request syntax"))
async def post_statements(request: Request) -> Response:
    if "method" in request.query_params:
        return await _alternate(request)
    _only(request, set())
    principal = await _principal(request, cached=True)
    body, data = await _body(request)
    statements = body if isinstance(body, list) else [body]
    if not statements:
        raise XapiProblem("no statement", rule="xapi-type", field="body")
    return _json(await _store(request, principal, statements, data))


_QUERY = {"agent", "verb", "activity", "registration", "related_activities", "related_agents", "since", "until",
          "limit", "ascending"}
_GET = {"statementId", "voidedStatementId", "format", "attachments", "more", *_QUERY}


def _boolean(params: dict[str, str], name: str) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise XapiProblem(f"{name} is true or false", rule="xapi-parameter", field=name)
    return value == "true"


def _query(params: dict[str, str]) -> store.Query:
    q = store.Query(related_activities=_boolean(params, "related_activities"),
                    related_agents=_boolean(params, "related_agents"), ascending=_boolean(params, "ascending"))
    if "agent" in params:
        try:
            q.agent = store.ifi_key(validation.agent_parameter(orjson.loads(params["agent"])))
        except (orjson.JSONDecodeError, validation.StatementError):
            raise XapiProblem("agent is the JSON of an Agent or identified Group", rule="xapi-parameter",
                              field="agent") from None
    for name in ("verb", "activity"):
        if name in params:
            if not validation.is_iri(params[name]):
                raise XapiProblem(f"{name} is an IRI", rule="xapi-parameter", field=name)
            setattr(q, name, params[name])
    if "registration" in params:
        if not validation.is_uuid(params["registration"]):
            raise XapiProblem("registration is a UUID", rule="xapi-parameter", field="registration")
        q.registration = uuid.UUID(params["registration"])
    for name in ("since", "until"):
        if name in params:
            instant = validation.parse_timestamp(params[name])
            if instant is None:
                raise XapiProblem(f"{name} is a timestamp", rule="xapi-parameter", field=name)
            setattr(q, name, instant)
    if "limit" in params:
        if not params["limit"].isdigit():
            raise XapiProblem("limit is a whole number", rule="xapi-parameter", field="limit")
        q.limit = int(params["limit"])
    return q


def _formatted(statement: dict[str, Any], fmt: str, request: Request) -> dict[str, Any]:
    if fmt == "ids":
        return store.ids_format(statement)
    if fmt == "canonical":
        languages = store.accept_languages(request.headers.get("accept-language", ""))
        return dict(store.canonical_format(statement, languages))
    return statement


@router.head("/statements", include_in_schema=False)
@router.get("/statements", summary="A statement by id, or the statements a query finds")
async def get_statements(request: Request) -> Response:
    params = _only(request, _GET)
    principal = await _principal(request, staff_reads=True)
    bases = await _readable(request, principal)
    fmt = params.get("format", "exact")
    if fmt not in ("exact", "ids", "canonical"):
        raise XapiProblem("format is ids, exact or canonical", rule="xapi-parameter", field="format")
    with_data = _boolean(params, "attachments")
    single = [k for k in ("statementId", "voidedStatementId") if k in params]
    if single:
        clash = [k for k in params if k in _QUERY or (k in ("statementId", "voidedStatementId") and k != single[0])]
        if clash or len(single) > 1:
            raise XapiProblem(f"{single[0]} takes only format and attachments besides", rule="xapi-parameter",
                              field=(clash or single)[0])
        if not validation.is_uuid(params[single[0]]):
            raise XapiProblem(f"{single[0]} is a UUID", rule="xapi-parameter", field=single[0])
        async with pooled(request.app.state.engine) as conn:
            found = await store.one(conn, bases, uuid.UUID(params[single[0]]), voided=single[0] == "voidedStatementId")
        if found is None:
            raise NotFound("no statement of this base has that id (or, for statementId, it is voided)",
                           rule="not-found")
        statement, stored = found
        return await _answer(request, bases, _formatted(statement, fmt, request), [statement], with_data,
                             {"Last-Modified": _http_date(stored)})
    if "more" in params:
        if len(params) > 1:
            raise XapiProblem("more takes no other parameter", rule="xapi-parameter", field="more")
        try:
            saved = store.read_cursor(params["more"])
        except validation.StatementError as error:
            raise _invalid(error) from None
        after = saved.pop("after")
        params = {k: str(v) for k, v in saved.items()}
        fmt = params.get("format", "exact")
        with_data = params.get("attachments") == "true"
        q = _query(params)
        q.after = after
    else:
        q = _query(params)
    async with pooled(request.app.state.engine) as conn:
        statements, last = await store.query(conn, bases, q)
    more = "" if last is None else f"{request.url.path}?more={store.cursor(params, last)}"
    result = {"statements": [_formatted(s, fmt, request) for s in statements], "more": more}
    return await _answer(request, bases, result, statements, with_data, {})


_DATA = """SELECT DISTINCT ON (sha2) sha2, content_type, content FROM hours_ledger.xapi_attachments
           WHERE ($1::uuid[] IS NULL OR base_id = ANY($1::uuid[])) AND sha2 = ANY($2::text[]) ORDER BY sha2"""


async def _answer(request: Request, bases: list[uuid.UUID] | None, document: Any, statements: list[dict[str, Any]],
                  with_data: bool, headers: dict[str, str]) -> Response:
    """JSON, or (attachments=true) multipart/mixed with the data of the statements' attachments."""
    if not with_data:
        return _json(document, headers=headers)
    hashes = sorted({a["sha2"] for s in statements for a in multipart.attachments_of([s])})
    async with pooled(request.app.state.engine) as conn:
        rows = await conn.fetch(_DATA, bases, hashes) if hashes else []
    body, media = multipart.response(document, [(r["sha2"], r["content_type"], bytes(r["content"])) for r in rows])
    return Response(body, media_type=None, headers={**headers, "Content-Type": media})


def _http_date(value: dt.datetime) -> str:
    return format_datetime(value.astimezone(dt.UTC), usegmt=True)


@router.head("/about", include_in_schema=False)
@router.get("/about", summary="The xAPI versions this LRS speaks (no key needed)")
async def about() -> Response:
    return _json({"version": list(VERSIONS)})


# ---- the alternate request syntax (xAPI-Communication §1.3) -----------------------------------------

_FORM_HEADERS = {"authorization", "x-experience-api-version", "content-type", "content-length", "if-match",
                 "if-none-match"}


async def _alternate(request: Request) -> Response:
    """A request sent as a POST with `?method=` and its headers, parameters and content in a form body (for
    clients that can only POST). Only `method` is in the query string; the form's header fields override the
    request's headers; `content` is the body."""
    if request.state.xapi_version == "2.0.0":  # xAPI 2.0 removed the alternate request syntax
        raise XapiProblem("xAPI 2.0 has no alternate request syntax", rule="xapi-alternate-syntax", field="method")
    method = request.query_params["method"]
    if len(request.query_params) != 1 or method not in ("GET", "PUT", "POST"):
        raise XapiProblem("the alternate syntax puts only method (GET, PUT or POST) in the query string",
                          rule="xapi-alternate-syntax", field="method")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise XapiProblem("the alternate syntax sends an application/x-www-form-urlencoded form",
                          rule="xapi-alternate-syntax", field="Content-Type")
    raw = (await request.body()).decode("utf-8", "replace")
    try:
        form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw)))
    except ValueError:
        raise XapiProblem("the form is not URL-encoded", rule="xapi-alternate-syntax", field="body") from None
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in ("content-type", "content-length")}
    params = {}
    for name, value in form.items():
        if name.lower() in _FORM_HEADERS:
            headers[name.lower()] = value
        elif name != "content":
            params[name] = value
    if not _VERSIONS.match(headers.get("x-experience-api-version", "")):
        raise XapiProblem("requests name their xAPI version: X-Experience-API-Version: 1.0.3 (1.0.x)",
                          rule="xapi-version", field="X-Experience-API-Version")
    content = form.get("content", "").encode("utf-8")
    if method != "GET":
        headers.setdefault("content-type", "application/json")
    headers["content-length"] = str(len(content))
    scope = {**request.scope, "method": method, "query_string": urllib.parse.urlencode(params).encode(),
             "headers": [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers.items()]}
    inner = Request(scope, request.receive)
    inner._body = content
    inner.state.request_id = getattr(request.state, "request_id", None)
    handler = {"GET": get_statements, "PUT": put_statement, "POST": post_statements}[method]
    return await handler(inner)


@router.get("/extensions/{name}", summary="The JSON Schema of one of Xueshi's xAPI extensions (its IRI resolves here)",
            responses={200: {"content": {"application/schema+json": {}}}})
async def extension_schema(name: str, request: Request) -> Response:
    schema = cmi5.schemas_of(request.app.state.cmi5_extensions).get(name)
    if schema is None:
        raise NotFound(f"Xueshi defines no extension {name!r} (played, identity-checks, exam)",
                       rule="xapi-extension-unknown")
    return Response(orjson.dumps(schema), media_type="application/schema+json")
