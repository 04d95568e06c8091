"""Instants are stored in UTC; days, deadlines and daily limits are reckoned in Asia/Shanghai."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

__all__ = ["SHANGHAI", "now", "shanghai_day", "today"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def today() -> dt.date:
    """The current calendar day in Fujian."""
    return now().astimezone(SHANGHAI).date()


def shanghai_day(instant: dt.datetime) -> dt.date:
    return instant.astimezone(SHANGHAI).date()
