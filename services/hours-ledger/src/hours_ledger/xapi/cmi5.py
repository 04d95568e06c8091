"""cmi5 statements read as study: pure (statements in, sessions, an exam, the rules they break and a record out).

A course names its AUs' activity ids (`xapi_activity_ids`, catalog). A base's statements whose object is one of
them, in a registration the base enrolled (`PUT /v1/registrations/{registration}`: who the learner is), are read
here as cmi5 (the cmi5 spec's §9, `../shared/specs/cmi5_spec.md`):

- statements are ordered by `timestamp` (§9.3: "the order is determined by the value of the timestamp
  property"), then by the order they were stored;
- they are grouped into sessions by the session id extension (§9.6.3.1), per AU;
- a session is `launched` (the LMS) … `initialized` … `terminated` (the AU), or ends `abandoned` (the LMS); a
  `waived` AU (the LMS) has a session of its own;
- a statement that breaks a rule of §9.3 (or another rule below) is kept in the LRS, read as if it were not
  there, and named (`Violation`: the statement, the rule's id, why). The ids are `cmi5-<section>-<rule>`;
  `RULES` lists them.

What a session becomes (a sitting: `schemas.SittingIn`): from its `initialized` to its `terminated` (an
abandoned session: to its last statement from the AU, since the LMS's `abandoned` comes later, when the study had
already stopped); `media_seconds` from Xueshi's `played` result extension (the content actually played in the
session, an ISO 8601 duration, cumulative: the session's last value counts); identity checks from Xueshi's
`identity-checks` context extension (cumulative too). A session launched in `Browse` or `Review` mode (§10.2.2)
records no satisfaction and credits no sitting.

The exam is the AUs' `passed`/`failed` (the passing one, else the last failed), with the number of questions and
of correct answers in Xueshi's `exam` result extension; several judged AUs add up, and pass only if each passed.

An AU meets its moveOn (§10.2.5, read from its `LMS.LaunchData` state document, else the `launched` statement's
moveOn extension, else `CompletedAndPassed`: the registry's online courses credit study and an exam) or is
waived. `waived` never credits by itself: a waived AU adds no sitting and no exam.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import schemas
from .store import ifi_key
from .validation import parse_timestamp

_ADL = "http://adlnet.gov/expapi/verbs/"
_W3ID = "https://w3id.org/xapi/adl/verbs/"
LAUNCHED, INITIALIZED, COMPLETED, PASSED, FAILED, TERMINATED = (
    _ADL + v for v in ("launched", "initialized", "completed", "passed", "failed", "terminated"))
ABANDONED, WAIVED, SATISFIED = (_W3ID + v for v in ("abandoned", "waived", "satisfied"))
DEFINED = frozenset({LAUNCHED, INITIALIZED, COMPLETED, PASSED, FAILED, TERMINATED, ABANDONED, WAIVED, SATISFIED})
LMS_VERBS = frozenset({LAUNCHED, ABANDONED, WAIVED, SATISFIED})
CATEGORY = "https://w3id.org/xapi/cmi5/context/categories/cmi5"
SESSION_ID = "https://w3id.org/xapi/cmi5/context/extensions/sessionid"
MOVE_ON_EXTENSION = "https://w3id.org/xapi/cmi5/context/extensions/moveon"
LAUNCH_MODE_EXTENSION = "https://w3id.org/xapi/cmi5/context/extensions/launchmode"
LAUNCH_DATA = "LMS.LaunchData"
MOVE_ON = frozenset({"Passed", "Completed", "CompletedAndPassed", "CompletedOrPassed", "NotApplicable"})
DEFAULT_MOVE_ON = "CompletedAndPassed"
LAUNCH_MODES = frozenset({"Normal", "Browse", "Review"})
# A sitting's length is capped where the ledger caps it (schemas.SittingIn): ten days of played content.
_MAX_PLAYED = 86_400 * 10

# The rules a statement can break, by id: what the outcome names.
RULES = {
    "cmi5-9.2-actor": "§9.2: the statement's actor is not the registration's learner",
    "cmi5-9.6.3.1-session-id": "§9.6.3.1: the statement carries no session id extension",
    "cmi5-9.6.2.1-category": "§9.6.2.1: a cmi5 verb without the cmi5 category is a cmi5 allowed statement",
    "cmi5-9.3-verb-repeated": "§9.3: a verb is used twice in a session",
    "cmi5-9.3-passed-and-failed": "§9.3: more than one of passed and failed in a session",
    "cmi5-9.3-initialized-first": "§9.3: the AU's first statement in a session is initialized",
    "cmi5-9.3-terminated-last": "§9.3: terminated is the AU's last statement in a session",
    "cmi5-9.3-completed-once": "§9.3: at most one completed per AU in a registration",
    "cmi5-9.3-passed-once": "§9.3: at most one passed per AU in a registration",
    "cmi5-9.3-failed-after-passed": "§9.3: failed does not follow passed in a registration",
    "cmi5-9.3.6-after-abandoned": "§9.3.6: no statement is recorded for a session after abandoned",
    "cmi5-9.3.7-waived-once": "§9.3.7: at most one waived per AU in a registration",
    "cmi5-9.3.7-waived-session": "§9.3.7: a waived session holds nothing but waived (and satisfied)",
    "cmi5-10.2.2-launch-mode": "§10.2.2: in Browse and Review mode the AU sends no satisfaction statements",
    "xueshi-after-record": "the registration's record is already written; later statements credit nothing",
}


@dataclass(frozen=True, slots=True)
class Extensions:
    """Xueshi's own extension IRIs, under the registry's public base URL (each resolves to its JSON Schema)."""

    played: str
    identity_checks: str
    exam: str

    @classmethod
    def under(cls, base_url: str) -> Extensions:
        root = base_url.rstrip("/") + "/xapi/extensions/"
        return cls(root + "played", root + "identity-checks", root + "exam")


def schemas_of(ext: Extensions) -> dict[str, dict[str, Any]]:
    """The extensions' JSON Schemas (draft 2020-12), by name: what `GET /xapi/extensions/{name}` answers."""
    def schema(iri: str, title: str, description: str, body: dict[str, Any], examples: list[Any]) -> dict[str, Any]:
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": iri, "title": title,
                "description": description, **body, "examples": examples}
    count = {"type": "integer", "minimum": 0, "maximum": 100_000}
    return {
        "played": schema(ext.played, "Content played in the session", (
            "A result extension of the AU's statements in a session (cmi5 defined or allowed): the content actually "
            "played in the session so far, as an ISO 8601 duration (days, hours, minutes, seconds). Cumulative: "
            "the session's last value is its media_seconds. Required for online study (过程性记录)."),
            {"type": "string", "pattern": r"^P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$"},
            ["PT42M10S", "PT1H5M"]),
        "identity-checks": schema(ext.identity_checks, "Identity checks in the session (防假学替学)", (
            "A context extension of the AU's statements in a session: the face or other identity checks the "
            "learner passed and failed in the session so far. Cumulative: the session's last value counts. "
            "Required for online study."),
            {"type": "object", "properties": {"passed": count, "failed": count}, "required": ["passed", "failed"],
             "additionalProperties": False}, [{"passed": 3, "failed": 0}]),
        "exam": schema(ext.exam, "The AU's exam (在线考试)", (
            "A result extension of a passed or failed statement: the number of questions of the exam and of "
            "correct answers. The plan requires at least 10 questions (每门课程考试题不少于10题)."),
            {"type": "object", "properties": {"questions": count, "correct": count},
             "required": ["questions", "correct"], "additionalProperties": False},
            [{"questions": 20, "correct": 18}]),
    }


