"""The ledger's LRS (/xapi/): xAPI 1.0.3's statement and about resources over HTTP, against real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import asyncpg
import pytest
import sqlalchemy as sa
from hours_ledger.xapi.grouped import _text_array
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xueshi_shared.database import libpq_url

from tests.support.factories import approved_base, base_form, uscc

V = {"X-Experience-API-Version": "1.0.3"}


def basic(base) -> dict[str, str]:
    token = base64.b64encode(f"{base.id}:{base.key}".encode()).decode()
    return {"Authorization": f"Basic {token}", **V}


def stmt(verb: str = "http://adlnet.gov/expapi/verbs/attended", *, sid: str | None = None, obj=None, **more) -> dict:
    body = {"actor": {"objectType": "Agent", "name": "陈小明", "mbox": "mailto:xiaoming@example.cn"},
            "verb": {"id": verb, "display": {"en-US": "attended", "zh-CN": "参加"}},
            "object": obj or {"id": "https://courses.example.cn/au/1",
                              "definition": {"name": {"en-US": "AI", "zh-CN": "人工智能"}}}, **more}
    if sid:
        body["id"] = sid
    return body


async def test_about_needs_no_key_and_every_answer_names_the_version(ledger, base):
    about = await ledger.get("/xapi/about")
    assert about.status_code == 200 and "1.0.3" in about.json()["version"]
    assert about.headers["x-experience-api-version"] == "1.0.3"
    missing = await ledger.get("/xapi/statements", headers={"Authorization": basic(base)["Authorization"]})
    assert missing.status_code == 400 and missing.headers["x-experience-api-version"] == "1.0.3"
    assert "x-experience-api-consistent-through" in missing.headers
    for wrong in ("0.9", "1.1.0", "BAD"):
        assert (await ledger.get("/xapi/statements", headers={**basic(base), "X-Experience-API-Version": wrong})
                ).status_code == 400


async def test_basic_and_bearer_authenticate_a_base(ledger, catalog, base, fuzhou):
    posted = await ledger.post("/xapi/statements", json=stmt(), headers=basic(base))
    assert posted.status_code == 200, posted.text
    assert (await ledger.post("/xapi/statements", json=stmt(), headers={**base.headers, **V})).status_code == 200
    other = await approved_base(catalog, fuzhou, base_form(unit_name="另一个教育科技有限公司", uscc=uscc(778)))
    wrong_user = base64.b64encode(f"{other.id}:{base.key}".encode()).decode()
    for headers in ({"Authorization": f"Basic {wrong_user}", **V}, {"Authorization": "Basic:xxxx", **V}, V,
                    {"Authorization": "Basic " + base64.b64encode(f"{base.id}:nope".encode()).decode(), **V}):
        assert (await ledger.post("/xapi/statements", json=stmt(), headers=headers)).status_code == 401
    # A base reads only its own statements.
    sid = posted.json()[0]
    assert (await ledger.get("/xapi/statements", params={"statementId": sid}, headers=basic(other))).status_code == 404


async def test_post_put_get_conflicts(ledger, base):
    sid = str(uuid.uuid4())
    put = await ledger.put("/xapi/statements", params={"statementId": sid}, json=stmt(), headers=basic(base))
    assert put.status_code == 204, put.text
    assert (await ledger.put("/xapi/statements", params={"statementId": sid}, json=stmt(),
                             headers=basic(base))).status_code == 204  # the same again: nothing changes
    changed = await ledger.put("/xapi/statements", params={"statementId": sid},
                               json=stmt("http://adlnet.gov/expapi/verbs/completed"), headers=basic(base))
    assert changed.status_code == 409
    got = await ledger.get("/xapi/statements", params={"statementId": sid}, headers=basic(base))
    assert got.status_code == 200 and got.headers["content-type"].startswith("application/json")
    body = got.json()
    assert body["id"] == sid and body["verb"]["id"].endswith("attended") and body["version"] == "1.0.0"
    assert body["authority"]["account"]["name"] == str(base.id) and body["stored"].endswith("Z")
    assert body["timestamp"] == body["stored"] and "last-modified" in got.headers
    mismatch = await ledger.put("/xapi/statements", params={"statementId": str(uuid.uuid4())}, json=stmt(sid=sid),
                                headers=basic(base))
    assert mismatch.status_code == 400
    ids = (await ledger.post("/xapi/statements", json=[stmt(), stmt(sid=str(uuid.uuid4()))],
                             headers=basic(base))).json()
    assert len(ids) == 2 and all(uuid.UUID(i) for i in ids)


async def test_a_batch_with_one_bad_statement_stores_nothing(ledger, base):
    good = str(uuid.uuid4())
    response = await ledger.post("/xapi/statements", json=[stmt(sid=good), {**stmt(), "verb": {"id": "not an iri"}}],
                                 headers=basic(base))
    assert response.status_code == 400 and response.json()["field"] == "1.verb.id"
    assert (await ledger.get("/xapi/statements", params={"statementId": good}, headers=basic(base))).status_code == 404
    dup = str(uuid.uuid4())
    assert (await ledger.post("/xapi/statements", json=[stmt(sid=dup), stmt(sid=dup)],
                              headers=basic(base))).status_code == 400


async def test_voiding_and_the_statement_ref_filter_rule(ledger, base):
    verb = "http://example.cn/verbs/studied"
    voided, ref, void = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await ledger.post("/xapi/statements", json=stmt(verb, sid=voided), headers=basic(base))
    await ledger.post("/xapi/statements", json=stmt(verb, sid=ref, obj={"objectType": "StatementRef", "id": voided}),
                      headers=basic(base))
    await ledger.post("/xapi/statements", json=stmt("http://adlnet.gov/expapi/verbs/voided", sid=void,
                                                    obj={"objectType": "StatementRef", "id": voided}),
                      headers=basic(base))
    assert (await ledger.get("/xapi/statements", params={"statementId": voided}, headers=basic(base))).status_code == 404
    assert (await ledger.get("/xapi/statements", params={"voidedStatementId": voided},
                             headers=basic(base))).json()["id"] == voided
    found = (await ledger.get("/xapi/statements", params={"verb": verb}, headers=basic(base))).json()
    assert [s["id"] for s in found["statements"]] == [void, ref]
    # A voiding statement is never voided itself.
    await ledger.post("/xapi/statements", json=stmt("http://adlnet.gov/expapi/verbs/voided",
                                                    obj={"objectType": "StatementRef", "id": void}), headers=basic(base))
    assert (await ledger.get("/xapi/statements", params={"statementId": void}, headers=basic(base))).status_code == 200


async def test_queries_filter_page_and_order(ledger, base):
    registration = str(uuid.uuid4())
    ids = []
    for i in range(5):
        context = {"registration": registration} if i % 2 == 0 else {}
        actor = {"mbox": f"mailto:p{i % 2}@example.cn"}
        body = {**stmt(obj={"id": f"https://courses.example.cn/au/{i % 3}"}), "actor": actor, "context": context}
        ids.append((await ledger.post("/xapi/statements", json=body, headers=basic(base))).json()[0])
    def query(**params):
        return ledger.get("/xapi/statements", params=params, headers=basic(base))
    everything = (await query()).json()["statements"]
    assert [s["id"] for s in everything] == ids[::-1] and (await query()).json()["more"] == ""
    assert [s["id"] for s in (await query(ascending="true")).json()["statements"]] == ids
    agent = json.dumps({"mbox": "mailto:p1@example.cn"})
    assert [s["id"] for s in (await query(agent=agent)).json()["statements"]] == [ids[3], ids[1]]
    assert [s["id"] for s in (await query(registration=registration)).json()["statements"]] == [ids[4], ids[2], ids[0]]
    assert [s["id"] for s in (await query(activity="https://courses.example.cn/au/0")).json()["statements"]] == \
        [ids[3], ids[0]]
    page = (await query(limit="2")).json()
    assert [s["id"] for s in page["statements"]] == [ids[4], ids[3]] and page["more"].startswith("/xapi/statements?more=")
    seen = [s["id"] for s in page["statements"]]
    while page["more"]:
        page = (await ledger.get(page["more"], headers=basic(base))).json()
        seen += [s["id"] for s in page["statements"]]
    assert seen == ids[::-1]
    first = (await ledger.get("/xapi/statements", params={"statementId": ids[0]}, headers=basic(base))).json()
    later = (await query(since=first["stored"], ascending="true")).json()["statements"]
    assert first["id"] not in [s["id"] for s in later]
    assert first["id"] in [s["id"] for s in (await query(until=first["stored"])).json()["statements"]]


@pytest.mark.parametrize("params", [{"foo": "bar"}, {"LIMIT": "1"}, {"StatementId": str(uuid.uuid4())},
                                    {"statementId": str(uuid.uuid4()), "verb": "http://x.cn/v"},
                                    {"statementId": "wrong"}, {"agent": "wrong"}, {"verb": "not.a.valid.iri.com/verb"},
                                    {"registration": "wrong"}, {"since": "yesterday"}, {"limit": "-1"},
                                    {"format": "all"}, {"ascending": "yes"},
                                    {"statementId": str(uuid.uuid4()), "voidedStatementId": str(uuid.uuid4())}])
async def test_bad_query_parameters_are_400(ledger, base, params):
    response = await ledger.get("/xapi/statements", params=params, headers=basic(base))
    assert response.status_code == 400, response.text
    assert "x-experience-api-consistent-through" in response.headers


async def test_formats(ledger, base):
    sid = str(uuid.uuid4())
    await ledger.post("/xapi/statements", json=stmt(sid=sid), headers=basic(base))
    ids = (await ledger.get("/xapi/statements", params={"statementId": sid, "format": "ids"},
                            headers=basic(base))).json()
    assert ids["object"] == {"id": "https://courses.example.cn/au/1"} and ids["verb"] == {"id": stmt()["verb"]["id"]}
    assert set(ids["actor"]) <= {"objectType", "mbox"}
    canonical = (await ledger.get("/xapi/statements", params={"statementId": sid, "format": "canonical"},
                                  headers={**basic(base), "Accept-Language": "zh-CN, en;q=0.5"})).json()
    assert canonical["verb"]["display"] == {"zh-CN": "参加"}
    assert canonical["object"]["definition"]["name"] == {"zh-CN": "人工智能"}
    exact = (await ledger.get("/xapi/statements", params={"statementId": sid}, headers=basic(base))).json()
    assert exact["actor"] == stmt()["actor"] and exact["verb"] == stmt()["verb"] and exact["object"] == stmt()["object"]


async def test_context_activities_come_back_as_arrays(ledger, base):
    sid = str(uuid.uuid4())
    parent = {"id": "https://courses.example.cn/course/1"}
    await ledger.post("/xapi/statements", json=stmt(sid=sid, context={"contextActivities": {"parent": parent}}),
                      headers=basic(base))
    got = (await ledger.get("/xapi/statements", params={"statementId": sid}, headers=basic(base))).json()
    assert got["context"]["contextActivities"]["parent"] == [parent]
    related = (await ledger.get("/xapi/statements", params={"activity": parent["id"], "related_activities": "true"},
                                headers=basic(base))).json()["statements"]
    assert [s["id"] for s in related] == [sid]


async def test_staff_read_statements_in_their_scope_and_are_audited(ledger, catalog, base, fuzhou, admin, engine):
    from tests.support.factories import make_staff

    provincial = await approved_base(catalog, admin, base_form(unit_name="省级继续教育基地", uscc=uscc(779),
                                                               level="provincial", region="350000",
                                                               scope_region="350000"))
    mine = (await ledger.post("/xapi/statements", json=stmt(), headers=basic(base))).json()[0]
    theirs = (await ledger.post("/xapi/statements", json=stmt(), headers=basic(provincial))).json()[0]
    bearer = {**V}

    async def ids(actor) -> set[str]:
        response = await ledger.get("/xapi/statements", headers={**bearer, **actor.headers})
        assert response.status_code == 200, response.text
        return {s["id"] for s in response.json()["statements"]}

    assert await ids(admin) == {mine, theirs}
    assert await ids(fuzhou) == {mine}  # a city's admin: the bases training in its region
    assert (await ledger.get("/xapi/statements", params={"statementId": theirs},
                             headers={**bearer, **fuzhou.headers})).status_code == 404
    reviewer = await make_staff(engine, "authority_reviewer", authority="A02")
    assert (await ledger.get("/xapi/statements", headers={**bearer, **reviewer.headers})).status_code == 403
    assert (await ledger.post("/xapi/statements", json=stmt(), headers={**bearer, **admin.headers})).status_code == 403
    async with engine.connect() as conn:
        audited = (await conn.execute(sa.text(
            "SELECT count(*) FROM iam.audit_events WHERE actor_id = :a AND target->>'resource' = 'xapi/statements'"),
            {"a": admin.id})).scalar_one()
    assert audited >= 1


async def test_a_cached_key_revoked_since_writes_no_statement(ledger, catalog, base, engine):
    """Statement writes take their key from the cache of keys found live lately (xapi/grouped.py), and check it
    again where they write: a key rotated since is refused 401 and forgotten, and nothing of its request stays,
    whether the request is one statement (written in a group) or several (a transaction of its own)."""
    known = ledger._transport.app.state.known_tokens
    assert (await ledger.post("/xapi/statements", json=stmt(), headers=basic(base))).status_code == 200
    assert known.get(next(iter(known._known))) is not None, "the key was kept"
    rotated = (await catalog.post(f"/v1/bases/{base.id}/api-key", headers=base.headers)).json()["api_key"]
    one, two = str(uuid.uuid4()), [stmt(sid=str(uuid.uuid4())), stmt(sid=str(uuid.uuid4()))]
    assert (await ledger.post("/xapi/statements", json=stmt(sid=one), headers=basic(base))).status_code == 401
    assert len(known) == 0, "a key found revoked is forgotten"
    assert (await ledger.put("/xapi/statements", params={"statementId": str(uuid.uuid4())}, json=stmt(),
                             headers=basic(base))).status_code == 401
    fresh = type(base)(base.id, rotated)
    assert (await ledger.post("/xapi/statements", json=stmt(), headers=basic(fresh))).status_code == 200
    assert len(known) == 1
    await catalog.post(f"/v1/bases/{base.id}/api-key", headers=fresh.headers)  # rotated again: the cached one dies
    assert (await ledger.post("/xapi/statements", json=two, headers=basic(fresh))).status_code == 401
    async with engine.connect() as conn:
        ids = set((await conn.execute(sa.text("SELECT id::text FROM hours_ledger.xapi_statements"))).scalars())
    assert one not in ids and not ids & {s["id"] for s in two} and len(ids) == 2


async def test_one_id_in_concurrent_requests(ledger, base):
    """The same statement id in concurrent one-statement requests (one group, or several): the same statement is
    stored once and every request answered 200; another statement under that id is 409."""
    import asyncio

    sid = str(uuid.uuid4())
    same = await asyncio.gather(*(ledger.post("/xapi/statements", json=stmt(sid=sid), headers=basic(base))
                                  for _ in range(8)))
    assert [r.status_code for r in same] == [200] * 8 and {r.json()[0] for r in same} == {sid}
    other = str(uuid.uuid4())
    mixed = await asyncio.gather(*(ledger.post("/xapi/statements", json=stmt(
        "http://adlnet.gov/expapi/verbs/attended" if i % 2 else "http://adlnet.gov/expapi/verbs/completed",
        sid=other), headers=basic(base)) for i in range(8)))
    statuses = sorted(r.status_code for r in mixed)
    assert statuses == [200] * 4 + [409] * 4, statuses
    got = await ledger.get("/xapi/statements", params={"statementId": other}, headers=basic(base))
    winner = got.json()["verb"]["id"]
    assert all((r.status_code == 200) == (s == winner) for r, s in zip(mixed, [
        "http://adlnet.gov/expapi/verbs/attended" if i % 2 else "http://adlnet.gov/expapi/verbs/completed"
        for i in range(8)], strict=True))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(items=st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))))
def test_agent_and_activity_arrays_reach_the_database_exactly(database_url, items):
    """The statements' arrays go to the database as array literals (no subquery in the INSERT, which Citus refuses):
    any text, quotes, backslashes, braces, commas and the word NULL included, comes back as it was sent."""

    async def roundtrip() -> list[str]:
        conn = await asyncpg.connect(libpq_url(database_url))
        try:
            return await conn.fetchval("SELECT $1::text::text[]", _text_array(items))
        finally:
            await conn.close()

    assert asyncio.run(roundtrip()) == items
