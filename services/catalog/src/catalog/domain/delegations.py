"""Which authority stamps a field on a given day: its own, or 省人社厅 while a delegation runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Period", "active", "overlaps", "stamped_by"]


@dataclass(frozen=True, slots=True)
class Period:
    starts_on: dt.date
    ends_on: dt.date | None  # inclusive; None = until further notice


def active(period: Period, day: dt.date) -> bool:
    return period.starts_on <= day and (period.ends_on is None or day <= period.ends_on)


def overlaps(a: Period, b: Period) -> bool:
    a_end = a.ends_on or dt.date.max
    b_end = b.ends_on or dt.date.max
    return a.starts_on <= b_end and b.starts_on <= a_end


def stamped_by(owner: str, delegations: Iterable[Period], day: dt.date, hr_authority: str) -> str:
    return hr_authority if any(active(p, day) for p in delegations) else owner