@dataclass(frozen=True, slots=True)
class Violation:
    statement_id: str
    rule: str
    detail: str

    def json(self) -> dict[str, str]:
        return {"statement_id": self.statement_id, "rule": self.rule, "detail": self.detail}


@dataclass(slots=True)
class Session:
    au: str
    session_id: str
    launch_mode: str = "Normal"
    launched: bool = False
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    ended_by: str | None = None  # terminated | abandoned
    last_au_at: dt.datetime | None = None
    media_seconds: int | None = None
    identity_checks: tuple[int, int] | None = None
    waived: bool = False
    launched_move_on: str | None = None  # the launched statement's moveOn extension
    statements: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.started_at is not None and self.ended_by is None

    @property
    def sitting(self) -> bool:
        """Whether it is study the ledger is asked to credit."""
        return self.started_at is not None and self.ended_by is not None and self.launch_mode == "Normal"

    @property
    def end(self) -> dt.datetime | None:
        if self.ended_by == "abandoned":
            return self.last_au_at
        return self.ended_at

    def json(self) -> dict[str, Any]:
        return {"au": self.au, "session_id": self.session_id, "launch_mode": self.launch_mode,
                "started_at": self.started_at, "ended_at": self.end, "ended_by": self.ended_by,
                "media_seconds": self.media_seconds,
                "identity_checks": None if self.identity_checks is None else
                {"passed": self.identity_checks[0], "failed": self.identity_checks[1]},
                "waived": self.waived, "sitting": self.sitting, "statements": self.statements}


