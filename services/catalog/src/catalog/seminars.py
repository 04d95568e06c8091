"""Advanced seminars (高级研修): registration against the year's rules, changes with history, approval.

Who: `province_admin` registers, changes and approves the province's seminar plan (the notice is the
province's; 省人社厅 files national projects with the ministry); every staff role reads.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from xueshi_shared.exports import csv_document
from xueshi_shared.iam.principal import Principal
from xueshi_shared.problems import Conflict, FieldError, Forbidden, InvalidInput, NotFound

from . import schemas
from .domain.seminars import (
    KINDS,
    SURVEY_ITEMS,
    SURVEY_SCALE,
    Project,
    SeminarRules,
    check_project,
    ended,
    materials_checklist,
    materials_due,
    materials_owed,
    minimum_trainees,
    subsidy_eligible,
    survey_statistics,
)
from .models import (
    Course,
    Field,
    Plan,
    Seminar,
    SeminarChange,
    SeminarMaterial,
    SeminarPlan,
    SurveyResponse,
    TrainingBase,
)

CHANGE_FIELDS = ("title", "fields", "start_date", "end_date", "location", "trainees", "online_trainees", "staff",
                 "mode", "budget_yuan", "subsidy_yuan", "funding", "plan_filed_on")


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
                   plan_filed_on=values["plan_filed_on"], subsidy_yuan=values.get("subsidy_yuan"))


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
        "location", "trainees", "online_trainees", "staff", "mode", "budget_yuan", "subsidy_yuan", "funding",
        "plan_filed_on", "status", "course_id", "warnings")} | {"days": (s.end_date - s.start_date).days + 1}


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
                 body: schemas.SeminarChangeIn, today: dt.date) -> Seminar:
    principal.require_staff("province_admin")
    seminar = await get(db, principal, seminar_id, lock=True)
    if seminar.status in ("completed", "cancelled"):
        raise Conflict(f"the seminar is {seminar.status}", rule="seminar-closed")
    if ended(seminar.end_date, today):
        # What was held is a fact: its days, trainees and money are no longer a plan to change (its roster and
        # materials are reported after it, through their own routes).
        raise Conflict(f"the seminar ended on {seminar.end_date.isoformat()}; a project is not changed after it ended",
                       rule="seminar-ended")
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
        course.live_from = seminar.start_date
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
        # The attendance course: no exam (the completion assessment is separate), live from the seminar's first
        # day, and taking records only through the seminar's attendance upload (seminar_id).
        course = Course(base_id=seminar.organizer_base_id, code=f"SEMINAR-{seminar.id}", title=seminar.title,
                        year=seminar.year, category="professional", topic=None, field=seminar.fields[0],
                        hours=_course_hours(seminar, plan), mode=seminar.mode, exam_questions=0, status="approved",
                        live_from=seminar.start_date, seminar_id=seminar.id)
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


# ---- after the seminar: materials, survey, overview ------------------------------------------------

def _may_report(principal: Principal, seminar: Seminar) -> None:
    """The organising base reports on its own seminar; the province may record on its behalf."""
    if principal.kind == "base":
        if seminar.organizer_base_id != principal.base_id:
            raise Forbidden("only the organising base reports on a seminar", rule="other-base")
    else:
        principal.require_staff("province_admin")


async def record_material(db: AsyncSession, principal: Principal, seminar_id: uuid.UUID, item: str,
                          submitted_on: dt.date) -> None:
    seminar = await get(db, principal, seminar_id)
    _may_report(principal, seminar)
    owed = materials_owed(seminar.kind, seminar.funding, await _rules(db, seminar.year))
    if item not in owed:
        listed = ", ".join(owed) if owed else "none"
        raise InvalidInput(f"a {seminar.kind} ({seminar.funding}) project owes these materials: {listed}",
                           rule="material-not-owed", field="item")
    stmt = pg_insert(SeminarMaterial).values(seminar_id=seminar.id, item=item, submitted_on=submitted_on,
                                             recorded_by=principal.id)
    await db.execute(stmt.on_conflict_do_update(index_elements=["seminar_id", "item"],
                                                set_={"submitted_on": submitted_on, "recorded_by": principal.id}))


async def checklist(db: AsyncSession, seminar: Seminar, today: dt.date) -> dict[str, Any]:
    plan = await db.get(SeminarPlan, seminar.year)
    assert plan is not None
    rules = await _rules(db, seminar.year)
    submitted = dict((await db.execute(sa.select(SeminarMaterial.item, SeminarMaterial.submitted_on)
                                       .where(SeminarMaterial.seminar_id == seminar.id))).all())
    items = materials_checklist(materials_owed(seminar.kind, seminar.funding, rules), seminar.end_date,
                                plan.closing_materials_months, submitted, today)
    return {
        "seminar_id": seminar.id, "due": materials_due(seminar.end_date, plan.closing_materials_months),
        "items": [m.__dict__ for m in items],
        "missing": [m.item for m in items if m.missing],
        "overdue": [m.item for m in items if m.overdue],
        "subsidy_eligible": subsidy_eligible(seminar.kind, seminar.funding, items, rules),
    }


async def add_survey_responses(db: AsyncSession, principal: Principal, seminar_id: uuid.UUID,
                               responses: list[dict[str, Any]]) -> int:
    seminar = await get(db, principal, seminar_id)
    _may_report(principal, seminar)
    for i, r in enumerate(responses):
        answers = r["answers"]
        for item, level in answers.items():
            if item not in SURVEY_ITEMS:
                raise InvalidInput(f"unknown survey item {item!r}", rule="survey-item", field=f"responses.{i}.answers")
            if level not in SURVEY_SCALE:
                raise InvalidInput(f"answers are one of {', '.join(SURVEY_SCALE)}", rule="survey-scale",
                                   field=f"responses.{i}.answers.{item}")
        db.add(SurveyResponse(seminar_id=seminar.id, answers=answers, comment=r.get("comment")))
    await db.flush()
    return len(responses)


async def survey(db: AsyncSession, principal: Principal, seminar_id: uuid.UUID) -> dict[str, Any]:
    principal.require_staff()
    seminar = await get(db, principal, seminar_id)
    answers = [a for (a,) in (await db.execute(sa.select(SurveyResponse.answers)
                                               .where(SurveyResponse.seminar_id == seminar.id))).all()]
    return {"seminar_id": seminar.id, "responses": len(answers),
            "items": {k: {"label": SURVEY_ITEMS[k], **v} for k, v in survey_statistics(answers).items()}}


async def overview(db: AsyncSession, principal: Principal, year: int, today: dt.date) -> dict[str, Any]:
    principal.require_staff()
    plan = await db.get(SeminarPlan, year)
    if plan is None:
        raise NotFound(f"no {year} seminar plan", rule="seminar-plan-not-found")
    rows = list((await db.scalars(sa.select(Seminar).where(Seminar.year == year).order_by(Seminar.start_date))).all())
    credited = dict((await db.execute(sa.text("""
        SELECT course_id, sum(credited_hours) FROM hours_ledger.published_records
        WHERE NOT reversed AND course_id = ANY(:ids) GROUP BY course_id"""),
        {"ids": [s.course_id for s in rows if s.course_id]})).all())
    rosters = {r.seminar_id: r for r in (await db.execute(sa.text("""
        SELECT seminar_id, trainees, online_trainees FROM hours_ledger.published_seminar_rosters
        WHERE seminar_id = ANY(:ids)"""), {"ids": [s.id for s in rows]})).all()}
    rules = await _rules(db, year)
    projects = []
    for s in rows:
        c = await checklist(db, s, today)
        roster = rosters.get(s.id)
        on_roster = int(roster.trainees) if roster else 0
        warnings = list(s.warnings)
        minimum = minimum_trainees(s.kind, rules)
        if s.course_id is not None and (roster or ended(s.end_date, today)) and on_roster < minimum:
            warnings.append(f"the roster holds {on_roster} trainees, fewer than the {minimum} a {s.kind} seminar "
                            f"trains (每期不少于{minimum}人)")
        projects.append({
            "id": str(s.id), "kind": s.kind, "title": s.title, "status": s.status, "start_date": s.start_date,
            "end_date": s.end_date, "trainees": s.trainees, "budget_yuan": s.budget_yuan,
            "subsidy_yuan": _project(out(s)).subsidy, "funding": s.funding,
            "credited_hours": int(credited.get(s.course_id, 0) or 0), "roster_trainees": on_roster,
            "roster_online_trainees": int(roster.online_trainees) if roster else 0,
            "overdue_items": len(c["overdue"]), "subsidy_eligible": c["subsidy_eligible"], "warnings": warnings})
    live = [p for p in projects if p["status"] != "cancelled"]
    return {
        "year": year,
        "by_kind": {k: {"planned": plan.planned_projects.get(k, 0), "registered": sum(p["kind"] == k for p in projects)}
                    for k in KINDS},
        "by_status": {st: sum(p["status"] == st for p in projects)
                      for st in ("registered", "approved", "completed", "cancelled")},
        "trainees": sum(p["trainees"] for p in live),
        "credited_hours": sum(p["credited_hours"] for p in projects),
        "budget_yuan": sum(p["budget_yuan"] for p in live),
        "fiscal_budget_yuan": sum(p["budget_yuan"] for p in live if p["funding"] == "fiscal"),
        "subsidy_yuan": sum(p["subsidy_yuan"] for p in live),
        "overdue_items": sum(p["overdue_items"] for p in projects),
        "projects": projects,
    }


def overview_csv(data: dict[str, Any]) -> str:
    columns = ["id", "kind", "title", "status", "start_date", "end_date", "trainees", "budget_yuan", "funding",
               "credited_hours", "overdue_items", "subsidy_eligible", "subsidy_yuan", "roster_trainees",
               "roster_online_trainees", "warnings"]
    return csv_document(columns, ({**p, "warnings": "; ".join(p["warnings"])} for p in data["projects"]))
