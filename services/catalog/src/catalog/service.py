"""Catalog use cases: load, decide (domain/), persist. Never commits: the request scope does."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from xueshi_shared.iam.governance import Actor, governs_field, governs_public_scope
from xueshi_shared.iam.models import Principal as PrincipalRow
from xueshi_shared.iam.principal import Principal
from xueshi_shared.iam.service import issue_token, revoke_principal_tokens, upsert_base_principal
from xueshi_shared.problems import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from xueshi_shared.regions import CODES, REGIONS, governing_region, level_of
from xueshi_shared.timekeeping import today

from . import schemas
from .domain.courses import ReviewChecks, course_errors, review_day_errors, review_errors, topic_or_field_errors
from .domain.delegations import Period, active, overlaps, stamped_by
from .domain.plans import plan_errors
from .domain.regions import base_region_errors
from .models import (
    OTHER_TOPIC,
    Authority,
    BaseDecision,
    Course,
    CourseActivity,
    CourseReview,
    Delegation,
    Field,
    Plan,
    Topic,
    TrainingBase,
)
from .reference import HR_AUTHORITY

GOVERNING_ROLES = ("province_admin", "city_admin", "authority_reviewer")
PUBLIC = ""  # base_decisions.field for the public category


def _actor(principal: Principal) -> Actor:
    return Actor(role=principal.role, region=principal.region, authority=principal.authority)


def _out_of_scope(what: str) -> Forbidden:
    return Forbidden(f"your role and scope do not govern {what}", rule="out-of-scope")


# ---- plans --------------------------------------------------------------------------------------

def _plan_out(plan: Plan, topics: list[Topic]) -> dict[str, Any]:
    return {
        "year": plan.year, "required_hours": plan.required_hours, "window_start": plan.window_start,
        "deadline": plan.deadline, "max_hours_per_day": plan.max_hours_per_day,
        "minutes_per_hour": plan.minutes_per_hour, "min_exam_questions": plan.min_exam_questions,
        "identity_failed_share_max": plan.identity_failed_share_max.normalize(),
        "other_topics_allowed": plan.other_topics_allowed,
        "source": plan.source,
        "topics": [{"code": t.code, "title": t.title, "hours": t.hours, "examples": t.examples} for t in topics],
    }


async def get_plan(db: AsyncSession, year: int) -> dict[str, Any]:
    plan = await db.get(Plan, year)
    if plan is None:
        raise NotFound(f"no public-subject plan for {year}", rule="plan-not-found")
    topics = (await db.scalars(sa.select(Topic).where(Topic.year == year).order_by(Topic.position))).all()
    return _plan_out(plan, list(topics))


async def list_plans(db: AsyncSession) -> list[dict[str, Any]]:
    years = (await db.scalars(sa.select(Plan.year).order_by(Plan.year))).all()
    return [await get_plan(db, y) for y in years]


async def create_plan(db: AsyncSession, principal: Principal, body: schemas.PlanIn) -> dict[str, Any]:
    principal.require_staff("province_admin")
    InvalidInput.check(plan_errors(
        year=body.year, required_hours=body.required_hours, window_start=body.window_start, deadline=body.deadline,
        max_hours_per_day=body.max_hours_per_day, minutes_per_hour=body.minutes_per_hour,
        topics=[(t.code, t.hours) for t in body.topics]))
    inserted = await db.scalar(
        pg_insert(Plan)
        .values(year=body.year, required_hours=body.required_hours, window_start=body.window_start,
                deadline=body.deadline, max_hours_per_day=body.max_hours_per_day,
                minutes_per_hour=body.minutes_per_hour, min_exam_questions=body.min_exam_questions,
                identity_failed_share_max=body.identity_failed_share_max,
                other_topics_allowed=body.other_topics_allowed, source=body.source, created_by=principal.id)
        .on_conflict_do_nothing(index_elements=["year"]).returning(Plan.year))
    if inserted is None:
        raise Conflict(f"the {body.year} plan exists already; published plans are not changed", rule="plan-exists",
                       field="year")
    for position, t in enumerate(body.topics, 1):
        db.add(Topic(year=body.year, code=t.code, position=position, title=t.title, hours=t.hours,
                     examples=t.examples))
    await db.flush()
    return await get_plan(db, body.year)


# ---- authorities, fields, delegations -------------------------------------------------------------

async def _delegations(db: AsyncSession, field: str | None = None) -> list[Delegation]:
    query = sa.select(Delegation).order_by(Delegation.starts_on, Delegation.recorded_at)
    if field is not None:
        query = query.where(Delegation.field == field)
    return list((await db.scalars(query)).all())


def _period(d: Delegation) -> Period:
    return Period(d.starts_on, d.ends_on)


async def stamping_authorities(db: AsyncSession, day: dt.date | None = None) -> dict[str, str]:
    """Field code -> the authority that stamps it on `day` (today in Fujian by default)."""
    day = day or today()
    owners = dict((await db.execute(sa.select(Field.code, Field.authority))).all())
    periods: dict[str, list[Period]] = {}
    for d in await _delegations(db):
        periods.setdefault(d.field, []).append(_period(d))
    return {code: stamped_by(owner, periods.get(code, ()), day, HR_AUTHORITY) for code, owner in owners.items()}


async def list_authorities(db: AsyncSession) -> list[dict[str, Any]]:
    authorities = (await db.scalars(sa.select(Authority).order_by(Authority.code))).all()
    fields = (await db.scalars(sa.select(Field).order_by(Field.authority, Field.position))).all()
    by_authority: dict[str, list[dict[str, str]]] = {}
    for f in fields:
        by_authority.setdefault(f.authority, []).append({"code": f.code, "name": f.name})
    return [{
        "code": a.code, "name": a.name, "directory_row": a.directory_row, "personnel_scope": a.personnel_scope,
        "self_managed": a.self_managed, "effective_from": a.effective_from, "fields": by_authority.get(a.code, []),
    } for a in authorities]


async def list_fields(db: AsyncSession) -> list[dict[str, Any]]:
    stamps = await stamping_authorities(db)
    fields = (await db.scalars(sa.select(Field).order_by(Field.authority, Field.position))).all()
    return [{"code": f.code, "name": f.name, "authority": f.authority, "stamped_by": stamps[f.code]} for f in fields]


def _delegation_out(d: Delegation, owner: str) -> dict[str, Any]:
    return {"id": d.id, "field": d.field, "authority": owner, "delegated_to": HR_AUTHORITY, "starts_on": d.starts_on,
            "ends_on": d.ends_on, "reason": d.reason, "end_reason": d.end_reason,
            "active_today": active(_period(d), today())}


async def list_delegations(db: AsyncSession) -> list[dict[str, Any]]:
    owners = dict((await db.execute(sa.select(Field.code, Field.authority))).all())
    return [_delegation_out(d, owners[d.field]) for d in await _delegations(db)]


def _may_manage_delegation(principal: Principal, owner: str) -> None:
    principal.require_staff("province_admin", "authority_reviewer")
    if principal.role == "authority_reviewer" and principal.authority != owner:
        raise _out_of_scope(f"the fields of authority {owner}")


async def create_delegation(db: AsyncSession, principal: Principal, body: schemas.DelegationIn) -> dict[str, Any]:
    if body.ends_on is not None and body.ends_on < body.starts_on:
        raise InvalidInput("ends_on comes before starts_on", rule="period-order", field="ends_on")
    # Lock the field so that two overlapping delegations cannot be recorded at the same moment.
    field = await db.scalar(sa.select(Field).where(Field.code == body.field).with_for_update())
    if field is None:
        raise InvalidInput(f"unknown field {body.field!r} (see GET /v1/fields)", rule="field-unknown", field="field")
    _may_manage_delegation(principal, field.authority)
    if field.authority == HR_AUTHORITY:
        raise InvalidInput("省人社厅's own fields cannot be delegated to itself", rule="delegation-to-self",
                           field="field")
    new = Period(body.starts_on, body.ends_on)
    for existing in await _delegations(db, body.field):
        if overlaps(new, _period(existing)):
            raise Conflict(f"field {body.field} is already delegated from {existing.starts_on}",
                           rule="delegation-overlap", field="starts_on", delegation_id=str(existing.id))
    d = Delegation(field=body.field, starts_on=body.starts_on, ends_on=body.ends_on, reason=body.reason,
                   recorded_by=principal.id)
    db.add(d)
    await db.flush()
    return _delegation_out(d, field.authority)


async def end_delegation(db: AsyncSession, principal: Principal, delegation_id: uuid.UUID,
                         body: schemas.DelegationEndIn) -> dict[str, Any]:
    d = await db.scalar(sa.select(Delegation).where(Delegation.id == delegation_id).with_for_update())
    if d is None:
        raise NotFound("no such delegation", rule="delegation-not-found")
    owner = await db.scalar(sa.select(Field.authority).where(Field.code == d.field))
    assert owner is not None
    _may_manage_delegation(principal, owner)
    if d.end_reason is not None:
        raise Conflict("the delegation has already been ended", rule="delegation-ended")
    if body.ends_on < d.starts_on or (d.ends_on is not None and body.ends_on > d.ends_on):
        raise InvalidInput("a delegation can only be shortened, to a day within its period",
                           rule="period-order", field="ends_on")
    d.ends_on, d.end_reason, d.ended_by = body.ends_on, body.reason, principal.id
    await db.flush()
    return _delegation_out(d, owner)


def list_regions() -> list[dict[str, str]]:
    return [{"code": c, "name": n, "governed_by": governing_region(c) or c} for c, n in REGIONS.items()]


def list_region_codes() -> list[dict[str, str | None]]:
    return [{"code": c, "name": n, "level": level_of(c), "governed_by": governing_region(c) or c}
            for c, n in CODES.items()]


# ---- training bases -----------------------------------------------------------------------------

async def _base(db: AsyncSession, base_id: uuid.UUID, *, lock: bool = False) -> TrainingBase:
    query = sa.select(TrainingBase).where(TrainingBase.id == base_id)
    base = await db.scalar(query.with_for_update() if lock else query)
    if base is None:
        raise NotFound("no such training base", rule="base-not-found")
    return base


async def _decisions(db: AsyncSession, base_id: uuid.UUID) -> list[BaseDecision]:
    return list((await db.scalars(
        sa.select(BaseDecision).where(BaseDecision.base_id == base_id).order_by(BaseDecision.field))).all())


def _governs_decision(actor: Actor, base: TrainingBase, field: str, stamps: dict[str, str]) -> bool:
    if field == PUBLIC:
        return governs_public_scope(actor, base.scope_region)
    return governs_field(actor, stamps[field], HR_AUTHORITY)


async def _require_governs_base(db: AsyncSession, principal: Principal, base: TrainingBase) -> None:
    principal.require_staff(*GOVERNING_ROLES)
    stamps = await stamping_authorities(db)
    actor = _actor(principal)
    if not any(_governs_decision(actor, base, d.field, stamps) for d in await _decisions(db, base.id)):
        raise _out_of_scope("this training base")


async def base_out(db: AsyncSession, base: TrainingBase) -> dict[str, Any]:
    decisions = await _decisions(db, base.id)
    fields = [d.field for d in decisions if d.field != PUBLIC]
    return {
        "id": base.id, "unit_name": base.unit_name, "uscc": base.uscc,
        "legal_representative": base.legal_representative, "platform_name": base.platform_name,
        "icp_filing": base.icp_filing, "platform_url": base.platform_url, "level": base.level,
        "region": base.region, "category": base.category, "fields": fields,
        "approved_fields": [d.field for d in decisions if d.field != PUBLIC and d.decision == "approved"],
        "scope_region": base.scope_region, "operations_lead": base.operations_lead,
        "courseware_lead": base.courseware_lead, "mlps_filing": base.mlps_filing, "status": base.status,
        "suspended": base.suspended_at is not None, "suspension_reason": base.suspension_reason,
        "decisions": [{"field": d.field or None, "decision": d.decision, "decided_at": d.decided_at}
                      for d in decisions],
        "created_at": base.created_at,
    }


async def register_base(db: AsyncSession, principal: Principal, body: schemas.BaseIn) -> TrainingBase:
    principal.require_staff(*GOVERNING_ROLES)
    errors: list[FieldError] = list(base_region_errors(body.level, body.region, body.scope_region))
    stamps = await stamping_authorities(db)
    if body.category == "public" and body.fields:
        errors.append(FieldError("fields", "fields-not-allowed", "a public-subject application lists no fields"))
    if body.category == "professional" and not body.fields:
        errors.append(FieldError("fields", "fields-required", "a professional application lists its fields"))
    if len(set(body.fields)) != len(body.fields):
        errors.append(FieldError("fields", "fields-distinct", "each field is listed once"))
    for i, code in enumerate(body.fields):
        if code not in stamps:
            errors.append(FieldError(f"fields.{i}", "field-unknown", f"unknown field {code!r} (see GET /v1/fields)"))
    InvalidInput.check(errors)

    actor = _actor(principal)
    if body.category == "public":
        if not governs_public_scope(actor, body.scope_region):
            raise _out_of_scope(f"public-subject bases training in {body.scope_region}")
    elif not any(governs_field(actor, stamps[f], HR_AUTHORITY) for f in body.fields):
        raise _out_of_scope("any of the fields applied for")

    base = TrainingBase(
        unit_name=body.unit_name, uscc=body.uscc, legal_representative=body.legal_representative,
        platform_name=body.platform_name, icp_filing=body.icp_filing, platform_url=str(body.platform_url),
        level=body.level, region=body.region, category=body.category, scope_region=body.scope_region,
        operations_lead=body.operations_lead.model_dump(), courseware_lead=body.courseware_lead.model_dump(),
        mlps_filing=body.mlps_filing, registered_by=principal.id)
    db.add(base)
    try:
        async with db.begin_nested():
            await db.flush()
    except IntegrityError:
        raise Conflict(
            f"{body.uscc} already has a {body.category} application that is not rejected (one per unit and "
            "category; a professional application lists all its fields)", rule="base-exists", field="uscc") from None
    for code in body.fields or [PUBLIC]:
        db.add(BaseDecision(base_id=base.id, field=code))
    await db.flush()
    return base


async def decide_base(db: AsyncSession, principal: Principal, base_id: uuid.UUID,
                      body: schemas.DecisionIn) -> dict[str, Any]:
    principal.require_staff(*GOVERNING_ROLES)
    base = await _base(db, base_id, lock=True)
    decisions = {d.field: d for d in await _decisions(db, base.id)}
    stamps = await stamping_authorities(db)
    actor = _actor(principal)

    if base.category == "public":
        if body.fields:
            raise InvalidInput("a public-subject base is decided as a whole", rule="fields-not-allowed",
                               field="fields")
        wanted = [PUBLIC]
    elif body.fields is not None:
        unknown = [f for f in body.fields if f not in decisions]
        if unknown:
            raise InvalidInput(f"the application does not list {unknown[0]}", rule="field-not-applied",
                               field="fields")
        wanted = list(dict.fromkeys(body.fields))
    else:
        wanted = [f for f, d in decisions.items()
                  if d.decision is None and _governs_decision(actor, base, f, stamps)]
        if not wanted and not any(_governs_decision(actor, base, f, stamps) for f in decisions):
            raise _out_of_scope("this training base")

    for f in wanted:
        if not _governs_decision(actor, base, f, stamps):
            raise _out_of_scope(f"field {f}" if f else "this public-subject base")
        if decisions[f].decision is not None:
            raise Conflict(f"{'field ' + f if f else 'the base'} has already been decided ({decisions[f].decision})",
                           rule="already-decided")
    if not wanted:
        raise Conflict("every field you govern has already been decided", rule="already-decided")

    decided_at = sa.func.now()
    for f in wanted:
        d = decisions[f]
        d.decision, d.decided_by, d.decided_at, d.reason = body.decision, principal.id, decided_at, body.reason
    await db.flush()
    for f in wanted:
        await db.refresh(decisions[f])

    outcomes = [d.decision for d in decisions.values()]
    if "approved" in outcomes:
        base.status = "approved"
    elif all(o == "rejected" for o in outcomes):
        base.status = "rejected"
    api_key = None
    if base.status == "approved":
        has_key = await db.scalar(sa.select(PrincipalRow.id).where(PrincipalRow.base_id == base.id))
        if has_key is None:
            principal_id = await upsert_base_principal(db, base_id=base.id, name=base.unit_name)
            api_key = await issue_token(db, principal_id)
    await db.flush()
    return {"id": base.id, "status": base.status, "api_key": api_key,
            "decided": [{"field": f or None, "decision": decisions[f].decision,
                         "decided_at": decisions[f].decided_at} for f in wanted]}


async def set_suspension(db: AsyncSession, principal: Principal, base_id: uuid.UUID, reason: str | None) -> TrainingBase:
    """Suspend (`reason` given) or reinstate (`reason` None) an approved base."""
    base = await _base(db, base_id, lock=True)
    await _require_governs_base(db, principal, base)
    if base.status != "approved":
        raise Conflict("only an approved base can be suspended or reinstated", rule="base-not-approved")
    if reason is not None:
        if base.suspended_at is not None:
            raise Conflict("the base is already suspended", rule="base-suspended")
        base.suspended_at, base.suspension_reason = sa.func.now(), reason
    else:
        if base.suspended_at is None:
            raise Conflict("the base is not suspended", rule="base-not-suspended")
        base.suspended_at, base.suspension_reason = None, None
    await db.flush()
    await db.refresh(base)
    return base


async def _base_principal_id(db: AsyncSession, base: TrainingBase) -> uuid.UUID | None:
    return await db.scalar(sa.select(PrincipalRow.id).where(PrincipalRow.base_id == base.id))


async def rotate_api_key(db: AsyncSession, principal: Principal, base_id: uuid.UUID) -> str:
    base = await _base(db, base_id, lock=True)
    if principal.kind == "base":
        if principal.base_id != base.id:
            raise Forbidden("a base can rotate only its own key", rule="other-base")
    else:
        await _require_governs_base(db, principal, base)
    principal_id = await _base_principal_id(db, base)
    if base.status != "approved" or principal_id is None:
        raise Conflict("the base has no key: it is not approved", rule="base-not-approved")
    await revoke_principal_tokens(db, principal_id, "rotated")
    return await issue_token(db, principal_id)


async def revoke_api_keys(db: AsyncSession, principal: Principal, base_id: uuid.UUID, reason: str) -> int:
    base = await _base(db, base_id, lock=True)
    await _require_governs_base(db, principal, base)
    principal_id = await _base_principal_id(db, base)
    return 0 if principal_id is None else await revoke_principal_tokens(db, principal_id, reason)


async def get_base(db: AsyncSession, principal: Principal, base_id: uuid.UUID) -> dict[str, Any]:
    if principal.kind == "base" and principal.base_id != base_id:
        raise Forbidden("a base can read only itself", rule="other-base")
    return await base_out(db, await _base(db, base_id))


async def list_bases(db: AsyncSession, principal: Principal, *, category: str | None, status: str | None,
                     scope_region: str | None) -> list[dict[str, Any]]:
    own = principal.base_id if principal.kind == "base" else None
    query = _where_given(sa.select(TrainingBase).order_by(TrainingBase.created_at), (TrainingBase.id, own),
                         (TrainingBase.category, category), (TrainingBase.status, status),
                         (TrainingBase.scope_region, scope_region))
    return [await base_out(db, b) for b in (await db.scalars(query.limit(1000))).all()]


def _where_given(query: sa.Select, *filters: tuple[Any, Any]) -> sa.Select:
    """Add `column = value` for every filter whose value was given."""
    for column, value in filters:
        if value is not None and value != "":
            query = query.where(column == value)
    return query


# ---- courses ------------------------------------------------------------------------------------

async def submit_course(db: AsyncSession, principal: Principal, body: schemas.CourseIn) -> Course:
    base_id = principal.require_base()
    base = await _base(db, base_id)
    if base.status != "approved":
        raise Forbidden("the base is not approved", rule="base-not-approved")
    if base.suspended_at is not None:
        raise Forbidden("the base is suspended", rule="base-suspended")
    errors = topic_or_field_errors(body.category, body.topic, body.field)
    if body.category != base.category:
        errors.append(FieldError("category", "course-category",
                                 f"this base is approved for {base.category} subjects, not {body.category}"))
    InvalidInput.check(errors)
    plan = await db.get(Plan, body.year)
    if plan is None:
        raise InvalidInput(f"there is no {body.year} plan (see GET /v1/plans)", rule="plan-unknown", field="year")
    topic_hours = None
    if body.category == "public" and body.topic == OTHER_TOPIC:
        if not plan.other_topics_allowed:
            raise InvalidInput(f"the {body.year} plan allows no other topics (原则上不得另行开设其它主题的培训)",
                               rule="other-topics-not-allowed", field="topic")
    elif body.category == "public":
        topic = await db.get(Topic, (body.year, body.topic))
        if topic is None:
            raise InvalidInput(f"the {body.year} plan has no topic {body.topic!r}", rule="topic-unknown",
                               field="topic")
        topic_hours = topic.hours
    else:
        approved = await db.scalar(sa.select(BaseDecision.field).where(
            BaseDecision.base_id == base.id, BaseDecision.field == body.field, BaseDecision.decision == "approved"))
        if approved is None:
            raise InvalidInput(f"field {body.field!r} is not one of this base's approved fields",
                               rule="field-not-approved", field="field")
    InvalidInput.check(course_errors(mode=body.mode, exam_questions=body.exam_questions,
                                     min_exam_questions=plan.min_exam_questions, hours=body.hours,
                                     topic_hours=topic_hours))
    course = Course(base_id=base.id, code=body.code, title=body.title, year=body.year, category=body.category,
                    topic=body.topic, field=body.field, hours=body.hours, mode=body.mode,
                    exam_questions=body.exam_questions)
    db.add(course)
    try:
        async with db.begin_nested():
            await db.flush()
    except IntegrityError:
        raise Conflict(f"this base already has a course with code {body.code!r}", rule="course-code-taken",
                       field="code") from None
    if body.xapi_activity_ids:
        await _set_activities(db, course, body.xapi_activity_ids)
    await db.refresh(course)
    return course


async def _set_activities(db: AsyncSession, course: Course, activity_ids: list[str]) -> None:
    """The course's cmi5 activity ids, replaced (each names one course of its base: 409 when another has it)."""
    if activity_ids and (course.mode == "offline" or course.seminar_id is not None):
        raise InvalidInput("only an online, live or mixed course (not a seminar's) is studied through cmi5",
                           rule="xapi-course-mode", field="xapi_activity_ids")
    repeated = sorted({a for a in activity_ids if activity_ids.count(a) > 1})
    if repeated:
        raise InvalidInput(f"{repeated[0]!r} is listed twice", rule="xapi-activity-id-repeated",
                           field="xapi_activity_ids")
    taken = await db.scalar(sa.select(CourseActivity.activity_id).where(
        CourseActivity.base_id == course.base_id, CourseActivity.activity_id.in_(activity_ids),
        CourseActivity.course_id != course.id).limit(1))
    if taken is not None:
        raise Conflict(f"{taken!r} is an activity id of another course of this base", rule="xapi-activity-id-taken",
                       field="xapi_activity_ids")
    await db.execute(sa.delete(CourseActivity).where(CourseActivity.course_id == course.id))
    if activity_ids:
        try:
            async with db.begin_nested():
                await db.execute(sa.insert(CourseActivity), [
                    {"base_id": course.base_id, "activity_id": a, "course_id": course.id, "position": i}
                    for i, a in enumerate(activity_ids)])
        except IntegrityError:  # another course took one of them meanwhile
            raise Conflict("an activity id was just given to another course of this base",
                           rule="xapi-activity-id-taken", field="xapi_activity_ids") from None


