"""Who is asking, and the checks every service makes about it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..problems import Forbidden

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    id: uuid.UUID
    kind: str  # "staff" or "base"
    name: str
    role: str | None = None
    region: str | None = None
    authority: str | None = None
    base_id: uuid.UUID | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    def require_staff(self, *roles: str) -> None:
        """Refuse unless staff with one of `roles` (any staff role when none is given)."""
        if not self.is_staff:
            raise Forbidden("this action is for staff; training-base keys cannot perform it", rule="staff-only")
        if roles and self.role not in roles:
            raise Forbidden(
                f"role {self.role} may not perform this action (allowed: {', '.join(roles)})", rule="role-not-allowed"
            )

    def require_base(self) -> uuid.UUID:
        if self.kind != "base" or self.base_id is None:
            raise Forbidden("this action needs a training base's API key", rule="base-only")
        return self.base_id
