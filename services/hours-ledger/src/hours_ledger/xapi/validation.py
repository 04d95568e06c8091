"""xAPI 1.0.3 statements, validated as the Data specification requires of an LRS (xAPI-Data §2, §4), before
anything is stored: a statement that breaks a rule is refused as a whole (400), naming the property (its dotted
path, `context.contextActivities.parent.0.id`) and the rule. Pure: JSON values in, a `StatementError` or nothing
out. The same rules hold wherever an object can appear (the actor, the authority, the context's instructor and
team, the object, the same places inside a SubStatement).

The requirement ids of ADL's conformance suite (XAPI-000nn) are named next to the rules they test.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"


class StatementError(Exception):
    """A rule the statement breaks: `path` (dotted, "" for the statement itself), `rule` (a slug), `detail`."""

    def __init__(self, path: str, rule: str, detail: str) -> None:
        super().__init__(f"{path or 'statement'}: {detail}")
        self.path, self.rule, self.detail = path, rule, detail


# ---- value formats --------------------------------------------------------------------------------

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# An absolute IRI, best effort (xAPI-Data §4.1: "an IRI"): a scheme, then something, and no white space.
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_MBOX = re.compile(r"^mailto:[^@\s]+@[^@\s]+$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_DURATION = re.compile(
    r"^P(?:\d+(?:[.,]\d+)?W|(?=\d|T\d)(?:\d+(?:[.,]\d+)?Y)?(?:\d+(?:[.,]\d+)?M)?(?:\d+(?:[.,]\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:[.,]\d+)?H)?(?:\d+(?:[.,]\d+)?M)?(?:\d+(?:[.,]\d+)?S)?)?)$")
_TIMESTAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?(Z|[+-]\d\d(?::?\d\d)?)?$")
_VERSION = re.compile(r"^1\.0(\.\d+)?$")
_VERSION_2 = re.compile(r"^(1\.0|2\.0)(\.\d+)?$")
# Whether the statement being checked was sent as xAPI 2.0 (its request's X-Experience-API-Version: 2.0.x):
# 2.0 adds context agents and groups, and statements of version 2.0.x.
_V2: contextvars.ContextVar[bool] = contextvars.ContextVar("xapi_v2", default=False)
_MIME = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$")

# RFC 5646 language tags (the `langtag` production, private use, and the grandfathered tags), case-insensitive.
_LANGTAG = re.compile(
    r"^(?:(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})"  # language, with up to three extlangs
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|\d{3}))?"  # region
    r"(?:-(?:[a-z\d]{5,8}|\d[a-z\d]{3}))*"  # variants
    r"(?:-[\da-wy-z](?:-[a-z\d]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-z\d]{1,8})+)?"  # private use
    r"|x(?:-[a-z\d]{1,8})+)$", re.IGNORECASE)
_GRANDFATHERED = {t.lower() for t in (
    "en-GB-oed", "i-ami", "i-bnn", "i-default", "i-enochian", "i-hak", "i-klingon", "i-lux", "i-mingo", "i-navajo",
    "i-pwn", "i-tao", "i-tay", "i-tsu", "sgn-BE-FR", "sgn-BE-NL", "sgn-CH-DE", "art-lojban", "cel-gaulish",
    "no-bok", "no-nyn", "zh-guoyu", "zh-hakka", "zh-min", "zh-min-nan", "zh-xiang")}

INTERACTION_TYPES = {"true-false", "choice", "fill-in", "long-fill-in", "matching", "performance", "sequencing",
                     "likert", "numeric", "other"}
_COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(_UUID.match(value))


def is_iri(value: Any) -> bool:
    return isinstance(value, str) and bool(_IRI.match(value))


def is_language_tag(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if value.lower() in _GRANDFATHERED:
        return True
    if not _LANGTAG.match(value):
        return False
    singletons = [part.lower() for part in value.split("-")[1:] if len(part) == 1]
    return "x" in singletons or len(singletons) == len(set(singletons))  # an extension's singleton once


def parse_timestamp(value: Any) -> dt.datetime | None:
    """An xAPI timestamp (ISO 8601 date and time) as an aware datetime (UTC when it gives no offset), or None when
    it is not one. A negative zero offset (-00, -0000, -00:00: "local time unknown" in RFC 3339) is refused
    (xAPI-Data §4.5, XAPI-00122)."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone and zone.startswith("-") and set(zone[1:].replace(":", "")) == {"0"}:
        return None
    try:
        if zone in (None, "Z"):
            offset: dt.tzinfo = dt.UTC
        else:
            shift = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[-2:]) if len(zone) > 3 else 0)
            offset = dt.timezone(shift if zone[0] == "+" else -shift)
        micro = int((fraction or ".0")[1:7].ljust(6, "0"))
        return dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro,
                           tzinfo=offset)
    except ValueError:
        return None


