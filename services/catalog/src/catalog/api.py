"""Routes of the catalog service: parse, call the service, shape the response."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Body, Path, Query, Response
from xueshi_shared.schemas import ProblemDocument
from xueshi_shared.timekeeping import today
from xueshi_shared.web import CurrentPrincipal, DbSession, OrjsonRoute

from . import schemas, seminars, service

router = APIRouter(route_class=OrjsonRoute)
YearPath = Annotated[int, Path(ge=2000, le=2100)]
_problems = {409: {"model": ProblemDocument, "description": "Conflicts with the current state"}}

# ---- public reference data (no authentication) ---------------------------------------------------


@router.get("/v1/plans", response_model=list[schemas.PlanOut], tags=["reference"], summary="All public-subject plans")
async def list_plans(session: DbSession) -> list[dict]:
    return await service.list_plans(session)


@router.get("/v1/plans/{year}", response_model=schemas.PlanOut, tags=["reference"],
            summary="A year's public-subject plan and its topics")
async def get_plan(year: YearPath, session: DbSession) -> dict:
    return await service.get_plan(session, year)


@router.post("/v1/plans", status_code=201, response_model=schemas.PlanOut, tags=["reference"], responses=_problems,
             summary="Publish another year's plan (province_admin)")
async def create_plan(body: schemas.PlanIn, principal: CurrentPrincipal, session: DbSession) -> dict:
    return await service.create_plan(session, principal, body)


@router.get("/v1/authorities", response_model=list[schemas.AuthorityOut], tags=["reference"],
            summary="The provincial industry authorities and their professional fields")
async def list_authorities(session: DbSession) -> list[dict]:
    return await service.list_authorities(session)


@router.get("/v1/fields", response_model=list[schemas.FieldOut], tags=["reference"],
            summary="Professional fields, with the authority that stamps each today")
async def list_fields(session: DbSession) -> list[dict]:
    return await service.list_fields(session)


@router.get("/v1/regions", response_model=list[schemas.RegionOut], tags=["reference"],
            summary="Fujian's region codes (GB/T 2260): the province, nine cities, Pingtan")
async def list_regions() -> list[dict]:
    return service.list_regions()


@router.get("/v1/region-codes", response_model=list[schemas.RegionCodeOut], tags=["reference"],
            summary="Every GB/T 2260 code in force in Fujian (province, cities, counties): what a unit's region and a "
                    "base's region and scope are checked against")
async def list_region_codes() -> list[dict]:
    return service.list_region_codes()


@router.get("/v1/delegations", response_model=list[schemas.DelegationOut], tags=["reference"],
            summary="Fields delegated to 省人社厅 (annex 2)")
async def list_delegations(session: DbSession) -> list[dict]:
    return await service.list_delegations(session)


@router.post("/v1/delegations", status_code=201, response_model=schemas.DelegationOut, tags=["reference"],
             responses=_problems, summary="Record a delegation (province_admin or the owning authority's reviewer)")
async def create_delegation(body: schemas.DelegationIn, principal: CurrentPrincipal, session: DbSession) -> dict:
    return await service.create_delegation(session, principal, body)


@router.post("/v1/delegations/{delegation_id}/end", response_model=schemas.DelegationOut, tags=["reference"],
             responses=_problems, summary="End a delegation on a given day")
async def end_delegation(delegation_id: uuid.UUID, body: schemas.DelegationEndIn, principal: CurrentPrincipal,
                         session: DbSession) -> dict:
    return await service.end_delegation(session, principal, delegation_id, body)


# ---- training bases -----------------------------------------------------------------------------


@router.post("/v1/bases", status_code=201, response_model=schemas.BaseCreated, tags=["bases"], responses=_problems,
             summary="Register a training base's access application (接入申请表)")
async def register_base(body: schemas.BaseIn, principal: CurrentPrincipal, session: DbSession) -> dict:
    base = await service.register_base(session, principal, body)
    return {"id": base.id, "status": base.status or "pending"}


@router.get("/v1/bases", response_model=list[schemas.BaseOut], tags=["bases"],
            summary="Training bases (staff: all; a base: itself)")
async def list_bases(
    principal: CurrentPrincipal, session: DbSession,
    category: Literal["public", "professional"] | None = None,
    status: Literal["pending", "approved", "rejected"] | None = None,
    scope_region: Annotated[str | None, Query(pattern=r"^[0-9]{6}$")] = None,
) -> list[dict]:
    return await service.list_bases(session, principal, category=category, status=status, scope_region=scope_region)


@router.get("/v1/bases/{base_id}", response_model=schemas.BaseOut, tags=["bases"], summary="One training base")
async def get_base(base_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession) -> dict:
    return await service.get_base(session, principal, base_id)


@router.post("/v1/bases/{base_id}/approval", response_model=schemas.ApprovalOut, tags=["bases"],
             responses=_problems, summary="Decide a base (approve by default); the first approval issues its API key")
async def decide_base(base_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession,
                      body: Annotated[schemas.DecisionIn | None, Body()] = None) -> dict:
    return await service.decide_base(session, principal, base_id, body or schemas.DecisionIn())


@router.post("/v1/bases/{base_id}/suspension", response_model=schemas.StandingOut, tags=["bases"],
             responses=_problems, summary="Suspend an approved base: its records and courses are refused")
async def suspend_base(base_id: uuid.UUID, body: schemas.ReasonIn, principal: CurrentPrincipal,
                       session: DbSession) -> dict:
    base = await service.set_suspension(session, principal, base_id, body.reason)
    return {"id": base.id, "status": base.status, "suspended": True}


@router.delete("/v1/bases/{base_id}/suspension", response_model=schemas.StandingOut, tags=["bases"],
               responses=_problems, summary="Reinstate a suspended base")
async def reinstate_base(base_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession) -> dict:
    base = await service.set_suspension(session, principal, base_id, None)
    return {"id": base.id, "status": base.status, "suspended": False}


@router.post("/v1/bases/{base_id}/api-key", response_model=schemas.ApiKeyOut, tags=["bases"], responses=_problems,
             summary="Rotate the base's API key (the base itself or its governing staff)")
async def rotate_api_key(base_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession) -> dict:
    return {"id": base_id, "api_key": await service.rotate_api_key(session, principal, base_id)}


@router.delete("/v1/bases/{base_id}/api-key", status_code=204, tags=["bases"],
               summary="Revoke every API key of the base (governing staff)")
async def revoke_api_keys(base_id: uuid.UUID, body: schemas.ReasonIn, principal: CurrentPrincipal,
                          session: DbSession) -> Response:
    await service.revoke_api_keys(session, principal, base_id, body.reason)
    return Response(status_code=204)


# ---- courses ------------------------------------------------------------------------------------


@router.post("/v1/courses", status_code=201, response_model=schemas.CourseCreated, tags=["courses"],
             responses=_problems, summary="Submit a course for expert review (a base's API key)")
async def submit_course(body: schemas.CourseIn, principal: CurrentPrincipal, session: DbSession) -> dict:
    course = await service.submit_course(session, principal, body)
    return {"id": course.id, "status": course.status}


@router.get("/v1/courses", response_model=list[schemas.CourseOut], tags=["courses"],
            summary="Courses (staff: all; a base: its own)")
async def list_courses(
    principal: CurrentPrincipal, session: DbSession,
    base_id: uuid.UUID | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    status: Literal["pending_review", "approved", "rejected", "withdrawn"] | None = None,
) -> list[dict]:
    return await service.list_courses(session, principal, base_id=base_id, year=year, status=status)


@router.get("/v1/courses/{course_id}", response_model=schemas.CourseOut, tags=["courses"], summary="One course")
async def get_course(course_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession) -> dict:
    return await service.get_course(session, principal, course_id)


@router.put("/v1/courses/{course_id}/xapi-activity-ids", response_model=schemas.CourseOut, tags=["courses"],
            responses=_problems, summary=(
                "Set the course's cmi5 activity ids (its AUs' ids; its base's key): the base's xAPI statements "
                "about them are read as study of this course"))
async def set_xapi_activity_ids(course_id: uuid.UUID, body: schemas.XapiActivitiesIn, principal: CurrentPrincipal,
                                session: DbSession) -> dict:
    course = await service.set_course_activities(session, principal, course_id, body.xapi_activity_ids)
    return await service.course_out(session, course)


@router.post("/v1/courses/{course_id}/review", response_model=schemas.CourseOut, tags=["courses"],
             responses=_problems, summary="Record the expert review (专家评审) and its decision")
async def review_course(course_id: uuid.UUID, body: schemas.ReviewIn, principal: CurrentPrincipal,
                        session: DbSession) -> dict:
    course = await service.review_course(session, principal, course_id, body)
    return await service.course_out(session, course)


@router.post("/v1/courses/{course_id}/withdrawal", response_model=schemas.CourseOut, tags=["courses"],
             responses=_problems, summary="Withdraw a course: no new records, old ones stay")
async def withdraw_course(course_id: uuid.UUID, body: schemas.ReasonIn, principal: CurrentPrincipal,
                          session: DbSession) -> dict:
    course = await service.withdraw_course(session, principal, course_id, body.reason)
    return await service.course_out(session, course)


# ---- advanced seminars --------------------------------------------------------------------------


@router.get("/v1/seminar-plans/{year}", tags=["seminars"], summary="A year's seminar plan and its rules (public)")
async def seminar_plan(year: YearPath, session: DbSession) -> dict:
    return await seminars.plan_out(session, year)


@router.post("/v1/seminars", status_code=201, response_model=schemas.SeminarCreated, tags=["seminars"],
             summary="Register an advanced-seminar project (province_admin); 422 names the rule it breaks")
async def register_seminar(body: schemas.SeminarIn, principal: CurrentPrincipal, session: DbSession) -> dict:
    seminar = await seminars.register(session, principal, body)
    return {"id": seminar.id, "warnings": seminar.warnings}


@router.get("/v1/seminars", response_model=list[schemas.SeminarOut], tags=["seminars"], summary="Seminars (staff)")
async def list_seminars(principal: CurrentPrincipal, session: DbSession,
                        year: Annotated[int | None, Query(ge=2000, le=2100)] = None) -> list[dict]:
    return [seminars.out(s) for s in await seminars.list_seminars(session, principal, year)]


@router.get("/v1/seminars/{seminar_id}", response_model=schemas.SeminarOut, tags=["seminars"],
            summary="One seminar (staff, or its organising base)")
async def get_seminar(seminar_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession) -> dict:
    return seminars.out(await seminars.get(session, principal, seminar_id))


@router.patch("/v1/seminars/{seminar_id}", response_model=schemas.SeminarOut, tags=["seminars"], responses=_problems,
              summary="Change a project (province_admin); after approval with a written reason, kept in its history")
async def change_seminar(seminar_id: uuid.UUID, body: schemas.SeminarChangeIn, principal: CurrentPrincipal,
                         session: DbSession) -> dict:
    return seminars.out(await seminars.change(session, principal, seminar_id, body, today()))


@router.get("/v1/seminars/{seminar_id}/history", response_model=list[schemas.SeminarChangeOut], tags=["seminars"],
            summary="Every change to a project, with its reason")
async def seminar_history(seminar_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession) -> list:
    return await seminars.history(session, principal, seminar_id)


@router.post("/v1/seminars/{seminar_id}/approval", response_model=schemas.SeminarOut, tags=["seminars"],
             responses=_problems, summary="Approve a project; a base-organised one gets its attendance course")
async def approve_seminar(seminar_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession) -> dict:
    return seminars.out(await seminars.approve(session, principal, seminar_id))


@router.post("/v1/seminars/{seminar_id}/materials", status_code=204, tags=["seminars"],
             summary="Record a closing material as submitted (organising base, or province_admin)")
async def record_material(seminar_id: uuid.UUID, body: schemas.MaterialIn, principal: CurrentPrincipal,
                          session: DbSession) -> Response:
    await seminars.record_material(session, principal, seminar_id, body.item, body.submitted_on)
    return Response(status_code=204)


@router.get("/v1/seminars/{seminar_id}/materials", tags=["seminars"],
            summary="Closing-materials checklist: missing, overdue, subsidy eligibility")
async def materials(seminar_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession) -> dict:
    return await seminars.checklist(session, await seminars.get(session, principal, seminar_id), today())


@router.post("/v1/seminars/{seminar_id}/survey-responses", status_code=201, tags=["seminars"],
             summary="Trainees' satisfaction answers (annex 2), collected by the organising base")
async def add_survey(seminar_id: uuid.UUID, body: schemas.SurveyIn, principal: CurrentPrincipal,
                     session: DbSession) -> dict:
    count = await seminars.add_survey_responses(session, principal, seminar_id,
                                                [r.model_dump() for r in body.responses])
    return {"added": count}


@router.get("/v1/seminars/{seminar_id}/survey", tags=["seminars"], summary="Satisfaction statistics (staff)")
async def survey_stats(seminar_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession) -> dict:
    return await seminars.survey(session, principal, seminar_id)


@router.get("/v1/seminar-overview/{year}", tags=["seminars"], responses={200: {"content": {"text/csv": {}}}},
            summary="A year's seminars for staff: counts by kind and status, trainees, 学时, budget, overdue items "
                    "(?format=csv exports the projects)")
async def seminar_overview(year: YearPath, principal: CurrentPrincipal, session: DbSession,
                           format: Literal["json", "csv"] = "json") -> Response:
    data = await seminars.overview(session, principal, year, today())
    if format == "csv":
        return Response(seminars.overview_csv(data), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="seminars-{year}.csv"'})
    return Response(orjson.dumps(data), media_type="application/json")