async def set_course_activities(db: AsyncSession, principal: Principal, course_id: uuid.UUID,
                                activity_ids: list[str]) -> Course:
    course = await _course(db, course_id, lock=True)
    if principal.require_base() != course.base_id:
        raise Forbidden("a base sets the activity ids of its own courses only", rule="other-base")
    if course.status not in ("pending_review", "approved"):
        raise Conflict(f"the course is {course.status}", rule="course-not-editable")
    await _set_activities(db, course, activity_ids)
    return course


async def _course(db: AsyncSession, course_id: uuid.UUID, *, lock: bool = False) -> Course:
    query = sa.select(Course).where(Course.id == course_id)
    course = await db.scalar(query.with_for_update() if lock else query)
    if course is None:
        raise NotFound("no such course", rule="course-not-found")
    return course


async def _require_governs_course(db: AsyncSession, principal: Principal, course: Course) -> None:
    principal.require_staff(*GOVERNING_ROLES)
    actor = _actor(principal)
    if course.category == "public":
        base = await _base(db, course.base_id)
        allowed = governs_public_scope(actor, base.scope_region)
    else:
        allowed = governs_field(actor, (await stamping_authorities(db))[course.field], HR_AUTHORITY)
    if not allowed:
        raise _out_of_scope("this course")


