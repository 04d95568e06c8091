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
