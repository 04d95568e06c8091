"""Principals for tests, created directly through the IAM service in their own committed transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from xueshi_shared.iam import service as iam


@dataclass
class Actor:
    id: uuid.UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_staff(
    engine: AsyncEngine, role: str, *, region: str | None = None, authority: str | None = None, name: str | None = None
) -> Actor:
    async with AsyncSession(engine) as s, s.begin():
        staff_id, token = await iam.create_staff(
            s, name=name or f"{role} {uuid.uuid4().hex[:6]}", role=role, region=region, authority=authority
        )
    return Actor(staff_id, token)


async def make_base_principal(engine: AsyncEngine, base_id: uuid.UUID | None = None) -> Actor:
    async with AsyncSession(engine) as s, s.begin():
        principal_id = await iam.upsert_base_principal(s, base_id=base_id or uuid.uuid4(), name="a training base")
        token = await iam.issue_token(s, principal_id)
    return Actor(principal_id, token)


# ---- catalog ------------------------------------------------------------------------------------

# Valid unified social credit codes (check digits computed with python-stdnum).
def uscc(serial: int) -> str:
    from stdnum.cn import uscc as std

    body = f"91350100M{serial:08d}"[:17]
    return body + std.calc_check_digit(body)


def base_form(**overrides) -> dict:
    """A complete access application (接入申请表): a municipal public-subject base in Fuzhou."""
    form = {
        "unit_name": "福州智学教育科技有限公司",
        "uscc": uscc(uuid.uuid4().int % 10**8),
        "legal_representative": "陈明",
        "platform_name": "智学继续教育平台",
        "icp_filing": "闽ICP备20001234号",
        "platform_url": "https://edu.example.cn",
        "level": "municipal",
        "region": "350100",
        "category": "public",
        "fields": [],
        "scope_region": "350100",
        "operations_lead": {"name": "林海", "phone": "13800000001"},
        "courseware_lead": {"name": "黄蓉", "phone": "0591-87000000"},
        "mlps_filing": "35010099001-23001",
    }
    form.update(overrides)
    return form


def professional_form(fields: list[str], **overrides) -> dict:
    return base_form(category="professional", fields=fields, level="provincial", region="350000",
                     scope_region="350000", **overrides)


def course_form(**overrides) -> dict:
    form = {"code": f"C{uuid.uuid4().hex[:8]}", "title": "人工智能赋能政务服务", "year": 2026, "category": "public",
            "topic": "5", "hours": 7, "mode": "online", "exam_questions": 10}
    form.update(overrides)
    return form


@dataclass
class ApprovedBase:
    id: uuid.UUID
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def approved_base(catalog, staff: Actor, form: dict | None = None) -> ApprovedBase:
    """Register and approve a base through the API, as HR staff would."""
    created = await catalog.post("/v1/bases", json=form or base_form(), headers=staff.headers)
    assert created.status_code == 201, created.text
    base_id = created.json()["id"]
    approved = await catalog.post(f"/v1/bases/{base_id}/approval", headers=staff.headers)
    assert approved.status_code == 200, approved.text
    return ApprovedBase(uuid.UUID(base_id), approved.json()["api_key"])


async def approved_course(catalog, base: ApprovedBase, staff: Actor, *, reviewed_on: str | None = None,
                          **overrides) -> uuid.UUID:
    """A course submitted and approved through the API. Its review meeting was held on `reviewed_on` (default: the
    first day of its plan year, so that sittings of the whole year count)."""
    form = course_form(**overrides)
    submitted = await catalog.post("/v1/courses", json=form, headers=base.headers)
    assert submitted.status_code == 201, submitted.text
    course_id = submitted.json()["id"]
    review = {"decision": "approved", "reviewers": ["张教授", "李研究员", "王处长"],
              "checks": {"wording": True, "policy": True, "ideology": True},
              "reviewed_on": reviewed_on or f"{form['year']}-01-01"}
    reviewed = await catalog.post(f"/v1/courses/{course_id}/review", json=review, headers=staff.headers)
    assert reviewed.status_code == 200, reviewed.text
    return uuid.UUID(course_id)


# ---- ledger -------------------------------------------------------------------------------------

def ric(serial: int, birth: str = "19900307", region: str = "350102") -> str:
    """A valid 18-digit resident ID number (check digit computed)."""
    from stdnum.cn import ric as std

    body = f"{region}{birth}{serial % 1000:03d}"
    return body + std.calc_check_digit(body + "0")  # stdnum expects a placeholder check digit


def at(hhmm: str, day: str = "2026-05-04") -> str:
    """A Fujian time of day as an ISO 8601 instant: at("09:00") is 2026-05-04T09:00:00+08:00."""
    return f"{day}T{hhmm}:00+08:00"


def online_sitting(start: str, end: str, media_seconds: int | None = None, passed: int = 2, failed: int = 0) -> dict:
    import datetime as _dt

    if media_seconds is None:
        media_seconds = int((_dt.datetime.fromisoformat(end) - _dt.datetime.fromisoformat(start)).total_seconds())
    return {"started_at": start, "ended_at": end, "media_seconds": media_seconds,
            "identity_checks": {"passed": passed, "failed": failed}}


def record_body(course_id, id_number: str, sittings: list[dict], *, exam: dict | None = None, **overrides) -> dict:
    body = {
        "external_id": f"R{uuid.uuid4().hex[:12]}", "course_id": str(course_id), "id_type": "RIC",
        "id_number": id_number, "name": "陈小明",
        "unit": {"name": "福州市第一医院", "uscc": uscc(4242), "region": "350102"},
        "sittings": sittings, "exam": exam if exam is not None else {"questions": 10, "correct": 9, "passed": True},
    }
    body.update(overrides)
    return body