@dataclass(slots=True)
class Unit:
    """An AU of the registration: its moveOn and what the learner achieved in it."""

    au: str
    move_on: str
    completed: bool = False
    passed: bool = False
    waived: bool = False
    judged: tuple[bool, int, int] | None = None  # (passed, questions, correct) of its deciding passed/failed

    @property
    def satisfied(self) -> bool:
        if self.waived or self.move_on == "NotApplicable":
            return True
        return {"Passed": self.passed, "Completed": self.completed,
                "CompletedAndPassed": self.completed and self.passed,
                "CompletedOrPassed": self.completed or self.passed}[self.move_on]

    def json(self) -> dict[str, Any]:
        return {"au": self.au, "move_on": self.move_on, "completed": self.completed, "passed": self.passed,
                "waived": self.waived, "satisfied": self.satisfied}


@dataclass(slots=True)
class Reading:
    sessions: list[Session]
    units: list[Unit]
    violations: list[Violation]

    @property
    def open_sessions(self) -> list[Session]:
        return [s for s in self.sessions if s.open]

    @property
    def satisfied(self) -> bool:
        return bool(self.units) and all(u.satisfied for u in self.units)

    def exam(self) -> schemas.ExamIn | None:
        judged = [u.judged for u in self.units if u.judged is not None]
        if not judged:
            return None
        return schemas.ExamIn(questions=min(sum(j[1] for j in judged), 10_000),
                              correct=min(sum(j[2] for j in judged), 10_000), passed=all(j[0] for j in judged))

    def sittings(self, course_mode: str) -> list[schemas.SittingIn]:
        out = []
        for s in sorted((s for s in self.sessions if s.sitting), key=lambda s: s.started_at):  # type: ignore[arg-type,return-value]
            checks = None if s.identity_checks is None else schemas.IdentityChecks(
                passed=s.identity_checks[0], failed=s.identity_checks[1])
            out.append(schemas.SittingIn(started_at=s.started_at, ended_at=s.end or s.started_at,
                                         media_seconds=s.media_seconds, identity_checks=checks,
                                         mode="online" if course_mode == "mixed" else None))
        return out


# ---- reading values -------------------------------------------------------------------------------

_PLAYED = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.\d+)?S)?)?$")


def played_seconds(value: Any) -> int | None:
    """A `played` duration in whole seconds (None when it is not one, or beyond ten days)."""
    if not isinstance(value, str) or value in ("P", "PT") or value.endswith("T"):
        return None
    match = _PLAYED.match(value)
    if not match:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    return total if total <= _MAX_PLAYED else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000 else None


def identity_checks(value: Any) -> tuple[int, int] | None:
    if not isinstance(value, dict) or set(value) != {"passed", "failed"}:
        return None
    passed, failed = _count(value["passed"]), _count(value["failed"])
    return None if passed is None or failed is None else (passed, failed)