# ---- the checks ------------------------------------------------------------------------------------

def _fail(path: str, rule: str, detail: str) -> StatementError:
    return StatementError(path, rule, detail)


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def _object(value: Any, path: str, allowed: set[str] | frozenset[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object with only `allowed` keys (exactly, case-sensitive: XAPI-00008/00010), the `required` ones
    present, and no null value (XAPI-00001)."""
    if not isinstance(value, dict):
        raise _fail(path, "xapi-type", "must be a JSON object")
    for key, item in value.items():
        if key not in allowed:
            raise _fail(_join(path, key), "xapi-unknown-property", f"{key!r} is not a property here")
        if item is None:
            raise _fail(_join(path, key), "xapi-null", "must not be null")
    for key in required:
        if key not in value:
            raise _fail(_join(path, key), "xapi-required", "is required")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, "xapi-type", "must be a string")
    return value


def _iri(value: Any, path: str) -> str:
    if not is_iri(value):
        raise _fail(path, "xapi-iri", "must be an absolute IRI (a scheme, then the rest, no spaces)")
    return str(value)


def _uuid(value: Any, path: str) -> str:
    if not is_uuid(value):
        raise _fail(path, "xapi-uuid", "must be a UUID (8-4-4-4-12 hexadecimal digits)")
    return str(value)


def _boolean(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise _fail(path, "xapi-type", "must be true or false")


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, "xapi-type", "must be a number")
    return float(value)


def language_map(value: Any, path: str) -> None:
    if not isinstance(value, dict):
        raise _fail(path, "xapi-language-map", "must be a language map (an object of language tags to strings)")
    for key, text in value.items():
        if not is_language_tag(key):
            raise _fail(_join(path, key), "xapi-language-tag", f"{key!r} is not an RFC 5646 language tag")
        if not isinstance(text, str):
            raise _fail(_join(path, key), "xapi-type", "must be a string")


def extensions(value: Any, path: str) -> None:
    """An object whose keys are IRIs; its values are any JSON, null included (XAPI-00118..00120)."""
    if not isinstance(value, dict):
        raise _fail(path, "xapi-type", "must be a JSON object")
    for key in value:
        if not is_iri(key):
            raise _fail(_join(path, key), "xapi-iri", f"extension keys must be IRIs, not {key!r}")


_AGENT_KEYS = frozenset({"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"})
_GROUP_KEYS = _AGENT_KEYS | {"member"}
_IFIS = ("mbox", "mbox_sha1sum", "openid", "account")


def _ifis(actor: dict[str, Any], path: str) -> list[str]:
    found = [key for key in _IFIS if key in actor]
    for key in found:
        where = _join(path, key)
        value = actor[key]
        if key == "mbox" and not (isinstance(value, str) and _MBOX.match(value)):
            raise _fail(where, "xapi-ifi", "an mbox is mailto:name@domain")
        if key == "mbox_sha1sum" and not (isinstance(value, str) and _SHA1.match(value)):
            raise _fail(where, "xapi-ifi", "an mbox_sha1sum is 40 hexadecimal digits")
        if key == "openid":
            _iri(value, where)
        if key == "account":
            account = _object(value, where, {"homePage", "name"}, ("homePage", "name"))
            _iri(account["homePage"], _join(where, "homePage"))
            _string(account["name"], _join(where, "name"))
    return found


def agent(value: Any, path: str) -> None:
    """An Agent: objectType absent or "Agent", exactly one inverse functional identifier (XAPI-00034)."""
    actor = _object(value, path, _AGENT_KEYS)
    if actor.get("objectType", "Agent") != "Agent":
        raise _fail(_join(path, "objectType"), "xapi-object-type", 'an Agent\'s objectType is "Agent"')
    if "name" in actor:
        _string(actor["name"], _join(path, "name"))
    if len(_ifis(actor, path)) != 1:
        raise _fail(path, "xapi-ifi", "an Agent has exactly one of mbox, mbox_sha1sum, openid, account")


def group(value: Any, path: str) -> dict[str, Any]:
    """A Group: identified (exactly one IFI; members optional) or anonymous (no IFI; members required)."""
    actor = _object(value, path, _GROUP_KEYS, ("objectType",))
    if actor["objectType"] != "Group":
        raise _fail(_join(path, "objectType"), "xapi-object-type", 'a Group\'s objectType is "Group"')
    if "name" in actor:
        _string(actor["name"], _join(path, "name"))
    ifis = _ifis(actor, path)
    if len(ifis) > 1:
        raise _fail(path, "xapi-ifi", "a Group has at most one of mbox, mbox_sha1sum, openid, account")
    if not ifis and "member" not in actor:
        raise _fail(_join(path, "member"), "xapi-required", "an anonymous Group (no identifier) lists its members")
    if "member" in actor:
        members = actor["member"]
        if not isinstance(members, list):
            raise _fail(_join(path, "member"), "xapi-type", "must be an array of Agents")
        for i, member in enumerate(members):
            agent(member, _join(_join(path, "member"), i))
    return actor


def actor(value: Any, path: str) -> None:
    """An Agent or a Group (an objectType of "Group" says which)."""
    if isinstance(value, dict) and value.get("objectType") == "Group":
        group(value, path)
    else:
        agent(value, path)


def _components(value: Any, path: str) -> None:
    if not isinstance(value, list):
        raise _fail(path, "xapi-type", "must be an array of interaction components")
    seen = set()
    for i, item in enumerate(value):
        where = _join(path, i)
        component = _object(item, where, {"id", "description"}, ("id",))
        ident = _string(component["id"], _join(where, "id"))
        if ident in seen:
            raise _fail(_join(where, "id"), "xapi-interaction", "interaction components' ids differ within a list")
        seen.add(ident)
        if "description" in component:
            language_map(component["description"], _join(where, "description"))


_DEFINITION_KEYS = frozenset({"name", "description", "type", "moreInfo", "interactionType", "correctResponsesPattern",
                              *_COMPONENT_LISTS, "extensions"})


def activity(value: Any, path: str) -> None:
    obj = _object(value, path, {"objectType", "id", "definition"}, ("id",))
    if obj.get("objectType", "Activity") != "Activity":
        raise _fail(_join(path, "objectType"), "xapi-object-type", 'an Activity\'s objectType is "Activity"')
    _iri(obj["id"], _join(path, "id"))
    if "definition" not in obj:
        return
    where = _join(path, "definition")
    definition = _object(obj["definition"], where, _DEFINITION_KEYS)
    for key in ("name", "description"):
        if key in definition:
            language_map(definition[key], _join(where, key))
    for key in ("type", "moreInfo"):
        if key in definition:
            _iri(definition[key], _join(where, key))
    if "extensions" in definition:
        extensions(definition["extensions"], _join(where, "extensions"))
    interactive = [key for key in ("correctResponsesPattern", *_COMPONENT_LISTS) if key in definition]
    if "interactionType" in definition:
        if not isinstance(definition["interactionType"], str) or definition["interactionType"] not in INTERACTION_TYPES:
            raise _fail(_join(where, "interactionType"), "xapi-interaction",
                        f"one of {', '.join(sorted(INTERACTION_TYPES))}")
    elif interactive:  # XAPI-00064
        raise _fail(_join(where, "interactionType"), "xapi-required",
                    f"an interaction's definition ({interactive[0]}) says its interactionType")
    if "correctResponsesPattern" in definition:
        pattern = definition["correctResponsesPattern"]
        if not isinstance(pattern, list) or not all(isinstance(p, str) for p in pattern):
            raise _fail(_join(where, "correctResponsesPattern"), "xapi-type", "must be an array of strings")
    for key in _COMPONENT_LISTS:
        if key in definition:
            _components(definition[key], _join(where, key))


def statement_ref(value: Any, path: str) -> None:
    ref = _object(value, path, {"objectType", "id"}, ("objectType", "id"))
    if ref["objectType"] != "StatementRef":
        raise _fail(_join(path, "objectType"), "xapi-object-type", 'a StatementRef\'s objectType is "StatementRef"')
    _uuid(ref["id"], _join(path, "id"))


def _object_type(value: Any) -> str:
    return value.get("objectType", "Activity") if isinstance(value, dict) else "Activity"


def statement_object(value: Any, path: str, *, sub: bool) -> None:
    kind = _object_type(value)
    if kind == "Activity":
        activity(value, path)
    elif kind == "Agent":
        agent(value, path)
    elif kind == "Group":
        group(value, path)
    elif kind == "StatementRef":
        statement_ref(value, path)
    elif kind == "SubStatement":
        if sub:  # XAPI-00071
            raise _fail(_join(path, "objectType"), "xapi-substatement", "a SubStatement holds no SubStatement")
        statement(value, path, sub=True)
    else:
        raise _fail(_join(path, "objectType"), "xapi-object-type",
                    "one of Activity, Agent, Group, StatementRef, SubStatement")


def result(value: Any, path: str) -> None:
    res = _object(value, path, {"score", "success", "completion", "response", "duration", "extensions"})
    for key in ("success", "completion"):
        if key in res:
            _boolean(res[key], _join(path, key))
    if "response" in res:
        _string(res["response"], _join(path, "response"))
    if "duration" in res and not (isinstance(res["duration"], str) and _DURATION.match(res["duration"])):
        raise _fail(_join(path, "duration"), "xapi-duration", "must be an ISO 8601 duration (PT1H30M, P4W)")
    if "extensions" in res:
        extensions(res["extensions"], _join(path, "extensions"))
    if "score" in res:
        where = _join(path, "score")
        score = _object(res["score"], where, {"scaled", "raw", "min", "max"})
        numbers = {key: _number(score[key], _join(where, key)) for key in score}
        if "scaled" in numbers and not -1 <= numbers["scaled"] <= 1:  # XAPI-00083
            raise _fail(_join(where, "scaled"), "xapi-score", "scaled lies between -1 and 1")
        low, high, raw = numbers.get("min"), numbers.get("max"), numbers.get("raw")
        if low is not None and high is not None and low > high:  # XAPI-00080/00081
            raise _fail(_join(where, "min"), "xapi-score", "min is at most max")
        if raw is not None and ((low is not None and raw < low) or (high is not None and raw > high)):
            raise _fail(_join(where, "raw"), "xapi-score", "raw lies between min and max")  # XAPI-00082


_CONTEXT_KEYS = frozenset({"registration", "instructor", "team", "contextActivities", "revision", "platform",
                           "language", "statement", "extensions"})
_CONTEXT_KEYS_2 = _CONTEXT_KEYS | {"contextAgents", "contextGroups"}


def _context_members(value: Any, path: str, kind: str, member: str) -> None:
    """xAPI 2.0's contextAgents (kind contextAgent, an Agent) or contextGroups (contextGroup, a Group), each with
    optional relevantTypes: a non-empty array of IRIs."""
    if not isinstance(value, list):
        raise _fail(path, "xapi-type", f"must be an array of {kind} objects")
    for i, item in enumerate(value):
        where = _join(path, i)
        one = _object(item, where, {"objectType", member, "relevantTypes"}, ("objectType", member))
        if one["objectType"] != kind:
            raise _fail(_join(where, "objectType"), "xapi-object-type", f'the objectType is "{kind}"')
        (agent if member == "agent" else group)(one[member], _join(where, member))
        if "relevantTypes" in one:
            types = one["relevantTypes"]
            if not isinstance(types, list) or not types:
                raise _fail(_join(where, "relevantTypes"), "xapi-type", "must be a non-empty array of IRIs")
            for n, iri in enumerate(types):
                _iri(iri, _join(_join(where, "relevantTypes"), n))


def context(value: Any, path: str, object_kind: str) -> None:
    ctx = _object(value, path, _CONTEXT_KEYS_2 if _V2.get() else _CONTEXT_KEYS)
    if "contextAgents" in ctx:
        _context_members(ctx["contextAgents"], _join(path, "contextAgents"), "contextAgent", "agent")
    if "contextGroups" in ctx:
        _context_members(ctx["contextGroups"], _join(path, "contextGroups"), "contextGroup", "group")
    if "registration" in ctx:
        _uuid(ctx["registration"], _join(path, "registration"))
    if "instructor" in ctx:
        actor(ctx["instructor"], _join(path, "instructor"))
    if "team" in ctx:
        if not (isinstance(ctx["team"], dict) and ctx["team"].get("objectType") == "Group"):
            raise _fail(_join(path, "team"), "xapi-object-type", "the team is a Group")
        group(ctx["team"], _join(path, "team"))
    for key in ("revision", "platform"):
        if key in ctx:
            _string(ctx[key], _join(path, key))
            if object_kind != "Activity":  # XAPI-00084/00085
                raise _fail(_join(path, key), "xapi-context", f"{key} is given only when the object is an Activity")
    if "language" in ctx and not is_language_tag(ctx["language"]):
        raise _fail(_join(path, "language"), "xapi-language-tag", "must be an RFC 5646 language tag")
    if "statement" in ctx:
        statement_ref(ctx["statement"], _join(path, "statement"))
    if "extensions" in ctx:
        extensions(ctx["extensions"], _join(path, "extensions"))
    if "contextActivities" in ctx:
        where = _join(path, "contextActivities")
        activities = _object(ctx["contextActivities"], where, {"parent", "grouping", "category", "other"})
        for key, item in activities.items():
            items = item if isinstance(item, list) else [item]
            for i, one in enumerate(items):
                activity(one, _join(_join(where, key), i))


_ATTACHMENT_KEYS = frozenset({"usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"})


def attachments(value: Any, path: str) -> None:
    if not isinstance(value, list):
        raise _fail(path, "xapi-type", "must be an array of attachments")
    for i, item in enumerate(value):
        where = _join(path, i)
        att = _object(item, where, _ATTACHMENT_KEYS, ("usageType", "display", "contentType", "length", "sha2"))
        _iri(att["usageType"], _join(where, "usageType"))
        language_map(att["display"], _join(where, "display"))
        if "description" in att:
            language_map(att["description"], _join(where, "description"))
        if not (isinstance(att["contentType"], str) and _MIME.match(att["contentType"])):
            raise _fail(_join(where, "contentType"), "xapi-attachment", "must be an Internet media type")
        if isinstance(att["length"], bool) or not isinstance(att["length"], int) or att["length"] < 0:
            raise _fail(_join(where, "length"), "xapi-type", "must be a whole number of octets")
        _string(att["sha2"], _join(where, "sha2"))
        if "fileUrl" in att:
            _iri(att["fileUrl"], _join(where, "fileUrl"))
        if att["usageType"] == SIGNATURE and att["contentType"] != "application/octet-stream":
            raise _fail(_join(where, "contentType"), "xapi-signature",
                        "a signature attachment's contentType is application/octet-stream")


_STATEMENT_KEYS = frozenset({"id", "actor", "verb", "object", "result", "context", "timestamp", "stored", "authority",
                             "version", "attachments"})
_SUBSTATEMENT_KEYS = frozenset({"objectType", "actor", "verb", "object", "result", "context", "timestamp",
                                "attachments"})


def authority(value: Any, path: str) -> None:
    """An Agent, or an anonymous Group of exactly two Agents (OAuth's consumer and user: XAPI-00098..00100)."""
    if isinstance(value, dict) and value.get("objectType") == "Group":
        authority_group = group(value, path)
        if any(key in authority_group for key in _IFIS) or len(authority_group.get("member", [])) != 2:
            raise _fail(path, "xapi-authority", "an authority Group is anonymous and has exactly two members")
    else:
        agent(value, path)


def statement(value: Any, path: str = "", *, sub: bool = False, v2: bool | None = None) -> None:
    """Raise StatementError for the first rule `value`, a statement (or, `sub`, a SubStatement), breaks. `v2`: the
    statement was sent as xAPI 2.0."""
    if v2 is not None:
        token = _V2.set(v2)
        try:
            statement(value, path, sub=sub)
        finally:
            _V2.reset(token)
        return
    stmt = _object(value, path, _SUBSTATEMENT_KEYS if sub else _STATEMENT_KEYS, ("actor", "verb", "object"))
    if sub and stmt.get("objectType") != "SubStatement":
        raise _fail(_join(path, "objectType"), "xapi-object-type", 'a SubStatement\'s objectType is "SubStatement"')
    if "id" in stmt:
        _uuid(stmt["id"], _join(path, "id"))
    actor(stmt["actor"], _join(path, "actor"))
    verb = _object(stmt["verb"], _join(path, "verb"), {"id", "display"}, ("id",))
    _iri(verb["id"], _join(path, "verb.id"))
    if "display" in verb:
        language_map(verb["display"], _join(path, "verb.display"))
    statement_object(stmt["object"], _join(path, "object"), sub=sub)
    kind = _object_type(stmt["object"])
    if verb["id"] == VOIDED and kind != "StatementRef":  # XAPI-00019
        raise _fail(_join(path, "object"), "xapi-voiding", "a voiding statement's object is a StatementRef")
    if "result" in stmt:
        result(stmt["result"], _join(path, "result"))
    if "context" in stmt:
        context(stmt["context"], _join(path, "context"), kind)
    for key in ("timestamp", "stored"):
        if key in stmt and parse_timestamp(stmt[key]) is None:
            raise _fail(_join(path, key), "xapi-timestamp", "must be an ISO 8601 date and time (2026-05-04T09:00:00Z)")
    if "authority" in stmt:
        authority(stmt["authority"], _join(path, "authority"))
    versions = _VERSION_2 if _V2.get() else _VERSION
    if "version" in stmt and not (isinstance(stmt["version"], str) and versions.match(stmt["version"])):
        raise _fail(_join(path, "version"), "xapi-version", "must be 1.0.x" + (" or 2.0.x" if _V2.get() else ""))
    if "attachments" in stmt:
        attachments(stmt["attachments"], _join(path, "attachments"))


def agent_parameter(value: Any) -> Mapping[str, Any]:
    """The `agent` query parameter: an Agent or an identified Group (one IFI)."""
    if isinstance(value, dict) and value.get("objectType") == "Group":
        found = group(value, "agent")
        if not any(key in found for key in _IFIS):
            raise _fail("agent", "xapi-ifi", "the agent parameter identifies an Agent or a Group by one identifier")
        return found
    agent(value, "agent")
    return value  # type: ignore[no-any-return]
