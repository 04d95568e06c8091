"""xAPI 1.0.3's document resources (state, activity profile, agent profile), the activities and the agents
resources (xAPI-Communication §2.3 to §2.7), per base.

A document is kept as sent (its bytes and content type) with an ETag, the SHA-1 of its bytes. POST merges a
JSON object into a stored JSON object one level deep; anything else POSTed over an existing document is 400.
The profile resources follow HTTP's preconditions (§3.1): a PUT of a profile without If-Match or If-None-Match
is 409 when the profile exists and 400 when it does not (as ADL's suite holds); a precondition that fails is
412.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from email.utils import format_datetime
from typing import Any

import orjson
from fastapi import Request, Response
from xueshi_shared.database import pooled
from xueshi_shared.problems import Conflict, NotFound, Problem
from xueshi_shared.timekeeping import now

from .. import intake
from . import store, validation
from .api import XapiProblem, _json, _only, _principal, router

KINDS = {"state": ("activityId", "agent", "stateId"), "activity_profile": ("activityId", "profileId"),
         "agent_profile": ("agent", "profileId")}
_DOC_ID = {"state": "stateId", "activity_profile": "profileId", "agent_profile": "profileId"}


class PreconditionFailed(Problem):
    status = 412
    rule = "precondition-failed"
    title = "Precondition failed"


def _key(kind: str, params: dict[str, str], *, single: bool) -> dict[str, str]:
    """The document's key: activity, agent (its identifier), registration, id; each checked."""
    key = {"activity_id": "", "agent": "", "registration": "", "doc_id": ""}
    if "activityId" in KINDS[kind]:
        if not validation.is_iri(params.get("activityId")):
            raise XapiProblem("activityId (an IRI) is required", rule="xapi-parameter", field="activityId")
        key["activity_id"] = params["activityId"]
    if "agent" in KINDS[kind]:
        try:
            agent = validation.agent_parameter(orjson.loads(params.get("agent", "")))
        except (orjson.JSONDecodeError, validation.StatementError):
            raise XapiProblem("agent (the JSON of an Agent) is required", rule="xapi-parameter",
                              field="agent") from None
        key["agent"] = store.ifi_key(agent) or ""
    if kind == "state" and "registration" in params:
        if not validation.is_uuid(params["registration"]):
            raise XapiProblem("registration is a UUID", rule="xapi-parameter", field="registration")
        key["registration"] = params["registration"].lower()
    name = _DOC_ID[kind]
    if single and name not in params:
        raise XapiProblem(f"{name} names the document", rule="xapi-parameter", field=name)
    key["doc_id"] = params.get(name, "")
    return key


_FIND = """SELECT content, content_type, etag, updated FROM hours_ledger.xapi_documents
           WHERE base_id = $1 AND kind = $2 AND activity_id = $3 AND agent = $4 AND registration = $5 AND doc_id = $6"""
_SAVE = """
    INSERT INTO hours_ledger.xapi_documents (base_id, kind, activity_id, agent, registration, doc_id, content,
                                             content_type, etag, updated)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (base_id, kind, activity_id, agent, registration, doc_id)
    DO UPDATE SET content = $7, content_type = $8, etag = $9, updated = $10"""
_IDS = """SELECT doc_id FROM hours_ledger.xapi_documents
          WHERE base_id = $1 AND kind = $2 AND activity_id = $3 AND agent = $4 AND registration = $5
            AND ($6::timestamptz IS NULL OR updated > $6) ORDER BY doc_id"""
_DELETE = """DELETE FROM hours_ledger.xapi_documents
             WHERE base_id = $1 AND kind = $2 AND activity_id = $3 AND agent = $4 AND registration = $5
               AND ($6 = '' OR doc_id = $6)"""


def _etag(content: bytes) -> str:
    return hashlib.sha1(content, usedforsecurity=False).hexdigest()


