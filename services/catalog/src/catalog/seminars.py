"""Advanced seminars (高级研修): registration against the year's rules, changes with history, approval.

Who: `province_admin` registers, changes and approves the province's seminar plan (the notice is the
province's; 省人社厅 files national projects with the ministry); every staff role reads.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from xueshi_shared.iam.principal import Principal
from xueshi_shared.problems import Conflict, FieldError, Forbidden, InvalidInput, NotFound

from . import schemas
from .domain.seminars import Project, SeminarRules, check_project
from .models import Course, Field, Plan, Seminar, SeminarChange, SeminarPlan, TrainingBase

CHANGE_FIELDS = ("title", "fields", "start_date", "end_date", "location", "trainees", "online_trainees", "staff",
                 "mode", "budget_yuan", "funding", "plan_filed_on")


async def _rules(db: AsyncSession, year: int) -> SeminarRules:
    plan = await db.get(SeminarPlan, year)
    if plan is None:
        raise InvalidInput(f"there is no {year} seminar plan", rule="seminar-plan-unknown", field="year")
    r = dict(plan.rules)
    r["deadline"] = dt.date.fromisoformat(r["deadline"])
    return SeminarRules(**r)


def _project(values: dict[str, Any]) -> Project:
    return Project(kind=values["kind"], start_date=values["start_date"], end_date=values["end_date"],
                   trainees=values["trainees"], online_trainees=values["online_trainees"], staff=values["staff"],
                   mode=values["mode"], budget_yuan=values["budget_yuan"], funding=values["funding"],
                   plan_filed_on=values["plan_filed_on"])


async def _check(db: AsyncSession, values: dict[str, Any]) -> list[str]:
    errors, warnings = check_project(_project(values), await _rules(db, values["year"]))
    known = set((await db.scalars(sa.select(Field.code).where(Field.code.in_(values["fields"])))).all())
    errors += [FieldError(f"fields.{i}", "field-unknown", f"unknown field {f!r}")
               for i, f in enumerate(values["fields"]) if f not in known]
    InvalidInput.check(errors)
    return warnings


async def _organizer_base(db: AsyncSession, organizer: str) -> uuid.UUID | None:
    try:
        base_id = uuid.UUID(organizer)
    except ValueError:
        return None
    base = await db.get(TrainingBase, base_id)
    if base is None or base.status != "approved":
        raise InvalidInput("the organiser names no approved training base", rule="organizer-not-approved",
                           field="organizer")
    return base_id


def out(s: Seminar) -> dict[str, Any]:
    return {c: getattr(s, c) for c in (
        "id", "year", "kind", "title", "organizer", "organizer_base_id", "fields", "start_date", "end_date",
        "location", "trainees", "online_trainees", "staff", "mode", "budget_yuan", "funding", "plan_filed_on",
        "status", "course_id", "warnings")} | {"days": (s.end_date - s.start_date).days + 1}


async def register(db: AsyncSession, principal: Principal, body: schemas.SeminarIn) -> Seminar:
    principal.require_staff("province_admin")
    values = body.model_dump()
    warnings = await _check(db, values)
    seminar = Seminar(**values, organizer_base_id=await _organizer_base(db, body.organizer), warnings=warnings,
                      created_by=principal.id)
    db.add(seminar)
    await db.flush()
    await db.refresh(seminar)
    return seminar


async def get(db: AsyncSession, principal: Principal, seminar_id: uuid.UUID, *, lock: bool = False) -> Seminar:
    query = sa.select(Seminar).where(Seminar.id == seminar_id)
    seminar = await db.scalar(query.with_for_update() if lock else query)
    if seminar is None:
        raise NotFound("no such seminar", rule="seminar-not-found")
    if principal.kind == "base" and seminar.organizer_base_id != principal.base_id:
        raise Forbidden("a base reads only the seminars it organises", rule="other-base")
    if principal.kind != "base":
        principal.require_staff()
    return seminar


async def change(db: AsyncSession, principal: Principal, seminar_id: uuid.UUID,
                 body: schemas.SeminarChangeIn) -> Seminar:
    principal.require_staff("province_admin")
    seminar = await get(db, principal, seminar_id, lock=True)
    if seminar.status in ("completed", "cancelled"):
        raise Conflict(f"the seminar is {seminar.status}", rule="seminar-closed")
    updates = {k: v for k, v in body.model_dump(exclude_unset=True).items() if k != "reason"}
    if not updates:
        raise InvalidInput("nothing to change", rule="required", field="body")
    if seminar.status == "approved" and not body.reason:
        raise InvalidInput("changes after approval need a written reason (书面报送情况说明)",
                           rule="seminar-change-reason", field="reason")
    before = {k: getattr(seminar, k) for k in updates}
    values = out(seminar) | updates
    seminar.warnings = await _check(db, values)
    for k, v in updates.items():
        setattr(seminar, k, v)
    db.add(SeminarChange(seminar_id=seminar.id, changed_by=principal.id, reason=body.reason,
                         before=_jsonable(before), after=_jsonable(updates)))
    if seminar.course_id is not None and ("start_date" in updates or "end_date" in updates):
        course = await db.get(Course, seminar.course_id)
        assert course is not None
        course.hours = _course_hours(seminar, await db.get(Plan, seminar.year))
    await db.flush()
    return seminar


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}


async def history(db: AsyncSession, principal: Principal, seminar_id: uuid.UUID) -> list[SeminarChange]:
    await get(db, principal, seminar_id)
    return list((await db.scalars(sa.select(SeminarChange).where(SeminarChange.seminar_id == seminar_id)
                                  .order_by(SeminarChange.id))).all())


def _course_hours(seminar: Seminar, plan: Plan | None) -> int:
    per_day = plan.max_hours_per_day if plan else 12
    return ((seminar.end_date - seminar.start_date).days + 1) * per_day


async def approve(db: AsyncSession, principal: Principal, seminar_id: uuid.UUID) -> Seminar:
    """Approve the project; a base-organised project gets its attendance course (approved, offline or mixed)."""
    principal.require_staff("province_admin")
    seminar = await get(db, principal, seminar_id, lock=True)
    if seminar.status != "registered":
        raise Conflict(f"the seminar is {seminar.status}", rule="seminar-not-registered")
    seminar.status = "approved"
    if seminar.organizer_base_id is not None:
        plan = await db.get(Plan, seminar.year)
        if plan is None:
            raise Conflict(f"attendance becomes 学时 under the {seminar.year} plan's numbers; publish that plan first",
                           rule="plan-unknown")
        course = Course(base_id=seminar.organizer_base_id, code=f"SEMINAR-{seminar.id}", title=seminar.title,
                        year=seminar.year, category="professional", topic=None, field=seminar.fields[0],
                        hours=_course_hours(seminar, plan), mode=seminar.mode, exam_questions=0, status="approved")
        db.add(course)
        await db.flush()
        seminar.course_id = course.id
    await db.flush()
    return seminar


async def list_seminars(db: AsyncSession, principal: Principal, year: int | None) -> list[Seminar]:
    principal.require_staff()
    query = sa.select(Seminar).order_by(Seminar.start_date)
    if year:
        query = query.where(Seminar.year == year)
    return list((await db.scalars(query)).all())


async def plan_out(db: AsyncSession, year: int) -> dict[str, Any]:
    plan = await db.get(SeminarPlan, year)
    if plan is None:
        raise NotFound(f"no {year} seminar plan", rule="seminar-plan-not-found")
    return {"year": plan.year, "rules": plan.rules, "planned_projects": plan.planned_projects,
            "closing_materials_months": plan.closing_materials_months, "source": plan.source}
