"""The LRS's document resources (state, activity and agent profiles), activities and agents, over HTTP."""

from __future__ import annotations

import hashlib
import json

from tests.integration.ledger.test_xapi import basic, stmt

AGENT = json.dumps({"mbox": "mailto:xiaoming@example.cn"})
ACTIVITY = "https://courses.example.cn/au/1"
REGISTRATION = "fd41c918-b88b-4b20-a0a5-a4c32391aaa0"


async def test_state_put_post_merge_get_list_delete(ledger, base):
    params = {"activityId": ACTIVITY, "agent": AGENT, "registration": REGISTRATION}
    put = await ledger.put("/xapi/activities/state", params={**params, "stateId": "s1"}, json={"a": 1, "b": {"x": 1}},
                           headers=basic(base))
    assert put.status_code == 204, put.text
    merged = await ledger.post("/xapi/activities/state", params={**params, "stateId": "s1"},
                               json={"b": {"y": 2}, "c": 3}, headers=basic(base))
    assert merged.status_code == 204
    got = await ledger.get("/xapi/activities/state", params={**params, "stateId": "s1"}, headers=basic(base))
    assert got.json() == {"a": 1, "b": {"y": 2}, "c": 3}  # one level deep
    assert got.headers["etag"] == f'"{hashlib.sha1(got.content).hexdigest()}"'
    await ledger.put("/xapi/activities/state", params={**params, "stateId": "s2"}, content=b"plain text",
                     headers={**basic(base), "Content-Type": "text/plain"})
    text = await ledger.get("/xapi/activities/state", params={**params, "stateId": "s2"}, headers=basic(base))
    assert text.content == b"plain text" and text.headers["content-type"].startswith("text/plain")
    not_json = await ledger.post("/xapi/activities/state", params={**params, "stateId": "s2"}, json={"a": 1},
                                 headers=basic(base))
    assert not_json.status_code == 400
    ids = await ledger.get("/xapi/activities/state", params=params, headers=basic(base))
    assert sorted(ids.json()) == ["s1", "s2"]
    assert (await ledger.delete("/xapi/activities/state", params=params, headers=basic(base))).status_code == 204
    assert (await ledger.get("/xapi/activities/state", params={**params, "stateId": "s1"},
                             headers=basic(base))).status_code == 404
    for wrong in ({"activityId": "not an iri", "agent": AGENT}, {"activityId": ACTIVITY, "agent": "{}"},
                  {"activityId": ACTIVITY, "agent": AGENT, "registration": "x"}):
        assert (await ledger.get("/xapi/activities/state", params=wrong, headers=basic(base))).status_code == 400


async def test_profiles_follow_http_preconditions(ledger, base):
    params = {"activityId": ACTIVITY, "profileId": "p1"}
    unsaid = await ledger.put("/xapi/activities/profile", params=params, json={"v": 0}, headers=basic(base))
    assert unsaid.status_code == 400  # a new profile is PUT with If-None-Match: *
    assert (await ledger.put("/xapi/activities/profile", params=params, json={"v": 1},
                             headers={**basic(base), "If-None-Match": "*"})).status_code == 204
    got = await ledger.get("/xapi/activities/profile", params=params, headers=basic(base))
    etag = got.headers["etag"]
    blind = await ledger.put("/xapi/activities/profile", params=params, json={"v": 2}, headers=basic(base))
    assert blind.status_code == 409  # a PUT over a profile must say what it saw
    stale = await ledger.put("/xapi/activities/profile", params=params, json={"v": 2},
                             headers={**basic(base), "If-Match": '"0000000000000000000000000000000000000000"'})
    assert stale.status_code == 412
    assert (await ledger.put("/xapi/activities/profile", params=params, json={"v": 2},
                             headers={**basic(base), "If-None-Match": "*"})).status_code == 412
    fresh = await ledger.put("/xapi/activities/profile", params=params, json={"v": 2},
                             headers={**basic(base), "If-Match": etag})
    assert fresh.status_code == 204
    assert (await ledger.get("/xapi/activities/profile", params=params, headers=basic(base))).json() == {"v": 2}
    agent_profile = {"agent": AGENT, "profileId": "prefs"}
    assert (await ledger.post("/xapi/agents/profile", params=agent_profile, json={"lang": "zh-CN"},
                              headers=basic(base))).status_code == 204
    assert (await ledger.get("/xapi/agents/profile", params={"agent": AGENT}, headers=basic(base))).json() == ["prefs"]


async def test_activities_and_agents(ledger, base):
    await ledger.post("/xapi/statements", json=stmt(), headers=basic(base))
    await ledger.post("/xapi/statements", json=stmt(obj={"id": ACTIVITY, "definition": {
        "description": {"zh-CN": "课程"}, "name": {"en-GB": "AI"}}}), headers=basic(base))
    activity = (await ledger.get("/xapi/activities", params={"activityId": ACTIVITY}, headers=basic(base))).json()
    assert activity["id"] == ACTIVITY and activity["definition"]["description"] == {"zh-CN": "课程"}
    assert activity["definition"]["name"] == {"en-US": "AI", "zh-CN": "人工智能", "en-GB": "AI"}
    person = (await ledger.get("/xapi/agents", params={"agent": AGENT}, headers=basic(base))).json()
    assert person == {"objectType": "Person", "mbox": ["mailto:xiaoming@example.cn"]}
