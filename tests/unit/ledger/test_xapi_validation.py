"""xAPI 1.0.3 statement validation (hours_ledger/xapi/validation.py): each rule at its boundary, with the values
ADL's conformance suite sends (its requirement ids in the names), in every position an object can take."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hours_ledger.xapi import validation as v
from hypothesis import given
from hypothesis import strategies as st

AGENT = {"objectType": "Agent", "name": "陈小明", "mbox": "mailto:xiaoming@example.cn"}
ACTIVITY = {"objectType": "Activity", "id": "https://courses.example.cn/au/1",
            "definition": {"name": {"zh-CN": "人工智能赋能政务服务"}, "type": "http://adlnet.gov/expapi/activities/lesson"}}


def statement(**changes: Any) -> dict:
    base = {"id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0", "actor": copy.deepcopy(AGENT),
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
            "object": copy.deepcopy(ACTIVITY), "timestamp": "2026-05-04T09:00:00.000Z"}
    base.update(changes)
    return base


def refused(value: Any) -> v.StatementError:
    with pytest.raises(v.StatementError) as error:
        v.statement(value)
    return error.value


def test_a_plain_statement_is_accepted():
    v.statement(statement())
    v.statement({k: x for k, x in statement().items() if k in ("actor", "verb", "object")})


@pytest.mark.parametrize("key", ["iD", "Actor", "veRb", "oBject", "RESULT", "conText", "timeStamp", "STOred",
                                 "auTHORity", "Version", "attachmentS", "surplus"])
def test_unknown_and_wrong_case_keys_are_refused_xapi_00008(key):
    assert refused(statement(**{key: "x"})).rule == "xapi-unknown-property"


@pytest.mark.parametrize("missing", ["actor", "verb", "object"])
def test_actor_verb_object_are_required_xapi_00003(missing):
    body = statement()
    del body[missing]
    assert refused(body).path == missing


def test_null_is_refused_except_in_extensions_xapi_00001():
    assert refused(statement(actor={**AGENT, "name": None})).rule == "xapi-null"
    assert refused(statement(verb={"id": "http://x.cn/v", "display": {"en-US": None}})).rule == "xapi-type"
    v.statement(statement(result={"extensions": {"http://x.cn/e": None}}))
    v.statement(statement(context={"extensions": {"http://x.cn/e": {"key": ""}}}))


@pytest.mark.parametrize("value", ["AA97B177-9383-4934-8543-0F91A7A028368", "MA97B177-9383-4934-8543-0F91A7A02836",
                                   "should fail", 12345, {"key": "value"}])
def test_ids_are_uuids_xapi_00027(value):
    assert refused(statement(id=value)).rule == "xapi-uuid"


def test_an_upper_case_uuid_is_a_uuid():
    v.statement(statement(id="AA97B177-9383-4934-8543-0F91A7A02836"))


@pytest.mark.parametrize("ifis", [{}, {"mbox": "mailto:a@b.cn", "openid": "http://openid.example.cn/a"},
                                  {"mbox_sha1sum": "cd9b00a5611f94eaa7b1661edab976068e364975",
                                   "account": {"homePage": "http://x.cn", "name": "a"}}])
def test_an_agent_has_exactly_one_identifier_xapi_00034(ifis):
    assert refused(statement(actor={"objectType": "Agent", **ifis})).rule == "xapi-ifi"


@pytest.mark.parametrize("ifi", [{"mbox": "mailto:a@b.cn"}, {"mbox_sha1sum": "cd9b00a5611f94eaa7b1661edab976068e364975"},
                                 {"openid": "http://openid.example.cn/a"},
                                 {"account": {"homePage": "http://www.example.cn", "name": "xm"}}])
def test_each_identifier_alone_is_enough(ifi):
    v.statement(statement(actor=ifi))
    v.statement(statement(object={"objectType": "Agent", **ifi}))


@pytest.mark.parametrize(("actor", "rule"), [
    ({"mbox": "http://should.fail.com"}, "xapi-ifi"), ({"mbox": "mailto:should.fail.com"}, "xapi-ifi"),
    ({"openid": "ab=c://should.fail.com"}, "xapi-iri"), ({"openid": "open.id.com/testUser"}, "xapi-iri"),
    ({"account": {"name": "x"}}, "xapi-required"), ({"account": {"homePage": "homePage.com/u", "name": "x"}}, "xapi-iri"),
    ({"account": {"homePage": "http://x.cn", "name": {"a": "b"}}}, "xapi-type"),
    ({"objectType": "agent", "mbox": "mailto:a@b.cn"}, "xapi-object-type"),
    ({"objectType": 123, "mbox": "mailto:a@b.cn"}, "xapi-object-type"),
    ({"name": 123, "mbox": "mailto:a@b.cn"}, "xapi-type"),
    ({"mbox": "mailto:a@b.cn", "member": []}, "xapi-unknown-property"),
])
def test_agent_rules_xapi_00031_to_00043(actor, rule):
    for place in ("actor", "object", "authority"):
        body = statement(**{place: {"objectType": "Agent", **actor} if place == "object" and "objectType" not in actor
                            else actor})
        assert refused(body).rule == rule, place
    assert refused(statement(context={"instructor": actor})).rule == rule
    assert refused(statement(object={"objectType": "SubStatement", "actor": actor, "verb": {"id": "http://x.cn/v"},
                                     "object": ACTIVITY})).rule == rule


def test_groups_identified_or_anonymous_xapi_00035_to_00037():
    member = [{"mbox": "mailto:a@b.cn"}, {"account": {"homePage": "http://x.cn", "name": "b"}}]
    v.statement(statement(actor={"objectType": "Group", "mbox": "mailto:g@b.cn"}))
    v.statement(statement(actor={"objectType": "Group", "member": member}))
    v.statement(statement(context={"team": {"objectType": "Group", "member": member}}))
    assert refused(statement(actor={"objectType": "Group", "name": "g"})).rule == "xapi-required"
    assert refused(statement(actor={"objectType": "Group", "mbox": "mailto:g@b.cn",
                                    "openid": "http://o.cn/g"})).rule == "xapi-ifi"
    assert refused(statement(actor={"objectType": "Group", "member": member[0]})).rule == "xapi-type"
    nested = [{"objectType": "Group", "mbox": "mailto:x@b.cn"}]
    assert refused(statement(actor={"objectType": "Group", "member": nested})).rule == "xapi-object-type"
    assert refused(statement(context={"team": AGENT})).rule == "xapi-object-type"


def test_an_authority_group_is_anonymous_with_two_members_xapi_00098_00100():
    two = [{"mbox": "mailto:a@b.cn"}, {"mbox": "mailto:c@b.cn"}]
    v.statement(statement(authority={"objectType": "Group", "member": two}))
    for wrong in ({"objectType": "Group", "member": two[:1]}, {"objectType": "Group", "member": [*two, *two[:1]]},
                  {"objectType": "Group", "member": two, "mbox": "mailto:g@b.cn"}):
        assert refused(statement(authority=wrong)).rule == "xapi-authority"


@pytest.mark.parametrize("verb", [{"display": {"en-US": "x"}}, {"id": "ab=c://should.fail.com"},
                                  {"id": "adlnet.gov/expapi/verbs/attended"}, "http://adlnet.gov/expapi/verbs/x",
                                  {"id": "http://x.cn/v", "display": 12345},
                                  {"id": "http://x.cn/v", "display": "a12345 attended"},
                                  {"id": "http://x.cn/v", "display": {"a12345678": "attended"}}])
def test_verb_rules_xapi_00044(verb):
    refused(statement(verb=verb))


def test_voiding_takes_a_statement_ref_xapi_00019():
    ref = {"objectType": "StatementRef", "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa1"}
    v.statement(statement(verb={"id": v.VOIDED}, object=ref))
    assert refused(statement(verb={"id": v.VOIDED})).rule == "xapi-voiding"
    assert refused(statement(object={**ref, "objectType": "statementref"})).rule == "xapi-object-type"
    assert refused(statement(object={**ref, "id": "should fail"})).rule == "xapi-uuid"


@pytest.mark.parametrize("definition", [
    "should error", {"name": "name"}, {"description": 5}, {"type": "should error"}, {"moreInfo": "example.com/x"},
    {"extensions": "x"}, {"extensions": {"not.valid.com/extension": 1}}, {"interactionType": "choiCe"},
    {"interactionType": 5}, {"correctResponsesPattern": ["a"]}, {"choices": [{"id": "a"}]},
    {"interactionType": "choice", "choices": [{"id": "a"}, {"id": "a"}]},
    {"interactionType": "choice", "choices": [{"description": {"en": "x"}}]},
    {"interactionType": "fill-in", "correctResponsesPattern": "a"},
])
def test_activity_definition_rules_xapi_00048_to_00064(definition):
    refused(statement(object={"id": "http://x.cn/a", "definition": definition}))


def test_interactions_with_their_type():
    for kind, lists in (("choice", ("choices",)), ("likert", ("scale",)), ("matching", ("source", "target")),
                        ("performance", ("steps",)), ("sequencing", ("choices",))):
        definition = {"interactionType": kind, "correctResponsesPattern": ["a"],
                      **{name: [{"id": "a", "description": {"sr-Latn-RS": "x"}}, {"id": "b"}] for name in lists}}
        v.statement(statement(object={"id": "http://x.cn/a", "definition": definition}))
    v.statement(statement(object={"id": "http://x.cn/a", "definition": {}}))


def test_an_object_without_object_type_is_an_activity_xapi_00065():
    assert refused(statement(object={"mbox": "mailto:a@b.cn"})).rule in ("xapi-unknown-property", "xapi-required")


def test_substatements_xapi_00066_to_00071():
    sub = {"objectType": "SubStatement", "actor": AGENT, "verb": {"id": "http://x.cn/v"}, "object": ACTIVITY,
           "timestamp": "2031-12-02T14:34:45.367Z", "context": {"platform": "x"}}
    v.statement(statement(object=sub))
    for key in ("id", "stored", "version", "authority"):
        assert refused(statement(object={**sub, key: statement()[key] if key in statement() else "1.0.0"})).rule \
            == "xapi-unknown-property"
    assert refused(statement(object={**sub, "object": {**sub, "context": {}}})).rule == "xapi-substatement"
    assert refused(statement(object={**sub, "objectType": "substatement"})).rule == "xapi-object-type"
    # context revision and platform follow the SubStatement's own object
    assert refused(statement(object={**sub, "object": AGENT | {"objectType": "Agent"}})).rule == "xapi-context"


@pytest.mark.parametrize(("score", "ok"), [
    ({"scaled": 1}, True), ({"scaled": -1}, True), ({"scaled": 1.01}, False), ({"scaled": -1.00001}, False),
    ({"raw": 0.6767676, "max": 0.6567676}, False), ({"raw": 0.6767676, "min": 1.4067676}, False),
    ({"min": 0.6767676, "max": 0.6767355}, False), ({"min": 104.67, "max": 100.67}, False),
    ({"min": 0.12123434, "raw": 12.125, "max": 45.45, "scaled": 0.12123434}, True), ({"max": "100"}, False),
    ({"raw": True}, False),
])
def test_scores_at_their_bounds_xapi_00079_to_00083(score, ok):
    body = statement(result={"score": score})
    if ok:
        v.statement(body)
    else:
        refused(body)


@pytest.mark.parametrize(("duration", "ok"), [
    ("PT1H0M0S", True), ("PT1H0M0.1S", True), ("PT4H35M59.14S", True), ("PT16559.14S", True),
    ("P3Y1M29DT4H35M59.14S", True), ("P3Y", True), ("P4W", True), ("PA1H0M0S", False), ("P4W1D", False),
    ("should fail", False), (12345, False), ("P", False), ("PT", False), ("P1DT", False)])
def test_durations_xapi_00124(duration, ok):
    body = statement(result={"duration": duration})
    if ok:
        v.statement(body)
    else:
        assert refused(body).path == "result.duration"


@pytest.mark.parametrize("result", [{"success": "true"}, {"completion": "false"}, {"response": 5}, {"score": 5}])
def test_result_types_xapi_00074_to_00078(result):
    refused(statement(result=result))


@pytest.mark.parametrize(("timestamp", "ok"), [
    ("2013-05-18T05:32:34.804Z", True), ("2031-12-02T14:34:45.367Z", True), ("2015-11-18T12:17:00+00:00", True),
    ("2015-11-18T12:17:00+08", True), ("2015-11-18T12:17:00+0800", True), ("2015-11-18T12:17Z", True),
    ("2008-09-15T15:53:00.601-00:00", False), ("2008-09-15T15:53:00.601-0000", False),
    ("2008-09-15T15:53:00.601-00", False), ("should fail", False), ("01/011/2015", False),
    ("2015-02-30T12:00:00Z", False), ("2015-11-18T24:00:00Z", False), (20151118, False)])
def test_timestamps_xapi_00122(timestamp, ok):
    for key in ("timestamp", "stored"):
        body = statement(**{key: timestamp})
        if ok:
            v.statement(body)
        else:
            assert refused(body).rule in ("xapi-timestamp", "xapi-type")


def test_a_timestamp_keeps_its_instant():
    assert v.parse_timestamp("2026-05-04T09:00:00.123+08:00").isoformat() == "2026-05-04T09:00:00.123000+08:00"
    assert v.parse_timestamp("2026-05-04T01:00:00Z") == v.parse_timestamp("2026-05-04T09:00:00+08:00")


def test_context_rules_xapi_00084_to_00096():
    v.statement(statement(context={"registration": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0", "revision": "1",
                                   "platform": "LMS", "language": "zh-Hans-CN",
                                   "statement": {"objectType": "StatementRef",
                                                 "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa1"},
                                   "contextActivities": {"parent": ACTIVITY, "grouping": [ACTIVITY, ACTIVITY]}}))
    for ctx in ({"registration": "should fail"}, {"revision": 5}, {"platform": {}}, {"language": "something"},
                {"language": 12345}, {"statement": {"objectType": "statementref", "id": statement()["id"]}},
                {"contextActivities": "x"}, {"contextActivities": {"consequences": ACTIVITY}},
                {"contextActivities": {"other": [ACTIVITY, {"key": "should fail"}]}}, {"instructor": "x"},
                {"team": {"key": "x"}}, {"extensions": {"should fail": 1}}):
        refused(statement(context=ctx))
    for obj in (AGENT, {"objectType": "StatementRef", "id": statement()["id"]}):
        assert refused(statement(object=obj, context={"platform": "x"})).rule == "xapi-context"


@pytest.mark.parametrize("tag", ["en", "de", "ja", "en-GB", "zh-Hant", "zh-Hans-CN", "sr-Cyrl", "sr-Latn-RS", "tlh",
                                 "cmn", "ase", "es-419", "de-CH-1901", "i-klingon", "x-private", "en-a-bbb-x-a-ccc"])
def test_language_tags_accepted_xapi_00121(tag):
    assert v.is_language_tag(tag)


@pytest.mark.parametrize("tag", ["a12345678", "something", "en-something-AU", "zh-something-ccc", "s-something",
                                 "a12345", "", "en_US", "zh-z-aaa-z-bbb", 5])
def test_language_tags_refused_xapi_00121(tag):
    assert not v.is_language_tag(tag)


@pytest.mark.parametrize("version", ["1.0", "1.0.0", "1.0.3", "1.0.9"])
def test_versions_accepted(version):
    v.statement(statement(version=version))


@pytest.mark.parametrize("version", ["should fail", "0.9.9", "1.1.0", "2.0.0", 1.0])
def test_versions_refused_xapi_00101(version):
    assert refused(statement(version=version)).rule == "xapi-version"


def test_attachments_xapi_00102_to_00107():
    att = {"usageType": "http://adlnet.gov/expapi/attachments/certificate", "display": {"es-MX": "x"},
           "contentType": "text/plain; charset=ascii", "length": 27,
           "sha2": "495395e777cd98da653df9615d09c0fd6bb2f8d4788394cd53c56a3bfdcd848a",
           "fileUrl": "http://over.there.com/file.txt"}
    v.statement(statement(attachments=[att]))
    for wrong in ({"usageType": "should fail"}, {"usageType": "over.there.com/x"}, {"display": "x"},
                  {"display": {"something": "x"}}, {"contentType": 5}, {"length": "should fail"}, {"length": True},
                  {"sha2": 5}, {"fileUrl": "over.there.com/file.txt"},
                  {"usageType": v.SIGNATURE, "contentType": "text/plain"}):
        refused(statement(attachments=[{**att, **wrong}]))
    for bad in ({"k": att}, [12345], ["should fail"]):
        refused(statement(attachments=bad))


def test_the_agent_query_parameter():
    v.agent_parameter({"mbox": "mailto:a@b.cn"})
    v.agent_parameter({"objectType": "Group", "mbox": "mailto:g@b.cn"})
    for wrong in ({"objectType": "Group", "member": [{"mbox": "mailto:a@b.cn"}]}, {}, "wrong"):
        with pytest.raises(v.StatementError):
            v.agent_parameter(wrong)


# ---- property: valid statements are accepted, and one broken property anywhere is refused --------------

iris = st.builds(lambda host, path: f"https://{host}.example.cn/{path}", st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                 st.from_regex(r"[a-z0-9/]{0,12}", fullmatch=True))
agents = st.one_of(
    st.builds(lambda n: {"mbox": f"mailto:u{n}@example.cn"}, st.integers(0, 10**6)),
    st.builds(lambda h, n: {"objectType": "Agent", "account": {"homePage": h, "name": n}}, iris, st.text(min_size=1)))
activities = st.builds(lambda i, name: {"id": i, "definition": {"name": {"zh-CN": name}}}, iris, st.text(min_size=1))
statements = st.builds(
    lambda a, verb, obj, scaled: {"actor": a, "verb": {"id": verb}, "object": obj,
                                  "result": {"score": {"scaled": scaled}, "duration": "PT1H30M"}},
    agents, iris, st.one_of(activities, agents.map(lambda a: {**a, "objectType": "Agent"})),
    st.floats(-1, 1, allow_nan=False))


@given(statements)
def test_property_generated_statements_are_accepted(body):
    v.statement(body)


@given(statements, st.sampled_from(["actor", "verb", "object", "result"]))
def test_property_an_unknown_key_anywhere_is_refused(body, where):
    body[where]["surplus"] = 1
    with pytest.raises(v.StatementError) as error:
        v.statement(body)
    assert error.value.path.startswith(where)


# ---- any JSON anywhere is refused as a StatementError or accepted, never an exception of another kind -------

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=3), max_leaves=8)
_PLACES = [("actor",), ("actor", "objectType"), ("actor", "member"), ("verb",), ("verb", "display"), ("object",),
           ("object", "objectType"), ("object", "definition"), ("object", "definition", "interactionType"),
           ("object", "definition", "choices"), ("object", "definition", "name"), ("result",), ("result", "score"),
           ("result", "score", "raw"), ("result", "duration"), ("context",), ("context", "contextActivities"),
           ("context", "team"), ("context", "statement"), ("timestamp",), ("authority",), ("version",),
           ("attachments",), ("id",)]


@given(st.sampled_from(_PLACES), json_values)
def test_property_any_value_anywhere_is_a_statement_error_or_accepted(place, value):
    body = statement()
    body["object"]["definition"]["interactionType"] = "choice"
    target = body
    for key in place[:-1]:
        target = target.setdefault(key, {}) if isinstance(target.get(key), dict) or key not in target else target[key]
    target[place[-1]] = value
    try:
        v.statement(body)
    except v.StatementError:
        pass


def test_an_interaction_type_that_is_an_object_is_refused():
    body = statement(object={"id": "http://x.cn/a", "definition": {"interactionType": {"a": 1}}})
    assert refused(body).rule == "xapi-interaction"


def test_xapi_2_context_agents_and_groups():
    agents = [{"objectType": "contextAgent", "agent": {"mbox": "mailto:p@example.cn"},
               "relevantTypes": ["https://example.cn/types/player"]}]
    groups = [{"objectType": "contextGroup", "group": {"objectType": "Group", "member": [{"mbox": "mailto:a@b.cn"}]}}]
    body = statement(context={"contextAgents": agents, "contextGroups": groups}, version="2.0.0")
    v.statement(body, v2=True)
    with pytest.raises(v.StatementError):
        v.statement(body)  # not a 1.0.3 statement: no such context properties, no such version
    for wrong in ({"contextAgents": [{**agents[0], "objectType": "Agent"}]},
                  {"contextAgents": [{**agents[0], "relevantTypes": []}]},
                  {"contextAgents": [{**agents[0], "relevantTypes": ["abc"]}]},
                  {"contextAgents": [{"objectType": "contextAgent", "agent": {"objectType": "Agent"}}]},
                  {"contextGroups": [{"objectType": "contextGroup", "group": {"mbox": "mailto:a@b.cn"}}]},
                  {"contextAgents": agents[0]}):
        with pytest.raises(v.StatementError):
            v.statement(statement(context=wrong), v2=True)