def exam_counts(value: Any) -> tuple[int, int] | None:
    if not isinstance(value, dict) or set(value) != {"questions", "correct"}:
        return None
    questions, correct = _count(value["questions"]), _count(value["correct"])
    if questions is None or correct is None or correct > questions:
        return None
    return questions, correct


def _extensions(part: Any) -> dict[str, Any]:
    value = (part or {}).get("extensions") if isinstance(part, dict) else None
    return value if isinstance(value, dict) else {}


def _categories(statement: dict[str, Any]) -> set[str]:
    items = ((statement.get("context") or {}).get("contextActivities") or {}).get("category") or []
    return {str(c.get("id")) for c in (items if isinstance(items, list) else [items]) if isinstance(c, dict)}


def launch_settings(document: Any) -> tuple[str | None, str | None]:
    """(moveOn, launchMode) of an `LMS.LaunchData` document (None where it gives no valid one)."""
    if not isinstance(document, dict):
        return None, None
    move_on, mode = document.get("moveOn"), document.get("launchMode")
    return (move_on if move_on in MOVE_ON else None), (mode if mode in LAUNCH_MODES else None)


# ---- the reading ------------------------------------------------------------------------------------

def read(statements: Sequence[dict[str, Any]], aus: Sequence[str], learner: str,
         launch_data: dict[str, Any], ext: Extensions) -> Reading:
    """The registration as cmi5 study. `statements`: the registration's statements about the course's AUs, not
    voided, in the order they were stored; `learner`: the enrolled actor's identifier (`store.ifi_key`);
    `launch_data`: each AU's `LMS.LaunchData` document (parsed JSON), where the LMS wrote one."""
    violations: list[Violation] = []
    units = {au: Unit(au, launch_settings(launch_data.get(au))[0] or "") for au in aus}
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    keyed = []
    for index, statement in enumerate(statements):
        at = parse_timestamp(statement.get("timestamp")) or dt.datetime.min.replace(tzinfo=dt.UTC)
        keyed.append((at, index, statement))
    keyed.sort(key=lambda k: (k[0], k[1]))
    for at, _, statement in keyed:
        au = (statement.get("object") or {}).get("id")
        if au not in units:
            continue
        sid = _extensions(statement.get("context")).get(SESSION_ID)
        if ifi_key(statement.get("actor")) != learner:
            violations.append(Violation(statement["id"], "cmi5-9.2-actor", RULES["cmi5-9.2-actor"]))
        elif not isinstance(sid, str) or not sid:
            violations.append(Violation(statement["id"], "cmi5-9.6.3.1-session-id", RULES["cmi5-9.6.3.1-session-id"]))
        else:
            grouped.setdefault((au, sid), []).append({**statement, "_at": at})
    sessions = [_session(au, sid, items, units[au], launch_data.get(au), violations, ext)
                for (au, sid), items in grouped.items()]
    for unit in units.values():
        if not unit.move_on:
            launched = [s.launched_move_on for s in sessions if s.au == unit.au and s.launched_move_on]
            unit.move_on = launched[-1] if launched else DEFAULT_MOVE_ON
    return Reading(sessions, list(units.values()), violations)


