"""Principals and tokens: create, authenticate, revoke. Callers own the transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ..problems import InvalidInput, NotFound
from .models import STAFF_ROLES, AuditEvent, Token
from .models import Principal as PrincipalRow
from .principal import Principal
from .tokens import digest, new_token

__all__ = [
    "LIVE_TOKENS",
    "authenticate_digest",
    "create_staff",
    "issue_token",
    "list_staff",
    "record_audit",
    "revoke_principal_tokens",
    "revoke_staff",
    "staff_exists",
    "upsert_base_principal",
]

Executor = AsyncSession | AsyncConnection


def _check_staff_fields(role: str, region: str | None, authority: str | None) -> None:
    if role not in STAFF_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(STAFF_ROLES)}", field="role", rule="staff-role")
    if role == "city_admin" and not region:
        raise InvalidInput("a city_admin is scoped to one region code", field="region", rule="scope-required")
    if role == "authority_reviewer" and not authority:
        raise InvalidInput("an authority_reviewer is scoped to one authority", field="authority", rule="scope-required")
    if role != "city_admin" and region:
        raise InvalidInput("only a city_admin carries a region scope", field="region", rule="scope-not-applicable")
    if role != "authority_reviewer" and authority:
        raise InvalidInput(
            "only an authority_reviewer carries an authority scope", field="authority", rule="scope-not-applicable"
        )


async def issue_token(db: Executor, principal_id: uuid.UUID) -> str:
    token = new_token()
    await db.execute(sa.insert(Token).values(principal_id=principal_id, token_hash=digest(token)))
    return token


async def create_staff(
    db: Executor, *, name: str, role: str, region: str | None = None, authority: str | None = None
) -> tuple[uuid.UUID, str]:
    """A new staff member and their first token (the only time it is visible)."""
    _check_staff_fields(role, region, authority)
    if authority is not None:
        # The authority directory is the catalog's reference data (loaded by `xueshi db upgrade`).
        known = await db.scalar(sa.text("SELECT 1 FROM catalog.authorities WHERE code = :c"), {"c": authority})
        if known is None:
            raise InvalidInput(f"unknown authority {authority!r} (see GET /v1/authorities)", field="authority",
                               rule="authority-unknown")
    staff_id = await db.scalar(
        sa.insert(PrincipalRow)
        .values(kind="staff", name=name, role=role, region=region, authority=authority)
        .returning(PrincipalRow.id)
    )
    assert staff_id is not None
    return staff_id, await issue_token(db, staff_id)


async def upsert_base_principal(db: Executor, *, base_id: uuid.UUID, name: str) -> uuid.UUID:
    principal_id = await db.scalar(
        sa.select(PrincipalRow.id).where(PrincipalRow.base_id == base_id, PrincipalRow.kind == "base")
    )
    if principal_id is None:
        principal_id = await db.scalar(
            sa.insert(PrincipalRow).values(kind="base", name=name, base_id=base_id).returning(PrincipalRow.id)
        )
    assert principal_id is not None
    return principal_id


async def revoke_principal_tokens(db: Executor, principal_id: uuid.UUID, reason: str) -> int:
    result = await db.execute(
        sa.update(Token)
        .where(Token.principal_id == principal_id, Token.revoked_at.is_(None))
        .values(revoked_at=sa.func.now(), revoke_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)  # a CursorResult's


async def revoke_staff(db: Executor, staff_id: uuid.UUID, reason: str) -> int:
    """Disable a staff member and revoke every token they hold."""
    # Disabled once (a second revocation keeps the first moment). Not `coalesce(disabled_at, now())`: Citus refuses
    # non-immutable functions inside COALESCE or CASE on a reference table, which principals are there.
    found = await db.scalar(
        sa.update(PrincipalRow)
        .where(PrincipalRow.id == staff_id, PrincipalRow.kind == "staff", PrincipalRow.disabled_at.is_(None))
        .values(disabled_at=sa.func.now())
        .returning(PrincipalRow.id)
    )
    if found is None:
        found = await db.scalar(sa.select(PrincipalRow.id).where(PrincipalRow.id == staff_id,
                                                                 PrincipalRow.kind == "staff"))
    if found is None:
        raise NotFound(f"no staff member {staff_id}")
    return await revoke_principal_tokens(db, staff_id, reason)


async def staff_exists(db: Executor) -> bool:
    return bool(await db.scalar(sa.select(sa.exists().where(PrincipalRow.kind == "staff"))))


async def list_staff(db: Executor) -> list[dict[str, Any]]:
    rows = await db.execute(
        sa.select(
            PrincipalRow.id, PrincipalRow.name, PrincipalRow.role, PrincipalRow.region,
            PrincipalRow.authority, PrincipalRow.created_at, PrincipalRow.disabled_at,
        )
        .where(PrincipalRow.kind == "staff")
        .order_by(PrincipalRow.created_at)
    )
    return [dict(r._mapping) for r in rows]


# Every request runs this, so it goes straight to asyncpg (a statement prepared once per connection).
_AUTHENTICATE = """
    SELECT p.id, p.kind, p.name, p.role, p.region, p.authority, p.base_id
    FROM iam.tokens t JOIN iam.principals p ON p.id = t.principal_id
    WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND p.disabled_at IS NULL"""


async def authenticate_digest(db: Executor | asyncpg.Connection, token_digest: bytes) -> Principal | None:
    """The principal behind a live token (by its digest), or None for an unknown, revoked or disabled one."""
    if isinstance(db, asyncpg.Connection):
        raw = db
    else:
        conn = await db.connection() if isinstance(db, AsyncSession) else db
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        raw = driver
    row = await raw.fetchrow(_AUTHENTICATE, token_digest)
    return Principal(**dict(row)) if row else None


# The live tokens among the digests in $1, as a subquery: for a caller that checks many tokens at once together
# with reads of its own, in one statement (the ledger's group commit).
LIVE_TOKENS = """
    SELECT t.token_hash
    FROM iam.tokens t JOIN iam.principals p ON p.id = t.principal_id
    WHERE t.token_hash = ANY($1::bytea[]) AND t.revoked_at IS NULL AND p.disabled_at IS NULL"""


async def record_audit(
    db: Executor,
    *,
    service: str,
    action: str,
    outcome: str,
    status: int | None,
    principal: Principal | None,
    target: dict[str, Any] | None = None,
    client_address: str | None = None,
    request_id: str | None = None,
    occurred_at: dt.datetime | None = None,
) -> None:
    values: dict[str, Any] = dict(
        service=service,
        action=action,
        outcome=outcome,
        status=status,
        target=target or {},
        client_address=client_address,
        request_id=request_id,
        actor_id=principal.id if principal else None,
        actor_kind=principal.kind if principal else None,
        actor_name=principal.name if principal else None,
        actor_role=principal.role if principal else None,
    )
    if occurred_at is not None:
        values["occurred_at"] = occurred_at
    await db.execute(sa.insert(AuditEvent).values(**values))