async def review_course(db: AsyncSession, principal: Principal, course_id: uuid.UUID,
                        body: schemas.ReviewIn) -> Course:
    course = await _course(db, course_id, lock=True)
    await _require_governs_course(db, principal, course)
    if course.status != "pending_review":
        raise Conflict(f"the course is {course.status}; only a course awaiting review can be reviewed",
                       rule="course-not-pending")
    checks = ReviewChecks(wording=body.checks.wording, policy=body.checks.policy, ideology=body.checks.ideology)
    plan = await db.get(Plan, course.year)
    assert plan is not None  # a course names an existing plan (foreign key)
    reviewed_on = body.reviewed_on or today()
    InvalidInput.check(review_errors(body.decision, checks, body.reviewers)
                       + review_day_errors(reviewed_on, today(), plan.window_start))
    db.add(CourseReview(course_id=course.id, decision=body.decision, reviewers=body.reviewers,
                        wording=checks.wording, policy=checks.policy, ideology=checks.ideology,
                        comment=body.comment, reviewed_on=reviewed_on, recorded_by=principal.id))
    course.status = body.decision
    if body.decision == "approved":
        course.live_from = reviewed_on
    await db.flush()
    return course


async def withdraw_course(db: AsyncSession, principal: Principal, course_id: uuid.UUID, reason: str) -> Course:
    course = await _course(db, course_id, lock=True)
    if principal.kind == "base":
        if principal.base_id != course.base_id:
            raise Forbidden("a base can withdraw only its own courses", rule="other-base")
    else:
        await _require_governs_course(db, principal, course)
    if course.status not in ("pending_review", "approved"):
        raise Conflict(f"the course is {course.status}", rule="course-not-withdrawable")
    course.status, course.withdrawn_at, course.withdrawal_reason = "withdrawn", sa.func.now(), reason
    await db.flush()
    await db.refresh(course)
    return course