def _preconditions(request: Request, kind: str, existing: Any) -> None:
    state = kind == "state"
    if state and request.state.xapi_version != "2.0.0":  # xAPI 1.0.3 asks preconditions of profiles only
        return
    if_match = request.headers.get("if-match")
    if_none = request.headers.get("if-none-match")
    etag = existing["etag"] if existing is not None else None
    if if_match is not None:
        wanted = {t.strip().strip('"') for t in if_match.split(",")}
        if etag is None or ("*" not in wanted and etag not in wanted):
            raise PreconditionFailed("If-Match does not match the document's ETag: it changed since it was read")
    if if_none is not None and etag is not None:
        wanted = {t.strip().strip('"') for t in if_none.split(",")}
        if "*" in wanted or etag in wanted:
            raise PreconditionFailed("If-None-Match: the document exists")
    if request.method == "PUT" and if_match is None and if_none is None:
        if existing is not None or state:
            if state and existing is None:
                return
            raise Conflict("the profile exists: send If-Match with the ETag you read, so that no one else's change "
                           "is lost", rule="xapi-concurrency")
        raise XapiProblem("a PUT of a profile says what it expects: If-None-Match: * to create it, If-Match to "
                          "replace it", rule="xapi-concurrency", field="If-None-Match")


def _is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/json"


async def _write(request: Request, kind: str) -> Response:
    allowed = {*KINDS[kind], "registration"} if kind == "state" else set(KINDS[kind])
    params = _only(request, allowed)
    principal = await _principal(request)
    base_id = principal.require_base()
    key = _key(kind, params, single=True)
    content = await request.body()
    content_type = request.headers.get("content-type", "application/octet-stream")
    async with intake.transaction(request.app.state.engine) as conn:
        existing = await conn.fetchrow(_FIND + " FOR UPDATE", base_id, kind, *key.values())
        _preconditions(request, kind, existing)
        if request.method == "POST" and existing is not None:
            if not (_is_json(content_type) and _is_json(existing["content_type"])):
                raise XapiProblem("POST merges JSON objects: both documents must be application/json",
                                  rule="xapi-merge", field="body")
            try:
                old, new = orjson.loads(existing["content"]), orjson.loads(content)
            except orjson.JSONDecodeError:
                raise XapiProblem("the document is not JSON", rule="xapi-merge", field="body") from None
            if not (isinstance(old, dict) and isinstance(new, dict)):
                raise XapiProblem("POST merges JSON objects", rule="xapi-merge", field="body")
            content, content_type = orjson.dumps({**old, **new}), "application/json"
        elif request.method == "POST" and _is_json(content_type):
            try:
                if not isinstance(orjson.loads(content), dict):
                    raise XapiProblem("a POSTed JSON document is an object", rule="xapi-merge", field="body")
            except orjson.JSONDecodeError:
                raise XapiProblem("the document is not JSON", rule="xapi-merge", field="body") from None
        await conn.execute(_SAVE, base_id, kind, *key.values(), content, content_type, _etag(content), now())
    return Response(status_code=204)


async def _read(request: Request, kind: str) -> Response:
    name = _DOC_ID[kind]
    allowed = {*KINDS[kind], "registration", "since"} if kind == "state" else {*KINDS[kind], "since"}
    params = _only(request, allowed)
    principal = await _principal(request)
    base_id = principal.require_base()
    single = name in params
    if single and "since" in params:
        raise XapiProblem(f"since lists documents; {name} reads one", rule="xapi-parameter", field="since")
    key = _key(kind, params, single=False)
    async with pooled(request.app.state.engine) as conn:
        if single:
            row = await conn.fetchrow(_FIND, base_id, kind, *key.values())
            if row is None:
                raise NotFound("no such document", rule="not-found")
            return Response(bytes(row["content"]), media_type=row["content_type"], headers={
                "ETag": f'"{row["etag"]}"', "Last-Modified": format_datetime(row["updated"].astimezone(dt.UTC),
                                                                             usegmt=True)})
        since = None
        if "since" in params:
            since = validation.parse_timestamp(params["since"])
            if since is None:
                raise XapiProblem("since is a timestamp", rule="xapi-parameter", field="since")
        rows = await conn.fetch(_IDS, base_id, kind, key["activity_id"], key["agent"], key["registration"], since)
    return _json([r["doc_id"] for r in rows])


