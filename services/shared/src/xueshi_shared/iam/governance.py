"""Who governs what (the roles of the foundation issue applied to catalog objects).

- Public-subject matters: `province_admin` anywhere; `city_admin` where the base's training scope lies
  in its region (a province-wide scope belongs to the province alone).
- Professional fields: the `authority_reviewer` of the authority that stamps the field today (the
  owning authority, or 省人社厅 while delegated); `province_admin` for the fields 省人社厅 stamps.
- `auditor` never governs anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..regions import PROVINCE, governing_region

__all__ = ["Actor", "governs_field", "governs_public_scope"]


@dataclass(frozen=True, slots=True)
class Actor:
    role: str | None
    region: str | None = None
    authority: str | None = None


def governs_public_scope(actor: Actor, scope_region: str) -> bool:
    if actor.role == "province_admin":
        return True
    if actor.role == "city_admin" and scope_region != PROVINCE:
        return actor.region is not None and governing_region(scope_region) == actor.region
    return False


def governs_field(actor: Actor, stamped_by: str, hr_authority: str) -> bool:
    if actor.role == "authority_reviewer":
        return actor.authority == stamped_by
    if actor.role == "province_admin":
        return stamped_by == hr_authority
    return False