async def course_out(db: AsyncSession, course: Course) -> dict[str, Any]:
    review = await db.scalar(sa.select(CourseReview).where(CourseReview.course_id == course.id)
                             .order_by(CourseReview.recorded_at.desc()).limit(1))
    return {
        "id": course.id, "base_id": course.base_id, "code": course.code, "title": course.title,
        "year": course.year, "category": course.category, "topic": course.topic, "field": course.field,
        "hours": course.hours, "mode": course.mode, "exam_questions": course.exam_questions,
        "status": course.status, "submitted_at": course.submitted_at, "withdrawn_at": course.withdrawn_at,
        "withdrawal_reason": course.withdrawal_reason, "live_from": course.live_from, "seminar_id": course.seminar_id,
        "xapi_activity_ids": list((await db.scalars(sa.select(CourseActivity.activity_id).where(
            CourseActivity.course_id == course.id).order_by(CourseActivity.position))).all()),
        "review": None if review is None else {
            "decision": review.decision, "reviewers": review.reviewers, "comment": review.comment,
            "checks": {"wording": review.wording, "policy": review.policy, "ideology": review.ideology},
            "reviewed_on": review.reviewed_on, "recorded_at": review.recorded_at},
    }


async def get_course(db: AsyncSession, principal: Principal, course_id: uuid.UUID) -> dict[str, Any]:
    course = await _course(db, course_id)
    if principal.kind == "base" and principal.base_id != course.base_id:
        raise Forbidden("a base can read only its own courses", rule="other-base")
    return await course_out(db, course)


async def list_courses(db: AsyncSession, principal: Principal, *, base_id: uuid.UUID | None, year: int | None,
                       status: str | None) -> list[dict[str, Any]]:
    own = principal.base_id if principal.kind == "base" else None
    query = _where_given(sa.select(Course).order_by(Course.submitted_at), (Course.base_id, own),
                         (Course.base_id, base_id), (Course.year, year), (Course.status, status))
    return [await course_out(db, c) for c in (await db.scalars(query.limit(1000))).all()]