async def _delete(request: Request, kind: str) -> Response:
    allowed = {*KINDS[kind], "registration"} if kind == "state" else set(KINDS[kind])
    params = _only(request, allowed)
    principal = await _principal(request)
    base_id = principal.require_base()
    key = _key(kind, params, single=kind != "state")
    async with intake.transaction(request.app.state.engine) as conn:
        if key["doc_id"]:
            existing = await conn.fetchrow(_FIND + " FOR UPDATE", base_id, kind, *key.values())
            _preconditions(request, kind, existing)
        await conn.execute(_DELETE, base_id, kind, *key.values())
    return Response(status_code=204)


for _path, _kind in (("/activities/state", "state"), ("/activities/profile", "activity_profile"),
                     ("/agents/profile", "agent_profile")):
    def _routes(kind: str, path: str) -> None:
        async def write(request: Request) -> Response:
            return await _write(request, kind)

        async def read(request: Request) -> Response:
            return await _read(request, kind)

        async def delete(request: Request) -> Response:
            return await _delete(request, kind)

        label = kind.replace("_", " ")
        router.add_api_route(path, write, methods=["PUT"], status_code=204, name=f"xapi_{kind}_put",
                             summary=f"Store a {label} document")
        router.add_api_route(path, write, methods=["POST"], status_code=204, name=f"xapi_{kind}_post",
                             summary=f"Merge a JSON object into a {label} document (or store it)")
        router.add_api_route(path, read, methods=["GET"], name=f"xapi_{kind}_get",
                             summary=f"A {label} document, or the ids of the {label} documents")
        router.add_api_route(path, read, methods=["HEAD"], name=f"xapi_{kind}_head", include_in_schema=False)
        router.add_api_route(path, delete, methods=["DELETE"], status_code=204, name=f"xapi_{kind}_delete",
                             summary=f"Delete a {label} document" + (" (or all of them)" if kind == "state" else ""))

    _routes(_kind, _path)


_ACTIVITY = """SELECT statement FROM hours_ledger.xapi_statements
               WHERE base_id = $1 AND $2 = ANY(related_activities) ORDER BY seq"""


def _definitions(value: Any, activity_id: str) -> Any:
    """Every definition of `activity_id` in a statement (its object, context activities, a SubStatement's)."""
    if isinstance(value, dict):
        if value.get("id") == activity_id and isinstance(value.get("definition"), dict):
            yield value["definition"]
        for item in value.values():
            yield from _definitions(item, activity_id)
    elif isinstance(value, list):
        for item in value:
            yield from _definitions(item, activity_id)


@router.head("/activities", include_in_schema=False)
@router.get("/activities", summary="An activity, as the base's statements define it")
async def activities(request: Request) -> Response:
    params = _only(request, {"activityId"})
    principal = await _principal(request)
    if not validation.is_iri(params.get("activityId")):
        raise XapiProblem("activityId (an IRI) is required", rule="xapi-parameter", field="activityId")
    activity_id = params["activityId"]
    definition: dict[str, Any] = {}
    async with pooled(request.app.state.engine) as conn:
        for row in await conn.fetch(_ACTIVITY, principal.require_base(), activity_id):
            statement = orjson.loads(row["statement"]) if isinstance(row["statement"], str) else row["statement"]
            for found in _definitions(statement, activity_id):
                for key, value in found.items():  # later statements add to and override earlier ones
                    definition[key] = {**definition[key], **value} if isinstance(value, dict) and isinstance(
                        definition.get(key), dict) else value
    body: dict[str, Any] = {"objectType": "Activity", "id": activity_id}
    if definition:
        body["definition"] = definition
    return _json(body)


@router.head("/agents", include_in_schema=False)
@router.get("/agents", summary="The Person an agent identifier stands for")
async def agents(request: Request) -> Response:
    params = _only(request, {"agent"})
    (await _principal(request)).require_base()
    try:
        agent = validation.agent_parameter(orjson.loads(params.get("agent", "")))
    except (orjson.JSONDecodeError, validation.StatementError):
        raise XapiProblem("agent (the JSON of an Agent) is required", rule="xapi-parameter", field="agent") from None
    person: dict[str, Any] = {"objectType": "Person"}
    if "name" in agent:
        person["name"] = [agent["name"]]
    for key in ("mbox", "mbox_sha1sum", "openid", "account"):
        if key in agent:
            person[key] = [agent[key]]
    return _json(person)
