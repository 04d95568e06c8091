"""The shape of a stamped study proof: a W3C VC 2.0 OpenBadgeCredential (Open Badges 3.0).

Only terms defined by the two contexts are used (the issuer refuses anything else, see jsonld.py):
- the subject is an `AchievementSubject` with `creditsEarned` (the credited 学时) and two `identifier`s: the
  name and the ID number's last four characters (`**************0012`). Nothing else of the number: a salted
  hash beside a mask that shows the region could be searched in a second (at most ~2,700 birth dates), so the
  holder is confirmed online only (`POST /v1/verifications` with `id_number`), against the registry's record;
- the `achievement` names the plan or field and the year, with `creditsAvailable` and, per topic or
  field, a `ResultDescription` whose `result` on the subject carries the 学时 credited;
- the ledger records covered are `evidence`; one that earned no 学时 says so with its rule ("未计学时：…");
- `credentialStatus` is a `BitstringStatusListEntry` (revocation). Its bit is set when the stamping body revokes
  the proof and when the proof is superseded (a record it covers was reversed, or a newer proof of the same person,
  year and scope replaced it): either way the proof no longer stands, and every standard verifier says so offline.
  Which of the two, when and by what, the registry tells online (`POST /v1/verifications`, the page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CONTEXT", "RULE_LABELS", "Evidence", "Line", "ProofFacts", "build_credential", "has_hashed_identifier",
           "public_mask", "rule_label", "status_list_credential"]

CONTEXT = ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]


def public_mask(masked: str) -> str:
    """What a public document shows of an ID number: its last four characters (the ledger's staff-facing mask
    also shows the region, which with the check digit leaves only the birth date to guess)."""
    return "*" * max(0, len(masked) - 4) + masked[-4:]


def has_hashed_identifier(credential: dict[str, Any]) -> bool:
    """Whether a credential carries a hashed identifier (the proofs stamped before holder confirmation moved
    online did): such a credential is not published again."""
    subject = credential.get("credentialSubject")
    identifiers = subject.get("identifier", []) if isinstance(subject, dict) else []
    return any(isinstance(i, dict) and i.get("hashed") is True for i in identifiers)


# The ledger's rules, as a proof names the one that cut a record to nothing.
RULE_LABELS = {
    "course-hours": "超过课程学时",
    "daily-limit": "超过每日 12 学时上限",
    "media-shortfall": "有效播放时长不足",
    "identity-unverified": "人脸核验不足",
    "identity-failed": "人脸核验未通过",
    "exam-not-passed": "考试未通过",
    "parallel-study": "同时段重复学习",
    "partial-hour": "不足 45 分钟",
    "before-course-live": "课程审核上线前学习",
    "course-already-credited": "该课程已计学时",
    "other-topic-before-required": "规定主题学时未满前学习其它主题",
}


def rule_label(rules: list[str]) -> str:
    """The Chinese label of the rules that cut a record, the largest first (as the ledger lists them)."""
    labels = [RULE_LABELS.get(r, r) for r in dict.fromkeys(rules)]
    return "、".join(labels) if labels else "未满足认定条件"


@dataclass(frozen=True)
class Line:
    code: str        # topic code or field code
    name: str
    hours: int
    allotment: int | None = None


@dataclass(frozen=True)
class Evidence:
    record_id: str
    course: str
    hours: int
    base: str
    period: str
    rule: str | None = None  # for a record that earned no 学时: the label of the rule that cut it


@dataclass(frozen=True)
class ProofFacts:
    proof_url: str
    issuer_did: str
    issuer_name: str
    year: int
    scope: str              # "public" or "professional"
    field: str | None
    title: str              # e.g. 2026年度专业技术人员继续教育公需科目学时
    name: str
    masked_id: str          # public_mask: the last four characters
    credited_hours: int
    available_hours: int
    lines: tuple[Line, ...]
    evidence: tuple[Evidence, ...]
    issued_at: str          # XML Schema dateTime, UTC
    status_list_url: str
    status_index: int


def build_credential(f: ProofFacts) -> dict[str, Any]:
    achievement_id = f"{f.proof_url}#achievement"
    return {
        "@context": CONTEXT,
        "id": f.proof_url,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": f.title,
        "issuer": {"id": f.issuer_did, "type": ["Profile"], "name": f.issuer_name},
        "validFrom": f.issued_at,
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [
                {"type": "IdentityObject", "identityType": "name", "hashed": False, "identityHash": f.name},
                {"type": "IdentityObject", "identityType": "identifier", "hashed": False,
                 "identityHash": f.masked_id},
            ],
            "creditsEarned": f.credited_hours,
            "term": str(f.year),
            "result": [{"type": ["Result"], "resultDescription": f"{achievement_id}-{line.code}",
                        "value": str(line.hours)} for line in f.lines],
            "achievement": {
                "id": achievement_id,
                "type": ["Achievement"],
                "achievementType": "Course",
                "name": f.title,
                "description": "福建省专业技术人员继续教育学时证明：" + (
                    "公需科目" if f.scope == "public" else f"专业科目（{f.lines[0].name if f.lines else f.field}）"),
                "criteria": {"narrative": "学时由福建省继续教育学时登记系统按当年计划的规则认定。"},
                "creditsAvailable": f.available_hours,
                "fieldOfStudy": "公需科目" if f.scope == "public" else (f.field or ""),
                "resultDescription": [
                    {"id": f"{achievement_id}-{line.code}", "type": ["ResultDescription"],
                     "name": line.name, "resultType": "ext:CreditHours",
                     **({"allowedValue": [str(v) for v in range(line.allotment + 1)]} if line.allotment else {})}
                    for line in f.lines],
            },
        },
        "evidence": [{"id": f"urn:uuid:{e.record_id}", "type": ["Evidence"], "name": e.course,
                      "description": f"{e.base}，{e.period}",
                      "narrative": f"{e.hours} 学时" if e.hours else f"未计学时：{e.rule or '未满足认定条件'}"}
                     for e in f.evidence],
        "credentialStatus": {
            "id": f"{f.status_list_url}#{f.status_index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": str(f.status_index),
            "statusListCredential": f.status_list_url,
        },
    }


def status_list_credential(url: str, issuer_did: str, encoded_list: str, valid_from: str) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer_did,
        "validFrom": valid_from,
        "credentialSubject": {"id": f"{url}#list", "type": "BitstringStatusList", "statusPurpose": "revocation",
                              "encodedList": encoded_list},
    }
