"""Platform administration over HTTP: staff accounts and the audit trail (mounted by catalog)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, field_validator

from ..problems import InvalidInput
from ..regions import PROVINCE, REGIONS
from ..schemas import StrictModel
from ..web import CurrentPrincipal, DbSession, OrjsonRoute
from . import service
from .models import AuditEvent

router = APIRouter(tags=["platform"], route_class=OrjsonRoute)

Role = Literal["province_admin", "city_admin", "authority_reviewer", "auditor"]


class StaffIn(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    region: str | None = Field(default=None, description="Region code; required for city_admin.")
    authority: str | None = Field(default=None, description="Authority code; required for authority_reviewer.")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and (value not in REGIONS or value == PROVINCE):
            raise ValueError("must be the code of a Fujian city or Pingtan (see GET /v1/regions)")
        return value


class StaffOut(BaseModel):
    id: uuid.UUID
    name: str
    role: str
    region: str | None
    authority: str | None
    created_at: dt.datetime
    disabled_at: dt.datetime | None


class StaffCreated(BaseModel):
    id: uuid.UUID
    token: str = Field(description="The bearer token. Shown once; only its digest is kept.")


class RevocationIn(StrictModel):
    reason: str = Field(min_length=1, max_length=500)


class RevocationOut(BaseModel):
    id: uuid.UUID
    tokens_revoked: int


class AuditEventOut(BaseModel):
    id: int
    occurred_at: dt.datetime
    service: str
    actor_id: uuid.UUID | None
    actor_kind: str | None
    actor_name: str | None
    actor_role: str | None
    action: str
    target: dict[str, Any]
    outcome: str
    status: int | None
    client_address: str | None
    request_id: str | None


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_before_id: int | None = Field(description="Pass as `before_id` for the next (older) page.")


@router.post("/v1/staff", status_code=201, response_model=StaffCreated, summary="Create a staff account")
async def create_staff(body: StaffIn, request: Request, principal: CurrentPrincipal,
                       session: DbSession) -> StaffCreated:
    principal.require_staff("province_admin")
    staff_id, token = await service.create_staff(
        session, name=body.name, role=body.role, region=body.region, authority=body.authority
    )
    request.state.audit_target = {"staff": str(staff_id), "role": body.role, "region": body.region,
                                  "authority": body.authority}
    return StaffCreated(id=staff_id, token=token)


@router.get("/v1/staff", response_model=list[StaffOut], summary="List staff accounts")
async def list_staff(principal: CurrentPrincipal, session: DbSession) -> list[dict[str, Any]]:
    principal.require_staff("province_admin", "auditor")
    return await service.list_staff(session)


@router.post(
    "/v1/staff/{staff_id}/revocation", response_model=RevocationOut,
    summary="Disable a staff account and revoke all its tokens",
)
async def revoke_staff(
    staff_id: uuid.UUID, body: RevocationIn, request: Request, principal: CurrentPrincipal, session: DbSession
) -> RevocationOut:
    principal.require_staff("province_admin")
    request.state.audit_target = {"staff": str(staff_id), "reason": body.reason}
    if staff_id == principal.id:
        raise InvalidInput("you cannot revoke your own account", field="staff_id", rule="self-revocation")
    count = await service.revoke_staff(session, staff_id, body.reason)
    return RevocationOut(id=staff_id, tokens_revoked=count)


@router.get("/v1/audit-events", response_model=AuditPage, summary="Read the audit trail, newest first")
async def audit_events(
    principal: CurrentPrincipal,
    session: DbSession,
    actor_id: uuid.UUID | None = None,
    outcome_prefix: str | None = Query(default=None, max_length=50),
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before_id: int | None = Query(default=None, ge=1, le=2**63 - 1),
    limit: int = Query(default=100, ge=1, le=1000),
) -> AuditPage:
    principal.require_staff("auditor", "province_admin")
    query = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if actor_id is not None:
        query = query.where(AuditEvent.actor_id == actor_id)
    if outcome_prefix:
        query = query.where(AuditEvent.outcome.startswith(outcome_prefix, autoescape=True))
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEvent.occurred_at < until)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    rows = (await session.scalars(query)).all()
    events = [AuditEventOut.model_validate(r, from_attributes=True) for r in rows]
    return AuditPage(events=events, next_before_id=events[-1].id if len(events) == limit else None)
