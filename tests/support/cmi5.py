"""cmi5 statements as an LMS and its AUs send them: a session, a waiver, launch data (for the tests)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from hours_ledger.xapi import cmi5

LEARNER = {"objectType": "Agent", "name": "陈小明", "account": {"homePage": "https://lms.example.cn", "name": "u-1001"}}
AU = "https://courses.example.cn/ai-gov/au/1"
EXT = cmi5.Extensions.under("http://127.0.0.1:8002")


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"PT{hours}H{minutes}M{secs}S"


@dataclass
class Emitter:
    """Builds a registration's statements; `ext` names Xueshi's extensions as the ledger under test does."""

    registration: str = field(default_factory=lambda: str(uuid.uuid4()))
    actor: dict[str, Any] = field(default_factory=lambda: dict(LEARNER))
    ext: cmi5.Extensions = EXT

    def statement(self, verb: str, at: dt.datetime, session: str, *, au: str = AU, defined: bool = True,
                  result: dict[str, Any] | None = None, context_extensions: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
        context: dict[str, Any] = {"registration": self.registration,
                                   "extensions": {cmi5.SESSION_ID: session, **(context_extensions or {})}}
        if defined:
            context["contextActivities"] = {"category": [{"id": cmi5.CATEGORY}]}
        body: dict[str, Any] = {"id": str(uuid.uuid4()), "actor": self.actor, "verb": {"id": verb},
                                "object": {"id": au, "objectType": "Activity"}, "context": context,
                                "timestamp": iso(at)}
        if result:
            body["result"] = result
        return body

    def session(self, start: dt.datetime, end: dt.datetime, *, au: str = AU, played: int | None = None,
                checks: tuple[int, int] | None = (2, 0), exam: tuple[bool, int, int] | None = None,
                completed: bool = True, ended: str = "terminated", move_on: str = "CompletedAndPassed",
                session: str | None = None) -> list[dict[str, Any]]:
        """launched, initialized, (completed), (passed|failed), terminated (or the LMS's abandoned)."""
        sid = session or str(uuid.uuid4())
        ctx = {} if checks is None else {self.ext.identity_checks: {"passed": checks[0], "failed": checks[1]}}
        out = [self.statement(cmi5.LAUNCHED, start - dt.timedelta(seconds=5), sid, au=au,
                              context_extensions={cmi5.LAUNCH_MODE_EXTENSION: "Normal",
                                                  cmi5.MOVE_ON_EXTENSION: move_on}),
               self.statement(cmi5.INITIALIZED, start, sid, au=au)]
        last = end - dt.timedelta(seconds=2)
        if completed:
            spent = duration(int((last - start).total_seconds()))
            out.append(self.statement(cmi5.COMPLETED, last, sid, au=au, result={"completion": True, "duration": spent}))
        if exam is not None:
            passed, questions, correct = exam
            out.append(self.statement(cmi5.PASSED if passed else cmi5.FAILED, last + dt.timedelta(seconds=1), sid,
                                      au=au, result={"success": passed, "score": {"scaled": correct / max(questions, 1)},
                                                     "extensions": {self.ext.exam: {"questions": questions,
                                                                                    "correct": correct}}}))
        result: dict[str, Any] = {"duration": duration(int((end - start).total_seconds()))}
        if played is not None:
            result["extensions"] = {self.ext.played: duration(played)}
        if ended == "terminated":
            out.append(self.statement(cmi5.TERMINATED, end, sid, au=au, result=result, context_extensions=ctx))
        else:  # the AU's last statement carries what was played; the LMS abandons later
            out.append(self.statement("http://adlnet.gov/expapi/verbs/progressed", end, sid, au=au, defined=False,
                                      result=result, context_extensions=ctx))
            out.append(self.statement(cmi5.ABANDONED, end + dt.timedelta(minutes=30), sid, au=au,
                                      result={"duration": duration(int((end - start).total_seconds()))}))
        return out

    def waived(self, at: dt.datetime, *, au: str = AU) -> dict[str, Any]:
        return self.statement(cmi5.WAIVED, at, str(uuid.uuid4()), au=au, result={
            "success": True, "completion": True,
            "extensions": {"https://w3id.org/xapi/cmi5/result/extensions/reason": "Equivalent AU"}})


def launch_data(move_on: str = "CompletedAndPassed", mode: str = "Normal", session: str = "s-1") -> dict[str, Any]:
    """An LMS.LaunchData document (cmi5 §10)."""
    return {"contextTemplate": {"extensions": {cmi5.SESSION_ID: session},
                                "contextActivities": {"grouping": [{"id": "https://courses.example.cn/ai-gov"}]}},
            "launchMode": mode, "moveOn": move_on, "returnURL": "https://lms.example.cn/return"}