def _session(au: str, sid: str, items: list[dict[str, Any]], unit: Unit, launch_data: Any,
             violations: list[Violation], ext: Extensions) -> Session:
    session = Session(au, sid)
    data_mode = launch_settings(launch_data)[1]
    if data_mode:
        session.launch_mode = data_mode
    seen: set[str] = set()
    judged = False

    def broke(statement: dict[str, Any], rule: str) -> None:
        violations.append(Violation(statement["id"], rule, RULES[rule]))

    for st in items:
        verb = str((st.get("verb") or {}).get("id"))
        at: dt.datetime = st["_at"]
        defined = verb in DEFINED and CATEGORY in _categories(st)
        if verb in DEFINED and not defined and verb not in (SATISFIED,):
            broke(st, "cmi5-9.6.2.1-category")
        if session.ended_by == "abandoned":
            broke(st, "cmi5-9.3.6-after-abandoned")
            continue
        if session.ended_by == "terminated":
            broke(st, "cmi5-9.3-terminated-last")
            continue
        if session.waived and verb != SATISFIED:
            broke(st, "cmi5-9.3.7-waived-session")
            continue
        if defined and verb in LMS_VERBS:
            if verb == WAIVED:
                if unit.waived:
                    broke(st, "cmi5-9.3.7-waived-once")
                    continue
                if seen or session.launched:
                    broke(st, "cmi5-9.3.7-waived-session")
                    continue
                unit.waived = session.waived = True
            elif verb == ABANDONED:
                session.ended_by, session.ended_at = "abandoned", at
            elif verb == LAUNCHED:
                if session.launched:
                    broke(st, "cmi5-9.3-verb-repeated")
                    continue
                session.launched = True
                context = _extensions(st.get("context"))
                if not data_mode and context.get(LAUNCH_MODE_EXTENSION) in LAUNCH_MODES:
                    session.launch_mode = context[LAUNCH_MODE_EXTENSION]
                if context.get(MOVE_ON_EXTENSION) in MOVE_ON:
                    session.launched_move_on = context[MOVE_ON_EXTENSION]
            session.statements.append(st["id"])
            continue
        # the AU's statements
        if session.started_at is None:
            if defined and verb == INITIALIZED:
                session.started_at = session.last_au_at = at
                seen.add(verb)
                session.statements.append(st["id"])
            else:
                broke(st, "cmi5-9.3-initialized-first")
            continue
        if defined:
            if verb in seen:
                broke(st, "cmi5-9.3-verb-repeated")
                continue
            if verb in (PASSED, FAILED, COMPLETED) and session.launch_mode != "Normal":
                broke(st, "cmi5-10.2.2-launch-mode")
                continue
            if verb in (PASSED, FAILED):
                if judged:
                    broke(st, "cmi5-9.3-passed-and-failed")
                    continue
                if unit.passed:
                    broke(st, "cmi5-9.3-passed-once" if verb == PASSED else "cmi5-9.3-failed-after-passed")
                    continue
                judged = True
                counts = exam_counts(_extensions(st.get("result")).get(ext.exam)) or (0, 0)
                unit.judged = (verb == PASSED, *counts)
                unit.passed = verb == PASSED
            if verb == COMPLETED:
                if unit.completed:
                    broke(st, "cmi5-9.3-completed-once")
                    continue
                unit.completed = True
            seen.add(verb)
            if verb == TERMINATED:
                session.ended_by, session.ended_at = "terminated", at
        session.last_au_at = at
        session.statements.append(st["id"])
        played = played_seconds(_extensions(st.get("result")).get(ext.played))
        if played is not None:
            session.media_seconds = played
        checks = identity_checks(_extensions(st.get("context")).get(ext.identity_checks))
        if checks is not None:
            session.identity_checks = checks
    return session


# ---- the record ---------------------------------------------------------------------------------------

def external_id(registration: Any) -> str:
    """The record's idempotency key: one record per registration."""
    return f"cmi5:{str(registration).lower()}"


def pending_reason(reading: Reading) -> str | None:
    """Why the registration is not a record yet (None: it is ready to be one)."""
    if reading.open_sessions:
        return "a session is open (it ends at terminated, or abandoned from the LMS)"
    if not reading.satisfied:
        waiting = [u.au for u in reading.units if not u.satisfied]
        return f"moveOn is not met for {waiting[0]}" + (f" and {len(waiting) - 1} more AU" if len(waiting) > 1 else "")
    if not any(s.sitting for s in reading.sessions):
        return "no session to credit (a waived AU credits nothing by itself)"
    return None


def record(reading: Reading, registration: Any, course_id: Any, course_mode: str,
           person: dict[str, Any]) -> schemas.RecordIn:
    """The registration's record, as every other door pushes it (`person`: id_type, id_number, name, unit)."""
    return schemas.RecordIn.model_validate({
        "external_id": external_id(registration), "course_id": course_id, **person,
        "sittings": reading.sittings(course_mode)[:200], "exam": reading.exam()})
